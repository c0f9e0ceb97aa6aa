"""What a whole run of the suite took, written by the run itself to `test-results/times.json` (docs/testing.md links
to it rather than copying figures every commit would change): when, at which commit, how many tests passed, failed and
were skipped, the wall time, the tests' own seconds, the slowest tests and the
slowest files, and which process ran which file when. Only a run of the whole suite writes it (no paths, `-k` or `-m`),
and only the process that runs the session (with pytest-xdist, the controller, which hears every test's report)."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

SLOWEST = 25


class RunTimes:
    def __init__(self, config: pytest.Config):
        self.config = config
        self.started = time.monotonic()
        self.outcomes: Counter[str] = Counter()
        self.durations: dict[str, float] = {}
        self.wall_started = time.time()
        # (process, file) → [first start, last stop], seconds since the run began: which process ran what when
        self.spans: dict[tuple[str, str], list[float]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        process = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", "main")
        span = self.spans.setdefault((process, report.nodeid.split("::")[0]), [report.start, report.stop])
        span[0], span[1] = min(span[0], report.start), max(span[1], report.stop)
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.outcomes[report.outcome] += 1
        elif report.when == "teardown" and report.outcome == "failed":
            self.outcomes["error"] += 1

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        root = Path(str(self.config.rootpath))
        try:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                    timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            commit = None
        slowest = sorted(self.durations.items(), key=lambda item: -item[1])[:SLOWEST]
        files: Counter[str] = Counter()
        for test, seconds in self.durations.items():
            files[test.split("::")[0]] += seconds
        by_file = files.most_common(SLOWEST)  # what tests/conftest.py's LONGEST_FIRST is ordered by
        figures = {"finished_at": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit,
                   "exit_status": int(exitstatus), "tests": dict(sorted(self.outcomes.items())),
                   "wall_seconds": round(time.monotonic() - self.started, 1),
                   "test_seconds": round(sum(self.durations.values()), 1),  # over the processes: their busy time
                   "slowest": [{"test": test, "seconds": round(seconds, 1)} for test, seconds in slowest],
                   "files": [{"file": file, "seconds": round(seconds, 1)} for file, seconds in by_file],
                   "processes": {process: [{"file": file, "from": round(begun - self.wall_started, 1),
                                            "to": round(ended - self.wall_started, 1)}
                                           for (who, file), (begun, ended) in sorted(self.spans.items(),
                                                                                     key=lambda item: item[1][0])
                                           if who == process]
                                 for process in sorted({who for who, _ in self.spans})}}
        target = root / "test-results" / "times.json"
        target.parent.mkdir(exist_ok=True)
        target.write_text(json.dumps(figures, indent=2) + "\n")


def whole_suite(config: pytest.Config) -> bool:
    return not (config.option.file_or_dir or config.option.keyword or config.option.markexpr)


def register(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and whole_suite(config):
        config.pluginmanager.register(RunTimes(config), "regatta-run-times")
