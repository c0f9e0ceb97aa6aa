"""Every benchmark's targets and the figures its table shows, in one place.

A results file (benchmarks/results/NAME.json) has a table here under NAME: the rows docs/benchmarks.md
shows, each a figure of the JSON (a dotted path into it) with what it means, and for a target the
bound it must keep. The benchmarks save `verdicts(NAME, figures)` with their figures, and
benchmarks/tables.py writes the tables of docs/benchmarks.md from the JSON and these rows; nothing
else states a target.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    figure: str = ""  # dotted path into the results JSON
    words: str = ""
    at_most: float | None = None
    at_least: float | None = None
    unit: str = ""

    @property
    def target(self) -> str:
        if self.at_most is not None and self.at_most == self.at_least:
            return f"= {self.at_most:,g}{self.unit}"
        if self.at_most is not None:
            return f"≤ {self.at_most:,g}{self.unit}"
        if self.at_least is not None:
            return f"≥ {self.at_least:,g}{self.unit}"
        return ""

    def met(self, value: Any) -> bool | None:
        """Whether `value` keeps the bound (None: no bound, or no number to hold against it)."""
        if not self.target or not isinstance(value, int | float) or isinstance(value, bool):
            return None
        return (self.at_most is None or value <= self.at_most) and (self.at_least is None or value >= self.at_least)


def zero(figure: str, words: str) -> Row:
    return Row(figure, words, at_most=0, at_least=0)


def figure(figures: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (keys may hold spaces), or None where the JSON has none."""
    value: Any = figures
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


UPGRADE_WORK = [
    Row("activities_per_upgrade", "activities per surge upgrade of 3 pools", at_most=10),
    Row("history_events_per_upgrade", "history events per upgrade", at_most=70),
    Row("temporal_actions_per_cluster", "Temporal actions per cluster (what a Temporal Cloud bill counts)"),
]

