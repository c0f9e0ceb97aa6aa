"""Maintenance windows and freezes: when a cluster's next window opens outside every freeze, and
which freeze is in force. Windows are read in their IANA zones (tzdata is pinned, so every worker
computes the same times on replay).

Pure: called by PatchWave, ClusterUpgrade, the forecast and the schedules.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from regatta.models import (
    ClusterRecord,
    Freeze,
    MaintenanceWindow,
)
from regatta.rules.selectors import selects

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def freeze_at(freezes: Sequence[Freeze], at: datetime) -> Freeze | None:
    """The freeze in force at `at`, if any."""
    return next((f for f in freezes if f.start <= at < f.end), None)


def window_at(window: MaintenanceWindow, at: datetime) -> tuple[datetime, datetime] | None:
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
        occurrences = [o for o in (window_at(w, candidate) for w in mine) if o is not None]
        if not occurrences:
            return None
        opens = min(o[0] for o in occurrences)
        if opens <= candidate:
            return candidate
        candidate = opens
    return None
