"""A maintenance window that closes while an upgrade is in flight: the step in flight finishes,
the cluster is left consistent (no node cordoned that still serves, skew rules intact), the
upgrade waits, visibly, and resumes at the same step when the next window opens, across a
SIGKILLed worker. The window is read on the fleet's clock, which the test moves."""

from __future__ import annotations

from datetime import UTC, datetime

from regatta.models import ClusterUpgradeProgress
from tests.conftest import WorkerProcess, set_faults, sim_report
from tests.integration.conftest import clock_read_again, clock_reads, start_upgrade, wait_until
from tests.replaying import replays
from tests.shared_http import http
from workers.main import build_worker

# Mondays and Tuesdays 01:00-02:00 UTC.
WINDOWS = [{"name": "early", "days": ["mon", "tue"], "start": "01:00", "duration_minutes": 60, "timezone": "UTC"}]


async def test_a_window_that_closes_mid_upgrade_pauses_it_consistent_and_it_resumes_at_the_same_step_next_window(
        client, task_queue, queue_settings, add_cluster, simulator, sim_clock, inventory, request):
    sim_clock(now="2026-12-07T01:40:00+00:00")  # a Monday, inside the window
    cluster = add_cluster("win", version="1.31", pool_version="1.30", pools=1, nodes=2)
    # The first batch's drain is held by a budget while the window closes around it.
    set_faults(simulator, cluster, blocking_pdbs=["shop/checkout-pdb"])
    with WorkerProcess(queue_settings) as doomed:
        handle = await start_upgrade(client, task_queue, cluster, strategy="blue_green", maintenance_windows=WINDOWS,
                                     drain_blocked_report_seconds=0.2, drain_timeout_seconds=7200)
        await wait_until(handle, lambda p: p.drain_escalation is not None, "blocked in the first batch")
        reads = await clock_reads(handle)
        sim_clock(now="2026-12-07T02:30:00+00:00")  # the window has closed
        await clock_read_again(handle, reads)  # the upgrade has read the moved clock since
        http.delete(f"{simulator.url}/sim/faults", params={"cluster": cluster}).raise_for_status()

        waiting = await wait_until(handle, lambda p: p.phase == "waiting_window", "waited for the window")
        assert waiting.window_opens == datetime(2026, 12, 8, 1, 0, tzinfo=UTC)  # Tuesday's window
        # The batch in flight finished; what comes next is either the other node's drain or deleting the
        # drained pool, whichever the blocked node left (the emptiest node is drained first).
        assert waiting.step.startswith("outside its maintenance windows: resumes '")
        assert waiting.drained_nodes and waiting.cordoned_in_service == []
        report = sim_report(simulator, cluster)
        old = {n: v for n, v in report["clusters"][cluster]["nodes"].items() if v["version"].startswith("v1.30")}
        serving = [n for n in old if n not in waiting.drained_nodes]
        assert all(not old[n]["unschedulable"] for n in serving)  # a node that still serves is back in service
        assert [n for n, v in old.items() if v["unschedulable"] and v["pods"] > 0] == []
        assert report["skew_violations"] == [] and report["pdb_violations"] == []
        resumes = waiting.step
        doomed.sigkill()  # the worker dies while the upgrade waits for Tuesday

    reads = await clock_reads(handle)
    async with build_worker(client, queue_settings):
        await clock_read_again(handle, reads)  # the new worker has looked at the clock: still Monday, nothing moves
        still = await handle.query("progress", result_type=ClusterUpgradeProgress)
        assert still.phase == "waiting_window" and still.step == resumes  # the new worker picked up the same wait
        nodes = sim_report(simulator, cluster)["clusters"][cluster]["nodes"]
        assert set(old) <= set(nodes) and all(not nodes[n]["unschedulable"] for n in serving)
        sim_clock(now="2026-12-08T01:01:00+00:00")
        result = await handle.result()

    assert result.outcome == "succeeded"
    report = sim_report(simulator, cluster)
    assert all(v["version"].startswith("v1.31.") for v in report["clusters"][cluster]["nodes"].values())
    assert report["double_drains"] == [] and report["pdb_violations"] == [] and report["skew_violations"] == []
    trail = [(r.action, r.outcome) for r in inventory.audit(operation_id=handle.id)]
    assert ("window", "paused") in trail and ("window", "resumed") in trail
    await replays(handle, request, "cluster_upgrade_window_closed_and_reopened")


async def test_an_upgrade_started_outside_its_windows_touches_nothing_until_one_opens_and_can_be_aborted_meanwhile(
        client, worker, task_queue, add_cluster, simulator, sim_clock):
    sim_clock(now="2026-12-09T12:00:00+00:00")  # a Wednesday: next window Monday 01:00
    cluster = add_cluster("win", pools=1, nodes=1)
    handle = await start_upgrade(client, task_queue, cluster, maintenance_windows=WINDOWS)
    waiting = await wait_until(handle, lambda p: p.phase == "waiting_window", "waited")
    assert waiting.window_opens == datetime(2026, 12, 14, 1, 0, tzinfo=UTC) and waiting.control_plane == "pending"
    assert sim_report(simulator, cluster)["clusters"][cluster]["control_plane_version"] == "1.30"
    await handle.execute_update("abort", {"reason": "change cancelled", "requested_by": "sre-bob"})
    result = await handle.result()
    assert result.outcome == "aborted" and "change cancelled" in result.message
    assert sim_report(simulator, cluster)["clusters"][cluster]["control_plane_version"] == "1.30"
