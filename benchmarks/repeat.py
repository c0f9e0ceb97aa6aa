"""Run a benchmark several times and save the median of every figure, with each run kept beside it:
what docs/benchmarks.md quotes.

    python benchmarks/repeat.py --runs 3 --out benchmarks/results/upgrade_fleet.json -- \\
        benchmarks/upgrade_fleet.py --clusters 100

The runs go one after another on this machine (each writes its own JSON); the saved file holds,
for every number in them, the median of the runs (`median_of.runs` says how many, `median_of.each` holds
each run's figures, `median_of.spread` each number's lowest and highest), the verdicts of
benchmarks/targets.py held against the medians, and the record of the runs (commit, command,
parameters, machine). A result of one run also keeps that run's evidence (a chaos run's kill log and
details, each operation's final state), which has no median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stack import commit  # noqa: E402
from benchmarks.targets import verdicts  # noqa: E402

BULKY = ("final_state", "chaos", "details", "run", "verdicts", "first_errors")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def medians(values: Sequence[Any]) -> Any:
    """The median of each number across the runs (dicts key by key, lists of one length item by
    item); anything else as the first run had it."""
    first = values[0]
    if all(is_number(v) for v in values):
        middle = statistics.median(values)
        return round(middle, 3) if isinstance(middle, float) else middle
    if all(isinstance(v, dict) for v in values):
        return {key: medians([v[key] for v in values if key in v]) for key in first}
    if all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1:
        return [medians([v[i] for v in values]) for i in range(len(first))]
    return first


def spread_of(values: Sequence[Any], path: str = "") -> dict[str, list[Any]]:
    """Each number's lowest and highest across the runs, by dotted path."""
    if all(is_number(v) for v in values):
        return {path: [min(values), max(values)]} if len(set(values)) > 1 else {}
    found: dict[str, list[Any]] = {}
    if all(isinstance(v, dict) for v in values):
        for key in values[0]:
            if key not in BULKY:
                found |= spread_of([v[key] for v in values if key in v], f"{path}.{key}" if path else key)
    return found


def combine(runs: Sequence[dict[str, Any]], *, name: str, command: list[str]) -> dict[str, Any]:
    lean = [{k: v for k, v in run.items() if k not in BULKY} for run in runs]
    middle = medians(lean)
    record = dict(runs[0].get("run") or {})
    record |= {**commit(), "command": command, "each_run": [run.get("run") for run in runs]}
    # The evidence a number cannot carry (a chaos run's kill log, each operation's state at the end) is one run's
    # and has no median: a result made by one run keeps it as it is, so that it traces to that run.
    evidence = {k: v for k, v in runs[0].items() if k in BULKY and k not in ("run", "verdicts")} if len(runs) == 1 else {}
    return {**middle, **evidence, "verdicts": verdicts(name, middle),
            "median_of": {"runs": len(runs), "spread": spread_of(lean), "each": lean}, "run": record}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("benchmark", nargs=argparse.REMAINDER, help="-- SCRIPT [ARGS...] (without --out)")
    arguments = parser.parse_args()
    benchmark = arguments.benchmark[1:] if arguments.benchmark[:1] == ["--"] else arguments.benchmark
    if not benchmark or arguments.runs < 1:
        parser.error("give --runs N and, after --, the benchmark script and its arguments")
    runs = []
    with tempfile.TemporaryDirectory(prefix="regatta-repeat-") as scratch:
        for n in range(arguments.runs):
            out = Path(scratch) / f"run-{n}.json"
            print(f"run {n + 1} of {arguments.runs}: {' '.join(benchmark)}", flush=True)
            done = subprocess.run([sys.executable, *benchmark, "--out", str(out)], cwd=ROOT, check=False)
            if done.returncode != 0 and not out.exists():
                sys.exit(f"run {n + 1} failed (exit {done.returncode}) and saved nothing")
            runs.append(json.loads(out.read_text()))
    combined = combine(runs, name=arguments.out.stem, command=[Path(sys.argv[0]).name, *sys.argv[1:]])
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(combined, indent=2) + "\n")
    print(json.dumps({k: v for k, v in combined.items() if k not in ("median_of", "run")}, indent=2))
    print(f"median of {len(runs)} runs saved to {arguments.out}")


if __name__ == "__main__":
    main()
