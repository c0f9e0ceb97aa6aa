"""Each counter of the chaos benchmark fires on a fault planted for it, and stays at zero on the same
evidence without the fault: a zero in benchmarks/results/chaos_50.json is a count that could have
been otherwise."""

from __future__ import annotations

from temporalio.api.common.v1 import ActivityType, Payload, Payloads
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import (
    ActivityTaskCompletedEventAttributes,
    ActivityTaskScheduledEventAttributes,
    HistoryEvent,
    WorkflowExecutionStartedEventAttributes,
    WorkflowTaskFailedEventAttributes,
)

from benchmarks.chaos_counters import (
    audit_faults,
    bundle_differences,
    cloud_changes_accepted_twice,
    failed_workflow_tasks,
    operations_started_twice,
    pods_deleted_without_approval,
    repeated_completions,
)

# --------------------------------------------------------------------------- cloud requests

UPDATE = {"cloud": "eks", "method": "POST", "path": "/clusters/a/node-groups/pool0/update-version"}


def change(token: str | None, status: int = 200, **body) -> dict:
    return {**UPDATE, "status": status, "body": {"version": "1.31", **({"clientRequestToken": token} if token else {}), **body}}


def test_a_change_accepted_under_two_tokens_is_started_twice():
    found = cloud_changes_accepted_twice([change("t1"), change("t2")])
    assert found["started_twice"] == ["eks POST /clusters/a/node-groups/pool0/update-version accepted 2 times"]
    assert found["merged_by_token"] == []


def test_a_change_accepted_twice_without_a_token_is_started_twice():
    assert len(cloud_changes_accepted_twice([change(None), change(None)])["started_twice"]) == 1


def test_a_retry_under_the_same_token_is_merged_not_a_fault():
    found = cloud_changes_accepted_twice([change("t1"), change("t1")])
    assert found == {"started_twice": [], "merged_by_token": [
        "eks POST /clusters/a/node-groups/pool0/update-version accepted 2 times under one token"]}


def test_refused_requests_and_reads_are_not_changes():
    refused = [change("t1", status=500), change("t2", status=429), change("t3")]
    reads = [{"cloud": "eks", "method": "POST", "path": "/clusters/a/insights", "status": 200, "body": {}}] * 2
    assert cloud_changes_accepted_twice(refused + reads) == {"started_twice": [], "merged_by_token": []}


def test_different_changes_to_one_path_are_not_repeats():
    assert cloud_changes_accepted_twice([change("t1"), change("t2", version="1.32")])["started_twice"] == []


def test_an_operation_the_simulator_ran_twice_is_counted():
    op = {"cluster": "a", "node_pool": "pool0", "type": "VersionUpdate", "params": {"version": "1.31"}, "status": "Successful"}
    assert operations_started_twice([op, op]) == ["a pool0 VersionUpdate x2"]
    assert operations_started_twice([op, {**op, "status": "Failed"}]) == []


# --------------------------------------------------------------------------- Temporal histories


def history(*completions: tuple[str, bytes]) -> list[HistoryEvent]:
    """A run that schedules and completes each (activity, input) in turn."""
    events = [HistoryEvent(event_id=1, workflow_execution_started_event_attributes=WorkflowExecutionStartedEventAttributes())]
    for kind, data in completions:
        scheduled = len(events) + 1
        events.append(HistoryEvent(event_id=scheduled, activity_task_scheduled_event_attributes=ActivityTaskScheduledEventAttributes(
            activity_type=ActivityType(name=kind), input=Payloads(payloads=[Payload(data=data)]))))
        events.append(HistoryEvent(event_id=scheduled + 1, activity_task_completed_event_attributes=ActivityTaskCompletedEventAttributes(
            scheduled_event_id=scheduled)))
    return events


def test_a_change_completed_twice_with_the_same_input_is_found():
    events = history(("kube.cordon_nodes", b'{"nodes":["n1"]}'), ("kube.cordon_nodes", b'{"nodes":["n1"]}'))
    assert repeated_completions({"upgrade-a": events}) == ["upgrade-a: kube.cordon_nodes completed 2 times with the same input"]


