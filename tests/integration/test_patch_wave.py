"""PatchWave against the simulator: stages in order with approval, soak and bounded
concurrency; clusters at the target counted, not touched; the failure budget halting the wave;
maintenance windows and freezes making clusters wait visibly; and every refusal of a control."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowFailureError, WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.service import RPCError

from regatta.models import PatchWaveProgress, PatchWaveResult
from regatta.rules.operation_ids import operation_id, wave_id
from tests.conftest import set_faults, sim_report
from tests.integration.conftest import clock_read_again, clock_reads
from tests.integration.waves import load_fleet, start_wave, wait_for_status, wait_phase, wave_entries, wave_request
from tests.shared_http import http


async def started_and_closed(client, cluster: str) -> tuple[datetime, datetime]:
    described = await client.get_workflow_handle(operation_id(cluster)).describe()
    return described.start_time, described.close_time


async def test_stages_run_in_order_with_approval_soak_and_bounded_concurrency(client, worker, task_queue, fleet, simulator, inventory):
    canary = fleet("canary", 2)
    prod = fleet("prod", 2)
    done = fleet("prod", 1, version="1.31")  # already at the target: counted, not touched
    request = wave_request(fleet.tag, [
        {"name": "canary", "selector": {"environment": "canary"}, "concurrency": 1, "soak_seconds": 2},
        {"name": "prod", "selector": {"environment": "prod"}, "concurrency": 2, "approval_required": True}])
    handle = await start_wave(client, task_queue, request)

    waiting = await wait_phase(handle, "awaiting_approval")
    assert waiting.stage == "prod" and [s.status for s in waiting.stages] == ["done", "awaiting_approval"]
    assert all(c.status == "pending" for c in waiting.stages[1].clusters if c.name in prod)
    with pytest.raises(WorkflowUpdateFailedError) as self_approval:
        await handle.execute_update("approve", {"approver": "sre-alice"})
    assert "cannot approve it; a second person must" in str(self_approval.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as wrong_stage:
        await handle.execute_update("approve", {"approver": "sre-bob", "stage": "canary"})
    assert "stage prod is the one waiting for approval, not canary" in str(wrong_stage.value.cause)
    await handle.execute_update("approve", {"approver": "sre-bob", "stage": "prod"})
    with pytest.raises(WorkflowUpdateFailedError) as again:  # a colleague's click too, a retried request
        await handle.execute_update("approve", {"approver": "sre-carol", "stage": "prod"})
    assert ("already approved by sre-bob" in str(again.value.cause)
            or "nothing to approve" in str(again.value.cause)), again.value.cause
    result = await handle.result()

    assert result.outcome == "succeeded" and result.counts == {"succeeded": 4, "at_target": 1}
    for name in canary + prod:
        assert sim_report(simulator, name)["clusters"][name]["control_plane_version"] == "1.31"
    first, second = sorted([await started_and_closed(client, name) for name in canary])
    prod_starts = [(await started_and_closed(client, name))[0] for name in prod]
    assert second[0] >= first[1]  # canary ran one at a time
    assert min(prod_starts) >= second[1] + timedelta(seconds=2)  # after the canary stage and its soak
    with pytest.raises(RPCError, match="not found"):  # the cluster at the target never got an upgrade of its own
        await client.get_workflow_handle(operation_id(done[0])).describe()
    trail = [(r.action, r.outcome) for r in inventory.audit(cluster=wave_id(request.name))]
    assert trail == [("wave", "started"), ("approve", "approved"), ("wave", "succeeded")]


async def test_the_failure_budget_halts_the_wave_with_the_reason(client, worker, task_queue, fleet, simulator):
    broken, after = fleet("staging", 1, prefix="wva"), fleet("staging", 1, prefix="wvz")  # planned in name order
    # Its cloud refuses the control plane upgrade for good (as for a bad request): that upgrade fails.
    set_faults(simulator, broken[0], api="cloud", fail_operation="UpdateClusterVersion", fail_status=400, fail_times=99)
    request = wave_request(fleet.tag, [{"name": "all", "selector": {"environment": "staging"}, "concurrency": 1}],
                           failure_budget=0)
    result = await (await start_wave(client, task_queue, request)).result()
    assert result.outcome == "halted"
    assert f"1 clusters failed, more than the failure budget of 0 (last: {broken[0]}" in result.message
    assert result.counts == {"failed": 1, "pending": 1}
    assert "EKS refused upgrade of" in result.failed[broken[0]] and "injected failure" in result.failed[broken[0]]
    assert sim_report(simulator, after[0])["clusters"][after[0]]["control_plane_version"] == "1.30"  # never started


async def test_a_cluster_outside_its_window_waits_visibly_and_can_be_skipped(client, worker, task_queue, fleet):
    now = datetime.now(UTC)
    closed_day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(now.weekday() + 3) % 7]
    names = fleet("prod", 1)
    request = wave_request(fleet.tag, [{"name": "prod", "selector": {"environment": "prod"}}], maintenance_windows=[
        {"days": [closed_day], "start": "03:00", "duration_minutes": 60, "timezone": "Europe/Berlin"}])
    handle = await start_wave(client, task_queue, request)
    progress = await wait_phase(handle, "running")
    entry = progress.stages[0].clusters[0]
    for _ in range(100):
        entry = (await handle.query("progress", result_type=PatchWaveProgress)).stages[0].clusters[0]
        if entry.status == "waiting_window":
            break
    assert entry.status == "waiting_window" and entry.earliest_start > now + timedelta(days=1)
    assert "waits for its maintenance window: starts" in entry.detail

    with pytest.raises(WorkflowUpdateFailedError) as unknown:
        await handle.execute_update("skip", {"cluster": "not-in-wave", "reason": "x"})
    assert "not-in-wave is not in this wave" in str(unknown.value.cause)
    await handle.execute_update("skip", {"cluster": names[0], "reason": "customer launch", "requested_by": "sre-bob"})
    result = await handle.result()
    assert result.outcome == "succeeded" and result.counts == {"skipped": 1}






async def test_clusters_start_when_the_fleet_clock_reaches_their_window_and_the_freeze_has_ended(
        client, worker, task_queue, fleet, simulator, sim_clock):
    """Windows and freezes are read against the fleet's clock, which the simulator lets the test
    move: nothing here sleeps until a real window opens."""
    sim_clock(now="2026-12-07T00:30:00+00:00")  # a Monday; Berlin is UTC+1 in December
    berlin, late = fleet("prod", 1), fleet("prod", 1, prefix="wvlate")
    request = wave_request(fleet.tag, [{"name": "prod", "selector": {"environment": "prod"}, "concurrency": 2}],
                           maintenance_windows=[
                               {"name": "eu-night", "applies_to": {"clusters": berlin}, "days": ["mon"], "start": "02:00",
                                "duration_minutes": 60, "timezone": "Europe/Berlin"},
                               {"name": "late", "applies_to": {"clusters": late}, "days": ["mon"], "start": "03:00",
                                "duration_minutes": 60, "timezone": "UTC"}],
                           freezes=[{"name": "db-migration", "start": "2026-12-07T00:00:00Z", "end": "2026-12-07T01:30:00Z"}])
    handle = await start_wave(client, task_queue, request)
    # The Berlin window opens at 01:00Z but the freeze holds it until 01:30Z; the other opens at 03:00Z.
    first = await wait_for_status(handle, berlin[0], "waiting_window")
    assert first.earliest_start == datetime(2026, 12, 7, 1, 30, tzinfo=UTC) and "starts 2026-12-07T01:30:00+00:00" in first.detail
    assert (await wait_for_status(handle, late[0], "waiting_window")).earliest_start == datetime(2026, 12, 7, 3, 0, tzinfo=UTC)

    reads = await clock_reads(handle)
    sim_clock(now="2026-12-07T01:10:00+00:00")  # inside the Berlin window, but the freeze is still on
    await clock_read_again(handle, reads)  # the wave has looked at the moved clock
    assert {c.status for c in (await wave_entries(handle)).values()} == {"waiting_window"}
    assert sim_report(simulator, berlin[0])["clusters"][berlin[0]]["control_plane_version"] == "1.30"

    sim_clock(now="2026-12-07T01:31:00+00:00")  # the freeze has ended, the Berlin window is open
    await wait_for_status(handle, berlin[0], "succeeded")
    assert (await wave_entries(handle))[late[0]].status == "waiting_window"
    assert sim_report(simulator, late[0])["clusters"][late[0]]["control_plane_version"] == "1.30"

    sim_clock(advance_seconds=90 * 60)  # 03:01Z: the late window is open
    result = await handle.result()
    assert result.outcome == "succeeded" and result.counts == {"succeeded": 2}
    assert sim_report(simulator, late[0])["clusters"][late[0]]["control_plane_version"] == "1.31"


async def test_a_freeze_keeps_every_cluster_waiting_until_it_ends_and_abort_stops_the_wave(client, worker, task_queue, fleet):
    now = datetime.now(UTC)
    fleet("dev", 2)
    request = wave_request(fleet.tag, [{"name": "dev", "selector": {"environment": "dev"}, "concurrency": 2}],
                           freezes=[{"name": "launch", "start": (now - timedelta(hours=1)).isoformat(),
                                     "end": (now + timedelta(days=2)).isoformat()}])
    handle = await start_wave(client, task_queue, request)
    await wait_phase(handle, "running")
    for _ in range(100):
        progress = await handle.query("progress", result_type=PatchWaveProgress)
        if all(c.status == "waiting_window" for c in progress.stages[0].clusters):
            break
    assert all(c.status == "waiting_window" and c.earliest_start >= now + timedelta(days=2) - timedelta(seconds=1)
               for c in progress.stages[0].clusters)
    await handle.execute_update("pause", {"reason": "looking", "requested_by": "sre-bob"})
    with pytest.raises(WorkflowUpdateFailedError) as twice:
        await handle.execute_update("pause", {"reason": "again"})
    assert "already paused" in str(twice.value.cause)
    await handle.execute_update("resume", {"requested_by": "sre-bob"})
    with pytest.raises(WorkflowUpdateFailedError) as not_paused:
        await handle.execute_update("resume", {})
    assert "not paused" in str(not_paused.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as started:
        await handle.execute_update("skip", {"cluster": progress.stages[0].clusters[0].name, "reason": ""})
    assert "say why the cluster is skipped" in str(started.value.cause)
    await handle.execute_update("abort", {"reason": "launch moved", "requested_by": "sre-bob"})
    result = await handle.result()
    assert result.outcome == "aborted" and "launch moved" in result.message


async def test_bad_waves_are_refused_before_anything_starts(client, worker, task_queue, fleet):
    fleet("dev", 1)
    request = wave_request(fleet.tag, [{"name": "a"}, {"name": "a"}], failure_budget="lots")
    with pytest.raises(WorkflowFailureError) as refused:
        await (await start_wave(client, task_queue, request)).result()
    assert refused.value.cause.type == "InvalidWave"
    assert "'a' is used by an earlier stage" in str(refused.value.cause) and "'lots'" in str(refused.value.cause)
    garbage = await client.start_workflow("PatchWave", {"name": "x", "stages": "none"}, id=f"wave-bad-{fleet.tag}",
                                          task_queue=task_queue, result_type=PatchWaveResult)
    with pytest.raises(WorkflowFailureError) as invalid:
        await garbage.result()
    assert invalid.value.cause.type == "InvalidInput" and "Example:" in str(invalid.value.cause)


async def test_abort_starts_nothing_new_and_stops_the_upgrade_in_flight_after_its_current_step(
        client, worker, task_queue, fleet, simulator):
    slow = fleet("qa", 1, prefix="wva", time_scale=0.01)  # its control plane takes ~5 s
    never = fleet("qa", 1, prefix="wvz")
    handle = await start_wave(client, task_queue, wave_request(fleet.tag, [{"name": "qa", "selector": {"environment": "qa"}}]))
    upgrade = client.get_workflow_handle(operation_id(slow[0]))
    for _ in range(200):
        progress = await handle.query("progress", result_type=PatchWaveProgress)
        if progress.stages and progress.stages[0].clusters[0].status == "upgrading":
            try:
                if (await upgrade.query("progress", result_type=dict))["phase"] == "control_plane":
                    break
            except (RPCError, WorkflowQueryFailedError):  # the child has not started, or not answered, yet
                pass
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the wave never reached the slow cluster's control plane upgrade")
    await handle.execute_update("abort", {"reason": "pager storm", "requested_by": "sre-bob"})
    with pytest.raises(WorkflowUpdateFailedError) as twice:
        await handle.execute_update("abort", {"reason": "again"})
    assert "already under way" in str(twice.value.cause)
    result = await handle.result()
    assert result.outcome == "aborted" and result.counts == {"aborted": 1, "pending": 1}
    # The control plane upgrade in flight finished; the node pools were not started.
    child = await upgrade.result()
    assert child["outcome"] == "aborted" and "pager storm" in child["message"] and "node pools finished: none" in child["message"]
    report = sim_report(simulator, slow[0])["clusters"][slow[0]]
    assert report["control_plane_version"] == "1.31"
    assert {pool["version"] for pool in report["node_pools"].values()} == {"1.30"}
    assert sim_report(simulator, never[0])["clusters"][never[0]]["control_plane_version"] == "1.30"


async def test_a_node_image_wave_rolls_the_pools_of_clusters_not_on_it_and_counts_the_rest_at_target(
        client, worker, task_queue, fleet, simulator, inventory):
    old, new = "1.31.0-20260101", "1.31.2-20261101"
    behind = fleet("dev", 2, version="1.31", node_image=old)
    current = fleet("dev", 1, prefix="wvcur", version="1.31", node_image=new)
    handle = await start_wave(client, task_queue, wave_request(fleet.tag, [{"name": "dev", "concurrency": 2}],
                                                               node_images={"eks": new}))
    result = await handle.result()
    assert result.outcome == "succeeded" and result.counts == {"succeeded": 2, "at_target": 1}
    for name in behind:
        state = sim_report(simulator, name)["clusters"][name]
        assert state["control_plane_version"] == "1.31" and {n["image"] for n in state["nodes"].values()} == {new}
        assert {p.node_image for p in inventory.get_cluster(name).node_pools} == {new}
    untouched = sim_report(simulator, current[0])["clusters"][current[0]]
    assert {n["image"] for n in untouched["nodes"].values()} == {new}
    assert (await handle.query("progress", result_type=PatchWaveProgress)).node_images == {"eks": new}




async def runs_of(client, workflow_id: str) -> list:
    return [w async for w in client.list_workflows(f'WorkflowId = "{workflow_id}"')]


async def test_a_wave_larger_than_its_history_limit_continues_as_new_and_no_history_grows_with_the_fleet(
        client, worker, task_queue, simulator, inventory):
    # 120 clusters against the smallest limit a wave takes (200 events): several runs, each bounded.
    # Fleet-scale waves (1,000 and 10,000 clusters) are benchmarks/patch_wave.py's.
    tag = uuid.uuid4().hex[:5]
    names = load_fleet(simulator, inventory, tag, 120)
    request = wave_request(tag, [{"name": "all", "concurrency": 20}], continue_as_new_after_events=200)
    handle = await start_wave(client, task_queue, request)
    result = await handle.result()

    assert result.outcome == "succeeded" and result.counts == {"succeeded": 120}
    runs = await runs_of(client, wave_id(request.name))
    assert len(runs) >= 3  # it carried its state into fresh runs
    lengths = [len((await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()).events) for run in runs]
    assert sum(lengths) > 120 * 3 and max(lengths) < 200 + 20 * 8  # the limit, plus what the upgrades in flight add
    report = httpx_report(simulator)
    assert all(report["clusters"][name]["control_plane_version"] == "1.31" for name in names)
    assert [d for d in report["double_drains"] if d["cluster"] in names] == []


def httpx_report(simulator) -> dict:

    return http.get(f"{simulator.url}/sim/report", timeout=60).json()


async def test_a_sigkilled_worker_mid_wave_loses_nothing_and_upgrades_no_cluster_twice(
        client, queue_settings, task_queue, simulator, inventory):
    from tests.conftest import WorkerProcess
    from workers.main import build_worker

    tag = uuid.uuid4().hex[:5]
    names = load_fleet(simulator, inventory, tag, 12)
    for name in names:  # slow enough that the kill lands while several upgrades run
        simulator.world.clusters[name].time_scale = 0.005
    request = wave_request(tag, [{"name": "all", "concurrency": 4}])
    handle = await start_wave(client, task_queue, request)
    with WorkerProcess(queue_settings) as first:
        for _ in range(400):
            progress = await handle.query("progress", result_type=PatchWaveProgress)
            if progress.stages and sum(c.status == "succeeded" for c in progress.stages[0].clusters) >= 2:
                break
            await asyncio.sleep(0.05)
        assert any(c.status == "upgrading" for c in progress.stages[0].clusters)  # killed with upgrades in flight
        first.sigkill()
    async with build_worker(client, queue_settings):
        result = await handle.result()

    assert result.outcome == "succeeded" and result.counts == {"succeeded": 12}
    for name in names:
        assert len(await runs_of(client, operation_id(name))) == 1  # one upgrade per cluster, never a second
    report = httpx_report(simulator)
    assert all(report["clusters"][name]["control_plane_version"] == "1.31" for name in names)
    assert [d for d in report["double_drains"] if d["cluster"] in names] == []


async def test_a_failed_cluster_can_be_retried_while_its_stage_runs(client, worker, task_queue, fleet, simulator, inventory,
                                                                   api):
    """The retry is sent as a change-ticket system sends it, over the API (`POST /v1/operations/{id}/retry`)."""
    from tests.conftest import set_faults

    broken = fleet("qa", 1, prefix="wva")
    slow = fleet("qa", 1, prefix="wvz", time_scale=0.01)  # keeps the stage running while the first is retried
    set_faults(simulator, broken[0], api="cloud", fail_operation="UpdateClusterVersion", fail_status=400, fail_times=99)
    request = wave_request(fleet.tag, [{"name": "qa", "selector": {"environment": "qa"}, "concurrency": 2}], failure_budget=1)
    handle = await start_wave(client, task_queue, request)
    for _ in range(300):
        progress = await handle.query("progress", result_type=PatchWaveProgress)
        if progress.stages and progress.stages[0].clusters[0].status == "failed":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError('test_patch_wave.py:359: what this loop waited for never came')
    with pytest.raises(WorkflowUpdateFailedError) as not_failed:
        await handle.execute_update("retry", {"cluster": slow[0]})
    assert "only a failed cluster, or one held out as not ready, can be retried" in str(not_failed.value.cause)
    set_faults(simulator, broken[0])  # the cloud is fixed
    operator = api.token("operator", "qa")
    retried = await api.post(f"/v1/operations/{handle.id}/retry", headers=operator, json={"cluster": broken[0]})
    assert retried.status_code == 200, retried.text
    assert [c["status"] for c in retried.json()["progress"]["stages"][0]["clusters"] if c["name"] == broken[0]] in (
        ["pending"], ["upgrading"])  # taken up again at once
    result = await handle.result()
    assert result.outcome == "succeeded" and result.counts == {"succeeded": 2} and result.failed == {}
    assert sim_report(simulator, broken[0])["clusters"][broken[0]]["control_plane_version"] == "1.31"
    assert ("retry", "resumed") in [(r.action, r.outcome) for r in inventory.audit(cluster=wave_id(request.name))]
    api_lines = [(r.action, r.outcome, r.cluster, r.detail) for r in inventory.audit(operation_id=handle.id) if r.operation == "api"]
    assert ("api retry", "resumed", "-", broken[0]) in api_lines, api_lines
