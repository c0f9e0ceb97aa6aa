"""Pure planning of a PatchWave: which clusters a wave selects, which stage each belongs to,
which are already at the target, how many failures it tolerates, and when each cluster's
maintenance window next opens outside every fleet freeze.

No I/O and no Temporal (an import-linter contract checks it): the PatchWave workflow calls it
deterministically with the time Temporal gives it, `regatta wave start --plan-only` calls it
with the wall clock, and the unit tests call it with fixed clocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from regatta import planning
from regatta.models import (
    ClusterRecord,
    ClusterSelector,
    ClusterUpgradeInput,
    Freeze,
    MaintenanceWindow,
    PatchWaveInput,
    WaveClusterState,
    WavePlan,
    WaveStageState,
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# What a wave may tune in each cluster's upgrade; identity and target come from the wave itself.
TUNABLE = frozenset(ClusterUpgradeInput.model_fields) - {"cluster", "target_version", "node_images", "strategy", "ticket",
                                                          "requested_by", "callback_url"}


class InvalidWave(planning.PlanningError):
    error_type = "InvalidWave"


def selects(selector: ClusterSelector, cluster: ClusterRecord) -> bool:
    if selector.clusters is not None and cluster.name not in selector.clusters:
        return False
    if selector.environment is not None and cluster.environment != selector.environment:
        return False
    if selector.provider is not None and cluster.provider != selector.provider:
        return False
    if selector.region is not None and cluster.region != selector.region:
        return False
    return all(cluster.labels.get(key) == value for key, value in selector.labels.items())


def wave_problems(wave: PatchWaveInput) -> list[tuple[tuple[str | int, ...], str]]:
    """Everything wrong with a wave that its models cannot see on their own: (where, what to fix)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    try:
        planning.parse_target_version(wave.target_version)
    except planning.PlanningError as error:
        problems.append((("target_version",), f"target_version: {error}"))
    for provider, image in sorted(wave.node_images.items()):
        if (problem := planning.node_image_problem(provider, image, wave.target_version)) is not None:
            problems.append((("node_images", provider), f"node_images.{provider}: {problem}"))
    names = [stage.name for stage in wave.stages]
    for i, name in enumerate(names):
        if name in names[:i]:
            problems.append((("stages", i, "name"), f"stages[{i}].name: {name!r} is used by an earlier stage; names must be unique"))
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


# --------------------------------------------------------------------------- windows and freezes


def freeze_at(freezes: Sequence[Freeze], at: datetime) -> Freeze | None:
    """The freeze in force at `at`, if any."""
    return next((f for f in freezes if f.start <= at < f.end), None)


def _window_at(window: MaintenanceWindow, at: datetime) -> tuple[datetime, datetime] | None:
    """The occurrence of the window open at `at`, else the next one to open."""
    zone = ZoneInfo(window.timezone)
    hour, minute = (int(part) for part in window.start.split(":"))
    local = at.astimezone(zone)
    best = None
    for offset in range(-7, 8):
        day = (local + timedelta(days=offset)).date()
        if WEEKDAYS[day.weekday()] not in window.days:
            continue
        opens = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
        closes = opens + timedelta(minutes=window.duration_minutes)
        if closes <= at:
            continue
        if opens <= at:
            return opens, closes
        if best is None or opens < best[0]:
            best = (opens, closes)
    return best


def applicable_windows(windows: Sequence[MaintenanceWindow], cluster: ClusterRecord) -> list[int]:
    return [i for i, window in enumerate(windows) if selects(window.applies_to, cluster)]


def next_start(*, windows: Sequence[MaintenanceWindow], freezes: Sequence[Freeze], after: datetime) -> datetime | None:
    """The earliest instant at or after `after` when a cluster may be touched: inside one of the
    windows that apply to it (any time when none do) and outside every freeze. None when no
    such instant comes within a year (a window that never opens outside a freeze)."""
    mine = list(windows)
    candidate = after
    horizon = after + timedelta(days=366)
    while candidate < horizon:
        freeze = freeze_at(freezes, candidate)
        if freeze is not None:
            candidate = freeze.end
            continue
        if not mine:
            return candidate
        occurrences = [o for o in (_window_at(w, candidate) for w in mine) if o is not None]
        if not occurrences:
            return None
        opens = min(o[0] for o in occurrences)
        if opens <= candidate:
            return candidate
        candidate = opens
    return None


# --------------------------------------------------------------------------- the plan


def at_target(cluster: ClusterRecord, target: str, node_images: dict[str, str] | None = None) -> bool:
    """The cluster runs the target version everywhere, and the wave's node image for its cloud
    on every pool when the wave names one."""
    wanted = planning.parse_target_version(target)
    image = (node_images or {}).get(cluster.provider)
    return (planning.minor_version(cluster.control_plane_version) >= wanted
            and all(planning.minor_version(pool.version) >= wanted for pool in cluster.node_pools)
            and (image is None or all(pool.node_image == image for pool in cluster.node_pools)))


def plan_wave(wave: PatchWaveInput, clusters: Sequence[ClusterRecord], *, now: datetime) -> WavePlan:
    """Each selected cluster in the first stage whose selector takes it, with when it can first
    start; clusters already at the target are counted, not touched. Refuses a wave that does
    not make sense, with every problem named."""
    problems = wave_problems(wave)
    if problems:
        raise InvalidWave("; ".join(message for _, message in problems))
    selected = sorted((c for c in clusters if selects(wave.selector, c)), key=lambda c: c.name)
    stages = [WaveStageState(name=s.name, concurrency=s.concurrency, soak_seconds=s.soak_seconds,
                             approval_required=s.approval_required) for s in wave.stages]
    unstaged = []
    for cluster in selected:
        index = next((i for i, stage in enumerate(wave.stages) if selects(stage.selector, cluster)), None)
        if index is None:
            unstaged.append(cluster.name)
            continue
        if at_target(cluster, wave.target_version, wave.node_images):
            image = wave.node_images.get(cluster.provider)
            entry = WaveClusterState(name=cluster.name, status="at_target",
                                     detail=f"already runs {cluster.control_plane_version}"
                                     + (f" on node image {image}" if image else ""))
        else:
            windows = applicable_windows(wave.maintenance_windows, cluster)
            start = next_start(windows=[wave.maintenance_windows[i] for i in windows], freezes=wave.freezes, after=now)
            entry = WaveClusterState(name=cluster.name, earliest_start=start, windows=windows,
                                     detail="" if start is not None else "no maintenance window opens outside the freezes"
                                     " within a year")
        stages[index].clusters.append(entry)
    total = sum(len(stage.clusters) for stage in stages)
    return WavePlan(wave=wave.name, target_version=wave.target_version, node_images=dict(wave.node_images), planned_at=now,
                    failure_budget=failure_budget(wave.failure_budget, total), stages=stages, unstaged=unstaged)
