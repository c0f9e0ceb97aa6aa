"""The shared request schedule of each rate-limited cloud account, kept in the inventory so that
every worker, on any machine, takes its turns from the same one (regatta/clouds/rate_limits.py
waits for them). One statement per request: an upsert that moves the account's last slot one
interval on (or to now, when the schedule has fallen behind) and returns it; the database
serializes concurrent takers, so no two requests get the same slot.
"""

from __future__ import annotations

import time

from sqlalchemy import text

from regatta.inventory.store import Inventory

_UPSERT = """
INSERT INTO cloud_request_slots (account, last_slot) VALUES (:account, :now)
ON CONFLICT (account) DO UPDATE SET last_slot = {latest}(cloud_request_slots.last_slot + :interval, :now)
RETURNING last_slot
"""


def take_cloud_request_slot(inventory: Inventory, account: str, interval: float, *, now: float | None = None) -> float:
    """The wall-clock time at which this request to `account` may be sent."""
    latest = "GREATEST" if inventory.engine.dialect.name == "postgresql" else "MAX"
    with inventory.engine.begin() as connection:
        slot = connection.execute(text(_UPSERT.format(latest=latest)),
                                  {"account": account, "now": time.time() if now is None else now, "interval": interval}).scalar_one()
    return float(slot)
