"""The audit trail's chain as a pure rule: what `regatta audit verify` finds for an intact, an edited, a reordered, a
truncated and a rewritten trail, keyed and checkpointed."""

from __future__ import annotations

from datetime import UTC, datetime

from regatta.rules import audit_chain

KEY = b"k" * 32
AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def trail(count: int, *, key: bytes | None = KEY) -> list[tuple[int, str, str, str | None, dict]]:
    rows, prev = [], audit_chain.GENESIS
    for record_id in range(1, count + 1):
        fields = {"id": record_id, "at": AT, "operation_id": "cluster-a", "action": "upgrade", "outcome": "started",
                  "detail": f"line {record_id}"}
        own = audit_chain.record_hash(prev, fields, key)
        rows.append((record_id, prev, own, audit_chain.key_id(key) if key else None, fields))
        prev = own
    return rows


def verify(rows, **kwargs):
    return audit_chain.first_break(rows, head=(rows[-1][0], rows[-1][2]) if rows else None,
                                   keys={audit_chain.key_id(KEY): KEY}, **kwargs)


def test_an_intact_trail_holds_whole():
    assert verify(trail(5)) == (5, None)
    assert audit_chain.canonical_time(AT) == audit_chain.canonical_time(AT.replace(tzinfo=None))  # one spelling


def test_an_edited_record_is_the_first_that_breaks():
    rows = trail(5)
    record_id, prev, own, key, fields = rows[2]
    rows[2] = (record_id, prev, own, key, {**fields, "outcome": "succeeded"})
    held, broken = verify(rows)
    assert held == 2 and broken is not None and broken.record_id == 3 and "edited after it was written" in broken.reason


def test_a_removed_or_reordered_record_breaks_the_one_after_it():
    rows = trail(5)
    held, broken = verify(rows[:2] + rows[3:])
    assert held == 2 and broken is not None and broken.record_id == 4 and "removed or reordered" in broken.reason


def test_records_removed_at_the_end_are_found_by_the_head_and_by_a_checkpoint():
    rows = trail(5)
    held, broken = audit_chain.first_break(rows[:3], head=(rows[-1][0], rows[-1][2]), keys={audit_chain.key_id(KEY): KEY})
    assert held == 3 and broken is not None and "records at the end were removed" in broken.reason
    mark = audit_chain.checkpoint(at=AT, last_id=5, last_hash=rows[-1][2], first_keyed_id=1, key=KEY)
    assert audit_chain.read_checkpoint(mark.line(), {audit_chain.key_id(KEY): KEY}) == mark
    held, broken = audit_chain.first_break(rows[:3], head=(rows[2][0], rows[2][2]), keys={audit_chain.key_id(KEY): KEY},
                                           checkpoints=[mark])
    assert held == 3 and broken is not None and "a checkpoint of" in broken.reason


def test_a_trail_rewritten_without_the_key_is_caught():
    unkeyed = trail(4, key=None)
    assert verify(unkeyed) == (4, None)  # a trail from before it had a key holds as it is
    keyed_then_not = trail(2) + [(3, trail(2)[-1][2], "x" * 64, None, {"id": 3})]
    held, broken = verify(keyed_then_not)
    assert held == 2 and broken is not None and "unkeyed where the trail is keyed" in broken.reason
    mark = audit_chain.checkpoint(at=AT, last_id=4, last_hash=trail(4)[-1][2], first_keyed_id=1, key=KEY)
    held, broken = verify(unkeyed, checkpoints=[mark])  # rewritten from its start, hashes and all, without the key
    assert held == 0 and broken is not None and broken.record_id == 1


def test_a_checkpoint_that_was_edited_or_signed_with_another_key_is_not_trusted():
    mark = audit_chain.checkpoint(at=AT, last_id=5, last_hash="a" * 64, first_keyed_id=1, key=KEY)
    edited = mark.line().replace('"last_id": 5', '"last_id": 4')
    assert "signature does not match" in str(audit_chain.read_checkpoint(edited, {audit_chain.key_id(KEY): KEY}))
    assert "does not hold" in str(audit_chain.read_checkpoint(mark.line(), {}))
    assert audit_chain.read_checkpoint("not json", {}) == "it is not a checkpoint line"
