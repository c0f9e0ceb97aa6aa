"""Where the workers' CPU goes, Regatta's against the script on Temporal's, from one profiled wave run.

    python benchmarks/patch_wave.py --clusters 1000 --workers 2 --out RUN.json --profile DIR
    python benchmarks/profile_summary.py --profile DIR --run RUN.json --out benchmarks/results/patch_wave_1000_profile.json

Reads the collapsed stacks `patch_wave.py --profile` wrote (py-spy `--gil`: the thread holding the
interpreter lock, so each process's Python CPU), sorts every sample into one kind of work by the
first rule its stack matches (`KINDS`), and scales each kind's share to milliseconds per cluster
with the CPU seconds per cluster the same run measured. One row for Regatta's two workers, one for
the script on Temporal's two: what Regatta spends that the smallest Temporal program making the same
calls does not. The run it reads was slowed by its sampling; its shares are what is quoted, never
its times.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (kind, what a frame of it contains): a sample is the first kind any of its frames matches.
KINDS: list[tuple[str, tuple[str, ...]]] = [
    ("heartbeats", ("heartbeat (temporalio/", "_heartbeat", "_send_latest_heartbeat")),
    ("inventory", ("regatta/inventory/", "activities/inventory.py")),
    ("cloud_calls", ("regatta/clouds/",)),
    ("cluster_calls", ("kubernetes/client", "regatta/kube/")),
    ("workflow_code", ("workflows/", "ScriptOnTemporal.run")),
    ("sdk_activations", ("_WorkflowWorker._handle_activation", "_workflow_instance.py")),
    ("sdk_activities", ("_ActivityWorker.", "_execute_sync_activity")),
    ("sdk_bridge", ("temporalio/bridge/",)),
]


def kind_of(stack: str) -> str:
    for kind, marks in KINDS:
        if any(mark in stack for mark in marks):
            return kind
    return "other"


def shares(paths: list[Path]) -> tuple[dict[str, float], int]:
    """Each kind's share of the samples in these collapsed-stack files, and how many samples there were."""
    counted: Counter[str] = Counter()
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and re.fullmatch(r"\d+", count):
                counted[kind_of(stack)] += int(count)
    total = sum(counted.values())
    if not total:
        raise SystemExit(f"no samples in {', '.join(map(str, paths))}: was the run made with --profile?")
    return {kind: counted[kind] / total for kind in [k for k, _ in KINDS] + ["other"]}, total


def milliseconds(share: dict[str, float], cpu_seconds_per_cluster: float) -> dict[str, float]:
    return {kind: round(part * cpu_seconds_per_cluster * 1000, 1) for kind, part in share.items()}


def summary(profile: Path, run: dict) -> dict:
    cpu = run["cpu_seconds_per_cluster"]
    regatta_cpu = sum(seconds for name, seconds in cpu["regatta"].items() if name.startswith("worker"))
    floor_cpu = cpu["script_on_temporal"]["workers"]
    regatta, regatta_samples = shares(sorted(profile.glob("worker*.txt")))
    floor, floor_samples = shares(sorted((profile / "script_on_temporal").glob("worker*.txt")))
    rows = [
        {"change": "Regatta's two workers", "cpu_ms_per_cluster": round(regatta_cpu * 1000, 1), "samples": regatta_samples,
         **milliseconds(regatta, regatta_cpu), "run": run["run"]},
        {"change": "the script on Temporal's two workers", "cpu_ms_per_cluster": round(floor_cpu * 1000, 1),
         "samples": floor_samples, **milliseconds(floor, floor_cpu), "run": run["run"]},
    ]
    return {"steps": rows, "run": run["run"], "about": (
        "From one profiled run (py-spy --gil at 50 Hz on each worker, the wave's and then the script on Temporal's),"
        f" at commit `{(run['run'].get('commit') or 'unknown')[:10]}`: each kind's share of the samples times the CPU"
        " seconds per cluster the run measured. The sampling slowed the run, so its times are not quoted.")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", type=Path, required=True, help="the directory patch_wave.py --profile wrote")
    parser.add_argument("--run", type=Path, required=True, help="the results JSON of that same run")
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args()
    result = summary(arguments.profile, json.loads(arguments.run.read_text()))
    print(json.dumps([{k: v for k, v in row.items() if k != "run"} for row in result["steps"]], indent=1))
    arguments.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
