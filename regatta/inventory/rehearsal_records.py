"""Rehearsals kept in the inventory (`regatta rehearsal list|show`, `GET /v1/rehearsals`, the fleet view), and held
against the real run: each cluster's upgrade as the audit trail recorded it since the rehearsal."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from regatta.inventory.store import Inventory
from regatta.inventory.tables import AuditRow, RehearsalRow
from regatta.models.rehearsal import (
    AttachedRehearsal,
    AttachRehearsal,
    ClusterRehearsal,
    HoldAgainstRehearsal,
    PolicyRehearsal,
    RehearsalRecord,
    WaveRehearsal,
)
from regatta.rules import operation_ids, rehearsals

KEPT = 500  # the newest rehearsals kept; an older one goes when a new one is kept


def keep(inventory: Inventory, *, report: WaveRehearsal | PolicyRehearsal | list[ClusterRehearsal], subject: str,
         requested_by: str) -> RehearsalRecord:
    """Keep a rehearsal's report; its id."""
    wave = report if isinstance(report, WaveRehearsal) else None
    policy = report if isinstance(report, PolicyRehearsal) else None
    upgrades: list[ClusterRehearsal] = list(report) if isinstance(report, list) else []
    # every cluster it names: a token sees it only when it sees them all
    clusters = sorted({c.cluster for c in wave.clusters} if wave else
                      {c.cluster for c in policy.clusters} | set(policy.left_out) if policy else
                      {u.cluster for u in upgrades})
    kind = "wave" if wave else "policy" if policy else "upgrade"
    whole = wave or policy
    body = whole.model_dump(mode="json") if whole is not None else [u.model_dump(mode="json") for u in upgrades]
    record = RehearsalRecord(rehearsal_id=f"rehearsal-{uuid.uuid4().hex[:12]}", kind=kind,
                             subject=subject, rehearsed_at=datetime.now(UTC), requested_by=requested_by,
                             clusters=clusters, wave=wave, upgrades=upgrades, policy=policy)
    with Session(inventory.engine) as session, session.begin():
        session.add(RehearsalRow(rehearsal_id=record.rehearsal_id, kind=record.kind, subject=subject,
                                 rehearsed_at=record.rehearsed_at, requested_by=requested_by, clusters=clusters,
                                 report=body))
        stale = session.scalars(select(RehearsalRow.rehearsal_id).order_by(RehearsalRow.rehearsed_at.desc())
                                .offset(KEPT)).all()
        for old in stale:
            session.delete(session.get(RehearsalRow, old))
    return record


def _record(row: RehearsalRow) -> RehearsalRecord:
    wave = WaveRehearsal.model_validate(row.report) if row.kind == "wave" else None
    policy = PolicyRehearsal.model_validate(row.report) if row.kind == "policy" else None
    upgrades = [ClusterRehearsal.model_validate(u) for u in row.report] if row.kind == "upgrade" else []
    return RehearsalRecord(rehearsal_id=row.rehearsal_id, kind=row.kind, subject=row.subject,
                           rehearsed_at=row.rehearsed_at.replace(tzinfo=row.rehearsed_at.tzinfo or UTC),
                           requested_by=row.requested_by, clusters=list(row.clusters), wave=wave, upgrades=upgrades,
                           policy=policy, accuracy=row.accuracy, operation_id=row.operation_id,
                           attached_at=row.attached_at.replace(tzinfo=row.attached_at.tzinfo or UTC)
                           if row.attached_at else None)


def listing(inventory: Inventory, *, limit: int = 100) -> list[RehearsalRecord]:
    with Session(inventory.engine) as session:
        rows = session.scalars(select(RehearsalRow).order_by(RehearsalRow.rehearsed_at.desc()).limit(limit)).all()
        return [_record(row) for row in rows]


def get(inventory: Inventory, rehearsal_id: str) -> RehearsalRecord | None:
    with Session(inventory.engine) as session:
        row = session.get(RehearsalRow, rehearsal_id)
        return _record(row) if row is not None else None


def latest_of(inventory: Inventory, *, kind: str, subject: str) -> RehearsalRecord | None:
    with Session(inventory.engine) as session:
        row = session.scalars(select(RehearsalRow).where(RehearsalRow.kind == kind, RehearsalRow.subject == subject)
                              .order_by(RehearsalRow.rehearsed_at.desc()).limit(1)).first()
        return _record(row) if row is not None else None


def check(inventory: Inventory, record: RehearsalRecord) -> RehearsalRecord:
    """The rehearsal held against each of its clusters' upgrades the trail recorded since, kept with it. A bundle's
    rollout is not held against its real run (yet): it has no accuracy."""
    if record.kind == "policy":
        return record
    predicted = record.upgrades or [ClusterRehearsal(cluster=c.cluster, rehearsed_as=c.cluster, outcome=c.rehearsed,
                                                     predicted_seconds=c.predicted_seconds or 0.0, stalls=c.stalls,
                                                     corrected_by=c.corrected_by)
                                    for c in (record.wave.clusters if record.wave else []) if c.rehearsed is not None]
    since = record.attached_at or record.rehearsed_at  # a wave's real run is read from its start
    ids = {operation_ids.operation_id(name): name for name in record.clusters}
    trail: dict[str, list[tuple[str, str, str, datetime]]] = defaultdict(list)
    with Session(inventory.engine) as session:
        rows = session.execute(select(AuditRow.operation_id, AuditRow.action, AuditRow.outcome, AuditRow.detail,
                                      AuditRow.at).where(AuditRow.operation_id.in_(list(ids)),
                                                         AuditRow.at >= since)).all()
    for operation_id, action, outcome, detail, at in rows:
        trail[ids[operation_id]].append((action, outcome, detail or "", at.replace(tzinfo=at.tzinfo or UTC)))
    accuracy = rehearsals.accuracy(predicted=predicted, trail=trail, checked_at=datetime.now(UTC))
    with Session(inventory.engine) as session, session.begin():
        row = session.get(RehearsalRow, record.rehearsal_id)
        if row is not None:
            row.accuracy = accuracy.model_dump(mode="json")
    return record.model_copy(update={"accuracy": accuracy})


