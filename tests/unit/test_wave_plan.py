"""The PatchWave planner with fixed clocks: stage assignment, clusters already at the target,
failure budgets, maintenance windows across time zones and days, and freezes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from regatta.models import ClusterRecord, MaintenanceHold, NodePool, PatchWaveInput
from regatta.rules import forecasts, waves

# 2026-11-24 is a Tuesday.
TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def cluster(name: str, *, env: str = "prod", version: str = "1.30", pool_version: str | None = None, **labels) -> ClusterRecord:
    return ClusterRecord(name=name, provider="eks", region="us-east-1", environment=env, labels={"env": env, **labels},
                         control_plane_version=version,
                         node_pools=[NodePool(name="general", version=pool_version or version, node_count=3)])


def wave(**fields) -> PatchWaveInput:
    return PatchWaveInput.model_validate({
        "name": "nov", "target_version": "1.31",
        "stages": [{"name": "canary", "selector": {"environment": "canary"}},
                   {"name": "staging", "selector": {"environment": "staging"}, "concurrency": 3},
                   {"name": "prod", "selector": {"environment": "prod"}, "approval_required": True}],
        **fields})


def test_each_cluster_goes_to_the_first_stage_that_takes_it_and_at_target_ones_are_counted_not_touched():
    fleet = [cluster("c1", env="canary"), cluster("s1", env="staging"), cluster("p2", env="prod"),
             cluster("p1", env="prod", version="1.31"), cluster("p3", env="prod", version="1.31", pool_version="1.30"),
             cluster("d1", env="dev")]
    plan = waves.plan_wave(wave(), fleet, now=TUESDAY_NOON)
    assert [(s.name, [(c.name, c.status) for c in s.clusters]) for s in plan.stages] == [
        ("canary", [("c1", "pending")]), ("staging", [("s1", "pending")]),
        ("prod", [("p1", "at_target"), ("p2", "pending"), ("p3", "pending")])]
    assert plan.unstaged == ["d1"]  # selected by the wave (it selects everything) but by no stage
    assert plan.stages[1].concurrency == 3 and plan.stages[2].approval_required
    assert plan.stages[0].clusters[0].earliest_start == TUESDAY_NOON  # no windows: any time


def test_the_wave_selector_narrows_before_stages_do():
    plan = waves.plan_wave(wave(selector={"labels": {"team": "pay"}}),
                               [cluster("p1", team="pay"), cluster("p2", team="search")], now=TUESDAY_NOON)
    assert [c.name for c in plan.stages[2].clusters] == ["p1"] and plan.unstaged == []


@pytest.mark.parametrize("budget, clusters, tolerated", [(0, 10, 0), (2, 10, 2), ("2", 10, 2), ("10%", 25, 2), ("0%", 5, 0)])
def test_failure_budgets_are_counts_or_shares(budget, clusters, tolerated):
    assert waves.failure_budget(budget, clusters) == tolerated


def test_a_window_in_another_time_zone_opens_at_its_local_time():
    windows = [{"days": ["tue"], "start": "02:00", "duration_minutes": 240, "timezone": "Europe/Berlin"}]
    plan = waves.plan_wave(wave(maintenance_windows=windows), [cluster("p1")], now=TUESDAY_NOON)
    # Tuesday 12:00 UTC is past Tuesday's window: next Tuesday 02:00 Berlin (CET, UTC+1) = 01:00 UTC.
    assert plan.stages[2].clusters[0].earliest_start == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def test_inside_an_open_window_a_cluster_may_start_now_and_windows_apply_only_to_their_clusters():
    windows = [{"applies_to": {"labels": {"tier": "critical"}}, "days": ["tue", "wed"], "start": "11:00",
                "duration_minutes": 120, "timezone": "UTC"}]
    fleet = [cluster("p1", tier="critical"), cluster("p2", tier="batch")]
    now = datetime(2026, 11, 24, 12, 30, tzinfo=UTC)
    starts = {c.name: c.earliest_start for c in waves.plan_wave(wave(maintenance_windows=windows), fleet, now=now).stages[2].clusters}
    assert starts == {"p1": now, "p2": now}
    later = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)  # the window closed at 13:00: Wednesday 11:00
    starts = {c.name: c.earliest_start for c in waves.plan_wave(wave(maintenance_windows=windows), fleet, now=later).stages[2].clusters}
    assert starts == {"p1": datetime(2026, 11, 25, 11, 0, tzinfo=UTC), "p2": later}


def test_a_freeze_pushes_the_start_to_the_first_window_after_it():
    windows = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "02:00", "duration_minutes": 60, "timezone": "UTC"}]
    freezes = [{"name": "end-of-year", "start": "2026-12-18T00:00:00Z", "end": "2027-01-05T00:00:00Z"}]
    now = datetime(2026, 12, 20, 12, 0, tzinfo=UTC)
    plan = waves.plan_wave(wave(maintenance_windows=windows, freezes=freezes), [cluster("p1")], now=now)
    assert plan.stages[2].clusters[0].earliest_start == datetime(2027, 1, 5, 2, 0, tzinfo=UTC)  # Tuesday after the freeze
    anytime = waves.plan_wave(wave(freezes=freezes), [cluster("p1")], now=now)
    assert anytime.stages[2].clusters[0].earliest_start == datetime(2027, 1, 5, 0, 0, tzinfo=UTC)


def test_a_window_that_never_opens_outside_a_freeze_is_reported_not_planned():
    windows = [{"days": ["sun"], "start": "02:00", "duration_minutes": 60, "timezone": "UTC"}]
    freezes = [{"name": "all year", "start": "2026-01-01T00:00:00Z", "end": "2028-01-01T00:00:00Z"}]
    entry = waves.plan_wave(wave(maintenance_windows=windows, freezes=freezes), [cluster("p1")],
                                now=TUESDAY_NOON).stages[2].clusters[0]
    assert entry.earliest_start is None and "no maintenance window opens outside the freezes" in entry.detail


def test_a_wave_that_makes_no_sense_is_refused_with_every_problem_named():
    bad = wave(target_version="1.31.2", failure_budget="lots", stages=[{"name": "a"}, {"name": "a"}],
               maintenance_windows=[{"days": ["mon"], "start": "02:00", "duration_minutes": 60, "timezone": "Mars/Olympus"}],
               freezes=[{"name": "x", "start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"}],
               upgrade_settings={"cluster": 1, "drain_timeout_seconds": 60})
    with pytest.raises(waves.InvalidWave) as refused:
        waves.plan_wave(bad, [], now=TUESDAY_NOON)
    message = str(refused.value)
    for says in ("target_version:", "stages[1].name: 'a' is used by an earlier stage", "failure_budget: 'lots'",
                 "unknown time zone 'Mars/Olympus'", "freezes[0] (x): end must come after start",
                 "upgrade_settings: cluster cannot be set per wave"):
        assert says in message


def test_a_node_image_wave_counts_clusters_on_the_image_as_at_target_and_takes_the_rest():
    def imaged(name: str, image: str | None) -> ClusterRecord:
        return cluster(name).model_copy(update={"control_plane_version": "1.31", "node_pools": [
            NodePool(name="general", version="1.31", node_count=3, node_image=image)]})

    plan = waves.plan_wave(wave(node_images={"eks": "1.31.2-20261101"}),
                               [imaged("p1", "1.31.2-20261101"), imaged("p2", "1.31.0-20260101"), imaged("p3", None)],
                               now=TUESDAY_NOON)
    assert [(c.name, c.status) for c in plan.stages[2].clusters] == [("p1", "at_target"), ("p2", "pending"), ("p3", "pending")]
    assert "on node image 1.31.2-20261101" in plan.stages[2].clusters[0].detail


def test_a_node_image_that_does_not_fit_the_target_is_refused_naming_the_cloud():
    with pytest.raises(waves.InvalidWave, match="node_images.eks: 1.30.2-20261101 is not a node image of Kubernetes 1.31 on EKS"):
        waves.plan_wave(wave(node_images={"eks": "1.30.2-20261101"}), [cluster("p1")], now=TUESDAY_NOON)


# --------------------------------------------------------------------------- holds, unstaged clusters, the forecast

def held(record: ClusterRecord, until: datetime, reason: str = "black friday") -> ClusterRecord:
    return record.model_copy(update={"hold": MaintenanceHold(until=until, reason=reason, held_by="maria")})


def test_a_held_cluster_is_planned_for_when_its_hold_ends_and_a_hold_that_has_passed_keeps_nobody_off():
    until = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    fleet = [held(cluster("p1"), until), held(cluster("p2"), datetime(2026, 11, 20, tzinfo=UTC)), cluster("p3")]
    entries = {c.name: c for c in waves.plan_wave(wave(), fleet, now=TUESDAY_NOON).stages[2].clusters}
    assert (entries["p1"].status, entries["p1"].earliest_start) == ("held", until)
    assert entries["p1"].detail == f"held until {until.isoformat()} by maria: black friday"
    assert (entries["p2"].status, entries["p2"].earliest_start) == ("pending", TUESDAY_NOON)


def test_a_hold_that_ends_outside_the_window_waits_for_the_next_window():
    windows = [{"days": ["sat"], "start": "02:00", "duration_minutes": 120, "timezone": "UTC"}]
    fleet = [held(cluster("p1"), datetime(2026, 11, 28, 5, 0, tzinfo=UTC))]  # Saturday 05:00: after that day's window
    entry = waves.plan_wave(wave(maintenance_windows=windows), fleet, now=TUESDAY_NOON).stages[2].clusters[0]
    assert entry.earliest_start == datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    assert entry.status == "held" and entry.detail.endswith("; then its maintenance window opens 2026-12-05 02:00Z")


def test_a_cluster_missing_the_label_a_stage_needs_is_reported_in_the_plan_with_what_each_stage_needs():
    w = wave(stages=[{"name": "canary", "selector": {"labels": {"ring": "0"}}},
                     {"name": "prod", "selector": {"environment": "prod", "labels": {"tier": "1"}}}])
    plan = waves.plan_wave(w, [cluster("p1", ring="0"), cluster("p2"), cluster("p3", tier="2")], now=TUESDAY_NOON)
    assert plan.unstaged == ["p2", "p3"]
    assert plan.unstaged_reasons["p2"] == ("no stage takes it: canary needs label ring=0 (it has no ring label);"
                                           " prod needs label tier=1 (it has no tier label)")
    assert "prod needs label tier=1 (it has tier=2)" in plan.unstaged_reasons["p3"]


def forecast_of(w: PatchWaveInput, fleet: list[ClusterRecord], now: datetime, minutes: float = 60):
    plan = waves.plan_wave(w, fleet, now=now)
    result = forecasts.forecast(wave=w, stages=plan.stages, now=now, upgrade_seconds=minutes * 60,
                                unstaged=plan.unstaged_reasons)
    return {c.cluster: c for c in result.clusters}


def test_the_forecast_runs_stages_in_order_with_soak_and_concurrency():
    w = wave(stages=[{"name": "canary", "selector": {"environment": "canary"}, "soak_seconds": 7200},
                     {"name": "prod", "selector": {"environment": "prod"}, "concurrency": 2}])
    fleet = [cluster("c1", env="canary"), cluster("p1"), cluster("p2"), cluster("p3"), cluster("d1", env="dev")]
    f = forecast_of(w, fleet, TUESDAY_NOON)
    hour = timedelta(hours=1)
    assert f["c1"].earliest_touch == TUESDAY_NOON and f["c1"].because == "the wave may start it now"
    # canary ends 13:00, soaks two hours: prod starts 15:00, two at once, the third when one ends.
    assert f["p1"].earliest_touch == f["p2"].earliest_touch == TUESDAY_NOON + 3 * hour
    assert f["p1"].because == "stage canary ends and soaks 120 minutes"
    assert f["p3"].earliest_touch == TUESDAY_NOON + 4 * hour and "a slot frees up" in f["p3"].because
    assert f["p3"].expected_done == TUESDAY_NOON + 5 * hour
    assert f["d1"].earliest_touch is None and f["d1"].stage is None and f["d1"].because.startswith("no stage takes it")


def test_the_forecast_honours_windows_freezes_and_holds():
    windows = [{"name": "berlin nights", "applies_to": {"labels": {"site": "fra"}}, "days": ["wed"], "start": "02:00",
                "duration_minutes": 240, "timezone": "Europe/Berlin"}]
    freezes = [{"name": "launch", "start": "2026-11-24T00:00:00Z", "end": "2026-11-24T18:00:00Z"}]
    w = wave(stages=[{"name": "prod", "selector": {"environment": "prod"}, "concurrency": 5}],
             maintenance_windows=windows, freezes=freezes)
    fleet = [cluster("p1", site="fra"), cluster("p2"), held(cluster("p3"), datetime(2026, 11, 26, 9, 0, tzinfo=UTC))]
    f = forecast_of(w, fleet, TUESDAY_NOON)
    assert f["p2"].earliest_touch == datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
    assert f["p2"].because == "the freeze launch ends 2026-11-24T18:00:00+00:00"
    assert f["p1"].earliest_touch == datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 02:00 Berlin, CET
    assert "berlin nights" in f["p1"].because
    assert f["p3"].earliest_touch == datetime(2026, 11, 26, 9, 0, tzinfo=UTC) and "held until" in f["p3"].because


def test_a_running_wave_forecasts_from_what_is_in_flight_and_skips_what_is_settled():
    w = wave(stages=[{"name": "prod", "selector": {"environment": "prod"}, "concurrency": 1}])
    plan = waves.plan_wave(w, [cluster("p1"), cluster("p2"), cluster("p3")], now=TUESDAY_NOON)
    entries = plan.stages[0].clusters
    entries[0].status, entries[1].status = "succeeded", "upgrading"
    plan.stages[0].status = "running"
    now = TUESDAY_NOON + timedelta(minutes=90)
    started = {"p2": TUESDAY_NOON + timedelta(minutes=60)}
    f = {c.cluster: c for c in forecasts.forecast(wave=w, stages=plan.stages, now=now, upgrade_seconds=3600,
                                                  started=started).clusters}
    assert f["p1"].earliest_touch is None and f["p1"].because == "upgraded"
    assert f["p2"].expected_done == TUESDAY_NOON + timedelta(minutes=120)
    assert f["p3"].earliest_touch == TUESDAY_NOON + timedelta(minutes=120) and "a slot frees up" in f["p3"].because
    stopped = forecasts.forecast(wave=w, stages=plan.stages, now=now, upgrade_seconds=3600, stopped="the wave halted")
    assert {c.cluster: c.because for c in stopped.clusters}["p3"] == "not started: the wave halted"


def test_a_forecast_over_ten_thousand_clusters_stays_cheap_enough_for_a_query():
    windows = [{"applies_to": {"labels": {"site": "fra"}}, "days": ["sat", "sun"], "start": "01:00", "duration_minutes": 300}]
    w = wave(stages=[{"name": "prod", "selector": {"environment": "prod"}, "concurrency": 50}], maintenance_windows=windows)
    fleet = [cluster(f"p{i:05}", **({"site": "fra"} if i % 2 else {})) for i in range(10_000)]
    f = forecast_of(w, fleet, TUESDAY_NOON, minutes=30)
    assert len(f) == 10_000 and all(c.earliest_touch is not None for c in f.values())
    # Half may go any time: 5,000 clusters, 50 at a time, 30 minutes each = 50 hours.
    last_anytime = max(c.earliest_touch for name, c in f.items() if int(name[1:]) % 2 == 0)
    assert last_anytime == TUESDAY_NOON + timedelta(minutes=30 * 99)


def test_a_stage_that_is_soaking_holds_the_next_one_until_its_soak_ends_not_a_whole_soak_from_now():
    w = wave(stages=[{"name": "canary", "selector": {"environment": "canary"}, "soak_seconds": 3600},
                     {"name": "prod", "selector": {"environment": "prod"}}])
    plan = waves.plan_wave(w, [cluster("c1", env="canary"), cluster("p1")], now=TUESDAY_NOON)
    canary = plan.stages[0]
    canary.status, canary.clusters[0].status = "soaking", "succeeded"
    canary.soak_ends = TUESDAY_NOON + timedelta(minutes=20)
    f = {c.cluster: c for c in forecasts.forecast(wave=w, stages=plan.stages, now=TUESDAY_NOON, upgrade_seconds=600).clusters}
    assert f["p1"].earliest_touch == TUESDAY_NOON + timedelta(minutes=20)
    assert f["p1"].because == "stage canary ends its soak at 2026-11-24 12:20Z"
    assert f["c1"].because == "upgraded"


def test_a_stage_whose_every_tried_cluster_was_held_out_stops_the_wave_and_one_upgrade_lets_it_go_on():
    from regatta.models import WaveClusterState, WaveStageState
    from regatta.rules.waves import held_out_stage

    def stage(*statuses: str) -> WaveStageState:
        return WaveStageState(name="canary", concurrency=1, soak_seconds=0, approval_required=False,
                              clusters=[WaveClusterState(name=f"c{i}", status=s) for i, s in enumerate(statuses)])

    why = held_out_stage(stage("not_ready", "at_target", "not_ready"))
    assert why is not None and "stage canary upgraded no cluster: 2 held out as not ready (c0, c2)" in why
    assert held_out_stage(stage("not_ready", "succeeded")) is None
    assert held_out_stage(stage("failed", "at_target")) is None


def test_a_stage_that_needs_approval_asks_when_it_has_a_cluster_to_upgrade_held_or_not():
    from regatta.models import WaveClusterState, WaveStageState

    def stage(*statuses: str, approval: bool = True, approved_by: str | None = None) -> WaveStageState:
        return WaveStageState(name="prod", concurrency=1, soak_seconds=0, approval_required=approval,
                              approved_by=approved_by,
                              clusters=[WaveClusterState(name=f"c{i}", status=s) for i, s in enumerate(statuses)])

    assert waves.asks_approval(stage("pending", "at_target"), held_too=False)
    assert not waves.asks_approval(stage("held", "at_target"), held_too=False)  # how runs begun before decided
    assert waves.asks_approval(stage("held", "at_target"), held_too=True)
    assert waves.asks_approval(stage("waiting_window"), held_too=True)
    assert not waves.asks_approval(stage("at_target", "skipped"), held_too=True)  # nothing to upgrade
    assert not waves.asks_approval(stage("pending", approval=False), held_too=True)
    assert not waves.asks_approval(stage("pending", approved_by="sre-bob"), held_too=True)


def test_what_a_running_wave_waits_for_next_on_the_fleets_clock():
    from regatta.models import PatchWaveProgress, WaveClusterState, WaveStageState

    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

    def progress(phase: str, stage_status: str, *clusters: WaveClusterState, soak_ends=None) -> PatchWaveProgress:
        return PatchWaveProgress(wave="w", target_version="1.35", phase=phase, stage="prod", stages=[
            WaveStageState(name="prod", concurrency=1, soak_seconds=3600, approval_required=False, status=stage_status,
                           soak_ends=soak_ends, clusters=list(clusters))])

    soak = progress("soaking", "soaking", soak_ends=now + timedelta(minutes=30))
    assert waves.next_awaited(soak, now=now) == (now + timedelta(minutes=30), "the end of stage prod's soak")
    window, hold = now + timedelta(hours=17), now + timedelta(hours=5)
    waiting = progress("running", "running",
                       WaveClusterState(name="b", status="waiting_window", earliest_start=window),
                       WaveClusterState(name="a", status="held", earliest_start=hold),
                       WaveClusterState(name="c", status="waiting_window", earliest_start=now - timedelta(minutes=1)))
    assert waves.next_awaited(waiting, now=now) == (hold, "when a may start (its hold ends)")
    assert waves.next_awaited(waiting, now=hold) == (window, "when b may start (its maintenance window opens)")
    assert waves.next_awaited(progress("running", "running", WaveClusterState(name="a", status="upgrading")), now=now) is None
    assert waves.next_awaited(progress("awaiting_approval", "awaiting_approval",
                                       WaveClusterState(name="a", status="held", earliest_start=hold)), now=now) is None


def test_what_a_running_policy_rollout_waits_for_next_is_its_stages_soak():
    from regatta.models.policy import PolicyRolloutProgress, PolicyStageState

    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    stage = PolicyStageState(name="staging-audit", concurrency=1, soak_seconds=60, approval_required=False,
                             status="soaking", soak_ends=now + timedelta(seconds=60))
    rollout = PolicyRolloutProgress(bundle="b", revision="r", phase="soaking", stage="staging-audit", stages=[stage])
    assert waves.next_awaited(rollout, now=now) == (now + timedelta(seconds=60), "the end of stage staging-audit's soak")
    stage.status, stage.soak_ends = "running", None
    assert waves.next_awaited(rollout.model_copy(update={"phase": "running"}), now=now) is None
