"""The inventory: one database and its migrations, and the stores that read and write it, each in a module of its
own (cluster_records: clusters, holds, readiness, DR pairs; audit_trail; api_access: tokens, tickets, sessions, access
grants; policy_records: bundles, compliance, drift, placements).

`Inventory(url)` migrates the schema to the newest revision the first time a process opens that
database, so a fresh REGATTA_HOME or an empty PostgreSQL database just works, and opening it again
costs one read of its revision at most.
"""

from __future__ import annotations

import functools
import re
import threading
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from regatta.inventory.api_access import AccessStore
from regatta.inventory.audit_files import AuditKeys
from regatta.inventory.cluster_records import ClusterStore
from regatta.inventory.policy_records import PolicyStore

MIGRATIONS = Path(__file__).with_name("migrations")


@functools.cache
def _head_revision() -> str | None:
    """The newest migration: the one no other revises. Read from the files' own `revision` and
    `down_revision` lines, so a process whose database is current never imports alembic (half a
    second of every CLI command's start)."""
    revisions, revised = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text()
        found = re.search(r'^revision = "([^"]+)"', source, re.M)
        down = re.search(r'^down_revision = "([^"]+)"', source, re.M)
        if found:
            revisions.add(found[1])
        if down:
            revised.add(down[1])
    heads = revisions - revised
    assert len(heads) <= 1, f"the migrations have more than one head: {sorted(heads)}"
    return next(iter(heads), None)


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # WAL lets the CLI read while the worker writes; busy_timeout waits instead of failing.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


# Databases this process has seen at the newest revision: a CLI call, an API request or an
# activity opening the inventory again does not look at the migrations again.
_MIGRATED: set[str] = set()
MIGRATION_LOCK_KEY = 0x52454741  # "REGA": the advisory lock that serializes migrations on PostgreSQL
_MIGRATED_LOCK = threading.Lock()


class Inventory(ClusterStore, AccessStore, PolicyStore):
    """The inventory: one database, its migrations, and the stores its callers use (clusters, the audit trail,
    access, the policy plane), each in a module of its own."""

    def __init__(self, url: str, *, migrate: bool = True, audit_keys: AuditKeys | None = None):
        self.url = url
        self.engine = _engine(url)
        self.audit_keys = audit_keys or AuditKeys()  # the audit trail's HMAC keys (regatta/inventory/audit_files.py)
        if migrate:
            self.migrate_once()

    def migrate_once(self) -> None:
        """Bring the schema to the newest revision unless this process already saw it there; a
        database at the head already is only read (one SELECT of alembic_version)."""
        with _MIGRATED_LOCK:
            if self.url in _MIGRATED:
                return
            if self.revision() != _head_revision():
                self.migrate()
            _MIGRATED.add(self.url)

    def revision(self) -> str | None:
        """The schema's migration (alembic's own table), or None before the first one."""
        with self.engine.connect() as connection:
            try:
                return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except DBAPIError:
                return None

    def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several replicas starting at once (the API and every worker) migrate one at a time:
                # the first takes the lock and migrates, the rest find the schema current.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()