def _candidates(session: Session, wave: str) -> list[RehearsalRow]:
    return list(session.scalars(select(RehearsalRow).where(RehearsalRow.kind == "wave", RehearsalRow.subject == wave)
                                .order_by(RehearsalRow.rehearsed_at.desc()).limit(20)).all())


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=at.tzinfo or UTC)


def attachable_for(inventory: Inventory, *, wave: str, target_version: str, started: datetime) -> RehearsalRecord | None:
    """The rehearsal a wave of this name and target starting at `started` would attach (none attached to a run)."""
    with Session(inventory.engine) as session:
        rows = [row for row in _candidates(session, wave) if row.operation_id is None]
        chosen = rehearsals.attachable([(row.rehearsal_id, _aware(row.rehearsed_at), str(row.report.get(
            "target_version"))) for row in rows], target_version=target_version, started=started)
        return _record(next(row for row in rows if row.rehearsal_id == chosen)) if chosen else None


def attach(inventory: Inventory, request: AttachRehearsal) -> AttachedRehearsal | None:
    """A starting wave's rehearsal (`regatta.rules.rehearsals.attachable`: the latest of a wave of its name and target
    taken before it), marked as attached to it; None when it has none. Asked again by the same start (a retried
    activity), it answers the same."""
    with Session(inventory.engine) as session, session.begin():
        rows = _candidates(session, request.wave)
        aware = {row.rehearsal_id: _aware(row.rehearsed_at) for row in rows}
        # one attached to an earlier run of the wave is that run's: its comparison is kept, not overwritten
        free = [row for row in rows if row.operation_id is None or _same_start(row, request)]
        chosen = rehearsals.attachable(
            [(row.rehearsal_id, aware[row.rehearsal_id], str(row.report.get("target_version"))) for row in free],
            target_version=request.target_version, started=request.started)
        if chosen is None:
            return None
        row = next(row for row in rows if row.rehearsal_id == chosen)
        row.operation_id, row.attached_at = request.operation_id, request.started
        return AttachedRehearsal(rehearsal_id=chosen, rehearsed_at=aware[chosen],
                                 summary=rehearsals.in_brief(WaveRehearsal.model_validate(row.report)))


def _same_start(row: RehearsalRow, request: AttachRehearsal) -> bool:
    """The row was attached by this very start (the activity asked again)."""
    at = _aware(row.attached_at) if row.attached_at else None
    return row.operation_id == request.operation_id and at == request.started


def hold_against(inventory: Inventory, request: HoldAgainstRehearsal) -> str:
    """An ending wave held against its rehearsal (kept with the rehearsal, as `regatta rehearsal show` keeps it), in
    a line. Only the rehearsal attached to this wave: any other is left as it is."""
    record = get(inventory, request.rehearsal_id)
    if record is None:
        return f"its rehearsal {request.rehearsal_id} is no longer kept (the newest {KEPT} are)"
    if record.kind != "wave" or record.operation_id != request.operation_id:
        return f"{request.rehearsal_id} is not a rehearsal attached to {request.operation_id}: not compared"
    accuracy = check(inventory, record).accuracy
    assert accuracy is not None  # check sets it
    return rehearsals.held_line(record.rehearsal_id, accuracy)


def timing_pairs(inventory: Inventory, *, newest: int = 200) -> list[tuple[str, float, float]]:
    """(cluster, what the twin alone predicted, what the real upgrade took), newest rehearsal first, for each upgrade
    that succeeded both in a rehearsal and for real, from the comparisons kept with the newest rehearsals: what
    `regatta.rules.rehearsals.corrections` learns from."""
    out, seen = [], set()
    with Session(inventory.engine) as session:
        kept = session.scalars(select(RehearsalRow.accuracy).where(RehearsalRow.accuracy.is_not(None))
                               .order_by(RehearsalRow.rehearsed_at.desc()).limit(newest)).all()
    for accuracy in kept:
        for line in (accuracy or {}).get("clusters", []):
            predicted, actual = line.get("predicted_seconds"), line.get("actual_seconds")
            if (line.get("predicted_outcome"), line.get("actual_outcome")) == ("succeeded", "succeeded") and predicted \
                    and actual and (line["cluster"], actual) not in seen:  # one real upgrade, several rehearsals: once
                seen.add((line["cluster"], actual))
                out.append((line["cluster"], predicted / (line.get("corrected_by") or 1.0), actual))
    return out
