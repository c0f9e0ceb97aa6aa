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
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from regatta import planning
from regatta.models import (
    ClusterForecast,
    ClusterRecord,
    ClusterSelector,
    ClusterUpgradeInput,
    Freeze,
    MaintenanceHold,
    MaintenanceWindow,
    PatchWaveInput,
    WaveClusterState,
    WaveForecast,
    WavePlan,
    WaveStageState,
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# What a wave may tune in each cluster's upgrade; identity and target come from the wave itself.
TUNABLE = frozenset(ClusterUpgradeInput.model_fields) - {"cluster", "target_version", "node_images", "strategy", "ticket",
                                                          "requested_by", "callback_url", "override_hold",
                                                          "health_checks", "drain_policies", "maintenance_windows",
                                                          "freezes"}


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


def misses(selector: ClusterSelector, cluster: ClusterRecord) -> list[str]:
    """What a selector asks for that the cluster does not have, in words ('label tier=1 (it has
    none)'); empty when the selector takes it."""
    found = []
    if selector.clusters is not None and cluster.name not in selector.clusters:
        found.append("to be one of " + ", ".join(selector.clusters[:5]) + ("…" if len(selector.clusters) > 5 else ""))
    for field in ("environment", "provider", "region"):
        wanted = getattr(selector, field)
        if wanted is not None and getattr(cluster, field) != wanted:
            found.append(f"{field} {wanted} (it is {getattr(cluster, field)})")
    for key, value in sorted(selector.labels.items()):
        has = cluster.labels.get(key)
        if has != value:
            found.append(f"label {key}={value} (it has {f'{key}={has}' if has is not None else f'no {key} label'})")
    return found


def unstaged_reason(wave: PatchWaveInput, cluster: ClusterRecord) -> str:
    return "no stage takes it: " + "; ".join(f"{stage.name} needs {', '.join(misses(stage.selector, cluster))}"
                                              for stage in wave.stages)


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
        if at_target(cluster, wave.target_version, wave.node_images):
            image = wave.node_images.get(cluster.provider)
            entry = WaveClusterState(name=cluster.name, status="at_target",
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
            entry = WaveClusterState(name=cluster.name, earliest_start=start, windows=windows,
                                     status="held" if hold else "pending",
                                     detail=detail if start is not None else
                                     "no maintenance window opens outside the freezes within a year")
        stages[index].clusters.append(entry)
    total = sum(len(stage.clusters) for stage in stages)
    return WavePlan(wave=wave.name, target_version=wave.target_version, node_images=dict(wave.node_images), planned_at=now,
                    failure_budget=failure_budget(wave.failure_budget, total), stages=stages, unstaged=unstaged,
                    unstaged_reasons=unstaged_reasons)


# --------------------------------------------------------------------------- the forecast

SETTLED = {"succeeded": "upgraded", "at_target": "already at the target", "failed": "its upgrade failed",
           "skipped": "skipped", "aborted": "its upgrade was aborted"}


def forecast(*, wave: PatchWaveInput, stages: Sequence[WaveStageState], now: datetime, upgrade_seconds: float,
             started: dict[str, datetime] | None = None, unstaged: dict[str, str] | None = None,
             stopped: str | None = None, joined_later: Sequence[str] = ()) -> WaveForecast:
    """When the wave will first touch each cluster: the stages in order, each after the one before
    has ended and soaked; at most `concurrency` at once; each cluster only when one of its windows
    is open, outside every freeze and after its hold. Every upgrade is taken to last
    `upgrade_seconds`; approvals are taken to come as soon as they are asked for. Works for a plan
    (every stage pending) and for a running wave (`started`: the upgrades in flight)."""
    started = started or {}
    duration = timedelta(seconds=upgrade_seconds)
    out: list[ClusterForecast] = []
    assumes = [f"each upgrade takes {upgrade_seconds / 60:.0f} minutes",
               "approvals come as soon as a stage asks for one"]
    at = now  # when the next stage may begin
    previous: WaveStageState | None = None
    soaking_until: datetime | None = None
    for stage in stages:
        if stage.status in ("done", "halted", "soaking") or stopped:
            for entry in stage.clusters:
                out.append(_settled(stage, entry, stopped or f"stage {stage.name} is {stage.status}", started))
            if stage.status == "soaking" and stage.soak_ends is not None:  # the next stage starts when it has soaked
                at, previous, soaking_until = max(now, stage.soak_ends), stage, stage.soak_ends
            continue
        begins = at
        if previous is None:
            why_stage = "the wave may start it now"
        elif soaking_until is not None:
            why_stage = f"stage {previous.name} ends its soak at {soaking_until.astimezone(UTC):%Y-%m-%d %H:%M}Z"
            soaking_until = None
        else:
            soak = f" and soaks {previous.soak_seconds / 60:.0f} minutes" if previous.soak_seconds else ""
            why_stage = f"stage {previous.name} ends{soak}"
        if stage.approval_required and not stage.approved_by:
            why_stage += f", and stage {stage.name} is approved"
        in_flight = [max(now, started.get(e.name, now) + duration) for e in stage.clusters if e.status == "upgrading"]
        finish = max([begins, *in_flight])
        slots = sorted(in_flight + [begins] * max(stage.concurrency - len(in_flight), 0))
        # Clusters that share windows and hold wait alike: the next one to go is the head of the
        # line whose calendar opens first (ties: the earlier in the stage, as the wave takes them).
        lines: dict[tuple, list[tuple[int, WaveClusterState]]] = {}
        for position, entry in enumerate(stage.clusters):
            if entry.status in ("pending", "waiting_window", "held"):
                floor = entry.earliest_start if entry.status == "held" else None
                lines.setdefault((tuple(entry.windows), floor), []).append((position, entry))
        heads = {key: 0 for key in lines}
        touched: dict[str, tuple[datetime | None, str]] = {}
        while any(heads[key] < len(line) for key, line in lines.items()):
            slot = slots.pop(0)
            best = None
            for key, line in lines.items():
                if heads[key] >= len(line):
                    continue
                windows, floor = key
                start = next_start(windows=[wave.maintenance_windows[i] for i in windows], freezes=wave.freezes,
                                   after=max(slot, floor) if floor else slot)
                if start is None:  # this line never gets a window
                    for _, entry in line[heads[key]:]:
                        touched[entry.name] = (None, "no maintenance window opens outside the freezes within a year")
                    heads[key] = len(line)
                    continue
                if best is None or (start, line[heads[key]][0]) < (best[0], best[1]):
                    best = (start, line[heads[key]][0], key)
            if best is None:
                break
            start, _, key = best
            entry = lines[key][heads[key]][1]
            heads[key] += 1
            touched[entry.name] = (start, _why(wave, entry, slot=slot, start=start, begins=begins, why_stage=why_stage,
                                               concurrency=stage.concurrency))
            slots.append(start + duration)
            slots.sort()
            finish = max(finish, start + duration)
        for entry in stage.clusters:
            if entry.name in touched:
                when, why = touched[entry.name]
                when = when.astimezone(UTC) if when else None
                out.append(ClusterForecast(cluster=entry.name, stage=stage.name, status=entry.status, earliest_touch=when,
                                           expected_done=when + duration if when else None, because=why))
            else:
                out.append(_settled(stage, entry, None, started, duration=duration, now=now))
        at = finish + timedelta(seconds=stage.soak_seconds if stage is not stages[-1] else 0)
        previous = stage
    for name, reason in sorted((unstaged or {}).items()):
        out.append(ClusterForecast(cluster=name, stage=None, status="unstaged", earliest_touch=None, because=reason))
    for name in joined_later:
        out.append(ClusterForecast(cluster=name, stage=None, status="not_in_wave", earliest_touch=None,
                                   because="not in this wave: it joined the fleet after the wave planned; a new wave takes it"))
    return WaveForecast(wave=wave.name, forecast_at=now, upgrade_minutes=round(upgrade_seconds / 60, 1), assumes=assumes,
                        clusters=out)


def _settled(stage: WaveStageState, entry: WaveClusterState, stopped: str | None, started: dict[str, datetime], *,
             duration: timedelta | None = None, now: datetime | None = None) -> ClusterForecast:
    if entry.status == "upgrading":
        since = started.get(entry.name)
        done = max(now, since + duration) if since and duration and now else None
        return ClusterForecast(cluster=entry.name, stage=stage.name, status=entry.status, earliest_touch=since,
                               expected_done=done, because="its upgrade is under way"
                               + (f" since {since.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z" if since else ""))
    if entry.status in SETTLED:
        because = SETTLED[entry.status] + (f": {entry.detail}" if entry.detail else "")
    else:
        because = f"not started: {stopped}"
    return ClusterForecast(cluster=entry.name, stage=stage.name, status=entry.status, earliest_touch=None, because=because)


def _why(wave: PatchWaveInput, entry: WaveClusterState, *, slot: datetime, start: datetime, begins: datetime,
         why_stage: str, concurrency: int) -> str:
    """What sets a cluster's first touch: the stage opening, a concurrency slot, or the calendar."""
    if entry.status == "held" and entry.earliest_start and entry.earliest_start >= start:
        return entry.detail or "its maintenance hold ends"
    if start > slot:
        mine = [wave.maintenance_windows[i] for i in entry.windows]
        unfrozen = next_start(windows=mine, freezes=[], after=slot)
        if unfrozen is not None and unfrozen != start:  # a freeze pushed it past that opening
            freeze = freeze_at(wave.freezes, unfrozen)
            if freeze is not None:
                return f"the freeze {freeze.name} ends {freeze.end.astimezone(UTC).isoformat()}" + (
                    "; then its maintenance window opens" if start > freeze.end else "")
        names = [w.name or f"maintenance_windows[{i}]" for i, w in zip(entry.windows, mine)]
        return f"its maintenance window opens ({', '.join(names)})"
    if slot > begins:
        return f"a slot frees up (stage takes {concurrency} at once)"
    return why_stage
