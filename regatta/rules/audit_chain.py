"""The audit trail's hash chain: each record carries the hash of the one before it and its own
hash over both, so an edited, removed or reordered record breaks the chain at that record.

Pure (no database): the inventory store feeds it rows in id order when it appends and when
`regatta audit verify` walks the trail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64  # what the first record's prev_hash is
# What a record's hash covers: all it says, and its id (so a reordered trail breaks too).
CHAINED_FIELDS = ("id", "at", "operation_id", "operation", "cluster", "requested_by", "ticket", "action", "outcome",
                  "detail", "seq", "run_id")


def canonical_time(at: datetime) -> str:
    """One spelling of a moment whatever the database hands back (SQLite drops the zone)."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


def record_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the record's fields in canonical JSON."""
    body = json.dumps({k: canonical_time(v) if isinstance(v, datetime) else v for k, v in fields.items()},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    record_id: int | None  # None: the trail ends before the head says it should
    reason: str


def first_break(rows: Iterable[tuple[int, str, str, dict[str, Any]]], *, head: tuple[int, str] | None) -> tuple[int, ChainBreak | None]:
    """Walk (id, prev_hash, hash, fields) in id order: how many records hold, and the first
    one whose chain breaks. `head` is the (id, hash) the store says the trail ends with."""
    expected_prev, count, last = GENESIS, 0, None
    for record_id, prev_hash, own_hash, fields in rows:
        if prev_hash != expected_prev:
            return count, ChainBreak(record_id, "it does not follow the record before it: a record before it was"
                                     " removed or reordered, or its prev_hash was edited")
        if record_hash(prev_hash, fields) != own_hash:
            return count, ChainBreak(record_id, "its content no longer matches its hash: it was edited after it was"
                                     " written")
        expected_prev, count, last = own_hash, count + 1, (record_id, own_hash)
    if head is not None and last != head:
        return count, ChainBreak(None if last is None else last[0],
                                 f"the trail ends at record {last[0] if last else 'none'} but its head says record"
                                 f" {head[0]}: records at the end were removed")
    return count, None
