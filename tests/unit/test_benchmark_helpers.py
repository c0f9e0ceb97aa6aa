"""The benchmarks' own arithmetic, against answers worked out by hand: a figure computed by a helper
nobody checked is not evidence."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from temporalio.client import WorkflowHistory

from benchmarks.patch_wave import ideal_makespan
from benchmarks.stack import temporal_work

HISTORIES = Path(__file__).parents[1] / "histories"


def operation(cluster: str, created: float, finished: float | None) -> dict:
    return {"cluster": cluster, "created": created, "finished": finished}


def test_the_ideal_makespan_packs_each_clusters_work_into_the_slots_in_start_order():
    # a: 10 + 5 = 15 s of cloud work, b: 4 s, c: 8 s, d: 3 s (one unfinished operation is left out).
    operations = [operation("a", 0, 10), operation("a", 20, 25), operation("b", 1, 5), operation("c", 2, 10),
                  operation("d", 3, 6), operation("d", 9, None)]
    # Two slots: a [0, 15); b [0, 4); c takes b's slot [4, 12); d takes it again [12, 15): 15 s.
    assert ideal_makespan(operations, concurrency=2) == 15
    # One slot: everything back to back, 15 + 4 + 8 + 3.
    assert ideal_makespan(operations, concurrency=1) == 30
    # More slots than clusters: the longest cluster.
    assert ideal_makespan(operations, concurrency=8) == 15


def test_temporal_work_counts_what_the_history_holds():
    recorded = json.loads((HISTORIES / "cluster_upgrade_surge.json").read_text())
    kinds = Counter(event["eventType"] for event in recorded["history"]["events"])
    local = sum(1 for event in recorded["history"]["events"] if event["eventType"] == "EVENT_TYPE_MARKER_RECORDED"
                and event["markerRecordedEventAttributes"]["markerName"] == "core_local_activity")
    work = temporal_work(WorkflowHistory.from_json(recorded["workflow_id"], recorded["history"]))
    assert work["events"] == len(recorded["history"]["events"])
    assert work["activities"] == kinds["EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"] > 0
    assert work["local_activities"] == local > 0
    assert work["timers"] == kinds["EVENT_TYPE_TIMER_STARTED"]
    assert work["updates"] == kinds["EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"]
    assert work["actions"] == 1 + work["activities"] + local + work["timers"] + work["signals"] + work["updates"]
