"""The benchmarks' own arithmetic, against answers worked out by hand: a figure computed by a helper
nobody checked is not evidence."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

from temporalio.api.common.v1 import ActivityType, Payload, Payloads
from temporalio.api.history.v1 import (
    ActivityTaskCompletedEventAttributes,
    ActivityTaskScheduledEventAttributes,
    HistoryEvent,
)
from temporalio.client import WorkflowHistory

from benchmarks.patch_wave import ideal_makespan
from benchmarks.policy_rollout import bundle_given_at, time_to_compliant
from benchmarks.stack import cpu_of_the_three, script_figures, temporal_work

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


def _event(event_id: int, at: int, **attributes) -> HistoryEvent:
    event = HistoryEvent(event_id=event_id, **attributes)
    event.event_time.FromDatetime(datetime(2026, 12, 5, 12, 0, at))
    return event


def _given(event_id: int, at: int, cluster: str, activity: str = "kube.give_bundle") -> HistoryEvent:
    payload = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps({"cluster": cluster, "bundle": "b"}).encode())
    return _event(event_id, at, activity_task_scheduled_event_attributes=ActivityTaskScheduledEventAttributes(
        activity_type=ActivityType(name=activity), input=Payloads(payloads=[payload])))


def _completed(event_id: int, at: int, scheduled: int) -> HistoryEvent:
    return _event(event_id, at, activity_task_completed_event_attributes=ActivityTaskCompletedEventAttributes(
        scheduled_event_id=scheduled))


def test_time_to_compliant_reads_each_clusters_bundle_completion_and_counts_the_ones_never_given():
    events = [_given(5, 1, "a"), _given(6, 1, "b"), _given(7, 2, "a", activity="kube.health_check"),
              _completed(8, 4, scheduled=5), _completed(9, 9, scheduled=7), _completed(10, 11, scheduled=6),
              _given(11, 12, "a"), _completed(12, 20, scheduled=11)]  # a given again later: the first counts
    given = bundle_given_at(events)
    start = datetime(2026, 12, 5, 12, 0, 0)
    assert given == {"a": datetime(2026, 12, 5, 12, 0, 4), "b": datetime(2026, 12, 5, 12, 0, 11)}
    # 4 s and 11 s: the median of two is their mean; p95 of two is the second (ceil(1.9) = 2nd).
    assert time_to_compliant(start, given, clusters=["a", "b"]) == {
        "p50": 7.5, "p95": 11.0, "max": 11.0, "clusters": 2, "not_given": 0}
    assert time_to_compliant(start, given, clusters=["a", "b", "c"])["not_given"] == 1
    assert time_to_compliant(start, {}, clusters=["c"]) == {"p50": None, "p95": None, "max": None, "clusters": 0,
                                                            "not_given": 1}


def test_cpu_of_the_three_runs_is_per_cluster_process_by_process():
    saved = cpu_of_the_three({"worker": 12.6, "temporal_server": 7.4}, {"cpu_seconds": 5.8, "simulator_cpu_seconds": 3.9, "seconds": 9},
                             {"workers": 2.7, "temporal_server": 4.4}, clusters=100)
    assert saved == {"regatta": {"worker": 0.126, "temporal_server": 0.074}, "script": {"script": 0.058, "simulator": 0.039},
                     "raw_fan_out": {"workers": 0.027, "temporal_server": 0.044}}


def test_script_figures_hold_regatta_against_the_calls_and_against_the_calls_plus_the_floor():
    # 1,000 clusters: the script took 60 s, the raw fan-out 40 s, Regatta 150 s.
    figures = script_figures({"seconds": 60.0, "failed": 0}, 40.0, ours=150.0, clusters=1000)
    assert figures["script_clusters_per_min"] == 1000.0  # 1,000 in a minute
    assert figures["ratio_to_script"] == 2.5  # 150 / 60
    assert figures["ratio_to_script_plus_raw"] == 1.5  # 150 / (60 + 40)
    assert figures["floor_clusters_per_min"] == 600.0  # 1,000 in 100 s


def test_a_script_bracketing_the_run_counts_as_the_mean_of_both_and_says_how_far_the_machine_drifted():
    from benchmarks.stack import bracketed

    before = {"seconds": 80.0, "cpu_seconds": 70.0, "simulator_cpu_seconds": 50.0, "failed": 0}
    after = {"seconds": 100.0, "cpu_seconds": 90.0, "simulator_cpu_seconds": 60.0, "failed": 1}
    both = bracketed(before, after)
    assert both == {"seconds": 90.0, "cpu_seconds": 80.0, "simulator_cpu_seconds": 55.0, "failed": 1,
                    "seconds_before": 80.0, "seconds_after": 100.0, "drift": 1.25}
    figures = script_figures(both, 30.0, ours=150.0, clusters=1000)
    assert (figures["script_seconds"], figures["script_drift"], figures["ratio_to_script_plus_raw"]) == (90.0, 1.25, 1.25)
    assert "script_drift" not in script_figures({"seconds": 60.0, "failed": 0}, 40.0, ours=150.0, clusters=1000)


def test_a_profile_sample_is_the_first_kind_its_stack_matches_and_scaled_to_the_runs_cpu(tmp_path):
    from benchmarks.profile_summary import summary

    activity = "_worker (concurrent/futures/thread.py:81);_execute_sync_activity (temporalio/worker/_activity.py:700)"
    (tmp_path / "script_on_temporal").mkdir()
    (tmp_path / "worker.txt").write_text("\n".join([
        # an EKS call inside an activity is a cloud call, not the SDK's work around it
        f"{activity};CloudActivities.upgrade (activities/cloud.py:130);EksProvider._call (regatta/clouds/eks.py:126) 6",
        # a heartbeat sent from inside the cloud activity's wait is a heartbeat
        f"{activity};CloudActivities._wait (activities/cloud.py:253);heartbeat (temporalio/activity.py:400) 2",
        "_WorkflowWorker._handle_activation (temporalio/worker/_workflow.py:300);"
        "ClusterUpgrade.run (workflows/cluster_upgrade.py:120) 1",
        "EpollSelector.select (selectors.py:468) 1",
    ]) + "\n")
    (tmp_path / "worker_2.txt").write_text(f"{activity};append (regatta/inventory/audit_append.py:40) 10\n")
    (tmp_path / "script_on_temporal" / "worker_1.txt").write_text(
        "_WorkflowWorker._handle_activation (temporalio/worker/_workflow.py:300);"
        "PayloadVisitor.visit (temporalio/bridge/_visitor.py:10) 3\n"
        f"{activity};node_pool (benchmarks/script_on_temporal.py:80);RESTClientObject.GET (kubernetes/client/rest.py:200) 1\n")
    run = {"cpu_seconds_per_cluster": {"regatta": {"worker": 0.06, "worker_2": 0.04, "temporal_server": 9.0},
                                       "script_on_temporal": {"workers": 0.08}}, "run": {"commit": "abc"}}
    regatta, floor = summary(tmp_path, run)["steps"]
    # 20 samples over 100 ms per cluster (both workers, not the server): 5 ms each
    assert (regatta["samples"], regatta["cpu_ms_per_cluster"]) == (20, 100.0)
    assert {k: regatta[k] for k in ("cloud_calls", "heartbeats", "workflow_code", "inventory", "other")} == {
        "cloud_calls": 30.0, "heartbeats": 10.0, "workflow_code": 5.0, "inventory": 50.0, "other": 5.0}
    assert regatta["sdk_activations"] == regatta["sdk_activities"] == 0.0
    assert (floor["samples"], floor["sdk_activations"], floor["cluster_calls"]) == (4, 60.0, 20.0)
