"""The decisions of a rehearsal: what the upgrade run on the twin is (every wait of the fleet compressed, nothing sent
outside the twin), which clusters one run stands for, and what a wave would do given each cluster's rehearsed upgrade
(the wave's own forecast, fed each cluster's predicted duration, with the windows that close mid-cluster and the stages
the failure budget would halt).

Pure: `regatta upgrade rehearse` and `regatta wave rehearse` (regatta/rehearsal.py) call these.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from regatta.models import ClusterUpgradeInput, PatchWaveInput, WaveClusterState
from regatta.models.errors import ErrorType
from regatta.models.policy import BundleSpec, PolicyStageState
from regatta.models.rehearsal import (
    ClusterAccuracy,
    ClusterRehearsal,
    PolicyClusterRehearsal,
    PolicyRehearsal,
    PolicyStageRehearsal,
    RehearsalAccuracy,
    StageRehearsal,
    WaveClusterRehearsal,
    WaveRehearsal,
)
from regatta.models.wave import WavePlan
from regatta.rules import forecasts
from regatta.rules.windows import next_start, window_at

# What ends an upgrade before it changes anything (ErrorType's first two groups): the rehearsal says it refused.
REFUSED_BEFORE_ANY_CHANGE = frozenset({
    ErrorType.INVALID_INPUT, ErrorType.INVALID_REQUEST, ErrorType.UNKNOWN_CLUSTER, ErrorType.INVALID_VERSION,
    ErrorType.ILLEGAL_VERSION_JUMP, ErrorType.ALREADY_AT_VERSION, ErrorType.INVALID_NODE_IMAGE,
    ErrorType.INVALID_HEALTH_CHECK, ErrorType.FLEET_RULE_VIOLATION, ErrorType.SKEW_VIOLATION, ErrorType.UNSATISFIABLE_PDB,
    ErrorType.CLUSTER_BUSY, ErrorType.CLUSTER_HELD, ErrorType.CLUSTER_UNHEALTHY, ErrorType.CLOUD_RULE_VIOLATION,
    ErrorType.UPGRADE_INSIGHTS_ERROR, ErrorType.NOT_READY_FOR_UPGRADE, ErrorType.HOOK_SAID_NO, ErrorType.DRAIN_REFUSED,
    ErrorType.NO_WINDOW})
# How long a worker may go silent is the worker's pace, not the fleet's: it is not compressed.
REAL_TIME_FIELDS = {"activity_heartbeat_timeout_seconds"}
# What a cluster's shape leaves out: what names it or says where it is managed from, not what its upgrade does. Of its
# labels only those an upgrade reads count (a Velero backup before each control plane moves).
NOT_SHAPE = {"name", "labels", "site", "management", "last_backup_age_seconds"}
SHAPE_LABELS = ("backup-before-upgrade",)
# How the real wave counts an upgrade that ended with one of these (workflows/patch_wave.py): not as a failure.
WAVE_STATUS_OF_ERROR = {ErrorType.ALREADY_AT_VERSION: "at_target", ErrorType.CLUSTER_HELD: "held",
                        ErrorType.NOT_READY_FOR_UPGRADE: "not_ready", ErrorType.UNKNOWN_CLUSTER: "skipped"}


def _compress_waits(data: dict[str, Any], compress: float) -> None:
    """Every `*_seconds` of an operation's input `compress` times shorter, but what is the worker's pace."""
    if compress < 1:
        raise ValueError(f"compress {compress:g}: a rehearsal runs the fleet faster than it runs, 1 or more")
    for key, value in list(data.items()):
        if key.endswith("_seconds") and key not in REAL_TIME_FIELDS and isinstance(value, (int, float)):
            data[key] = value / compress


def _without_prometheus(checks: list[dict[str, Any]], *, whose: str, left_out: list[str]) -> list[dict[str, Any]]:
    """The health checks the twin can run: a Prometheus query is left out (the twin has no metrics), said so."""
    kept = []
    for check in checks:
        if check.get("prometheus"):
            left_out.append(f"{whose}health check {check['name']} reads Prometheus: the twin has no metrics, taken to"
                            " pass")
        else:
            kept.append(check)
    return kept


def compressed_request(request: ClusterUpgradeInput, compress: float) -> tuple[ClusterUpgradeInput, list[str]]:
    """The upgrade as the twin runs it, and what of the real one it leaves out. Every wait the fleet sets (timeouts,
    poll intervals, soaks, a drain policy's steps) is `compress` times shorter, as the twin's clouds are; the calendar
    (windows, freezes) is left to the wave's forecast; nothing leaves the twin: no callback, no owner's webhook, no
    hook's call out, no Prometheus query against the real fleet's metrics (the twin has none)."""
    data: dict[str, Any] = request.model_dump()
    left_out: list[str] = []
    _compress_waits(data, compress)
    for policy in data["drain_policies"]:
        for key in [k for k in policy if k.endswith("_seconds")]:
            policy[key] = policy[key] / compress
        if policy.get("owner_webhook"):
            left_out.append(f"a drain policy's owner webhook ({policy['owner_webhook']}) is not called")
            policy["owner_webhook"] = None
    if data.get("callback_url"):
        left_out.append(f"the callback ({data['callback_url']}) is not called")
    kept_hooks = []
    for hook in data["hooks"]:
        if hook.get("webhook"):
            left_out.append(f"hook {hook['name']} ({hook['at']}) posts to {hook['webhook']['url']}: not called, taken"
                            " to say yes")
        else:
            kept_hooks.append(hook)
    kept_checks = _without_prometheus(data["health_checks"], whose="", left_out=left_out)
    windows = bool(data["maintenance_windows"] or data["freezes"])
    data.update(callback_url=None, hooks=kept_hooks, health_checks=kept_checks, maintenance_windows=[], freezes=[],
                requested_by="rehearsal", ticket=None)
    if windows:
        left_out.append("maintenance windows and freezes are read by the wave's forecast, not waited out in the twin")
    return ClusterUpgradeInput.model_validate(data), left_out


# The waits of an upgrade's own that are the fleet's time, not Regatta's work: a baseline run has them near nothing.
# (Its poll intervals stay the run's: shorter, its activities would poll in a tight loop and weigh more than the run's.)
OWN_WAITS = ("soak_seconds", "keep_old_pools_seconds")
POLICY_WAITS = ("notify_owner_after_seconds", "ask_approval_after_seconds")


def baseline_request(run: ClusterUpgradeInput) -> ClusterUpgradeInput:
    """The run's upgrade (already compressed) as its baseline runs it: the soaks and kept pools it would wait out, and
    its drain policies' steps, a thousandth of that; all else the same."""
    data = run.model_dump()
    for key in OWN_WAITS:
        data[key] = data[key] / 1000
    for policy in data["drain_policies"]:
        for key in POLICY_WAITS:
            policy[key] = policy[key] / 1000
    return ClusterUpgradeInput.model_validate(data)


def shape(cluster: Mapping[str, Any]) -> str:
    """What makes two clusters' upgrades the same in the twin: everything of its fleet file entry (`model_dump`) but
    its name, its labels (those an upgrade reads aside) and where it is managed from. One run stands for every cluster
    of a shape."""
    kept = {key: value for key, value in cluster.items() if key not in NOT_SHAPE}
    kept["labels"] = {key: value for key, value in (cluster.get("labels") or {}).items() if key in SHAPE_LABELS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stands_for(clusters: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """For each cluster, the one whose run stands for it: the first by name of its shape."""
    first: dict[str, str] = {}
    out = {}
    for name in sorted(clusters):
        out[name] = first.setdefault(shape(clusters[name]), name)
    return out


def failure_outcome(error_type: str | None) -> str:
    """How a rehearsal names an upgrade that ended with this error: refused when nothing changed, else failed."""
    return "refused" if error_type in REFUSED_BEFORE_ANY_CHANGE else "failed"


def predicted_seconds(wall_seconds: float, compress: float, *, baseline_seconds: float = 0.0) -> float:
    """What `wall_seconds` on the twin stand for on the real fleet: the fleet's waits (compressed `compress` times)
    stretched back, and Regatta's own work (`baseline_seconds`: the same upgrade where the fleet's waits take no time)
    counted once. Without a baseline that work is counted `compress` times over, and the prediction errs long."""
    baseline = min(max(baseline_seconds, 0.0), wall_seconds)
    return round((wall_seconds - baseline) * compress + baseline, 1)


def baseline_name(cluster: str, *, taken: AbstractSet[str] = frozenset()) -> str:
    """The copy of a cluster, at time scale 0, whose run measures Regatta's own work for it: a name no cluster of the
    twin has."""
    name, more = f"{cluster}-baseline", 1
    while name in taken:
        name, more = f"{cluster}-baseline{more}", more + 1
    return name


def wave_status(rehearsal: ClusterRehearsal) -> str:
    """What the real wave would record for this upgrade (workflows/patch_wave.py): a stalled one waits for its approval
    until the drain policy's timeout and then fails; a cluster already at the target, held, not ready or gone is not a
    failure; every other refusal or failure is."""
    if rehearsal.outcome == "succeeded":
        return "succeeded"
    if rehearsal.outcome == "stalled":
        return "failed"
    return str(WAVE_STATUS_OF_ERROR.get(ErrorType(rehearsal.error_type), "failed")) if rehearsal.error_type in set(
        ErrorType) else "failed"


def pause_in(wave: PatchWaveInput, entry: WaveClusterState, starts: datetime, ends: datetime
             ) -> tuple[datetime, datetime | None] | None:
    """Where a cluster's upgrade from `starts` to `ends` stops being allowed (its open windows, chained, close, or a
    freeze begins) and when it may go on (None: never within a year); None when nothing stops it. The real upgrade
    finishes the step in flight and pauses at the next boundary: a little later than this."""
    mine = [wave.maintenance_windows[i] for i in entry.windows]
    closes = ends
    if mine:
        until = starts
        for _ in range(len(mine) * 8):  # windows that overlap or touch carry the upgrade on
            spans = [o for o in (window_at(w, until) for w in mine) if o is not None and o[0] <= until < o[1]]
            if not spans:
                break
            until = max(o[1] for o in spans)
        closes = min(closes, until)
    frozen = [f.start for f in wave.freezes if starts < f.start < closes]
    closes = min([closes, *frozen])
    if closes >= ends:
        return None
    return closes, next_start(windows=mine, freezes=wave.freezes, after=closes)


@dataclass
class _Line:
    entry: WaveClusterState
    stage: str
    status: str
    rehearsal: ClusterRehearsal | None = None
    starts: datetime | None = None
    ends: datetime | None = None
    because: str = ""
    window_closes: datetime | None = None


def rehearse_wave(*, wave: PatchWaveInput, plan: WavePlan, now: datetime, rehearsed: Mapping[str, ClusterRehearsal],
                  compress: float, rehearsed_at: datetime, left_out: Sequence[str] = (),
                  corrections: Sequence[str] = ()) -> WaveRehearsal:
    """The wave on the twin: each stage in order, its clusters started as the wave's own forecast starts them (stages,
    soak, concurrency, windows, freezes, holds), each taking the time its rehearsed upgrade took, and a window that
    closes (or a freeze that begins) mid-upgrade pausing it until the next opening. The failures are counted as the real
    wave counts them (`wave_status`): once they pass its failure budget, no cluster starts after the failure that did
    it (those in flight finish), and a stage in which every cluster tried was held out as not ready halts it too."""
    durations = {name: r.predicted_seconds for name, r in rehearsed.items()}
    mean = sum(durations.values()) / len(durations) if durations else wave.estimated_upgrade_minutes * 60
    forecast = forecasts.forecast(wave=wave, stages=plan.stages, now=now, upgrade_seconds=mean,
                                  unstaged=plan.unstaged_reasons, durations=durations)
    by_cluster = {f.cluster: f for f in forecast.clusters}
    lines: list[_Line] = []
    for stage in plan.stages:
        for entry in stage.clusters:
            seen, rehearsal = by_cluster.get(entry.name), rehearsed.get(entry.name)
            if rehearsal is None or seen is None or seen.earliest_touch is None:
                lines.append(_Line(entry=entry, stage=stage.name, status="at_target" if entry.status == "at_target"
                                   else "never", because=seen.because if seen else entry.detail))
                continue
            starts = seen.earliest_touch
            ends = starts + timedelta(seconds=rehearsal.predicted_seconds)
            because, closes = seen.because, None
            paused = pause_in(wave, entry, starts, ends)
            if paused is not None:
                closes, resumes = paused
                because += f"; its window closes (or a freeze begins) {closes:%Y-%m-%d %H:%M}Z before it would end: it" + (
                    f" pauses at its next step until {resumes:%Y-%m-%d %H:%M}Z" if resumes else " pauses and no window"
                    " opens again within a year")
                ends = ends + (resumes - closes) if resumes else ends
            lines.append(_Line(entry=entry, stage=stage.name, status=wave_status(rehearsal), rehearsal=rehearsal,
                               starts=starts, ends=ends, because=because, window_closes=closes))
    halts_at, halted_at, why = _halt(lines, plan)
    stages: list[StageRehearsal] = []
    for stage in plan.stages:
        line = StageRehearsal(name=stage.name, failure_budget=plan.failure_budget, halts=stage.name == halted_at)
        for item in (i for i in lines if i.stage == stage.name):
            if halts_at is not None and item.starts is not None and item.starts >= halts_at:
                item.status, item.because = "not_started", why
                item.starts = item.ends = None
            if item.starts is not None:
                line.starts = min(filter(None, (line.starts, item.starts)))
                line.ends = max(filter(None, (line.ends, item.ends)))
            line.failures += item.status == "failed"
        stages.append(line)
    clusters = [WaveClusterRehearsal(
        cluster=i.entry.name, stage=i.stage, outcome=i.status, starts=i.starts, ends=i.ends,
        rehearsed=i.rehearsal.outcome if i.rehearsal and i.starts else None,
        predicted_seconds=i.rehearsal.predicted_seconds if i.rehearsal and i.starts else None,
        window_closes=i.window_closes if i.starts else None, because=i.because,
        stalls=i.rehearsal.stalls if i.rehearsal and i.starts else [],
        corrected_by=i.rehearsal.corrected_by if i.rehearsal and i.starts else 1.0) for i in lines]
    for name, reason in sorted(plan.unstaged_reasons.items()):
        clusters.append(WaveClusterRehearsal(cluster=name, stage=None, outcome="unstaged", because=reason))
    last = max((c.ends for c in clusters if c.ends), default=None)
    assumes = [a for a in forecast.assumes if not a.startswith("each upgrade takes")]
    assumes += [f"each cluster's upgrade takes what its rehearsal on the twin took, {compress:g} times faster there",
                "an upgrade that would wait for an approval waits until its drain policy's approval timeout, then"
                " fails (it counts against the failure budget)", *corrections]
    return WaveRehearsal(wave=wave.name, target_version=wave.target_version, rehearsed_at=rehearsed_at,
                         starts=now.astimezone(UTC), ends=last, compress=compress, halted_at=halted_at,
                         total_seconds=(last - now).total_seconds() if last else None, stages=stages,
                         clusters=clusters, assumes=assumes, left_out=list(left_out))


def _halt(lines: Sequence[_Line], plan: WavePlan) -> tuple[datetime | None, str | None, str]:
    """When the wave would halt (no cluster starts from then on), the stage it halts in, and why; (None, None, "")
    when it runs to its end."""
    failed = sorted((i for i in lines if i.status == "failed" and i.ends is not None), key=lambda i: i.ends or datetime.max.replace(tzinfo=UTC))
    budget_halt = failed[plan.failure_budget] if len(failed) > plan.failure_budget else None
    held_out: tuple[datetime, str] | None = None
    for stage in plan.stages:
        tried = [i for i in lines if i.stage == stage.name and i.starts is not None]
        if tried and all(i.status == "not_ready" for i in tried) and not any(i.status == "succeeded" for i in tried):
            held_out = (max(i.ends for i in tried if i.ends), stage.name)
            break
    options = []
    if budget_halt is not None and budget_halt.ends is not None:
        options.append((budget_halt.ends, budget_halt.stage, f"the wave halts at {budget_halt.ends:%Y-%m-%d %H:%M}Z:"
                        f" {plan.failure_budget + 1} failures pass its failure budget of {plan.failure_budget}"
                        f" (the last: {budget_halt.entry.name})"))
    if held_out is not None:
        options.append((held_out[0], held_out[1], f"the wave halts after stage {held_out[1]}: every cluster it tried was"
                        " held out as not ready"))
    if not options:
        return None, None, ""
    return min(options, key=lambda option: option[0])


def accuracy(*, predicted: Sequence[ClusterRehearsal], trail: Mapping[str, Sequence[tuple[str, str, str, datetime]]],
             checked_at: datetime) -> RehearsalAccuracy:
    """A rehearsal held against what each cluster's real upgrade did after it: `trail` is, per cluster, the lines its
    upgrade wrote since the rehearsal (action, outcome, detail, at). A cluster's real run is its first `upgrade started`
    to the first end after it (succeeded, failed, refused, aborted); a predicted stall was met when the real run's lines
    name one of its budgets or pods. Clusters whose real upgrade has not ended are listed without an error."""
    out = []
    for rehearsal in predicted:
        lines = sorted(trail.get(rehearsal.cluster, ()), key=lambda line: line[3])
        started = next((at for action, outcome, _, at in lines if action == "upgrade" and outcome == "started"), None)
        ended = next(((outcome, at) for action, outcome, _, at in lines if action == "upgrade" and started is not None
                      and at >= started and outcome in ("succeeded", "failed", "refused", "aborted")), None)
        said = " ".join(detail for _, _, detail, _ in lines)
        budgets = sorted({b for stall in rehearsal.stalls for b in stall.budgets})
        met = sorted(b for b in budgets if b in said or any(
            _workload_of(pod) in said for stall in rehearsal.stalls if b in stall.budgets for pod in stall.pods))
        line = ClusterAccuracy(cluster=rehearsal.cluster, predicted_outcome=rehearsal.outcome,
                               predicted_seconds=rehearsal.predicted_seconds, stalls_predicted=budgets, stalls_met=met,
                               corrected_by=rehearsal.corrected_by)
        if started is not None and ended is not None:
            actual = (ended[1] - started).total_seconds()
            line.actual_outcome, line.actual_seconds = ended[0], round(actual, 1)
            line.error = round((rehearsal.predicted_seconds - actual) / actual, 3) if actual > 0 else None
        out.append(line)
    done = [c for c in out if c.actual_outcome is not None]
    errors = [abs(c.error) for c in done if c.error is not None]
    return RehearsalAccuracy(
        checked_at=checked_at, clusters=out, ended=len(done),
        outcomes_agreed=sum(1 for c in done if _agrees(c.predicted_outcome, c.actual_outcome or "")),
        mean_abs_error=round(sum(errors) / len(errors), 3) if errors else None,
        stalls_predicted=sum(len(c.stalls_predicted) for c in out), stalls_met=sum(len(c.stalls_met) for c in out))


def _workload_of(pod: str) -> str:
    """`shop/ledger-` of `shop/ledger-7f9c4`: a twin's pod and the real one it stands for share all but their last
    part (a StatefulSet's ordinal aside, which is the same)."""
    head, dash, _ = pod.rpartition("-")
    return f"{head}{dash}" if dash else pod


def _agrees(predicted: str, actual: str) -> bool:
    """A rehearsed outcome against the trail's: a stall is a failure for want of an approval."""
    return predicted == actual or (predicted == "stalled" and actual == "failed")


# A wave attaches the latest rehearsal of its name and target taken at most this long before it starts: an older one
# rehearsed a fleet that has changed since.
ATTACH_WITHIN = timedelta(days=30)


def attachable(candidates: Sequence[tuple[str, datetime, str]], *, target_version: str, started: datetime
               ) -> str | None:
    """Of a wave's rehearsals (id, when taken, the target it rehearsed), the one a wave to `target_version` starting
    at `started` attaches: the latest taken before it, within ATTACH_WITHIN, to the same target; None when none is."""
    fitting = [(at, rehearsal_id) for rehearsal_id, at, target in candidates
               if target == target_version and started - ATTACH_WITHIN <= at <= started]
    return max(fitting)[1] if fitting else None


def in_brief(report: WaveRehearsal) -> str:
    """What a wave's rehearsal predicted, in one line for the audit trail."""
    counts: dict[str, int] = {}
    for c in report.clusters:
        counts[c.outcome] = counts.get(c.outcome, 0) + 1
    held = sum(len(c.stalls) for c in report.clusters)
    took = f"{report.total_seconds / 3600:.1f} h" if report.total_seconds is not None else "no end"
    return (f"predicted {took}: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
            + (f"; halted at stage {report.halted_at}" if report.halted_at else "")
            + (f"; {held} drains held by budgets" if held else ""))


def held_line(rehearsal_id: str, result: RehearsalAccuracy) -> str:
    """How a real run held against its rehearsal, in one line (the wave's result and its audit trail)."""
    if not result.ended:
        return f"held against {rehearsal_id}: no cluster's upgrade ended"
    mean = f"{result.mean_abs_error:.0%}" if result.mean_abs_error is not None else "none"
    return (f"held against {rehearsal_id}: {result.outcomes_agreed} of {result.ended} clusters ended as rehearsed;"
            f" mean time error {mean}; {result.stalls_met} of {result.stalls_predicted} predicted budget holds met")


# What a correction needs and how far it may go: fewer pairs say little, and a factor past these is a twin gone wrong,
# not a calibration (take a new snapshot).
CORRECTION_NEEDS = 3
CORRECTION_BOUNDS = (0.2, 5.0)
CORRECTION_PAIRS = 50  # the newest pairs of each cloud


@dataclass(frozen=True)
class Correction:
    factor: float
    pairs: int
    said: str


def corrections(pairs: Mapping[str, Sequence[tuple[float, float]]]) -> dict[str, Correction]:
    """Per cloud, what to multiply a rehearsal's times by: the median of real / rehearsed (the twin's own prediction,
    before any correction) over its newest CORRECTION_PAIRS upgrades that succeeded both in the rehearsal and for real,
    newest first in `pairs`. A cloud with fewer than CORRECTION_NEEDS gets none; the factor is held within
    CORRECTION_BOUNDS. This is how the comparisons a wave keeps make the next rehearsal better."""
    out = {}
    for cloud, seen in sorted(pairs.items()):
        ratios = sorted(actual / rehearsed for rehearsed, actual in seen[:CORRECTION_PAIRS] if rehearsed > 0 and actual > 0)
        if len(ratios) < CORRECTION_NEEDS:
            continue
        middle = len(ratios) // 2
        median = ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
        factor = round(min(max(median, CORRECTION_BOUNDS[0]), CORRECTION_BOUNDS[1]), 3)
        out[cloud] = Correction(factor=factor, pairs=len(ratios), said=(
            f"{cloud}: times × {factor:g}, the median of real / rehearsed over the {len(ratios)} {cloud} upgrades held"
            " against earlier rehearsals" + (" (held within its bounds)" if factor != round(median, 3) else "")))
    return out


def corrected(rehearsal: ClusterRehearsal, correction: Correction | None) -> ClusterRehearsal:
    """The cluster's rehearsal with its cloud's correction applied to its time (what the twin said is kept: predicted
    / corrected_by). A stalled one is left as it is: its time is mostly its drain policy's approval timeout, a
    policy's number, not the twin's."""
    if correction is None or correction.factor == 1.0 or rehearsal.outcome == "stalled":
        return rehearsal
    return rehearsal.model_copy(update={"predicted_seconds": round(rehearsal.predicted_seconds * correction.factor, 1),
                                        "corrected_by": correction.factor})


# A rollout on the twin polls no faster than this, whatever the compression: faster, its activities poll in a tight loop.
FASTEST_POLL_SECONDS = 0.05


def compressed_bundle(bundle: BundleSpec, compress: float) -> tuple[BundleSpec, list[str]]:
    """The bundle's rollout as the twin runs it, and what of the real one it leaves out: every wait the rollout sets
    (each stage's soak, how long a cluster may take to observe its objects, the poll) `compress` times shorter, as the
    twin's clusters are; nothing sent outside the twin (no callback, no Prometheus check: the twin has no metrics)."""
    if bundle.source is not None:
        raise ValueError(f"bundle {bundle.name} is read from {bundle.source.model_dump(exclude_none=True)}: a rehearsal"
                         " reaches nothing outside the twin; render it (`regatta policy preview --output json`) and give"
                         " its manifests inline")
    data: dict[str, Any] = bundle.model_dump()
    left_out: list[str] = []
    _compress_waits(data, compress)
    data["poll_interval_seconds"] = max(data["poll_interval_seconds"], FASTEST_POLL_SECONDS)
    for stage in data["stages"]:
        stage["soak_seconds"] = stage["soak_seconds"] / compress
        stage["health_checks"] = _without_prometheus(stage["health_checks"], whose=f"stage {stage['name']}'s ",
                                                     left_out=left_out)
        if stage["approval_required"]:
            left_out.append(f"stage {stage['name']} waits for a second person's approval: the rehearsal approves it at"
                            " once, and the real wait is not counted")
    if data.get("callback_url"):
        left_out.append(f"the callback ({data['callback_url']}) is not called")
    data.update(callback_url=None, requested_by="rehearsal", ticket=None)
    return BundleSpec.model_validate(data), left_out


def policy_report(*, bundle: str, revision: str, stages: Sequence[PolicyStageState],
                  entries: Mapping[tuple[str, str], tuple[float | None, float | None]],
                  stage_times: Mapping[str, tuple[float | None, float | None]], compress: float, outcome: str,
                  message: str, rehearsed_at: datetime, left_out: Mapping[str, str], not_rehearsed: Sequence[str]
                  ) -> PolicyRehearsal:
    """A rollout's run on the twin as the report says it: `stages` as the rollout's progress ended, `entries` each
    (stage, cluster)'s seconds on the twin from the rollout's start to when it began and ended being given the bundle,
    `stage_times` each stage's. Times are stretched back by `compress` (Regatta's own work in them with it: a rollout's
    time is mostly its soaks, which are the fleet's)."""
    def real(seconds: float | None) -> float | None:
        return round(seconds * compress, 1) if seconds is not None else None

    clusters, out_stages = [], []
    for stage in stages:
        starts, ends = stage_times.get(stage.name, (None, None))
        line = PolicyStageRehearsal(name=stage.name, mode=stage.mode, approval_required=stage.approval_required,
                                    starts_seconds=real(starts), ends_seconds=real(ends), halts=stage.status == "halted")
        for entry in stage.clusters:
            began, done = entries.get((stage.name, entry.name), (None, None))
            status = entry.status if entry.status in ("applied", "failed", "skipped", "aborted") else "not_started"
            line.failures += status == "failed"
            clusters.append(PolicyClusterRehearsal(
                cluster=entry.name, stage=stage.name, mode=stage.mode, outcome=status, starts_seconds=real(began),
                seconds=real(done - began) if began is not None and done is not None else None, detail=entry.detail))
        out_stages.append(line)
    last = max((e for _, e in stage_times.values() if e is not None), default=None)
    return PolicyRehearsal(
        bundle=bundle, revision=revision, rehearsed_at=rehearsed_at, compress=compress,
        outcome=outcome if outcome in ("succeeded", "halted", "aborted") else "failed", message=message,
        total_seconds=real(last), stages=out_stages, clusters=clusters,
        left_out=dict(left_out), not_rehearsed=list(not_rehearsed),
        assumes=[f"the twin ran {compress:g} times faster than the fleet, and Regatta's own work in it (a second or so"
                 " a cluster) is counted that many times over: short rollouts are predicted long",
                 "every approval is given at once", "policy engines' reports are not rehearsed: a twin's engines"
                 " evaluate nothing, so every stage's violations count as 0 (`regatta policy preview` and the audit"
                 " pass read the real ones)"])
