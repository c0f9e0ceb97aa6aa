"""The wave forecast: when each cluster will first be touched and why, given stages, soak,
concurrency, windows, freezes and holds.

Pure: the PatchWave `forecast` Query and `regatta wave plan` call it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from regatta.models import (
    ClusterForecast,
    PatchWaveInput,
    WaveClusterState,
    WaveForecast,
    WaveStageState,
)
from regatta.rules.windows import freeze_at, next_start

SETTLED = {"succeeded": "upgraded", "at_target": "already at the target", "failed": "its upgrade failed",
           "not_ready": "held out: not ready for the target",
           "skipped": "skipped", "aborted": "its upgrade was aborted"}


def forecast(*, wave: PatchWaveInput, stages: Sequence[WaveStageState], now: datetime, upgrade_seconds: float,
             started: dict[str, datetime] | None = None, unstaged: dict[str, str] | None = None,
             stopped: str | None = None, joined_later: Sequence[str] = (),
             durations: Mapping[str, float] | None = None) -> WaveForecast:
    """When the wave will first touch each cluster: the stages in order, each after the one before
    has ended and soaked; at most `concurrency` at once; each cluster only when one of its windows
    is open, outside every freeze and after its hold. Every upgrade is taken to last
    `upgrade_seconds`; approvals are taken to come as soon as they are asked for. Works for a plan
    (every stage pending) and for a running wave (`started`: the upgrades in flight). `durations` gives a
    cluster's own upgrade time where one is known (a rehearsal's), in place of `upgrade_seconds`."""
    started = started or {}
    duration = timedelta(seconds=upgrade_seconds)
    own = {name: timedelta(seconds=seconds) for name, seconds in (durations or {}).items()}

    def takes(name: str) -> timedelta:
        return own.get(name, duration)

    out: list[ClusterForecast] = []
    assumes = [f"each upgrade takes {upgrade_seconds / 60:.0f} minutes" if not own
               else "each upgrade takes what its rehearsal took",
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
        in_flight = [max(now, started.get(e.name, now) + takes(e.name)) for e in stage.clusters if e.status == "upgrading"]
        finish = max([begins, *in_flight])
        slots = sorted(in_flight + [begins] * max(stage.concurrency - len(in_flight), 0))
        # Clusters that share windows and hold wait alike: the next one to go is the head of the
        # line whose calendar opens first (ties: the earlier in the stage, as the wave takes them).
        lines: dict[tuple[tuple[int, ...], datetime | None], list[tuple[int, WaveClusterState]]] = {}
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
            slots.append(start + takes(entry.name))
            slots.sort()
            finish = max(finish, start + takes(entry.name))
        for entry in stage.clusters:
            if entry.name in touched:
                when, why = touched[entry.name]
                when = when.astimezone(UTC) if when else None
                out.append(ClusterForecast(cluster=entry.name, stage=stage.name, status=entry.status, earliest_touch=when,
                                           expected_done=when + takes(entry.name) if when else None, because=why))
            else:
                out.append(_settled(stage, entry, None, started, duration=takes(entry.name), now=now))
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
        names = [w.name or f"maintenance_windows[{i}]" for i, w in zip(entry.windows, mine, strict=True)]
        return f"its maintenance window opens ({', '.join(names)})"
    if slot > begins:
        return f"a slot frees up (stage takes {concurrency} at once)"
    return why_stage