TABLES: dict[str, list[Row]] = {
    "upgrade_fleet": [
        Row("clusters_per_min", "clusters upgraded per minute, all at once, one worker", at_least=500),
        # No target: the raw fan-out makes none of an upgrade's HTTPS calls and inventory writes, which
        # are most of the CPU on two saturated cores; the calls plus that floor is the honest limit (issue 35).
        Row("ratio_to_raw", "time against the raw fan-out of the same Temporal work"),
        Row("ratio_to_script", "time against a script making the same cloud and cluster calls"),
        Row("ratio_to_script_plus_raw", "time against that script plus the raw fan-out"),
        Row("floor_clusters_per_min", "clusters per minute at 1.0 against the script plus the raw fan-out"),
        *UPGRADE_WORK,
        Row("max_history_events", "largest history", at_most=10_000),
        Row("cpu_seconds.worker", "worker CPU seconds"),
    ],
    "patch_wave_1000": [
        Row("clusters_per_min", "clusters per minute, 1,000 in one wave, 100 at once, two workers", at_least=500),
        Row("ratio_to_raw", "time against the raw fan-out of the same Temporal work (same workers, concurrency)"),
        Row("ratio_to_script", "time against a script making the same cloud and cluster calls"),
        Row("ratio_to_script_plus_raw", "time against that script plus the raw fan-out", at_most=1.25),
        Row("floor_clusters_per_min", "clusters per minute at 1.0 against the script plus the raw fan-out"),
        Row("script_on_temporal_ratio_to_script_plus_raw",
            "the script's calls as Temporal activities (no Regatta), against the script plus the raw fan-out"),
        Row("ratio_to_script_on_temporal", "time against the script's calls as Temporal activities: Regatta's own"),
        *UPGRADE_WORK,
        Row("max_history_events", "largest history (the wave's runs included)", at_most=10_000),
        Row("worker_peak_rss_mb", "worker peak memory", at_most=1024, unit=" MB"),
        zero("pdb_violations", "budget violations"),
    ],
    "patch_markers": [
        Row("server_cpu_ms_per_workflow.no patch", "Temporal server CPU per bare workflow, no patch", unit=" ms"),
        Row("server_cpu_ms_per_workflow.four patches", "… asking four patches", unit=" ms"),
        # At least a millisecond: the reason workflows/pieces/patches.py exists; a Temporal release that
        # makes a patch free makes this missed, and the piece unneeded.
        Row("server_cpu_ms_per_patch", "server CPU each patch adds (a marker and a TemporalChangeVersion upsert)",
            at_least=1, unit=" ms"),
    ],
    "patch_wave_10000": [
        Row("clusters_per_min", "clusters per minute, 10,000 in one wave, two workers", at_least=400),
        Row("ratio_to_raw", "time against the raw fan-out of the same Temporal work"),
        Row("seconds", "seconds for the wave"),
        Row("wave_runs", "runs of the wave (continued as new)"),
        Row("max_history_events", "largest history", at_most=10_000),
        Row("worker_peak_rss_mb", "worker peak memory", at_most=1024, unit=" MB"),
        zero("pdb_violations", "budget violations"),
    ],
    "patch_wave_80_timescale": [
        Row("makespan_over_ideal", "makespan against the plan's critical path (operations take time)", at_most=1.05),
        Row("seconds", "seconds for the wave"),
        Row("plan_ideal_seconds", "seconds the plan would take with no orchestration at all"),
    ],
    "drain": [
        Row("ratio_to_kubectl", "Regatta's drain against kubectl drain, replacements Ready at once", at_most=1.0),
        Row("regatta_seconds", "Regatta, seconds (median)"),
        Row("kubectl_seconds", "kubectl, seconds (median)"),
        Row("slow_replacements.ratio_to_kubectl", "the same when replacements take time to be Ready (budgets refuse)",
            at_most=1.0),
        zero("pdb_violations", "budget violations, either drain"),
    ],
    "rehearsal_1000": [
        Row("seconds_per_1000_clusters", "a 1,000-cluster wave rehearsed on its twin, seconds per 1,000 clusters",
            at_most=60),
        Row("runs", "upgrades run (one per shape of cluster, each with its baseline)"),
        Row("seconds_running", "seconds in the private stack (start, runs, stop)"),
        Row("seconds_planning", "seconds planning the wave over the fleet"),
        Row("wave_hours_predicted", "the wave's predicted length, hours"),
        Row("forecast_error.mean", "forecast error against a run closer to real time, mean of the shapes"),
        Row("forecast_error.max", "… the worst shape"),
    ],
    "policy_rollout_1000": [
        Row("clusters_per_min", "rollout, clusters per minute"),
        Row("ratio_to_patch_wave", "against a PatchWave over the same fleet in the same run", at_least=1.0),
        Row("objects_applied_per_second", "objects applied per second"),
        Row("time_to_compliant_seconds.p50", "time to compliant: rollout start to a cluster's compliance record, p50",
            unit=" s"),
        Row("time_to_compliant_seconds.p95", "… p95", unit=" s"),
        Row("time_to_compliant_seconds.max", "… the last cluster", unit=" s"),
        zero("time_to_compliant_seconds.not_given", "clusters never given the bundle"),
        Row("max_history_events", "largest history", at_most=10_000),
        Row("drift_sweep_seconds", "drift sweep of every cluster × 20 objects, seconds", at_most=60),
        Row("drifts_found", "drifts found, of the 100 made", at_most=100, at_least=100),
        Row("worker_peak_rss_mb", "worker peak memory", unit=" MB"),
    ],
    "fleet_view_10000": [
        Row("worst_p95_ms", "the slowest query's p95 over 10,000 clusters", at_most=300, unit=" ms"),
        Row("queries.first page.p95_ms", "the first page (by name), p95", at_most=300, unit=" ms"),
        Row("queries.sorted by cost, dearest first.p95_ms", "sorted by cost, p95", at_most=300, unit=" ms"),
        Row("queries.non-compliant, sorted by end of support.p95_ms", "non-compliant by end of support, p95",
            at_most=300, unit=" ms"),
        Row("queries.after a hold on one cluster.p95_ms", "after a hold on one cluster, p95", at_most=300, unit=" ms"),
        Row("queries.right after a sweep wrote every cluster.ms", "right after a sweep wrote every cluster",
            at_most=300, unit=" ms"),
    ],
    "cold_start_10000": [
        Row("api.first_page_ms", "the fleet view's first page after the API starts (median)", at_most=300, unit=" ms"),
        Row("api.alive_seconds", "`regatta api` started to /healthz answering", unit=" s"),
        Row("api.ready_seconds", "… to /readyz answering (the fleet read)", unit=" s"),
        Row("api.second_page_ms", "the page after it", unit=" ms"),
        Row("clusters_list.table_seconds", "`regatta clusters list`, the whole command", at_most=1.5, unit=" s"),
        Row("clusters_list.json_seconds", "`regatta clusters list --output json`", at_most=1.5, unit=" s"),
        Row("worker.ready_seconds", "`regatta worker` started to polling both task queues", at_most=3, unit=" s"),
    ],
    "api_load": [
        Row("overall.p99_ms", "p99, 100 requests/s for 60 s", at_most=50, unit=" ms"),
        Row("overall.p50_ms", "p50", unit=" ms"),
        zero("overall.errors", "errors"),
        Row("starts.p99_ms", "starts, p99", at_most=50, unit=" ms"),
        Row("status_reads_by_what_they_found.running.p99_ms", "status reads of running operations, p99", at_most=50,
            unit=" ms"),
        Row("status_reads_by_what_they_found.running.requests", "status reads of running operations"),
    ],
    "cloud_rate_limits_200": [
        zero("with_limit.throttled_requests", "429s from the account, limit configured (two workers)"),
        Row("without_limit.throttled_requests", "429s from the account, no limit (the same two workers)", at_least=1),
        Row("with_limit.at_target", "clusters at 1.31, limit configured", at_least=200),
        Row("without_limit.at_target", "clusters at 1.31, no limit", at_least=200),
        Row("with_limit.seconds", "seconds, limit configured"),
        Row("without_limit.seconds", "seconds, no limit"),
    ],
    "chaos_50": [
        zero("violations.operations_never_finished", "operations still running at the deadline"),
        zero("violations.workflow_tasks_failed", "workflow tasks failed (a nondeterminism on replay)"),
        zero("violations.pdb_violations", "PodDisruptionBudget violations"),
        zero("violations.skew_violations", "version-skew violations"),
        zero("violations.double_drains", "nodes drained twice"),
        zero("violations.pods_deleted_without_approval", "pods deleted past their budget without an approval"),
        zero("violations.cloud_changes_accepted_twice", "a cloud change accepted twice (raw request log)"),
        zero("violations.cloud_operations_started_twice", "a cloud operation run twice"),
        zero("violations.activities_completed_twice", "a changing activity completed twice (histories)"),
        zero("violations.audit_lines_lost", "audit lines lost"),
        zero("violations.audit_lines_duplicated", "audit lines duplicated"),
        zero("violations.clusters_not_at_target", "clusters not at 1.31"),
        zero("violations.clusters_unlike_the_bundle", "clusters whose objects differ from the bundle"),
        Row("chaos_done.worker_kills", "workers killed"),
        Row("chaos_done.kills_inside_a_drain", "of them while a drain emptied a node"),
        Row("chaos_done.deletions_approved", "deletions approved by the on-call SRE"),
        Row("chaos_done.budgets_let_go", "budgets that let go while the approval waited"),
        Row("seconds", "seconds for the wave and the rollout"),
    ],
}


