"""Maintenance holds and fleets that change under a running wave, against the simulator and the
fleet's clock: a held cluster waits (visibly, with the hold's reason) while the rest of its stage
goes on, and starts once the hold ends; a hold set after the wave planned is honoured too; a
direct upgrade of a held cluster is refused unless overridden (and the override audited); a
cluster that leaves the fleet mid-wave is skipped with the reason, not counted as a failure; and
the `forecast` Query answers "when will my cluster be upgraded?"."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowFailureError

from regatta.models import ClusterUpgradeResult, WaveForecast
from tests.conftest import sim_report
from tests.integration.conftest import start_upgrade
from tests.integration.waves import start_wave, wait_for_status, wait_phase, wave_request
from tests.replaying import replays

MONDAY = "2026-12-07T09:00:00+00:00"


async def forecast_of(handle) -> dict:
    forecast = await handle.query("forecast", result_type=WaveForecast)
    return {c.cluster: c for c in forecast.clusters}


async def test_a_held_cluster_waits_with_its_reason_while_the_others_go_and_starts_when_the_hold_ends(
        client, worker, task_queue, fleet, simulator, inventory, sim_clock, request):
    now = sim_clock(now=MONDAY)
    free, held = fleet("prod", 1), fleet("prod", 1, prefix="wvheld")
    until = (now + timedelta(hours=2)).replace(microsecond=0)  # holds keep whole seconds
    inventory.hold_cluster(held[0], until=until, reason="black friday traffic", held_by="sre-maria", now=now)
    handle = await start_wave(client, task_queue, wave_request(fleet.tag, [
        {"name": "prod", "selector": {"environment": "prod"}, "concurrency": 2}]))

    await wait_for_status(handle, free[0], "succeeded")
    waiting = await wait_for_status(handle, held[0], "held")
    assert waiting.earliest_start == until
    assert waiting.detail == f"held until {until.isoformat()} by sre-maria: black friday traffic"
    assert sim_report(simulator, held[0])["clusters"][held[0]]["control_plane_version"] == "1.30"
    told = await forecast_of(handle)
    assert told[held[0]].earliest_touch == until and "black friday traffic" in told[held[0]].because
    assert told[free[0]].earliest_touch is None and told[free[0]].because == "upgraded"

    sim_clock(advance_seconds=2 * 3600 + 60)  # the hold has ended
    result = await handle.result()
    assert result.outcome == "succeeded" and result.counts == {"succeeded": 2}
    assert sim_report(simulator, held[0])["clusters"][held[0]]["control_plane_version"] == "1.31"
    await replays(handle, request, "patch_wave_held_cluster_waits_for_its_hold")


async def test_a_hold_set_after_the_wave_planned_and_a_cluster_that_left_the_fleet_are_honoured_not_failed(
        client, worker, task_queue, fleet, simulator, inventory, sim_clock):
    now = sim_clock(now=MONDAY)
    fleet("canary", 1)
    later_held, leaving, ordinary = fleet("prod", 1, prefix="wvlh"), fleet("prod", 1, prefix="wvgone"), fleet("prod", 1)
    handle = await start_wave(client, task_queue, wave_request(fleet.tag, [
        {"name": "canary", "selector": {"environment": "canary"}},
        {"name": "prod", "selector": {"environment": "prod"}, "concurrency": 3, "approval_required": True}]))
    await wait_phase(handle, "awaiting_approval")
    # While prod waits for approval: one prod cluster gets a hold, another leaves the fleet.
    until = (now + timedelta(hours=6)).replace(microsecond=0)
    inventory.hold_cluster(later_held[0], until=until, reason="customer demo", held_by="sre-tom", now=now)
    inventory.remove_cluster(leaving[0])
    newcomer = fleet("prod", 1, prefix="wvnew")  # joins the fleet, with the wave's labels, after it planned
    await handle.execute_update("approve", {"approver": "sre-bob"})

    entry = await wait_for_status(handle, later_held[0], "held")
    assert "customer demo" in entry.detail and entry.earliest_start == until
    gone = await wait_for_status(handle, leaving[0], "skipped")
    assert gone.detail == "no longer in the fleet (deregistered after the wave planned it)"
    await wait_for_status(handle, ordinary[0], "succeeded")
    progress_failed = (await handle.query("progress")).get("failed")
    assert progress_failed == 0  # neither the hold nor the departure counts against the failure budget

    inventory.release_hold(later_held[0], released_by="sre-tom")  # released early: the wave still waits for the time it knew
    sim_clock(advance_seconds=6 * 3600 + 60)
    result = await handle.result()
    assert result.outcome == "succeeded" and result.counts == {"succeeded": 3, "skipped": 1}
    assert result.joined_later == newcomer and f"not in this wave (joined the fleet after it planned): {newcomer[0]}" in result.message
    assert sim_report(simulator, newcomer[0])["clusters"][newcomer[0]]["control_plane_version"] == "1.30"  # untouched
    told = await forecast_of(handle)
    assert leaving[0] in told and told[leaving[0]].because.startswith("skipped: no longer in the fleet")
    assert told[newcomer[0]].status == "not_in_wave" and told[newcomer[0]].because.startswith("not in this wave")


async def test_a_direct_upgrade_of_a_held_cluster_is_refused_unless_overridden_and_the_override_is_audited(
        client, worker, task_queue, add_cluster, simulator, inventory, sim_clock):
    now = sim_clock(now=MONDAY)
    name = add_cluster("hold", pools=1, nodes=2)
    inventory.hold_cluster(name, until=now + timedelta(days=1), reason="quarter close", held_by="sre-maria", now=now)

    refused = await start_upgrade(client, task_queue, name)
    with pytest.raises(WorkflowFailureError) as failure:
        await refused.result()
    assert failure.value.cause.type == "ClusterHeld"
    assert f"{name} is held until" in failure.value.cause.message and "quarter close" in failure.value.cause.message
    assert sim_report(simulator, name)["clusters"][name]["control_plane_version"] == "1.30"  # nothing touched

    handle = await start_upgrade(client, task_queue, name, override_hold="sev1 fix must ship", requested_by="sre-ann")
    result = await handle.result()
    assert isinstance(result, ClusterUpgradeResult) and result.outcome == "succeeded"
    override = [r for r in inventory.audit(cluster=name) if r.action == "hold" and r.operation == "ClusterUpgrade"]
    assert len(override) == 1 and "overridden by sre-ann: sev1 fix must ship" in override[0].detail


def test_holds_refuse_what_makes_no_sense_and_release_refuses_an_unheld_cluster(add_cluster, inventory):
    from datetime import UTC

    from regatta.inventory import HoldError, UnknownCluster

    name = add_cluster("hold", pools=1, nodes=1)
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    with pytest.raises(HoldError, match="has already passed"):
        inventory.hold_cluster(name, until=now - timedelta(minutes=1), reason="x", held_by="a", now=now)
    with pytest.raises(HoldError, match="say why the cluster is held"):
        inventory.hold_cluster(name, until=now + timedelta(hours=1), reason="  ", held_by="a", now=now)
    with pytest.raises(HoldError, match="with a time zone"):
        inventory.hold_cluster(name, until=datetime(2026, 12, 8), reason="x", held_by="a", now=now)
    with pytest.raises(UnknownCluster):
        inventory.hold_cluster("no-such-cluster", until=now + timedelta(hours=1), reason="x", held_by="a", now=now)
    with pytest.raises(HoldError, match="is not held; nothing to release"):
        inventory.release_hold(name, released_by="a")
    assert inventory.get_cluster(name).hold is None  # nothing was written by any refusal
    inventory.hold_cluster(name, until=now + timedelta(hours=1), reason="launch", held_by="a", now=now)
    assert [r.outcome for r in inventory.audit(cluster=name)] == ["held"]


async def test_a_soak_runs_on_the_fleets_clock_and_a_stage_of_held_clusters_still_asks_its_approval(
        client, worker, task_queue, fleet, simulator, inventory, sim_clock, request):
    """The demo's wave completes when the fleet's clock is moved: its canary soak of hours ends as the clock
    passes it (as a window opens); and a prod stage whose every cluster is held asks a second person before the
    hold's end lets them go, as a stage of pending clusters does."""
    now = sim_clock(now=MONDAY)
    canary, held = fleet("canary", 1), fleet("prod", 1, prefix="wvheldall")
    until = (now + timedelta(hours=3)).replace(microsecond=0)
    inventory.hold_cluster(held[0], until=until, reason="quarter close", held_by="sre-maria", now=now)
    handle = await start_wave(client, task_queue, wave_request(fleet.tag, [
        {"name": "canary", "selector": {"environment": "canary"}, "soak_seconds": 7200},
        {"name": "prod", "selector": {"environment": "prod"}, "approval_required": True}]))

    soaking = await wait_phase(handle, "soaking")
    ends = soaking.stages[0].soak_ends
    assert ends is not None and abs((ends - (now + timedelta(hours=2))).total_seconds()) < 60, ends
    assert sim_report(simulator, canary[0])["clusters"][canary[0]]["control_plane_version"] == "1.31"
    sim_clock(advance_seconds=2 * 3600)  # two hours later on the fleet's calendar: the soak is over

    asking = await wait_phase(handle, "awaiting_approval")  # before: it went on unasked and waited for the hold
    assert [c.status for c in asking.stages[1].clusters] == ["held"]
    await handle.execute_update("approve", {"approver": "sre-bob", "stage": "prod"})
    sim_clock(advance_seconds=3600 + 60)  # the hold has ended
    result = await handle.result()
    assert result.outcome == "succeeded" and result.counts == {"succeeded": 2}
    assert sim_report(simulator, held[0])["clusters"][held[0]]["control_plane_version"] == "1.31"
    await replays(handle, request, "patch_wave_soak_on_fleet_clock_and_approval_for_held")
