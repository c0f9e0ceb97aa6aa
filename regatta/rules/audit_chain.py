"""The audit trail's chain: each record carries the hash of the one before it and its own hash over
both, so an edited, removed or reordered record breaks the chain at that record.

Keyed: with an audit key (REGATTA_AUDIT_KEY_FILE, held by the API and the workers, never by the
database) a record's hash is an HMAC-SHA256, so someone who can write the database but does not hold
the key cannot rewrite a record and recompute the hashes after it. Each keyed record names its key by
`key_id` (the first 12 hex of the key's SHA-256), so a key can be replaced and the old one kept to verify
what it signed. Once a trail holds a keyed record, an unkeyed one after it is a break (a writer without
the key).

Checkpointed: a checkpoint is the trail's head (last id, last hash, and the first keyed id) signed with the
key and appended to a file outside the database (REGATTA_AUDIT_CHECKPOINTS): removing records at the end,
or rewriting the trail unkeyed from its start, no longer matches a checkpoint the database cannot touch.

Pure (no database, no files): the inventory store feeds it rows in id order when it appends and when
`regatta audit verify` walks the trail, and the checkpoint lines it read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
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


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


def record_hash(prev_hash: str, fields: dict[str, Any], key: bytes | None = None) -> str:
    """Over the previous hash and the record's fields in canonical JSON: HMAC-SHA256 under `key`,
    SHA-256 without one (a trail written before it had a key)."""
    body = json.dumps({k: canonical_time(v) if isinstance(v, datetime) else v for k, v in fields.items()},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    message = f"{prev_hash}\n{body}".encode()
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """The trail's head at a moment, signed: what the database cannot take back."""

    at: str
    last_id: int
    last_hash: str
    first_keyed_id: int | None
    key_id: str
    signature: str = ""

    def signed_text(self) -> str:
        return json.dumps({"at": self.at, "last_id": self.last_id, "last_hash": self.last_hash,
                           "first_keyed_id": self.first_keyed_id, "key_id": self.key_id}, sort_keys=True,
                          separators=(",", ":"))

    def line(self) -> str:
        return json.dumps({**json.loads(self.signed_text()), "signature": self.signature}, sort_keys=True)


def checkpoint(*, at: datetime, last_id: int, last_hash: str, first_keyed_id: int | None, key: bytes) -> Checkpoint:
    unsigned = Checkpoint(at=canonical_time(at), last_id=last_id, last_hash=last_hash, first_keyed_id=first_keyed_id,
                          key_id=key_id(key))
    signature = hmac.new(key, unsigned.signed_text().encode(), hashlib.sha256).hexdigest()
    return Checkpoint(**{**unsigned.__dict__, "signature": signature})


def read_checkpoint(line: str, keys: dict[str, bytes]) -> Checkpoint | str:
    """A checkpoint line, or why it cannot be trusted (a str)."""
    try:
        raw = json.loads(line)
        found = Checkpoint(at=str(raw["at"]), last_id=int(raw["last_id"]), last_hash=str(raw["last_hash"]),
                           first_keyed_id=raw.get("first_keyed_id"), key_id=str(raw["key_id"]),
                           signature=str(raw["signature"]))
    except (ValueError, KeyError, TypeError):
        return "it is not a checkpoint line"
    key = keys.get(found.key_id)
    if key is None:
        return f"it is signed with key {found.key_id}, which this installation does not hold"
    wanted = hmac.new(key, found.signed_text().encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(wanted, found.signature):
        return "its signature does not match: it was edited, or written without the key"
    return found


@dataclass(frozen=True)
class ChainBreak:
    record_id: int | None  # None: the trail ends before the head says it should
    reason: str


def first_break(rows: Iterable[tuple[int, str, str, str | None, dict[str, Any]]], *, head: tuple[int, str] | None,
                keys: dict[str, bytes] | None = None,
                checkpoints: Sequence[Checkpoint] = ()) -> tuple[int, ChainBreak | None]:
    """Walk (id, prev_hash, hash, key_id, fields) in id order: how many records hold, and the first
    one whose chain breaks. `head` is the (id, hash) the store says the trail ends with; `keys` the audit
    keys by id; `checkpoints` those read from outside the database, each of which the trail must match."""
    keys = keys or {}
    marks = {c.last_id: c for c in checkpoints}
    must_be_keyed_from = min((c.first_keyed_id for c in checkpoints if c.first_keyed_id is not None), default=None)
    expected_prev, count, last, keyed_seen = GENESIS, 0, None, False
    for record_id, prev_hash, own_hash, record_key, fields in rows:
        if prev_hash != expected_prev:
            return count, ChainBreak(record_id, "it does not follow the record before it: a record before it was"
                                     " removed or reordered, or its prev_hash was edited")
        if record_key is None and (keyed_seen or (must_be_keyed_from is not None and record_id >= must_be_keyed_from)):
            return count, ChainBreak(record_id, "it is unkeyed where the trail is keyed: it was written (or rewritten)"
                                     " by someone without the audit key")
        if record_key is not None and record_key not in keys:
            return count, ChainBreak(record_id, f"it is signed with audit key {record_key}, which is not among the keys"
                                     " given (REGATTA_AUDIT_KEY_FILE): add that key to verify it")
        if record_hash(prev_hash, fields, keys[record_key] if record_key else None) != own_hash:
            return count, ChainBreak(record_id, "its content no longer matches its hash: it was edited after it was"
                                     " written")
        mark = marks.get(record_id)
        if mark is not None and mark.last_hash != own_hash:
            return count, ChainBreak(record_id, f"it is not the record checkpointed at {mark.at}: the trail was"
                                     " rewritten from here on, hashes and all")
        keyed_seen = keyed_seen or record_key is not None
        expected_prev, count, last = own_hash, count + 1, (record_id, own_hash)
    if head is not None and last != head:
        return count, ChainBreak(None if last is None else last[0],
                                 f"the trail ends at record {last[0] if last else 'none'} but its head says record"
                                 f" {head[0]}: records at the end were removed")
    beyond = [c for c in checkpoints if last is None or c.last_id > last[0]]
    if beyond:
        return count, ChainBreak(None if last is None else last[0],
                                 f"the trail ends at record {last[0] if last else 'none'} but a checkpoint of"
                                 f" {beyond[0].at} saw record {beyond[0].last_id}: records at the end were removed")
    return count, None