# Tables of steps: one row per saved run (`{"steps": [{"change": ..., <a run's figures>}, ...]}`), one
# column per figure, so a page can show what each change did, every row traced to its run.
STEPS: dict[str, list[Row]] = {
    "patch_wave_1000_steps": [
        Row("clusters_per_min", "per minute"),
        Row("ratio_to_script_plus_raw", "against script + raw"),
        Row("ratio_to_script_on_temporal", "against the script on Temporal"),
        Row("cpu_seconds_per_cluster.regatta.worker", "CPU s per cluster: worker 1"),
        Row("cpu_seconds_per_cluster.regatta.worker_2", "worker 2"),
        Row("cpu_seconds_per_cluster.regatta.temporal_server", "Temporal"),
        Row("cpu_seconds_per_cluster.regatta.simulator", "simulator"),
        Row("history_events_per_upgrade", "events per upgrade"),
    ],
    # benchmarks/profile_summary.py: one row per side, milliseconds of worker CPU per cluster by kind of work
    "patch_wave_1000_profile": [
        Row("cpu_ms_per_cluster", "all", unit=" ms"),
        Row("cloud_calls", "cloud calls", unit=" ms"),
        Row("cluster_calls", "cluster calls", unit=" ms"),
        Row("sdk_activations", "SDK: activations", unit=" ms"),
        Row("sdk_activities", "SDK: activity tasks", unit=" ms"),
        Row("sdk_bridge", "SDK: polls and completions", unit=" ms"),
        Row("heartbeats", "heartbeats", unit=" ms"),
        Row("inventory", "inventory and audit", unit=" ms"),
        Row("workflow_code", "workflow code", unit=" ms"),
        Row("other", "other", unit=" ms"),
    ],
}


def verdicts(table: str, figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target of `table` held against the run's figures: what a results file saves."""
    return [{"figure": row.figure, "target": row.target, "measured": figure(figures, row.figure),
             "met": row.met(figure(figures, row.figure))} for row in TABLES.get(table, []) if row.target]
