"""The decisions of a rehearsal (regatta/rules/rehearsals.py) with fixed clocks: what the upgrade run on the twin is,
which clusters one run stands for, how a run's time becomes a prediction, and what a wave would do given each
cluster's rehearsed upgrade (windows closing mid-cluster, the failure budget halting a stage)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from regatta.models import ClusterRecord, ClusterUpgradeInput, NodePool, PatchWaveInput
from regatta.models.rehearsal import ClusterRehearsal, DrainStall
from regatta.rules import forecasts, rehearsals, waves

TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def cluster(name: str, *, env: str) -> ClusterRecord:
    return ClusterRecord(name=name, provider="eks", region="us-east-1", environment=env, labels={"env": env},
                         control_plane_version="1.30", node_pools=[NodePool(name="general", version="1.30", node_count=3)])


def wave(**fields) -> PatchWaveInput:
    return PatchWaveInput.model_validate({
        "name": "nov", "target_version": "1.31",
        "stages": [{"name": "canary", "selector": {"environment": "canary"}, "soak_seconds": 600},
                   {"name": "prod", "selector": {"environment": "prod"}, "concurrency": 2}], **fields})


def rehearsed(name: str, minutes: float, outcome: str = "succeeded") -> ClusterRehearsal:
    return ClusterRehearsal(cluster=name, rehearsed_as=name, outcome=outcome, predicted_seconds=minutes * 60)


def test_the_twins_upgrade_waits_compress_times_less_and_calls_nothing_outside():
    request = ClusterUpgradeInput.model_validate({
        "cluster": "c", "target_version": "1.31", "callback_url": "https://tickets.example/cb", "ticket": "CHG-1",
        "drain_timeout_seconds": 900, "poll_interval_seconds": 15, "activity_heartbeat_timeout_seconds": 60,
        "drain_policies": [{"notify_owner_after_seconds": 300, "owner_webhook": "https://owner.example/hook"}],
        "hooks": [{"name": "gate", "at": "before_control_plane", "webhook": {"url": "https://gate.example/"}},
                  {"name": "smoke", "at": "after_node_pools", "smoke_test": {"image": "busybox"}}],
        "health_checks": [{"name": "errors", "prometheus": {"url": "https://prom.example", "query": "up",
                                                            "below": 1}}],
        "maintenance_windows": [{"days": ["tue"], "start": "02:00", "duration_minutes": 60}]})
    twin, left_out = rehearsals.compressed_request(request, 60)
    assert twin.drain_timeout_seconds == 15 and twin.poll_interval_seconds == 0.25
    assert twin.activity_heartbeat_timeout_seconds == 60  # the worker's pace, not the fleet's
    assert twin.drain_policies[0].notify_owner_after_seconds == 5 and twin.drain_policies[0].owner_webhook is None
    assert twin.callback_url is None and twin.ticket is None and twin.requested_by == "rehearsal"
    assert [h.name for h in twin.hooks] == ["smoke"] and twin.health_checks == []
    assert twin.maintenance_windows == [] and twin.freezes == []
    said = " ".join(left_out)
    for what in ("https://tickets.example/cb", "https://owner.example/hook", "hook gate", "health check errors",
                 "maintenance windows"):
        assert what in said
    with pytest.raises(ValueError, match="1 or more"):
        rehearsals.compressed_request(request, 0.5)


def test_one_run_stands_for_every_cluster_of_a_shape():
    base = {"provider": "eks", "version": "1.30", "region": "us-east-1", "node_pools": [{"name": "a", "nodes": 3}],
            "workloads": []}
    clusters = {"b-prod": {**base, "name": "b-prod", "labels": {"env": "prod", "team": "x"}},
                "a-prod": {**base, "name": "a-prod", "labels": {"env": "staging"}},
                "c-big": {**base, "name": "c-big", "node_pools": [{"name": "a", "nodes": 9}]},
                "d-west": {**base, "name": "d-west", "region": "us-west-2"},  # GKE and EKS place nodes by region
                "e-backup": {**base, "name": "e-backup", "labels": {"backup-before-upgrade": "true"}}}  # an upgrade reads it
    assert rehearsals.stands_for(clusters) == {"a-prod": "a-prod", "b-prod": "a-prod", "c-big": "c-big",
                                               "d-west": "d-west", "e-backup": "e-backup"}
    assert rehearsals.baseline_name("a") == "a-baseline"
    assert rehearsals.baseline_name("a", taken={"a-baseline"}) == "a-baseline1"


def test_a_runs_time_counts_the_fleets_waits_stretched_and_regattas_own_work_once():
    assert rehearsals.predicted_seconds(30, 60) == 1800
    assert rehearsals.predicted_seconds(30, 60, baseline_seconds=2) == 28 * 60 + 2
    assert rehearsals.predicted_seconds(1, 60, baseline_seconds=3) == 1  # a baseline longer than the run: all its own work


def test_the_forecast_takes_each_clusters_own_duration_where_one_is_known():
    fleet = [cluster("p1", env="prod"), cluster("p2", env="prod"), cluster("p3", env="prod")]
    prod_only = wave(stages=[{"name": "prod", "selector": {"environment": "prod"}, "concurrency": 2}])
    plan = waves.plan_wave(prod_only, fleet, now=TUESDAY_NOON)
    forecast = forecasts.forecast(wave=prod_only, stages=plan.stages, now=TUESDAY_NOON, upgrade_seconds=3600,
                                  durations={"p1": 600, "p2": 1800})
    touch = {f.cluster: f.earliest_touch for f in forecast.clusters}
    # two at once: p1 and p2 start now; p3 takes p1's slot when p1 ends, ten minutes in
    assert touch == {"p1": TUESDAY_NOON, "p2": TUESDAY_NOON, "p3": TUESDAY_NOON + timedelta(minutes=10)}
    assert "each upgrade takes what its rehearsal took" in forecast.assumes


def test_a_wave_rehearsal_lays_the_upgrades_out_as_the_wave_would_and_halts_where_its_budget_says():
    fleet = [cluster("c1", env="canary"), cluster("p1", env="prod"), cluster("p2", env="prod")]
    plan = waves.plan_wave(wave(), fleet, now=TUESDAY_NOON)
    stall = DrainStall(node="n1", budgets=["shop/ledger"], pods=["shop/ledger-0"], seconds=900, reached="retrying")
    report = rehearsals.rehearse_wave(
        wave=wave(), plan=plan, now=TUESDAY_NOON, compress=60, rehearsed_at=TUESDAY_NOON,
        rehearsed={"c1": rehearsed("c1", 30), "p1": rehearsed("p1", 40).model_copy(update={"stalls": [stall]}),
                   "p2": rehearsed("p2", 20)})
    by = {c.cluster: c for c in report.clusters}
    assert by["c1"].starts == TUESDAY_NOON and by["c1"].ends == TUESDAY_NOON + timedelta(minutes=30)
    # prod opens after canary ends and soaks ten minutes; both of its clusters at once
    assert by["p1"].starts == by["p2"].starts == TUESDAY_NOON + timedelta(minutes=40)
    assert report.ends == TUESDAY_NOON + timedelta(minutes=80) and report.total_seconds == 80 * 60
    assert by["p1"].stalls == [stall] and report.halted_at is None

    failing = rehearsals.rehearse_wave(wave=wave(), plan=plan, now=TUESDAY_NOON, compress=60, rehearsed_at=TUESDAY_NOON,
                                       rehearsed={"c1": rehearsed("c1", 30, "failed"), "p1": rehearsed("p1", 40),
                                                  "p2": rehearsed("p2", 20)})
    assert failing.halted_at == "canary" and failing.stages[0].halts and failing.stages[0].failures == 1
    assert {c.cluster: c.outcome for c in failing.clusters} == {"c1": "failed", "p1": "not_started", "p2": "not_started"}
    assert failing.ends == TUESDAY_NOON + timedelta(minutes=30)


def test_a_window_that_closes_before_a_cluster_would_end_is_named():
    windows = [{"name": "tuesday-noon", "days": ["tue"], "start": "12:00", "duration_minutes": 30}]
    plan = waves.plan_wave(wave(maintenance_windows=windows), [cluster("p1", env="prod"), cluster("p2", env="prod")],
                           now=TUESDAY_NOON)
    report = rehearsals.rehearse_wave(wave=wave(maintenance_windows=windows), plan=plan, now=TUESDAY_NOON, compress=60,
                                      rehearsed_at=TUESDAY_NOON,
                                      rehearsed={"p1": rehearsed("p1", 45), "p2": rehearsed("p2", 20)})
    by = {c.cluster: c for c in report.clusters}
    assert by["p1"].window_closes == TUESDAY_NOON + timedelta(minutes=30) and "its window closes" in by["p1"].because
    assert by["p2"].window_closes is None


def test_the_wave_halts_at_the_failure_that_passes_its_budget_not_at_the_end_of_that_stage():
    prod = wave(stages=[{"name": "prod", "selector": {"environment": "prod"}, "concurrency": 1}])
    fleet = [cluster(f"p{i}", env="prod") for i in (1, 2, 3)]
    plan = waves.plan_wave(prod, fleet, now=TUESDAY_NOON)
    report = rehearsals.rehearse_wave(wave=prod, plan=plan, now=TUESDAY_NOON, compress=60, rehearsed_at=TUESDAY_NOON,
                                      rehearsed={"p1": rehearsed("p1", 10, "failed"), "p2": rehearsed("p2", 60),
                                                 "p3": rehearsed("p3", 60)})
    assert {c.cluster: c.outcome for c in report.clusters} == {"p1": "failed", "p2": "not_started", "p3": "not_started"}
    assert report.halted_at == "prod" and report.ends == TUESDAY_NOON + timedelta(minutes=10)
    assert "1 failures pass its failure budget of 0" in report.clusters[1].because


def test_a_wave_counts_what_the_real_wave_counts_and_halts_after_a_stage_that_upgraded_nothing():
    fleet = [cluster("c1", env="canary"), cluster("c2", env="canary"), cluster("p1", env="prod")]
    canaries = wave(stages=[{"name": "canary", "selector": {"environment": "canary"}, "concurrency": 2},
                            {"name": "prod", "selector": {"environment": "prod"}}])
    plan = waves.plan_wave(canaries, fleet, now=TUESDAY_NOON)
    not_ready = rehearsed("c1", 1, "refused").model_copy(update={"error_type": "NotReadyForUpgrade"})
    one = rehearsals.rehearse_wave(wave=canaries, plan=plan, now=TUESDAY_NOON, compress=60, rehearsed_at=TUESDAY_NOON,
                                   rehearsed={"c1": not_ready, "c2": rehearsed("c2", 20), "p1": rehearsed("p1", 20)})
    assert {c.cluster: c.outcome for c in one.clusters} == {"c1": "not_ready", "c2": "succeeded", "p1": "succeeded"}
    assert one.halted_at is None and one.stages[0].failures == 0  # held out is not failed
    both = rehearsals.rehearse_wave(
        wave=canaries.model_copy(update={"failure_budget": 5}), plan=plan, now=TUESDAY_NOON, compress=60,
        rehearsed_at=TUESDAY_NOON, rehearsed={"c1": not_ready, "c2": not_ready.model_copy(update={"cluster": "c2"}),
                                              "p1": rehearsed("p1", 20)})
    assert both.halted_at == "canary" and {c.cluster: c.outcome for c in both.clusters}["p1"] == "not_started"
    stalled = rehearsed("c1", 10, "stalled")
    assert rehearsals.wave_status(stalled) == "failed"  # no one approves in a rehearsal: it fails at its timeout
    assert rehearsals.wave_status(rehearsed("c1", 1, "refused").model_copy(
        update={"error_type": "ClusterUnhealthy"})) == "failed"


def test_overlapping_windows_carry_an_upgrade_on_and_a_freeze_that_begins_mid_upgrade_pauses_it():
    windows = [{"name": "short", "days": ["tue"], "start": "12:00", "duration_minutes": 30},
               {"name": "long", "days": ["tue"], "start": "12:00", "duration_minutes": 120}]
    prod = [{"name": "prod", "selector": {"environment": "prod"}}]
    open_two = wave(stages=prod, maintenance_windows=windows)
    plan = waves.plan_wave(open_two, [cluster("p1", env="prod")], now=TUESDAY_NOON)
    entry = plan.stages[0].clusters[0]
    assert rehearsals.pause_in(open_two, entry, TUESDAY_NOON, TUESDAY_NOON + timedelta(minutes=45)) is None
    frozen = wave(stages=prod, maintenance_windows=windows, freezes=[
        {"name": "launch", "start": TUESDAY_NOON + timedelta(minutes=10), "end": TUESDAY_NOON + timedelta(minutes=20)}])
    closes, resumes = rehearsals.pause_in(frozen, entry, TUESDAY_NOON, TUESDAY_NOON + timedelta(minutes=45))
    assert closes == TUESDAY_NOON + timedelta(minutes=10) and resumes == TUESDAY_NOON + timedelta(minutes=20)
    report = rehearsals.rehearse_wave(wave=frozen, plan=plan, now=TUESDAY_NOON, compress=60, rehearsed_at=TUESDAY_NOON,
                                      rehearsed={"p1": rehearsed("p1", 45)})
    [line] = report.clusters
    assert line.starts == TUESDAY_NOON and line.ends == TUESDAY_NOON + timedelta(minutes=55)  # ten minutes frozen
    assert line.window_closes == TUESDAY_NOON + timedelta(minutes=10) and "pauses at its next step" in line.because


def test_a_baseline_waits_out_no_soak_kept_pool_or_policy_step_but_polls_as_its_run_does():
    run, _ = rehearsals.compressed_request(ClusterUpgradeInput.model_validate({
        "cluster": "c", "target_version": "1.32", "strategy": "blue_green", "soak_seconds": 600,
        "keep_old_pools_seconds": 3600, "drain_policies": [{"ask_approval_after_seconds": 600}]}), 60)
    baseline = rehearsals.baseline_request(run)
    assert baseline.soak_seconds == run.soak_seconds / 1000 and baseline.keep_old_pools_seconds == 60 / 1000
    assert baseline.drain_policies[0].ask_approval_after_seconds == 10 / 1000
    assert baseline.poll_interval_seconds == run.poll_interval_seconds  # no tight loop where the run has none


def test_a_rehearsal_is_held_against_the_upgrades_the_trail_recorded_after_it():
    t0 = TUESDAY_NOON
    stall = DrainStall(node="n", budgets=["shop/ledger-a"], pods=["shop/ledger-00002a"], seconds=900, reached="retrying")
    predicted = [rehearsed("c1", 20).model_copy(update={"predicted_seconds": 1200.0}),
                 rehearsed("c2", 30, "failed").model_copy(update={"stalls": [stall]}),
                 rehearsed("c3", 10)]
    trail = {"c1": [("upgrade", "started", "", t0), ("upgrade", "succeeded", "", t0 + timedelta(minutes=24))],
             "c2": [("upgrade", "started", "", t0), ("upgrade", "failed",
                                                     "PodEvictionFailure ... ['shop/ledger-00013f']", t0 + timedelta(minutes=30))],
             "c3": [("upgrade", "started", "", t0)]}  # still running
    held = rehearsals.accuracy(predicted=predicted, trail=trail, checked_at=t0 + timedelta(hours=1))
    by = {c.cluster: c for c in held.clusters}
    assert by["c1"].actual_seconds == 1440 and by["c1"].error == pytest.approx(-0.167, abs=0.001)
    assert by["c2"].actual_outcome == "failed" and by["c2"].stalls_met == ["shop/ledger-a"]  # the same workload's pod
    assert by["c3"].actual_outcome is None and by["c3"].error is None
    assert (held.ended, held.outcomes_agreed, held.stalls_predicted, held.stalls_met) == (2, 2, 1, 1)
    assert held.mean_abs_error == pytest.approx((0.167 + 0.0) / 2, abs=0.001)
    assert rehearsals.held_line("rehearsal-1", held).startswith(
        "held against rehearsal-1: 2 of 2 clusters ended as rehearsed; mean time error 8%; 1 of 1 predicted")


def test_a_wave_attaches_the_latest_rehearsal_of_its_target_taken_before_it_within_a_month():
    day = timedelta(days=1)
    candidates = [("old", TUESDAY_NOON - 40 * day, "1.31"), ("fits", TUESDAY_NOON - 2 * day, "1.31"),
                  ("newer-other-target", TUESDAY_NOON - day, "1.32"), ("after", TUESDAY_NOON + day, "1.31"),
                  ("older", TUESDAY_NOON - 3 * day, "1.31")]
    assert rehearsals.attachable(candidates, target_version="1.31", started=TUESDAY_NOON) == "fits"
    assert rehearsals.attachable(candidates, target_version="1.32", started=TUESDAY_NOON) == "newer-other-target"
    assert rehearsals.attachable(candidates[:1], target_version="1.31", started=TUESDAY_NOON) is None  # 40 days old
    assert rehearsals.attachable([], target_version="1.31", started=TUESDAY_NOON) is None


def test_the_next_rehearsal_is_corrected_by_how_real_upgrades_held_against_the_last_ones():
    learned = rehearsals.corrections({
        "eks": [(1000.0, 1200.0), (1000.0, 1300.0), (2000.0, 2200.0), (500.0, 0.0)],  # the last says nothing
        "gke": [(1000.0, 900.0), (1000.0, 1000.0)],  # too few to learn from
        "aks": [(100.0, 10_000.0)] * 3})  # a twin a hundred times off is not a calibration
    assert set(learned) == {"eks", "aks"}
    assert learned["eks"].factor == 1.2 and learned["eks"].pairs == 3 and "median of real / rehearsed" in learned["eks"].said
    assert learned["aks"].factor == rehearsals.CORRECTION_BOUNDS[1] and "held within its bounds" in learned["aks"].said
    fixed = rehearsals.corrected(rehearsed("c1", 20), learned["eks"])
    assert (fixed.predicted_seconds, fixed.corrected_by) == (1440.0, 1.2)
    stalled = rehearsed("c2", 600, "stalled")  # its approval timeout is a policy's, not the twin's
    assert rehearsals.corrected(stalled, learned["eks"]) == stalled
    assert rehearsals.corrected(rehearsed("c3", 5), None).corrected_by == 1.0


def test_a_rehearsal_said_in_a_line_names_what_it_predicted():
    record = wave()
    plan = waves.plan_wave(record, [cluster("c1", env="canary"), cluster("c2", env="prod")], now=TUESDAY_NOON)
    report = rehearsals.rehearse_wave(wave=record, plan=plan, now=TUESDAY_NOON, compress=60,
                                      rehearsed={"c1": rehearsed("c1", 30), "c2": rehearsed("c2", 30, "failed")},
                                      rehearsed_at=TUESDAY_NOON, corrections=["eks upgrades take 1.2 times"])
    line = rehearsals.in_brief(report)
    assert line.startswith("predicted 1.2 h: 1 failed, 1 succeeded"), line
    assert "eks upgrades take 1.2 times" in report.assumes


def test_a_bundles_rollout_on_the_twin_waits_compress_times_less_and_calls_nothing_outside():
    from regatta.models.policy import BundleSpec

    bundle = BundleSpec.model_validate({
        "name": "guard", "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}],
        "timeout_seconds": 120, "poll_interval_seconds": 1, "callback_url": "https://tickets.example.com/hook",
        "stages": [{"name": "canary", "soak_seconds": 3600, "health_checks": [
            {"name": "errors", "prometheus": {"url": "https://prom.example.com", "query": "up", "below": 1, "for_seconds": 60}}]},
                   {"name": "rest", "approval_required": True}]})
    run, left_out = rehearsals.compressed_bundle(bundle, 60)
    assert run.stages[0].soak_seconds == 60 and run.timeout_seconds == 2 and run.poll_interval_seconds == 0.05
    assert run.activity_heartbeat_timeout_seconds == bundle.activity_heartbeat_timeout_seconds  # the worker's pace
    assert run.callback_url is None and run.stages[0].health_checks == [] and run.requested_by == "rehearsal"
    assert any("reads Prometheus" in line for line in left_out) and any("approval" in line for line in left_out)
    assert any("tickets.example.com" in line for line in left_out)
    with pytest.raises(ValueError, match="reaches nothing outside the twin"):
        rehearsals.compressed_bundle(BundleSpec.model_validate({
            "name": "g", "source": {"git": {"url": "https://git.example.com/p.git", "ref": "v1"}}}), 60)
    with pytest.raises(ValueError, match="1 or more"):
        rehearsals.compressed_bundle(bundle, 0.5)


def test_a_rollouts_report_stretches_the_twins_times_back_and_names_the_halting_stage():
    from regatta.models.policy import PolicyClusterState, PolicyStageState

    stages = [PolicyStageState(name="canary", concurrency=1, soak_seconds=10, approval_required=False, status="done",
                               clusters=[PolicyClusterState(name="a", status="applied")]),
              PolicyStageState(name="rest", concurrency=2, soak_seconds=0, approval_required=True, status="halted",
                               clusters=[PolicyClusterState(name="b", status="failed", detail="no kyverno"),
                                         PolicyClusterState(name="c", status="pending")])]
    report = rehearsals.policy_report(
        bundle="guard", revision="r1", stages=stages, entries={("canary", "a"): (0.5, 1.0), ("rest", "b"): (12.0, 13.0)},
        stage_times={"canary": (0.4, 11.0), "rest": (12.0, 14.0)}, compress=60, outcome="halted", message="halted",
        rehearsed_at=TUESDAY_NOON, left_out={"d": "not targeted"}, not_rehearsed=[])
    by = {c.cluster: c for c in report.clusters}
    assert (by["a"].outcome, by["a"].starts_seconds, by["a"].seconds) == ("applied", 30.0, 30.0)
    assert by["b"].outcome == "failed" and by["b"].detail == "no kyverno" and by["c"].outcome == "not_started"
    assert [s.halts for s in report.stages] == [False, True] and report.stages[1].failures == 1
    assert report.total_seconds == 840.0 and report.outcome == "halted" and report.left_out == {"d": "not targeted"}
