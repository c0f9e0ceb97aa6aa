"""Regatta's own disaster recovery, for the inventory and its audit trail (`regatta backup`, `regatta restore`):
every table that holds what the fleet is and what was done to it, written to one file, and read back into an empty
inventory of a new database, where the audit chain is then verified record by record.

The file is JSON lines: a header (`format`, the schema `revision`, when it was `taken_at`, each table's row count and
the trail's `audit_head`), then one `{"table", "row"}` line a row, in the order the tables depend on each other.
Fleet-view sessions (people sign in again) and the cloud request schedule (rebuilt at the first request) are left
out. The trail's hashes are kept as they were, so a trail restored by someone who changed it does not verify: the
chain is the proof that the restored trail is the one that was written. Token hashes are in it (never a token): the
file is written mode 0600 and belongs beside the database's own backups.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Integer, func, insert, select, text

from regatta.inventory.store import Inventory
from regatta.inventory.tables import Base

FORMAT = "regatta-inventory-backup/1"
LEFT_OUT = frozenset({"web_sessions", "cloud_request_slots"})
CHAIN_HEAD = "audit_chain_head"  # one row, there from the first migration


class BackupError(ValueError):
    """A backup that cannot be restored here (another format, a newer schema, a target that is not empty)."""


def _tables() -> list[Any]:
    return [table for table in Base.metadata.sorted_tables if table.name not in LEFT_OUT]


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def write(inventory: Inventory, path: str | Path) -> dict[str, Any]:
    """The inventory written to `path` (a new file of mode 0600, moved over what was there): its header."""
    target = Path(path)
    scratch = target.with_name(f"{target.name}.{os.getpid()}.part")
    counts: dict[str, int] = {}
    lines: list[str] = []
    found: dict[str, list[dict[str, Any]]] = {}
    snapshot = {"isolation_level": "REPEATABLE READ"} if inventory.engine.dialect.name == "postgresql" else {}
    with inventory.engine.connect().execution_options(**snapshot) as connection, connection.begin():
        # one transaction, one snapshot: a record written meanwhile is in every table read, or in none
        for table in _tables():
            rows = [dict(row) for row in connection.execute(select(table)).mappings().all()]
            found[table.name], counts[table.name] = rows, len(rows)
            lines += [json.dumps({"table": table.name, "row": {k: _plain(v) for k, v in row.items()}}) for row in rows]
    head = _signed_head(inventory, found)
    header = {"format": FORMAT, "revision": inventory.revision(), "taken_at": datetime.now().astimezone().isoformat(),
              "tables": counts, "audit_head": dataclasses.asdict(head) if head is not None else None}
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(json.dumps(header) + "\n")
            for line in lines:
                file.write(line + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(scratch, target)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    return header


def _signed_head(inventory: Inventory, found: dict[str, list[dict[str, Any]]]) -> Any:
    """The trail's head as the snapshot holds it, signed with the current audit key (None without one)."""
    from datetime import UTC

    from regatta.rules import audit_chain

    key = inventory.audit_keys.current
    heads = found.get(CHAIN_HEAD) or []
    if key is None or not heads or not heads[0].get("last_id"):
        return None
    keyed = [row["id"] for row in found.get("audit_log") or [] if row.get("key_id")]
    return audit_chain.checkpoint(at=datetime.now(UTC), last_id=heads[0]["last_id"], last_hash=heads[0]["last_hash"],
                                  first_keyed_id=min(keyed) if keyed else None, key=key)


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as file:
        for number, line in enumerate(file, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:
                    raise BackupError(f"{path}:{number}: not a line of a Regatta backup (not JSON)") from None


def restore(inventory: Inventory, path: str | Path) -> dict[str, Any]:
    """The backup at `path` read into `inventory`, which must hold nothing yet (its schema is brought to this build's
    head first): the backup's header. BackupError when it cannot be."""
    source = Path(path)
    if not source.is_file():
        raise BackupError(f"{source}: no such backup file")
    lines = _lines(source)
    header = next(lines, None)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupError(f"{source}: not a Regatta inventory backup (its first line names no format {FORMAT})")
    tables = {table.name: table for table in _tables()}
    here = inventory.revision()
    if header.get("revision") != here:
        raise BackupError(f"{source}: it was taken at schema revision {header.get('revision')}, and this build's is {here}:"
                          f" restore it with the build that took it, then start this one (its migrations bring the"
                          f" restored inventory forward)")
    unknown = sorted(set(header.get("tables") or {}) - set(tables))
    if unknown:
        raise BackupError(f"{source}: it holds tables this build does not know ({', '.join(unknown)}): restore it with"
                          f" the build that took it, revision {header.get('revision')}, or a newer one")
    with inventory.engine.begin() as connection:
        held = {name: connection.execute(select(func.count()).select_from(table)).scalar_one() for name, table in tables.items()
                if name != CHAIN_HEAD}
        head = tables[CHAIN_HEAD]
        started = connection.execute(select(head.c.last_id)).scalar()
        if any(held.values()) or started:
            raise BackupError(f"the inventory at {inventory.url} is not empty ({', '.join(f'{n}: {c}' for n, c in held.items() if c)}"
                              "): restore into a new database")
        connection.execute(head.delete())  # the empty chain's head a new database starts with: the backup's replaces it
        restored = dict.fromkeys(tables, 0)
        for line in lines:
            table = tables.get(str(line.get("table")))
            if table is None:
                raise BackupError(f"{source}: a row of table {line.get('table')!r}, which the header does not list")
            row = {}
            for column in table.columns:
                if column.name in line["row"]:
                    value = line["row"][column.name]
                    if isinstance(column.type, DateTime) and value:
                        value = datetime.fromisoformat(value)
                        value = value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite keeps UTC without saying so
                    row[column.name] = value
            connection.execute(insert(table).values(**row))
            restored[table.name] += 1
        if connection.dialect.name == "postgresql":  # ids written as they were: each sequence moves past them
            for table in tables.values():
                for column in table.primary_key.columns:
                    if isinstance(column.type, Integer) and column.autoincrement in (True, "auto"):
                        connection.execute(text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'),"
                            f" COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false)"))
        expected = header.get("tables") or {}
        short = {name: (count, restored.get(name, 0)) for name, count in expected.items() if restored.get(name, 0) != count}
        if short:  # raised inside the transaction: nothing of a torn file stays in the new database
            raise BackupError(f"{source}: it is cut short ({', '.join(f'{n}: {got} of {want}' for n, (want, got) in short.items())}"
                              " rows): the file was not written whole")
    return header


def verify(inventory: Inventory, header: dict[str, Any]) -> Any:
    """The restored trail's chain walked, held to the signed head the backup took (with the audit key: records cut from
    its end would show): an AuditVerification."""
    from regatta.rules.audit_chain import Checkpoint

    head = header.get("audit_head")
    return inventory.verify_audit([Checkpoint(**head)] if head else [])
