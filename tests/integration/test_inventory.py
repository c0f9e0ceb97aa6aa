"""The inventory and audit trail on both databases it supports: SQLite (the default) and
PostgreSQL (REGATTA_DATABASE_URL). The PostgreSQL run uses a schema of its own and drops it."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy

from regatta.inventory import DrPairError, Inventory, UnknownCluster
from regatta.models import ClusterRecord, NodePool, OperationRecord
from tests.conftest import POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        inventory = Inventory(f"sqlite:///{tmp_path / 'inventory.db'}")
        yield inventory
        inventory.close()
        return
    schema = f"regatta_test_{uuid.uuid4().hex[:8]}"
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
    inventory = Inventory(f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}")
    yield inventory
    inventory.close()
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def record(name: str = "eks-a", **changes) -> ClusterRecord:
    fields = {
        "name": name, "provider": "eks", "region": "us-east-1", "environment": "prod", "labels": {"env": "prod", "team": "pay"},
        "control_plane_version": "1.30", "node_pools": [NodePool(name="general", version="1.30", node_count=3)],
    }
    return ClusterRecord(**{**fields, **changes})


def test_clusters_round_trip_and_filter_by_labels(store):
    store.upsert_cluster(record("eks-a"))
    store.upsert_cluster(record("eks-b", labels={"env": "dev"}, environment="dev"))
    assert store.get_cluster("eks-a").node_pools[0].node_count == 3
    assert [r.name for r in store.list_clusters({"env": "prod"})] == ["eks-a"]
    assert [r.name for r in store.list_clusters()] == ["eks-a", "eks-b"]


def test_recorded_versions_replace_the_old_ones(store):
    store.upsert_cluster(record())
    store.record_versions("eks-a", control_plane_version="1.31",
                          node_pools=[NodePool(name="general-v1-31", version="1.31", node_count=3)])
    found = store.get_cluster("eks-a")
    assert found.control_plane_version == "1.31" and [p.name for p in found.node_pools] == ["general-v1-31"]
    assert found.health == "healthy" and found.updated_at is not None


def test_an_unknown_cluster_names_the_known_ones(store):
    store.upsert_cluster(record())
    with pytest.raises(UnknownCluster, match="'eks-z' is not in the inventory; known clusters include eks-a"):
        store.get_cluster("eks-z")


def test_the_audit_trail_keeps_order_and_writes_a_retried_line_once(store):
    line = OperationRecord(operation_id="cluster-eks-a", operation="ClusterUpgrade", cluster="eks-a", requested_by="sre",
                           ticket="CHG-1", action="upgrade", outcome="started", seq=1)
    store.append_audit(line)
    store.append_audit(line)  # the activity ran twice after a crash
    store.append_audit(line.model_copy(update={"outcome": "succeeded", "seq": 2}))
    store.append_audit(line.model_copy(update={"run_id": "second-run"}))  # a later run on the same cluster
    store.append_audit(line.model_copy(update={"operation_id": "manual", "seq": 0}))
    store.append_audit(line.model_copy(update={"operation_id": "manual", "seq": 0}))
    trail = store.audit(operation_id="cluster-eks-a")
    assert [(r.seq, r.outcome, r.run_id) for r in trail] == [(1, "started", ""), (2, "succeeded", ""), (1, "started", "second-run")]
    assert len(store.audit(operation_id="manual")) == 2
    assert len(store.audit(cluster="eks-a")) == 5


def test_migrations_are_idempotent(store):
    store.migrate()
    store.migrate()
    store.upsert_cluster(record())
    assert store.get_cluster("eks-a").name == "eks-a"


def test_dr_pairs_label_both_sides_and_refuse_what_cannot_stand_by(store):
    store.upsert_cluster(record("eks-a"))
    store.upsert_cluster(record("eks-b", region="us-west-2"))
    store.upsert_cluster(record("eks-c", region="eu-west-1"))
    store.upsert_cluster(record("eks-same", region="us-east-1"))

    pair = store.declare_dr_pair("eks-a", "eks-b")
    assert (pair.primary, pair.standby, pair.serving) == ("eks-a", "eks-b", "primary")
    assert store.get_cluster("eks-a").labels["dr-role"] == "primary"
    assert store.get_cluster("eks-b").labels["dr-role"] == "standby"
    assert store.declare_dr_pair("eks-a", "eks-b") == pair  # declaring it again changes nothing

    refusals = {
        ("eks-a", "eks-a"): "cannot be its own standby",
        ("eks-a", "eks-c"): "eks-a already has the standby eks-b",
        ("eks-c", "eks-b"): "eks-a already has the standby eks-b",
        ("eks-same", "eks-a"): "are both in eks us-east-1: a standby in the same region fails with it",
    }
    for (primary, standby), says in refusals.items():
        with pytest.raises(DrPairError) as refused:
            store.declare_dr_pair(primary, standby)
        assert says in str(refused.value)
    with pytest.raises(DrPairError) as standby_named:
        store.dr_pair("eks-b")
    assert "it is the standby of eks-a: fail over eks-a, not eks-b" in str(standby_named.value)
    with pytest.raises(UnknownCluster):
        store.declare_dr_pair("eks-a", "eks-nowhere")

    store.record_dr_serving("eks-a", serving="standby", operation_id="cluster-eks-a")
    assert store.dr_pair("eks-a").serving == "standby" and store.dr_pair("eks-a").last_operation == "cluster-eks-a"
    with pytest.raises(DrPairError) as serving:
        store.undeclare_dr_pair("eks-a")
    assert "fail back before undeclaring" in str(serving.value)
    store.record_dr_serving("eks-a", serving="primary", operation_id="cluster-eks-a")
    store.undeclare_dr_pair("eks-a")
    assert store.dr_pairs() == [] and "dr-role" not in store.get_cluster("eks-b").labels
