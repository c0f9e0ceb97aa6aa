"""The fleet as the pages read it, kept in the API process between requests: reading 10,000
clusters from the inventory takes over a second here, a page must answer in well under that.

On each page the inventory's stamp (clusters and holds, counted and last written) is compared with
the cache's. Unchanged: the cache serves. A few clusters written since (an upgrade, a hold): they
are read again before the page answers, so what a page shows is never older than the request.
Many written since (a fleet sweep): the page is served from the cache while the whole fleet is
read again in the background, and says how old what it shows is.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from regatta.inventory import Inventory, fleet_reads
from regatta.models import ClusterRecord

REREAD_INLINE = 500  # clusters written since the last read that a page waits for; more: the background reads them


class FleetCache:
    def __init__(self) -> None:
        self.records: dict[str, ClusterRecord] | None = None
        self.stamp: tuple | None = None
        self.newest: datetime | None = None
        self.read_at = 0.0
        self.reading: asyncio.Task | None = None

    def _take(self, records: list[ClusterRecord], stamp: tuple, *, full: bool, names: set[str] | None = None,
              holds: dict | None = None) -> None:
        if full or self.records is None:
            self.records = {r.name: r for r in records}
        else:
            self.records.update({r.name: r for r in records})
            if names is not None:
                for gone in set(self.records) - names:
                    del self.records[gone]
            if holds is not None:
                for name, record in self.records.items():
                    if record.hold != holds.get(name):
                        self.records[name] = record.model_copy(update={"hold": holds.get(name)})
        times = [r.updated_at for r in self.records.values() if r.updated_at is not None]
        self.newest = max(times) if times else None
        self.stamp, self.read_at = stamp, time.monotonic()

    async def _read_all(self, inventory: Inventory) -> None:
        stamp = await asyncio.to_thread(fleet_reads.fleet_stamp, inventory)
        self._take(await asyncio.to_thread(fleet_reads.fleet, inventory), stamp, full=True)

    async def clusters(self, inventory: Inventory) -> tuple[list[ClusterRecord], float]:
        """The fleet, and how many seconds old the read it comes from is (0: current)."""
        stamp = await asyncio.to_thread(fleet_reads.fleet_stamp, inventory)
        if self.records is None:  # the first read: one, whoever asks meanwhile (the warm-up, a page) waits for it
            if self.reading is None or self.reading.done():
                self.reading = asyncio.ensure_future(self._read_all(inventory))
            await asyncio.shield(self.reading)
        elif stamp != self.stamp and (self.reading is None or self.reading.done()):
            # no cluster read yet (the fleet was empty): every one there now is new, and few are read before the page
            changed = (await asyncio.to_thread(fleet_reads.changed_since, inventory, self.newest) if self.newest
                       else stamp[0])
            if changed <= REREAD_INLINE:
                fresh = await asyncio.to_thread(fleet_reads.fleet, inventory, changed_since=self.newest)
                names = await asyncio.to_thread(fleet_reads.cluster_names, inventory) if stamp[0] != len(self.records) else None
                self._take(fresh, stamp, full=False, names=names, holds=await asyncio.to_thread(inventory.holds))
            else:
                self.reading = asyncio.ensure_future(self._read_all(inventory))
        assert self.records is not None
        stale = stamp != self.stamp
        return list(self.records.values()), (time.monotonic() - self.read_at) if stale else 0.0
