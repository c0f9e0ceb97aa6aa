"""Maintenance windows are read in IANA zones from the tzdata package Regatta pins, not from
whatever zone files a worker's machine happens to carry: two workers must compute the same
window on replay."""

from __future__ import annotations

import importlib.metadata
import zoneinfo
from datetime import UTC, datetime

from regatta.models import MaintenanceWindow
from regatta.rules.windows import next_start


def test_windows_resolve_from_the_pinned_tzdata_even_without_system_zone_files():
    assert importlib.metadata.version("tzdata")  # a dependency of the project, not of the machine
    zoneinfo.reset_tzpath(to=[])  # a worker image with no /usr/share/zoneinfo
    try:
        zoneinfo.ZoneInfo.clear_cache()
        window = MaintenanceWindow(days=["tue"], start="02:00", duration_minutes=120, timezone="Europe/Berlin")
        opens = next_start(windows=[window], freezes=[], after=datetime(2026, 12, 7, 12, tzinfo=UTC))
        assert opens == datetime(2026, 12, 8, 1, 0, tzinfo=UTC)  # 02:00 in Berlin is 01:00Z in winter
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()