def test_the_same_change_across_two_runs_of_one_workflow_is_found():
    events = history(("cloud.delete_node_pool", b"p0")) + history(("cloud.delete_node_pool", b"p0"))
    assert len(repeated_completions({"wave": events})) == 1


def test_reads_and_different_inputs_may_repeat():
    events = history(("kube.cordon_nodes", b"n1"), ("kube.cordon_nodes", b"n2"), ("kube.drain_nodes", b"n1"),
                     ("kube.drain_nodes", b"n1"), ("cloud.read_for_upgrade", b"a"), ("cloud.read_for_upgrade", b"a"))
    assert repeated_completions({"upgrade-a": events}) == []


def test_a_workflow_task_that_failed_for_a_nondeterminism_is_found():
    failure = Failure(message="[TMPRL1100] Nondeterminism error: Activity type of scheduled event 'kube.drain_nodes'"
                      " does not match activity type of activity command 'fleet.read_clock'")
    events = [*history(("kube.drain_nodes", b"n1")), HistoryEvent(
        event_id=9, workflow_task_failed_event_attributes=WorkflowTaskFailedEventAttributes(
            cause=WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR, failure=failure))]
    [found] = failed_workflow_tasks({"upgrade-a": events})
    assert found.startswith("upgrade-a event 9: NON_DETERMINISTIC_ERROR: [TMPRL1100] Nondeterminism error")
    assert failed_workflow_tasks({"upgrade-a": history(("kube.drain_nodes", b"n1"))}) == []


# --------------------------------------------------------------------------- the audit trail


def line(seq: int, action: str, outcome: str, *, detail: str = "", run: str = "run1", operation: str = "upgrade-a",
         cluster: str = "a") -> dict:
    return {"operation_id": operation, "run_id": run, "seq": seq, "action": action, "outcome": outcome, "detail": detail,
            "cluster": cluster}


WHOLE = [line(1, "upgrade", "started"), line(2, "drain", "escalated", detail="drain of n1 blocked"),
         line(3, "upgrade", "succeeded")]


def test_a_whole_trail_has_no_fault():
    assert audit_faults(WHOLE, {"upgrade-a": "ClusterUpgrade"}) == {"lost": [], "duplicated": []}


def test_a_lost_last_line_is_found():
    found = audit_faults(WHOLE[:2], {"upgrade-a": "ClusterUpgrade"})
    assert found["lost"] == ["upgrade-a: the last line is drain escalated, not its outcome"]


def test_a_lost_first_line_is_found():
    found = audit_faults(WHOLE[1:], {"upgrade-a": "ClusterUpgrade"})
    assert any("the first line is drain escalated" in fault for fault in found["lost"])
    assert "upgrade-a run run1 line 1" in found["lost"]


def test_an_operation_with_no_lines_is_found():
    assert audit_faults(WHOLE, {"upgrade-a": "ClusterUpgrade", "upgrade-b": "ClusterUpgrade"})["lost"] == [
        "upgrade-b: no audit line at all"]


def test_a_gap_in_the_middle_is_found():
    found = audit_faults([WHOLE[0], line(3, "upgrade", "succeeded")], {"upgrade-a": "ClusterUpgrade"})
    assert found["lost"] == ["upgrade-a run run1 line 2"]


def test_a_step_written_again_under_a_new_number_is_a_duplicate():
    trail = [*WHOLE[:2], line(3, "drain", "escalated", detail="drain of n1 blocked"), line(4, "upgrade", "succeeded")]
    assert audit_faults(trail, {"upgrade-a": "ClusterUpgrade"})["duplicated"] == [
        "upgrade-a: drain escalated on a written 2 times"]


