"""Before-and-after hooks: at each point of an upgrade (before and after the control plane, before and after
the node pools) a signed POST to the owner's URL or a smoke test gates the next step; a hook that says no stops
the upgrade before that step, naming the hook and what it said; a Velero backup is taken before the control
plane moves for a cluster that asks for it."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from regatta.models import ClusterUpgradeInput, ClusterUpgradeProgress, ClusterUpgradeResult
from regatta.rules.operation_ids import operation_id
from regatta.temporal.connect import connect
from tests.conftest import set_faults, sim_report
from tests.integration.conftest import FAST, http_receiver
from workers.main import build_worker

SECRET = "hook-secret-for-tests"
POINTS = ["before_control_plane", "after_control_plane", "before_node_pools", "after_node_pools"]


@pytest.fixture
def change_system():
    """A change system's gate: /freeze answers 403 with its reason, /flaky 503 twice then 200, anything else 200."""
    def answer(path: str, received: list[dict]) -> tuple[int, bytes]:
        if path == "/freeze":
            return 403, b"change freeze: CHG-9 is not approved"
        if path == "/flaky" and sum(r["path"] == "/flaky" for r in received) <= 2:
            return 503, b"busy"
        return 200, b"go ahead"

    with http_receiver(answer) as server:
        yield server


SMOKE = {"name": "checkout", "at": "after_control_plane", "smoke_test": {
    "image": "registry.local/smoke:1", "command": ["/smoke", "--checkout"], "namespace": "shop", "timeout_seconds": 30}}


def hook(name: str, at: str, url: str) -> dict:
    return {"name": name, "at": at, "webhook": {"url": url, "timeout_seconds": 20}}


async def upgrade(client, settings, cluster: str, **fields) -> ClusterUpgradeResult:
    request = ClusterUpgradeInput(cluster=cluster, target_version="1.31", **{**FAST, **fields})
    handle = await client.start_workflow("ClusterUpgrade", request, id=operation_id(cluster),
                                         task_queue=settings.task_queue, result_type=ClusterUpgradeResult)
    return await handle.result()


async def test_hooks_gate_each_step_signed_and_one_that_says_no_stops_before_its_step(
        queue_settings, add_cluster, simulator, inventory, change_system):
    settings = dataclasses.replace(queue_settings, webhook_secret=SECRET)
    frozen = add_cluster("hookno", pools=1, nodes=1)
    gated = add_cluster("hookok", pools=1, nodes=1, labels={"backup-before-upgrade": "true"})
    client = await connect(settings)
    async with build_worker(client, settings):
        with pytest.raises(WorkflowFailureError) as caught:
            await upgrade(client, settings, frozen, hooks=[hook("itsm", "before_control_plane", change_system.url + "/freeze")])
        cause = caught.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "HookSaidNo"
        assert "hook itsm (before_control_plane) said no: HTTP 403: change freeze: CHG-9 is not approved" in cause.message
        state = sim_report(simulator, frozen)["clusters"][frozen]
        assert state["control_plane_version"] == "1.30", "the control plane moved past a hook that said no"
        assert inventory.audit(operation_id=operation_id(frozen))[-1].outcome == "refused"  # nothing had moved

        result = await upgrade(client, settings, gated, hooks=[hook(f"gate-{n}", at, change_system.url + f"/{at}")
                                                               for n, at in enumerate(POINTS)]
                               + [hook("flaky", "after_node_pools", change_system.url + "/flaky"), SMOKE])
        assert result.outcome == "succeeded"
        progress = await client.get_workflow_handle(operation_id(gated)).query("progress", result_type=ClusterUpgradeProgress)
    assert [line.split(" (")[0] for line in progress.hooks] == ["hook gate-0", "hook gate-1", "hook checkout",
                                                                 "hook gate-2", "hook gate-3", "hook flaky"]
    assert all(line.endswith(": HTTP 200") for line in progress.hooks if "checkout" not in line)
    assert progress.hooks[2].startswith("hook checkout (after control plane, 1.31): Job shop/regatta-smoke-checkout-")
    assert progress.hooks[2].endswith(" completed")
    assert len(progress.backups) == 1 and progress.backups[0].startswith("regatta-")

    notes = [r for r in change_system.received if r["path"] in {f"/{at}" for at in POINTS}]
    assert [r["path"] for r in notes] == [f"/{at}" for at in POINTS], "hooks ran out of order, or twice"
    for note in notes:  # verified as a receiver would, from docs/api.md's formula
        sent_at = note["headers"]["X-Regatta-Timestamp"]
        wanted = hmac.new(SECRET.encode(), f"{sent_at}.".encode() + note["body"], hashlib.sha256).hexdigest()
        assert note["headers"]["X-Regatta-Signature"] == f"sha256={wanted}"
    said = json.loads(notes[0]["body"])
    assert said["cluster"] == gated and said["at"] == "before_control_plane" and said["minor"] == "1.31"
    assert said["from_version"] == "1.30" and said["operation_id"] == operation_id(gated) and "url" not in said
    assert sum(r["path"] == "/flaky" for r in change_system.received) == 3, "a 503 was not asked again"
    trail = inventory.audit(operation_id=operation_id(gated))
    assert [r.outcome for r in trail if r.action == "backup"] == ["succeeded"]


async def test_a_smoke_test_hook_that_fails_after_the_control_plane_stops_before_the_node_pools(
        client, worker, task_queue, add_cluster, simulator):
    cluster = add_cluster("hooksmoke", pools=1, nodes=1)
    set_faults(simulator, cluster, job_failure="checkout returned 503 for 4 of 10 requests")
    request = ClusterUpgradeInput(cluster=cluster, target_version="1.31", hooks=[SMOKE], **FAST)
    handle = await client.start_workflow("ClusterUpgrade", request, id=operation_id(cluster), task_queue=task_queue,
                                         result_type=ClusterUpgradeResult)
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    assert caught.value.cause.type == "HealthCheckFailed"
    assert "checkout returned 503 for 4 of 10 requests" in caught.value.cause.message
    state = sim_report(simulator, cluster)["clusters"][cluster]
    assert state["control_plane_version"] == "1.31"
    assert all(node["version"].startswith("v1.30.") for node in state["nodes"].values()), "a pool moved past the hook"
    progress = await handle.query("progress", result_type=ClusterUpgradeProgress)
    assert [pool.status for pool in progress.pools] == ["pending"]


def test_a_hook_names_exactly_one_kind_and_its_url_is_checked_at_the_start(inventory, add_cluster):
    from pydantic import ValidationError

    from regatta.models import UpgradeHook
    from regatta.rules.outbound import OutboundRules
    from regatta.temporal.admission import StartRefused, admit

    with pytest.raises(ValidationError, match="give exactly one of webhook or smoke_test"):
        UpgradeHook.model_validate({"name": "x", "at": "before_control_plane"})
    with pytest.raises(ValidationError):
        UpgradeHook.model_validate({"name": "x", "at": "during_the_drain", "webhook": {"url": "https://gate.example"}})
    cluster = add_cluster("hookurl", pools=1, nodes=1)
    request = ClusterUpgradeInput(cluster=cluster, target_version="1.31", hooks=[
        hook("metadata", "before_control_plane", "http://169.254.169.254/latest/meta-data/")])
    with pytest.raises(StartRefused, match=r"hooks\[0\]\.webhook\.url"):
        admit(request, inventory=inventory, outbound_rules=OutboundRules())
