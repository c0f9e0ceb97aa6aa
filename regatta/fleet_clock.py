"""The fleet's calendar clock: what maintenance windows and freezes are read against.

For a real fleet it is the wall clock, which Temporal's own timers follow, so a wave can sleep
exactly until a window opens. For the simulated fleet it is the simulator's clock (`GET
/sim/clock`), which a test or a demo moves forward to open a window or end a freeze without
waiting for one; a wave reads it again every `recheck_seconds` while anything waits on it.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import httpx

from regatta.models import FleetTime


@functools.cache
def _client() -> httpx.Client:
    # One client for the process: a new one per read built a TLS context each time, which was most of
    # what an upgrade started over the API cost (httpx's Client is safe to share between threads).
    return httpx.Client(timeout=10)


def read_fleet_clock(sim_url: str | None) -> FleetTime:
    if not sim_url:
        return FleetTime(now=datetime.now(UTC))
    response = _client().get(f"{sim_url.rstrip('/')}/sim/clock")
    response.raise_for_status()
    body = response.json()
    return FleetTime(now=datetime.fromisoformat(body["now"]), recheck_seconds=body["recheck_seconds"])