def test_a_running_operation_is_judged_on_its_first_line_and_duplicates_only():
    running = [WHOLE[0], line(3, "drain", "escalated", detail="drain of n1 blocked")]  # line 2 in flight, no outcome yet
    assert audit_faults(running, {"upgrade-a": "ClusterUpgrade"}, running=["upgrade-a"]) == {"lost": [], "duplicated": []}
    twice = [*running, line(4, "drain", "escalated", detail="drain of n1 blocked")]
    assert audit_faults(twice, {"upgrade-a": "ClusterUpgrade"}, running=["upgrade-a"])["duplicated"] == [
        "upgrade-a: drain escalated on a written 2 times"]
    headless = audit_faults(running[1:], {"upgrade-a": "ClusterUpgrade"}, running=["upgrade-a"])["lost"]
    assert headless == ["upgrade-a: the first line is drain escalated (line 3), not upgrade started"]


def test_a_number_written_twice_is_a_duplicate():
    trail = [*WHOLE[:2], line(2, "drain", "escalated", detail="other"), WHOLE[2]]
    assert "upgrade-a run run1 line 2 x2" in audit_faults(trail, {"upgrade-a": "ClusterUpgrade"})["duplicated"]


def test_a_continued_run_numbers_again_from_one():
    trail = [line(1, "wave", "started", operation="w"), line(2, "wave", "changed", operation="w"),
             line(1, "wave", "held", run="run2", operation="w"), line(2, "wave", "succeeded", run="run2", operation="w")]
    assert audit_faults(trail, {"w": "PatchWave"}) == {"lost": [], "duplicated": []}


# --------------------------------------------------------------------------- budgets

APPROVED = [line(1, "upgrade", "started"), line(2, "approve", "approved", detail="deleting shop/web-1 on n1"),
            line(3, "drain", "escalated", detail="deleted shop/web-1, shop/web-2 on n1 without their budgets' consent,"
                 " approved by sre"), line(4, "upgrade", "succeeded")]


def test_deletions_an_approval_named_are_not_faults():
    deleted = [{"cluster": "a", "pod": "shop/web-1"}, {"cluster": "a", "pod": "shop/web-2"}]
    assert pods_deleted_without_approval(deleted, APPROVED) == []


def test_a_deletion_nobody_approved_is_found():
    deleted = [{"cluster": "a", "pod": "shop/web-1"}, {"cluster": "a", "pod": "shop/api-1"}, {"cluster": "b", "pod": "shop/web-1"}]
    assert pods_deleted_without_approval(deleted, APPROVED) == ["a:shop/api-1", "b:shop/web-1"]


def test_a_deletion_line_without_an_approval_before_it_does_not_count():
    unapproved = [APPROVED[0], APPROVED[2], APPROVED[3]]
    assert pods_deleted_without_approval([{"cluster": "a", "pod": "shop/web-1"}], unapproved) == ["a:shop/web-1"]


# --------------------------------------------------------------------------- the bundle

RENDERED = {"v1/ConfigMap/shop/team-0": {"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": "team-0", "namespace": "shop", "labels": {"bundle": "b"}},
                                         "data": {"env": "prod", "owner": "shop"}}}


def live(**data) -> dict:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "team-0", "namespace": "shop", "labels": {"bundle": "b"},
                                                                  "resourceVersion": "7", "managedFields": []},
            "data": {"env": "prod", "owner": "shop", **data}}
    return {"v1/ConfigMap/shop/team-0": body}


def test_what_the_api_server_adds_is_no_difference():
    assert bundle_differences(RENDERED, live()) == []


def test_a_changed_value_is_a_difference():
    assert bundle_differences(RENDERED, live(env="dev")) == ["v1/ConfigMap/shop/team-0 .data.env: 'dev' is not 'prod'"]


def test_a_missing_object_or_field_is_a_difference():
    assert bundle_differences(RENDERED, {}) == ["v1/ConfigMap/shop/team-0: missing"]
    gone = live()
    del gone["v1/ConfigMap/shop/team-0"]["metadata"]["labels"]
    assert bundle_differences(RENDERED, gone) == ["v1/ConfigMap/shop/team-0 .metadata.labels: missing"]
