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
from datetime import UTC, datetime, timedelta
from typing import Any

from regatta.models import ClusterUpgradeInput, PatchWaveInput, WaveClusterState
from regatta.models.errors import ErrorType
from regatta.models.rehearsal import (
    ClusterRehearsal,
    StageRehearsal,
    WaveClusterRehearsal,
    WaveRehearsal,
)
from regatta.models.wave import WavePlan
from regatta.rules import forecasts
from regatta.rules.windows import window_at

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
# What a cluster's shape leaves out: what names or places it, not what its upgrade does.
NOT_SHAPE = {"name", "labels", "region", "site", "management", "cloud", "last_backup_age_seconds"}


def compressed_request(request: ClusterUpgradeInput, compress: float) -> tuple[ClusterUpgradeInput, list[str]]:
    """The upgrade as the twin runs it, and what of the real one it leaves out. Every wait the fleet sets (timeouts,
    poll intervals, soaks, a drain policy's steps) is `compress` times shorter, as the twin's clouds are; the calendar
    (windows, freezes) is left to the wave's forecast; nothing leaves the twin: no callback, no owner's webhook, no
    hook's call out, no Prometheus query against the real fleet's metrics (the twin has none)."""
    if compress < 1:
        raise ValueError(f"compress {compress:g}: a rehearsal runs the fleet faster than it runs, 1 or more")
    data: dict[str, Any] = request.model_dump()
    left_out = []
    for key, value in list(data.items()):
        if key.endswith("_seconds") and key not in REAL_TIME_FIELDS and isinstance(value, (int, float)):
            data[key] = value / compress
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
    kept_checks = []
    for check in data["health_checks"]:
        if check.get("prometheus"):
            left_out.append(f"health check {check['name']} reads Prometheus: the twin has no metrics, taken to pass")
        else:
            kept_checks.append(check)
    windows = bool(data["maintenance_windows"] or data["freezes"])
    data.update(callback_url=None, hooks=kept_hooks, health_checks=kept_checks, maintenance_windows=[], freezes=[],
                requested_by="rehearsal", ticket=None)
    if windows:
        left_out.append("maintenance windows and freezes are read by the wave's forecast, not waited out in the twin")
    return ClusterUpgradeInput.model_validate(data), left_out


def shape(cluster: Mapping[str, Any]) -> str:
    """What makes two clusters' upgrades the same in the twin: everything of its fleet file entry (`model_dump`) but
    its name, labels, place and cloud settings. One run stands for every cluster of a shape."""
    kept = {key: value for key, value in cluster.items() if key not in NOT_SHAPE}
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


def baseline_name(cluster: str) -> str:
    """The copy of a cluster, at time scale 0, whose run measures Regatta's own work for it."""
    return f"{cluster}-baseline"


def _window_closes(wave: PatchWaveInput, entry: WaveClusterState, starts: datetime, ends: datetime) -> datetime | None:
    """When the window a cluster starts in closes, if that is before its upgrade would end (None: no window applies,
    or the one it starts in outlasts it)."""
    for index in entry.windows:
        occurrence = window_at(wave.maintenance_windows[index], starts)
        if occurrence is not None and occurrence[0] <= starts < occurrence[1]:
            return occurrence[1] if occurrence[1] < ends else None
    return None


def rehearse_wave(*, wave: PatchWaveInput, plan: WavePlan, now: datetime, rehearsed: Mapping[str, ClusterRehearsal],
                  compress: float, rehearsed_at: datetime, left_out: Sequence[str] = ()) -> WaveRehearsal:
    """The wave on the twin: each stage in order, its clusters started as the wave's own forecast starts them (stages,
    soak, concurrency, windows, freezes, holds), each taking the time its rehearsed upgrade took; a stage whose failures
    (failed, refused or stalled) pass the wave's failure budget halts the wave, and the stages after it do not start."""
    durations = {name: r.predicted_seconds for name, r in rehearsed.items()}
    mean = sum(durations.values()) / len(durations) if durations else wave.estimated_upgrade_minutes * 60
    forecast = forecasts.forecast(wave=wave, stages=plan.stages, now=now, upgrade_seconds=mean,
                                  unstaged=plan.unstaged_reasons, durations=durations)
    by_cluster = {f.cluster: f for f in forecast.clusters}
    stages: list[StageRehearsal] = []
    clusters: list[WaveClusterRehearsal] = []
    failed_so_far = 0
    halted_at: str | None = None
    for stage in plan.stages:
        line = StageRehearsal(name=stage.name, failure_budget=plan.failure_budget)
        for entry in stage.clusters:
            seen = by_cluster.get(entry.name)
            rehearsal = rehearsed.get(entry.name)
            if halted_at is not None:
                clusters.append(WaveClusterRehearsal(cluster=entry.name, stage=stage.name, outcome="not_started",
                                                     because=f"stage {halted_at}'s failures halt the wave first"))
                continue
            if rehearsal is None or seen is None or seen.earliest_touch is None:
                settled = "at_target" if entry.status == "at_target" else "never"
                clusters.append(WaveClusterRehearsal(cluster=entry.name, stage=stage.name, outcome=settled,
                                                     because=seen.because if seen else entry.detail))
                continue
            starts = seen.earliest_touch
            ends = starts + timedelta(seconds=rehearsal.predicted_seconds)
            closes = _window_closes(wave, entry, starts, ends)
            because = seen.because + (f"; its window closes {closes:%Y-%m-%d %H:%M}Z, before it would end: it pauses at"
                                      " its next step until a window opens" if closes else "")
            clusters.append(WaveClusterRehearsal(
                cluster=entry.name, stage=stage.name, outcome=rehearsal.outcome, starts=starts, ends=ends,
                predicted_seconds=rehearsal.predicted_seconds, window_closes=closes, because=because,
                stalls=rehearsal.stalls))
            line.starts = min(filter(None, (line.starts, starts)))
            line.ends = max(filter(None, (line.ends, ends)))
            if rehearsal.outcome != "succeeded":
                line.failures += 1
        failed_so_far += line.failures
        if halted_at is None and failed_so_far > plan.failure_budget:
            line.halts, halted_at = True, stage.name
        stages.append(line)
    for name, reason in sorted(plan.unstaged_reasons.items()):
        clusters.append(WaveClusterRehearsal(cluster=name, stage=None, outcome="unstaged", because=reason))
    last = max((c.ends for c in clusters if c.ends), default=None)
    assumes = [a for a in forecast.assumes if not a.startswith("each upgrade takes")]
    assumes += [f"each cluster's upgrade takes what its rehearsal on the twin took, {compress:g} times faster there",
                "a cluster that stalls (waits on an approval) or fails counts against the failure budget"]
    return WaveRehearsal(wave=wave.name, target_version=wave.target_version, rehearsed_at=rehearsed_at,
                         starts=now.astimezone(UTC), ends=last, compress=compress, halted_at=halted_at,
                         total_seconds=(last - now).total_seconds() if last else None, stages=stages,
                         clusters=clusters, assumes=assumes, left_out=list(left_out))
