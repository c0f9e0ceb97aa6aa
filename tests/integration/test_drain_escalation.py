"""A drain that PodDisruptionBudgets block follows its policy, timed on the fleet's clock (the
simulator's, which the tests move): evict and retry; after a while tell the owner (an Event on
the budget, a signed note to the owner's webhook, an audit line naming the budget and the pods);
after a further while ask for an approval; only once someone other than the requester approves,
delete the blocking pods. A policy that may not delete gives up at drain_timeout_seconds. The
progress Query shows which step a blocked drain is on and since when."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from regatta.rules import signing
from tests.callback_receiver import SECRET
from tests.conftest import set_faults, sim_report
from tests.integration.conftest import start_upgrade, wait_until
from tests.integration.upgrades import failure_of
from tests.replaying import replays
from tests.shared_http import http
from workers.main import build_worker

MONDAY = "2026-12-07T09:00:00+00:00"


def blocked_upgrade(**policy) -> dict:
    return {"strategy": "blue_green", "requested_by": "sre-alice", "drain_blocked_report_seconds": 0.2,
            "drain_timeout_seconds": 3600, "drain_policies": [{"workload_labels": {"app": "checkout"}, **policy}]}


@pytest.fixture
async def signing_worker(client, queue_settings):
    """The worker with a webhook secret: notes to owners go out signed, or not at all."""
    async with build_worker(client, dataclasses.replace(queue_settings, webhook_secret=SECRET)):
        yield


async def test_a_blocked_drain_tells_the_owner_then_asks_for_approval_and_deletes_only_once_approved(
        client, signing_worker, task_queue, add_cluster, simulator, inventory, sim_clock, receiver, request):
    start = sim_clock(now=MONDAY)
    cluster = add_cluster("esc", version="1.31", pool_version="1.30", pools=1, nodes=1)
    set_faults(simulator, cluster, blocking_pdbs=["shop/checkout-pdb"])
    handle = await start_upgrade(client, task_queue, cluster, **blocked_upgrade(
        notify_owner_after_seconds=600, ask_approval_after_seconds=1800, delete_blocking_pods=True,
        owner_webhook=receiver.url + "/owner"))

    progress = await wait_until(handle, lambda p: p.drain_escalation is not None, "blocked")
    escalation = progress.drain_escalation
    assert escalation.step == "retrying" and escalation.blocked_since - start < timedelta(seconds=30)
    assert escalation.pods and all(p.startswith("shop/checkout-") for p in escalation.pods)
    assert escalation.budgets[0].startswith("shop/checkout-pdb (allows 0 disruptions")
    with pytest.raises(WorkflowUpdateFailedError) as early:
        await handle.execute_update("approve", {"approver": "sre-bob"})
    assert "nothing to approve: no blocked drain waits for an approval" in str(early.value.cause)
    assert receiver.received == []  # nobody is told before notify_owner_after_seconds

    sim_clock(advance_seconds=11 * 60)
    progress = await wait_until(handle, lambda p: p.drain_escalation.step == "owner_notified", "told the owner")
    signed = receiver.received[0]
    assert signing.verification_problem(SECRET.encode(), signature=signed["headers"][signing.SIGNATURE_HEADER],
                                        timestamp=signed["headers"][signing.TIMESTAMP_HEADER], body=signed["body"],
                                        now=time.time()) is None
    note = json.loads(signed["body"])
    assert receiver.received[0]["path"] == "/owner" and note["phase"] == "drain_blocked"
    assert "shop/checkout-pdb" in note["step"] and escalation.pods[0] in note["step"]
    assert "an approval to delete them will be asked for at 2026-12-07 09:3" in note["step"]
    events = [o for (api, plural, ns, _), o in simulator.world.clusters[cluster].objects.items() if plural == "events"]
    assert len(events) == 1 and events[0]["involvedObject"]["name"] == "checkout-pdb"
    assert events[0]["reason"] == "DrainBlocked" and events[0]["type"] == "Warning"
    assert sim_report(simulator, cluster)["pdb_violations"] == []

    sim_clock(advance_seconds=20 * 60)
    progress = await wait_until(handle, lambda p: p.phase == "awaiting_approval", "asked for approval")
    assert progress.drain_escalation.step == "awaiting_approval" and "approve to delete shop/checkout-" in progress.step
    with pytest.raises(WorkflowUpdateFailedError) as own:
        await handle.execute_update("approve", {"approver": "sre-alice"})
    assert "cannot approve it; a second person must" in str(own.value.cause)
    await handle.execute_update("approve", {"approver": "sre-bob", "comment": "checkout team agreed on the bridge"})
    # A second yes (a colleague clicking too, a retried request) is refused, not written again.
    with pytest.raises(WorkflowUpdateFailedError) as again:
        await handle.execute_update("approve", {"approver": "sre-carol"})
    assert ("already approved by sre-bob" in str(again.value.cause)
            or "nothing to approve" in str(again.value.cause)), again.value.cause

    result = await handle.result()
    assert result.outcome == "succeeded"
    # Only the approved deletions could take the budget below its floor (the controller's new
    # pods may keep it above): nothing was ever evicted past it.
    violations = sim_report(simulator, cluster)["pdb_violations"]
    assert {v["pod"] for v in violations} <= set(progress.drain_escalation.pods)
    assert all(v["via"].startswith("DELETE pod") for v in violations)
    trail = [r.detail for r in inventory.audit(operation_id=handle.id) if r.action in ("drain", "approve")]
    assert [r.action for r in inventory.audit(operation_id=handle.id)].count("approve") == 1
    assert trail[0].startswith("drain of ") and "blocked: PodDisruptionBudget shop/checkout-pdb" in trail[0]
    assert trail[1].startswith("owner notified: Regatta's upgrade of")
    assert trail[2].startswith("asks for an approval to delete shop/checkout-")
    assert "by sre-bob: checkout team agreed on the bridge" in trail[3]
    assert "without their budgets' consent, approved by sre-bob" in trail[4]
    assert all(pod in trail[4] for pod in progress.drain_escalation.pods)
    assert trail[5].startswith("node ") and "drained after being blocked since" in trail[5]
    await replays(handle, request, "cluster_upgrade_drain_escalation_approved")


async def test_a_policy_that_may_not_delete_tells_the_owner_and_gives_up_at_the_drain_timeout(
        client, worker, task_queue, add_cluster, simulator, inventory, sim_clock):
    sim_clock(now=MONDAY)
    cluster = add_cluster("escno", version="1.31", pool_version="1.30", pools=1, nodes=1)
    set_faults(simulator, cluster, blocking_pdbs=["shop/checkout-pdb"])
    handle = await start_upgrade(client, task_queue, cluster, **blocked_upgrade(notify_owner_after_seconds=300))
    await wait_until(handle, lambda p: p.drain_escalation is not None, "blocked")
    sim_clock(advance_seconds=6 * 60)
    progress = await wait_until(handle, lambda p: p.drain_escalation.step == "owner_notified", "told the owner")
    assert progress.phase == "node_pools"  # no approval is asked for: the policy may not delete

    sim_clock(advance_seconds=60 * 60)  # past drain_timeout_seconds on the fleet's clock
    failure = await failure_of(handle)
    assert failure.type == "DrainTimeout" and "timed out after 3600s" in failure.message
    assert "PodDisruptionBudget shop/checkout-pdb" in failure.message and "may delete the blocking pods" in failure.message
    report = sim_report(simulator, cluster)
    assert report["pdb_violations"] == []  # nothing was deleted
    old = [v for v in report["clusters"][cluster]["nodes"].values() if v["version"].startswith("v1.30")]
    assert old and not any(v["unschedulable"] for v in old)  # the blocked node went back into service
    notified = [r for r in inventory.audit(operation_id=handle.id) if r.detail.startswith("owner notified")]
    assert len(notified) == 1 and "the upgrade stops at 2026-12-07 10:0" in notified[0].detail


async def test_a_budget_that_lets_go_while_an_approval_is_awaited_needs_none_and_nothing_is_deleted(
        client, worker, task_queue, add_cluster, simulator, inventory, sim_clock):

    sim_clock(now=MONDAY)
    cluster = add_cluster("escok", version="1.31", pool_version="1.30", pools=1, nodes=1)
    set_faults(simulator, cluster, blocking_pdbs=["shop/checkout-pdb"])
    handle = await start_upgrade(client, task_queue, cluster, **blocked_upgrade(
        notify_owner_after_seconds=60, ask_approval_after_seconds=120, delete_blocking_pods=True))
    await wait_until(handle, lambda p: p.drain_escalation is not None, "blocked")
    sim_clock(advance_seconds=5 * 60)
    await wait_until(handle, lambda p: p.phase == "awaiting_approval", "asked for approval")
    http.delete(f"{simulator.url}/sim/faults", params={"cluster": cluster}).raise_for_status()  # the workload recovered

    assert (await handle.result()).outcome == "succeeded"
    trail = [r.detail for r in inventory.audit(operation_id=handle.id) if r.action in ("drain", "approve")]
    assert not any("deleted" in line for line in trail) and "drained after being blocked since" in trail[-1]
    assert sim_report(simulator, cluster)["pdb_violations"] == []
