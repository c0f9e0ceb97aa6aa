"""Replay: the workflow code must reproduce the commands of histories it recorded before
(DESIGN rule 9). The committed histories under tests/histories were recorded by
`record_histories` below; a change that breaks them needs `workflow.patched`.

Regenerate (only when the change is meant to be incompatible and is patched):
    .venv/bin/python -m pytest tests/integration/test_replay.py --record-histories
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from regatta.models import ClusterUpgradeProgress
from tests.integration.conftest import start_upgrade
from tests.replaying import HISTORIES, REPLAYER, patch_ids, replays, save
from workers.main import WORKFLOWS
from workflows.pieces.patches import SINCE_ONE_MARKER


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_histories_replay(path: Path):
    recorded = json.loads(path.read_text())
    await REPLAYER.replay_workflow(WorkflowHistory.from_json(recorded["workflow_id"], recorded["history"]))


def test_every_workflow_has_a_recorded_history():
    recorded = {json.loads(p.read_text())["history"]["events"][0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]
                for p in HISTORIES.glob("*.json")}
    assert recorded == {w.__temporal_workflow_definition.name for w in WORKFLOWS}


@pytest.mark.parametrize("strategy", ["surge", "blue_green"])
async def test_a_fresh_history_with_pause_and_resume_replays(strategy, client, worker, task_queue, add_cluster, request):
    cluster = add_cluster(f"replay{strategy.replace('_', '')}", time_scale=0.004)
    handle = await start_upgrade(client, task_queue, cluster, strategy=strategy)
    await handle.execute_update("pause", {"reason": "recorded pause"}, result_type=ClusterUpgradeProgress)
    await handle.execute_update("resume", {})
    assert (await handle.result()).outcome == "succeeded"
    history = await replays(handle, request, f"cluster_upgrade_{strategy}")
    # The released patches behind one marker: one TemporalChangeVersion upsert, not one per patch.
    assert patch_ids(history) == [SINCE_ONE_MARKER]
    upserts = [e for e in history.events if e.HasField("upsert_workflow_search_attributes_event_attributes")]
    changes = [e for e in upserts if "TemporalChangeVersion" in
               e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields]
    assert len(changes) == 1




def test_runs_begun_before_the_one_marker_replay_each_patch_where_it_was_recorded():
    before = HISTORIES / "cluster_upgrade_surge_before_one_marker.json"
    recorded = json.loads(before.read_text())
    history = WorkflowHistory.from_json(recorded["workflow_id"], recorded["history"])
    assert SINCE_ONE_MARKER not in patch_ids(history) and len(patch_ids(history)) == 4
    # and it replays (test_recorded_histories_replay): each patch is asked where the run asked it


async def test_a_fresh_provision_history_with_compensation_replays(client, worker, task_queue, simulator, request):
    from tests.conftest import set_faults
    from tests.integration.provisioning import failure_of, provision
    from tests.integration.provisioning import request as provision_request

    spec = provision_request("eks")
    set_faults(simulator, spec.name, api="kube", fail_operation="patch_namespace", fail_status=403, fail_times=99)
    handle = await provision(client, task_queue, spec)
    await failure_of(handle)
    await replays(handle, request, "provision_cluster_compensated")


async def test_a_fresh_decommission_history_with_approval_replays(client, worker, task_queue, add_cluster, request):
    from tests.integration.decommissions import SYSTEM_ONLY, decommission, wait_phase

    cluster = add_cluster("replaydel", workloads=SYSTEM_ONLY)
    handle = await decommission(client, task_queue, cluster)
    await wait_phase(handle, "awaiting_approval")
    await handle.execute_update("approve", {"approver": "sre-bob"})
    assert (await handle.result()).outcome == "succeeded"
    await replays(handle, request, "decommission_cluster_approved")


async def test_fresh_failover_and_failback_histories_with_approval_replay(client, worker, task_queue, simulator, inventory,
                                                                           request):
    from tests.integration.dr_pairs import Pair, failback, failover, wait_phase

    pair = Pair(simulator, inventory, env="prod")
    for name, start in (("dr_failover_approved", failover), ("dr_failback_approved", failback)):
        handle = await start(client, task_queue, pair)
        await wait_phase(handle, "awaiting_approval")
        await handle.execute_update("approve", {"approver": "sre-bob"})
        assert (await handle.result()).outcome == "succeeded"
        history = await handle.fetch_history()
        await REPLAYER.replay_workflow(history)
        hold = client.get_workflow_handle(f"cluster-{pair.standby}")  # the lock it held on the standby
        hold_history = await hold.fetch_history()
        await REPLAYER.replay_workflow(hold_history)
        if request.config.getoption("--record-histories"):
            save(name, handle, history)
            save("cluster_hold_released", hold, hold_history)


async def test_a_fresh_patch_wave_history_with_approval_and_a_halt_replays(client, worker, task_queue, add_cluster, simulator,
                                                                          request):
    import uuid

    from tests.conftest import set_faults
    from tests.integration.waves import start_wave, wait_phase, wave_request

    tag = uuid.uuid4().hex[:6]
    good = add_cluster("rpwa", env="canary", labels={"wave": tag}, pools=1, nodes=2)
    bad = add_cluster("rpwz", env="prod", labels={"wave": tag}, pools=1, nodes=2)
    set_faults(simulator, bad, api="cloud", fail_operation="UpdateClusterVersion", fail_status=400, fail_times=99)
    handle = await start_wave(client, task_queue, wave_request(tag, [
        {"name": "canary", "selector": {"environment": "canary"}},
        {"name": "prod", "selector": {"environment": "prod"}, "approval_required": True}]))
    await wait_phase(handle, "awaiting_approval")
    await handle.execute_update("approve", {"approver": "sre-bob"})
    result = await handle.result()
    assert result.outcome == "halted" and result.counts == {"succeeded": 1, "failed": 1} and good not in result.failed
    await replays(handle, request, "patch_wave_approved_then_halted")


async def test_a_fresh_patch_wave_history_with_a_window_opened_by_the_fleet_clock_replays(
        client, worker, task_queue, add_cluster, sim_clock, request):
    import uuid

    from tests.integration.waves import start_wave, wait_for_status, wave_request

    tag = uuid.uuid4().hex[:6]
    name = add_cluster("rpww", env="prod", labels={"wave": tag}, pools=1, nodes=2)
    sim_clock(now="2026-12-07T00:30:00+00:00")
    handle = await start_wave(client, task_queue, wave_request(tag, [{"name": "prod"}], maintenance_windows=[
        {"days": ["mon"], "start": "01:00", "duration_minutes": 60}]))
    await wait_for_status(handle, name, "waiting_window")
    sim_clock(advance_seconds=1800)
    result = await handle.result()
    assert result.outcome == "succeeded" and result.counts == {"succeeded": 1}
    await replays(handle, request, "patch_wave_window_opened_by_the_fleet_clock")


async def test_a_fresh_fleet_sweep_history_replays_and_the_sweep_records_capacity(client, worker, task_queue, add_cluster,
                                                                                  inventory, request):
    import uuid

    from regatta.models import FleetSweepInput, FleetSweepResult

    tag = uuid.uuid4().hex[:6]
    names = [add_cluster("sweep", labels={"sweep": tag}, pools=1, nodes=2) for _ in range(3)]
    handle = await client.start_workflow("FleetSweep", FleetSweepInput(selector={"labels": {"sweep": tag}}, batch_size=2),
                                         id=f"fleet-sweep-{tag}", task_queue=task_queue, result_type=FleetSweepResult)
    result = await handle.result()
    assert result.total == 3 and result.health == {"healthy": 3}
    assert all(inventory.get_cluster(name).pods_capacity == 58 for name in names)
    await replays(handle, request, "fleet_sweep_three_clusters")


def test_the_patches_behind_the_one_marker_never_change():
    """A patch added to FOLDED later would answer True on replay of a run that recorded the marker
    before it existed: a nondeterminism error. A new patch is asked on its own (or under a new marker)."""
    from workflows.pieces.patches import FOLDED

    assert SINCE_ONE_MARKER == "patches-2026-12"
    assert FOLDED == {"fewer-steps", "first-pool-with-cluster", "managed-addons", "cloud-rules", "final-progress-in-memo",
                      "fleet-clock-each-look", "fleet-clock", "joined-later", "placed-workloads", "sweep-at-sites",
                      "move-displaced-placements", "tags-set-at-start"}
