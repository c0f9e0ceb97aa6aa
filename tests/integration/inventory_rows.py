"""A PostgreSQL schema of its own for one test, and an audit record to write: what the inventory tests share."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy
import sqlalchemy.orm

from regatta.models import ClusterRecord, NodePool
from tests.conftest import POSTGRES_URL


@contextmanager
def postgres_schema(prefix: str = "regatta_test") -> Iterator[str]:
    """A database URL whose tables land in a schema of their own, dropped afterwards; the test
    skips (or, with REGATTA_REQUIRE_POSTGRES=1, fails) where no PostgreSQL answers."""
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    except sqlalchemy.exc.OperationalError as error:
        admin.dispose()
        reason = (f"PostgreSQL is not reachable at {POSTGRES_URL} ({str(error).splitlines()[0]}); start one or point"
                  " REGATTA_TEST_POSTGRES_URL at one to run the inventory tests on PostgreSQL")
        if os.environ.get("REGATTA_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def record(name: str = "eks-a", **changes) -> ClusterRecord:
    fields = {
        "name": name, "provider": "eks", "region": "us-east-1", "environment": "prod", "labels": {"env": "prod", "team": "pay"},
        "control_plane_version": "1.30", "node_pools": [NodePool(name="general", version="1.30", node_count=3)],
    }
    return ClusterRecord(**{**fields, **changes})
