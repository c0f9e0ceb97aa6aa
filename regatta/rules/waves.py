"""Planning a PatchWave: which clusters it selects, which stage takes each, which are already at the
target or held, how many failures it tolerates, and what is wrong with a wave file beyond its
schema.

Pure: the PatchWave workflow calls it with Temporal's time, `regatta wave start --plan-only` with
the fleet's clock, and the unit tests with fixed clocks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from regatta.models import (
    ClusterRecord,
    ClusterSelector,
    ClusterUpgradeInput,
    MaintenanceHold,
    PatchWaveInput,
    PatchWaveProgress,
    WaveClusterState,
    WavePlan,
    WaveStageState,
)
from regatta.models.errors import ErrorType
from regatta.models.policy import PolicyRolloutProgress
from regatta.rules import refusals, versions
from regatta.rules.selectors import misses, selects
from regatta.rules.windows import applicable_windows, next_start

# What a wave may tune in each cluster's upgrade; identity and target come from the wave itself.
TUNABLE = frozenset(ClusterUpgradeInput.model_fields) - {"cluster", "target_version", "node_images", "strategy", "ticket",
                                                          "requested_by", "callback_url", "override_hold",
                                                          "health_checks", "drain_policies", "maintenance_windows",
                                                          "freezes", "keep_old_pools_seconds"}


class InvalidWave(refusals.Refusal):
    error_type = ErrorType.INVALID_WAVE


def wave_problems(wave: PatchWaveInput) -> list[tuple[tuple[str | int, ...], str]]:
    """Everything wrong with a wave that its models cannot see on their own: (where, what to fix)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    try:
        versions.parse_target_version(wave.target_version)
    except refusals.Refusal as error:
        problems.append((("target_version",), f"target_version: {error}"))
    for provider, image in sorted(wave.node_images.items()):
        if (problem := versions.node_image_problem(provider, image, wave.target_version)) is not None:
            problems.append((("node_images", provider), f"node_images.{provider}: {problem}"))
    names = [stage.name for stage in wave.stages]
    for i, name in enumerate(names):
        if name in names[:i]:
            problems.append((("stages", i, "name"), f"stages[{i}].name: {name!r} is used by an earlier stage; names must be unique"))
    for i, stage in enumerate(wave.stages):
        checks = [check.name for check in stage.health_checks]
        for j, name in enumerate(checks):
            if name in checks[:j]:
                problems.append((("stages", i, "health_checks", j, "name"), f"stages[{i}].health_checks[{j}].name: {name!r}"
                                 " is used by an earlier check of the stage; names must be unique"))
    try:
        failure_budget(wave.failure_budget, 100)
    except InvalidWave as error:
        problems.append((("failure_budget",), str(error)))
    for i, window in enumerate(wave.maintenance_windows):
        try:
            ZoneInfo(window.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append((("maintenance_windows", i, "timezone"), f"maintenance_windows[{i}].timezone: unknown time"
                             f" zone {window.timezone!r}; use an IANA name such as Europe/Berlin"))
    for i, freeze in enumerate(wave.freezes):
        if freeze.start.tzinfo is None or freeze.end.tzinfo is None:
            problems.append((("freezes", i), f"freezes[{i}] ({freeze.name}): give start and end with a time zone,"
                             " e.g. 2026-12-20T00:00:00Z"))
        elif freeze.end <= freeze.start:
            problems.append((("freezes", i, "end"), f"freezes[{i}] ({freeze.name}): end must come after start"))
    for key in sorted(set(wave.upgrade_settings) - TUNABLE):
        problems.append((("upgrade_settings", key), f"upgrade_settings: {key} cannot be set per wave; these can:"
                         f" {', '.join(sorted(TUNABLE))}"))
    return problems


def failure_budget(budget: int | str, clusters: int) -> int:
    """Failed clusters a wave tolerates: a count, or a share of the wave's clusters ('10%', rounded down)."""
    if isinstance(budget, int):
        if budget < 0:
            raise InvalidWave("failure_budget: a count must be 0 or more")
        return budget
    text = budget.strip()
    if text.endswith("%"):
        try:
            share = float(text[:-1])
        except ValueError:
            share = -1.0
        if 0 <= share <= 100:
            return math.floor(clusters * share / 100)
    elif text.isdigit():
        return int(text)
    raise InvalidWave(f"failure_budget: {budget!r} is neither a count (2) nor a share of the wave's clusters ('10%')")


def at_target(cluster: ClusterRecord, target: str, node_images: Mapping[str, str] | None = None) -> bool:
    """The cluster runs the target version everywhere, and the wave's node image for its cloud
    on every pool when the wave names one."""
    wanted = versions.parse_target_version(target)
    image = (node_images or {}).get(cluster.provider)
    return (versions.minor_version(cluster.control_plane_version) >= wanted
            and all(versions.minor_version(pool.version) >= wanted for pool in cluster.node_pools)
            and (image is None or all(pool.node_image == image for pool in cluster.node_pools)))


def takes(wave: PatchWaveInput, cluster: ClusterRecord) -> bool:
    """Whether the wave would upgrade the cluster: its selector and one of its stages take it, and it is not
    already at the target (what plan_wave puts in a stage as pending or held)."""
    return (selects(wave.selector, cluster) and any(selects(stage.selector, cluster) for stage in wave.stages)
            and not at_target(cluster, wave.target_version, {str(k): v for k, v in wave.node_images.items()}))


def unstaged_reason(wave: PatchWaveInput, cluster: ClusterRecord) -> str:
    return "no stage takes it: " + "; ".join(f"{stage.name} needs {', '.join(misses(stage.selector, cluster))}"
                                              for stage in wave.stages)


def next_awaited(progress: PatchWaveProgress | PolicyRolloutProgress, *, now: datetime) -> tuple[datetime, str] | None:
    """What a running wave or policy rollout waits for next on the fleet's clock, and when it comes: the end of the
    running stage's soak, else (a wave) the earliest start of one of its clusters waiting for a window or a hold.
    None when it waits for nothing the clock brings (it runs, or waits for a person)."""
    stage = next((s for s in progress.stages if s.name == progress.stage), None)
    if stage is None or progress.phase not in ("running", "soaking"):
        return None
    if stage.status == "soaking" and stage.soak_ends is not None and stage.soak_ends > now:
        return stage.soak_ends, f"the end of stage {stage.name}'s soak"
    if not isinstance(stage, WaveStageState):
        return None
    waiting = [c for c in stage.clusters if c.status in ("waiting_window", "held")
               and c.earliest_start is not None and c.earliest_start > now]
    if not waiting:
        return None
    first = min(waiting, key=lambda c: (c.earliest_start, c.name))
    assert first.earliest_start is not None
    why = "its hold ends" if first.status == "held" else "its maintenance window opens"
    return first.earliest_start, f"when {first.name} may start ({why})"


def asks_approval(stage: WaveStageState, *, held_too: bool) -> bool:
    """Whether a stage that needs a second person asks before it starts: when it has a cluster to upgrade, one
    pending or (`held_too`) one held or waiting for its window, which it upgrades once the hold ends or the window
    opens. A stage whose clusters all run the target already, or were skipped, asks nobody."""
    waiting = ("pending", "held", "waiting_window") if held_too else ("pending",)
    return stage.approval_required and not stage.approved_by and any(c.status in waiting for c in stage.clusters)


def held_out_stage(stage: WaveStageState) -> str | None:
    """Why the wave must not go on after `stage`: every cluster it tried was held out as not ready, so
    none ran the target (a canary stage that tested nothing). None when at least one was upgraded, or
    none was held out."""
    held = [entry.name for entry in stage.clusters if entry.status == "not_ready"]
    if not held or any(entry.status == "succeeded" for entry in stage.clusters):
        return None
    names = ", ".join(held[:10]) + (f" and {len(held) - 10} more" if len(held) > 10 else "")
    return (f"stage {stage.name} upgraded no cluster: {len(held)} held out as not ready ({names}); fix their blocking"
            " findings or accept them (accept_findings), then start the wave again (clusters at the target are skipped)")


def describe_hold(hold: MaintenanceHold) -> str:
    """How a wave names a hold that keeps it off a cluster."""
    return f"held until {hold.until.isoformat()} by {hold.held_by}: {hold.reason}"


def hold_detail(cluster: ClusterRecord, at: datetime) -> str | None:
    hold = cluster.held_at(at)
    return describe_hold(hold) if hold is not None else None


def plan_wave(wave: PatchWaveInput, clusters: Sequence[ClusterRecord], *, now: datetime) -> WavePlan:
    """Each selected cluster in the first stage whose selector takes it, with when it can first
    start (its windows, the freezes and its maintenance hold decide); clusters already at the
    target are counted, not touched; a selected cluster no stage takes is reported with what each
    stage needs. Refuses a wave that does not make sense, with every problem named."""
    problems = wave_problems(wave)
    if problems:
        raise InvalidWave("; ".join(message for _, message in problems))
    selected = sorted((c for c in clusters if selects(wave.selector, c)), key=lambda c: c.name)
    stages = [WaveStageState(name=s.name, concurrency=s.concurrency, soak_seconds=s.soak_seconds,
                             approval_required=s.approval_required) for s in wave.stages]
    unstaged, unstaged_reasons = [], {}
    for cluster in selected:
        index = next((i for i, stage in enumerate(wave.stages) if selects(stage.selector, cluster)), None)
        if index is None:
            unstaged.append(cluster.name)
            unstaged_reasons[cluster.name] = unstaged_reason(wave, cluster)
            continue
        if at_target(cluster, wave.target_version, {str(k): v for k, v in wave.node_images.items()}):
            image = wave.node_images.get(cluster.provider)
            entry = WaveClusterState(name=cluster.name, environment=cluster.environment, status="at_target",
                                     detail=f"already runs {cluster.control_plane_version}"
                                     + (f" on node image {image}" if image else ""))
        else:
            windows = applicable_windows(wave.maintenance_windows, cluster)
            hold = cluster.held_at(now)
            start = next_start(windows=[wave.maintenance_windows[i] for i in windows], freezes=wave.freezes,
                               after=hold.until if hold else now)
            detail = hold_detail(cluster, now) or ""
            if hold and start is not None and start > hold.until:
                detail += f"; then its maintenance window opens {start.astimezone(UTC):%Y-%m-%d %H:%M}Z"
            entry = WaveClusterState(name=cluster.name, environment=cluster.environment, earliest_start=start, windows=windows,
                                     status="held" if hold else "pending",
                                     detail=detail if start is not None else
                                     "no maintenance window opens outside the freezes within a year")
        stages[index].clusters.append(entry)
    total = sum(len(stage.clusters) for stage in stages)
    return WavePlan(wave=wave.name, target_version=wave.target_version, node_images=dict(wave.node_images), planned_at=now,
                    failure_budget=failure_budget(wave.failure_budget, total), stages=stages, unstaged=unstaged,
                    unstaged_reasons=unstaged_reasons)


def upgrade_request(wave: PatchWaveInput, entry: WaveClusterState, *, stage: str | None) -> ClusterUpgradeInput:
    """The ClusterUpgrade a wave starts for one of its clusters: its stage's health checks, the wave's drain policies,
    freezes, accepted findings and tuning, and only the maintenance windows that apply to it (a window closing
    mid-upgrade pauses it at a step boundary)."""
    checks = next((s.health_checks for s in wave.stages if s.name == stage), [])
    return ClusterUpgradeInput(cluster=entry.name, target_version=wave.target_version, node_images=wave.node_images,
                               health_checks=checks, drain_policies=wave.drain_policies, freezes=wave.freezes,
                               accept_findings=wave.accept_findings,
                               maintenance_windows=[wave.maintenance_windows[i].model_copy(
                                   update={"applies_to": ClusterSelector()}) for i in entry.windows],
                               strategy=wave.strategy, ticket=wave.ticket, requested_by=wave.requested_by,
                               **wave.upgrade_settings)
