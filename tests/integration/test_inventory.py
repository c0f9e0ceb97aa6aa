"""The inventory and audit trail on both databases it supports: SQLite (the default) and
PostgreSQL (REGATTA_DATABASE_URL). The PostgreSQL run uses a schema of its own and drops it."""

from __future__ import annotations

import os
from datetime import UTC

import pytest
import sqlalchemy
import sqlalchemy.orm

from regatta.inventory import DrPairError, Inventory, UnknownCluster
from regatta.models import NodePool, OperationRecord
from tests.integration.inventory_rows import postgres_schema, record


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        inventory = Inventory(f"sqlite:///{tmp_path / 'inventory.db'}")
        yield inventory
        inventory.close()
        return
    with postgres_schema() as url:
        inventory = Inventory(url)
        yield inventory
        inventory.close()




def test_clusters_round_trip_and_filter_by_labels(store):
    store.upsert_cluster(record("eks-a"))
    store.upsert_cluster(record("eks-b", labels={"env": "dev"}, environment="dev"))
    assert store.get_cluster("eks-a").node_pools[0].node_count == 3
    assert [r.name for r in store.list_clusters({"env": "prod"})] == ["eks-a"]
    assert [r.name for r in store.list_clusters()] == ["eks-a", "eks-b"]


def test_the_fleet_read_gives_what_the_validated_read_gives_on_either_database(store):
    """The fleet view's and `clusters list`'s read takes the JSON columns as the driver hands them
    (text from SQLite, decoded by psycopg on PostgreSQL) and validates nothing again."""
    from regatta.inventory import fleet_reads

    store.upsert_cluster(record("eks-a", node_pools=[NodePool(name="general", version="1.30", node_count=3),
                                                     NodePool(name="batch", version="1.29", node_count=0)]))
    store.upsert_cluster(record("eks-b", labels={}))
    read = fleet_reads.fleet(store)
    validated = store.list_clusters()
    assert [r.model_dump(mode="json", exclude={"updated_at"}) for r in read] == [
        r.model_dump(mode="json", exclude={"updated_at"}) for r in validated]
    # the time it was swept, in UTC whichever database kept it (SQLite keeps no zone)
    assert [r.updated_at for r in read] == [r.updated_at.replace(tzinfo=UTC) for r in validated]
    assert read[0].labels == {"env": "prod", "team": "pay"} and read[0].node_pools[1].node_count == 0
    assert read[1].labels == {}


def test_recorded_versions_replace_the_old_ones(store):
    store.upsert_cluster(record())
    store.record_versions("eks-a", control_plane_version="1.31",
                          node_pools=[NodePool(name="general-v1-31", version="1.31", node_count=3)])
    found = store.get_cluster("eks-a")
    assert found.control_plane_version == "1.31" and [p.name for p in found.node_pools] == ["general-v1-31"]
    assert found.health == "healthy" and found.updated_at is not None


def test_versions_of_a_cluster_not_in_the_inventory_are_refused_not_written(store):
    store.upsert_cluster(record())
    with pytest.raises(UnknownCluster, match=r"'eks-gone' is not in the inventory; did you mean eks-a\?"):
        store.record_versions("eks-gone", control_plane_version="1.31", node_pools=[])
    assert [r.name for r in store.list_clusters()] == ["eks-a"]


def test_an_unknown_cluster_names_the_nearest_known_one_or_the_known_ones(store):
    store.upsert_cluster(record())
    with pytest.raises(UnknownCluster, match=r"'eks-z' is not in the inventory; did you mean eks-a\?"):
        store.get_cluster("eks-z")
    with pytest.raises(UnknownCluster, match="'onprem-far-away' is not in the inventory; known clusters include eks-a"):
        store.get_cluster("onprem-far-away")


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


def audit_line(n: int, cluster: str = "eks-a") -> OperationRecord:
    return OperationRecord(operation_id=f"cluster-{cluster}", operation="ClusterUpgrade", cluster=cluster,
                           requested_by="sre-alice", ticket="CHG-7", action="upgrade", outcome="succeeded",
                           detail=f"line {n}", seq=n, run_id="run-1")


def five_records(store) -> list[int]:
    """Five audit lines written the normal way; their ids."""
    for n in range(1, 6):
        store.append_audit(audit_line(n))
    return audit_ids(store)


def audit_ids(store) -> list[int]:
    with store.engine.connect() as connection:
        return [row[0] for row in connection.execute(sqlalchemy.text("SELECT id FROM audit_log ORDER BY id"))]


def tamper(store, statement: str, **values) -> None:
    """What an insider with database access would do: change rows behind the application's back."""
    with store.engine.begin() as connection:
        connection.execute(sqlalchemy.text(statement), values)


def test_an_intact_audit_trail_verifies_and_each_line_has_its_time(store):
    for n in range(1, 6):
        store.append_audit(audit_line(n))
    verdict = store.verify_audit()
    assert verdict.ok and verdict.records == 5 and verdict.broken_at is None
    assert all(r.at is not None for r in store.audit(cluster="eks-a"))


def test_an_edited_audit_record_is_the_first_one_verify_names(store):
    ids = five_records(store)
    tamper(store, "UPDATE audit_log SET requested_by = 'nobody' WHERE id = :id", id=ids[2])
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.broken_at == ids[2] and verdict.records == 2
    assert "edited after it was written" in verdict.reason


def test_a_removed_audit_record_breaks_the_chain_at_the_one_after_it(store):
    ids = five_records(store)
    tamper(store, "DELETE FROM audit_log WHERE id = :id", id=ids[1])
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.broken_at == ids[2] and "removed or reordered" in verdict.reason


def test_records_cut_from_the_end_of_the_trail_are_noticed(store):
    ids = five_records(store)
    tamper(store, "DELETE FROM audit_log WHERE id >= :id", id=ids[3])
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.records == 3 and "records at the end were removed" in verdict.reason


def test_concurrent_writers_never_chain_onto_the_same_record(store):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: store.append_audit(audit_line(n, cluster=f"c{n % 4}")), range(1, 81)))
    verdict = store.verify_audit()
    assert verdict.ok and verdict.records == 80


def test_an_audit_trail_written_before_the_chain_existed_is_chained_by_the_upgrade(tmp_path):
    from alembic import command
    from alembic.config import Config

    from regatta.inventory.store import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Inventory(url, migrate=False)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with old.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        for n in range(3):
            connection.execute(sqlalchemy.text(
                "INSERT INTO audit_log (at, operation_id, operation, cluster, requested_by, ticket, action, outcome, detail,"
                " seq, run_id) VALUES ('2026-10-01 10:00:00.000000', 'cluster-old', 'ClusterUpgrade', 'old', 'sre', NULL,"
                " 'upgrade', 'succeeded', :detail, 0, '')"), {"detail": f"before the chain {n}"})
    old.close()
    upgraded = Inventory(url)
    upgraded.append_audit(audit_line(1, cluster="old"))
    verdict = upgraded.verify_audit()
    assert verdict.ok and verdict.records == 4
    upgraded.close()


def test_the_database_itself_refuses_a_second_copy_of_a_runs_audit_line(store):
    line = OperationRecord(operation_id="cluster-eks-u", operation="ClusterUpgrade", cluster="eks-u", requested_by="sre",
                           action="upgrade", outcome="started", seq=1, run_id="run-1")
    store.append_audit(line)
    # What a racing second writer would do, past any check the code makes: the index refuses it.
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        tamper(store, "INSERT INTO audit_log (at, operation_id, operation, cluster, requested_by, action, outcome, detail,"
                      " seq, run_id, prev_hash, hash) VALUES (CURRENT_TIMESTAMP, 'cluster-eks-u', 'ClusterUpgrade', 'eks-u',"
                      " 'sre', 'upgrade', 'started', '', 1, 'run-1', '', '')")
    store.append_audit(line)  # the retried activity: kept once, no error
    assert len(store.audit(operation_id="cluster-eks-u")) == 1
    assert store.verify_audit().ok


def test_concurrent_retries_of_one_audit_line_keep_it_once(store):
    from concurrent.futures import ThreadPoolExecutor

    line = OperationRecord(operation_id="cluster-eks-c", operation="ClusterUpgrade", cluster="eks-c", requested_by="sre",
                           action="upgrade", outcome="started", seq=1, run_id="run-c")
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda _: store.append_audit(line), range(12)))
    assert len(store.audit(operation_id="cluster-eks-c")) == 1
    assert store.verify_audit().ok


def test_migrations_run_once_per_process_not_on_every_open(tmp_path, monkeypatch):
    from alembic import command

    calls = []
    upgrade = command.upgrade
    monkeypatch.setattr(command, "upgrade", lambda *args, **kwargs: (calls.append(args[1]), upgrade(*args, **kwargs)))
    url = f"sqlite:///{tmp_path / 'once.db'}"
    for _ in range(3):
        Inventory(url).close()
    assert calls == ["head"]  # the first open migrated; the others did not look at the migrations again
    assert Inventory(url).revision() == "0021"


def test_a_clusters_site_is_kept(store):
    store.upsert_cluster(record("eks-private", site="dc1"))
    found = store.get_cluster("eks-private")
    assert (found.site, found.ref.site) == ("dc1", "dc1")
    assert store.get_cluster("eks-private").model_copy(update={"site": None}).ref.site is None


def test_replicas_starting_at_once_migrate_one_at_a_time_on_postgresql():
    """docker-compose starts `regatta migrate`, and every API and worker replica migrates on open
    too: on PostgreSQL they take turns (an advisory lock), so none fails on a half-made schema."""
    import subprocess
    import sys

    with postgres_schema("regatta_migrate") as url:
        env = {**os.environ, "REGATTA_DATABASE_URL": url}
        runs = [subprocess.Popen([sys.executable, "-m", "regatta.cli", "migrate"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for _ in range(3)]
        outputs = [(run.wait(timeout=120), run.stdout.read() if run.stdout else "") for run in runs]
        assert [code for code, _ in outputs] == [0, 0, 0], outputs
        assert all("inventory schema at revision 0021" in text for _, text in outputs), outputs
        inventory = Inventory(url, migrate=False)
        with inventory.engine.connect() as connection:
            versions = connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).all()
        inventory.close()
        assert [row[0] for row in versions] == ["0021"]
        again = subprocess.run([sys.executable, "-m", "regatta.cli", "migrate"], env=env, capture_output=True, text=True,
                               timeout=120)
        assert again.returncode == 0 and "already current" in again.stdout, again


def test_cloud_request_slots_are_one_schedule_that_concurrent_takers_share(store):
    """Every worker takes its cloud requests' turns from this row: no two get the same slot."""
    from concurrent.futures import ThreadPoolExecutor

    from regatta.inventory.request_slots import take_cloud_request_slot

    with ThreadPoolExecutor(max_workers=6) as pool:
        slots = sorted(pool.map(lambda _: take_cloud_request_slot(store, "eks/default", 0.5, now=1000.0), range(12)))
    assert slots == [1000.0 + 0.5 * n for n in range(12)]
    # a schedule that fell behind the clock starts again from now, not from the past
    assert take_cloud_request_slot(store, "eks/default", 0.5, now=5000.0) == 5000.0
    assert take_cloud_request_slot(store, "gke/default", 0.5, now=1000.0) == 1000.0


def keyed(store, *keys: str) -> Inventory:
    """The same database, written by processes that hold the audit key file's keys (the first signs)."""
    from regatta.inventory.audit_files import AuditKeys
    from regatta.rules.audit_chain import key_id

    encoded = [k.encode() for k in keys or ("k" * 40,)]
    return Inventory(store.url, audit_keys=AuditKeys(current=encoded[0], by_id={key_id(k): k for k in encoded}))


def rewrite_from(store, first_id: int, *, key_id: str | None) -> None:
    """An insider's rewrite: edit a record, then recompute every hash after it and the head, as the code
    before the key did (plain SHA-256), so the chain itself is whole again."""
    from regatta.inventory.tables import AuditRow
    from regatta.rules.audit_chain import record_hash

    tamper(store, "UPDATE audit_log SET detail = 'nothing happened' WHERE id = :id", id=first_id)
    with sqlalchemy.orm.Session(store.engine) as session, session.begin():
        rows = session.scalars(sqlalchemy.select(AuditRow).order_by(AuditRow.id)).all()
        prev = next(r.prev_hash for r in rows if r.id == first_id)
        for row in (r for r in rows if r.id >= first_id):
            row.prev_hash, row.key_id = prev, key_id
            row.hash = prev = record_hash(prev, row.chained_fields())
        session.execute(sqlalchemy.text("UPDATE audit_chain_head SET last_hash = :h WHERE id = 1"), {"h": prev})


def test_a_rewrite_with_every_hash_recomputed_passes_an_unkeyed_chain_and_not_a_keyed_one(store):
    ids = five_records(store)
    rewrite_from(store, ids[2], key_id=None)
    assert store.verify_audit().ok  # what an unkeyed chain cannot tell: `audit verify` warns of it

    writer = keyed(store)
    for n in range(6, 11):
        writer.append_audit(audit_line(n))
    later = audit_ids(store)[5:]
    rewrite_from(store, later[1], key_id=None)  # written again without the key: unkeyed after keyed
    verdict = writer.verify_audit()
    assert not verdict.ok and verdict.broken_at == later[1] and "without the audit key" in verdict.reason
    rewrite_from(store, later[1], key_id=writer.audit_keys.current_id)  # claiming the key, without holding it
    verdict = writer.verify_audit()
    assert not verdict.ok and verdict.broken_at == later[1] and "edited after it was written" in verdict.reason


def test_a_checkpoint_outside_the_database_catches_what_the_chain_cannot(store, tmp_path):
    from regatta.inventory.audit_files import append_checkpoint, read_checkpoints

    writer = keyed(store)
    for n in range(1, 6):
        writer.append_audit(audit_line(n))
    ids = audit_ids(store)
    checkpoints = tmp_path / "checkpoints.jsonl"
    append_checkpoint(checkpoints, writer.audit_checkpoint())
    trusted, untrusted = read_checkpoints(checkpoints, writer.audit_keys)
    assert writer.verify_audit(trusted).ok and untrusted == [] and writer.verify_audit(trusted).checkpoints == 1

    # The last two records removed and the head moved back: a whole chain, but not the one checkpointed.
    with store.engine.begin() as connection:
        kept = connection.execute(sqlalchemy.text("SELECT hash FROM audit_log WHERE id = :id"), {"id": ids[2]}).scalar()
        connection.execute(sqlalchemy.text("DELETE FROM audit_log WHERE id > :id"), {"id": ids[2]})
        connection.execute(sqlalchemy.text("UPDATE audit_chain_head SET last_id = :id, last_hash = :h WHERE id = 1"),
                           {"id": ids[2], "h": kept})
    assert writer.verify_audit().ok  # without the checkpoint nothing shows
    verdict = writer.verify_audit(trusted)
    assert not verdict.ok and "a checkpoint of" in verdict.reason and f"saw record {ids[4]}" in verdict.reason

    # A checkpoint edited to match, or written by someone without the key, is not trusted.
    forged = checkpoints.read_text().replace(f'"last_id": {ids[4]}', f'"last_id": {ids[2]}')
    (tmp_path / "forged.jsonl").write_text(forged)
    trusted, untrusted = read_checkpoints(tmp_path / "forged.jsonl", writer.audit_keys)
    assert trusted == [] and "signature does not match" in untrusted[0]


def test_audit_verify_exits_1_on_a_rewrite_and_warns_where_it_cannot_tell(tmp_path):
    import subprocess
    import sys

    from regatta.inventory.audit_files import make_key_file

    home = tmp_path / "home"
    env = {**os.environ, "REGATTA_HOME": str(home), "REGATTA_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    env.pop("REGATTA_AUDIT_KEY_FILE", None)
    env.pop("REGATTA_AUDIT_CHECKPOINTS", None)
    regatta = [sys.executable, "-m", "regatta.cli"]
    plain = Inventory(env["REGATTA_DATABASE_URL"])
    for n in range(1, 4):
        plain.append_audit(audit_line(n))
    warned = subprocess.run([*regatta, "audit", "verify"], env=env, capture_output=True, text=True, timeout=60)
    assert warned.returncode == 0 and "no audit key" in warned.stdout and "no checkpoint file" in warned.stdout

    assert make_key_file(tmp_path / "audit.key") and not make_key_file(tmp_path / "audit.key")
    assert (tmp_path / "audit.key").stat().st_mode & 0o777 == 0o600
    env.update(REGATTA_AUDIT_KEY_FILE=str(tmp_path / "audit.key"), REGATTA_AUDIT_CHECKPOINTS=str(tmp_path / "cp.jsonl"))
    from regatta.settings import Settings

    writer = Inventory(env["REGATTA_DATABASE_URL"], audit_keys=Settings.from_env(env).audit_keys())
    writer.append_audit(audit_line(4))
    made = subprocess.run([*regatta, "audit", "checkpoint"], env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    whole = subprocess.run([*regatta, "audit", "verify", "--output", "json"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert whole.returncode == 0, whole.stderr
    assert '"keyed": 1' in whole.stdout and '"checkpoints": 1' in whole.stdout
    from regatta.inventory.audit_files import AuditKeyError

    with pytest.raises(AuditKeyError, match="holds no audit key"):  # a writer without the key would break the chain
        plain.append_audit(audit_line(5))
    (tmp_path / "cp.jsonl").rename(tmp_path / "elsewhere.jsonl")
    gone = subprocess.run([*regatta, "audit", "verify"], env=env, capture_output=True, text=True, timeout=60)
    said = " ".join(gone.stderr.split())  # the console wraps long lines
    assert gone.returncode == 1 and "checkpoint file" in said and "is missing while the trail is keyed" in said, said
    (tmp_path / "elsewhere.jsonl").rename(tmp_path / "cp.jsonl")
    rewrite_from(writer, audit_ids(writer)[3], key_id=None)
    broken = subprocess.run([*regatta, "audit", "verify"], env=env, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1 and "without the audit key" in " ".join(broken.stderr.split()), broken.stderr


async def test_the_fleet_views_first_page_after_clusters_join_an_empty_fleet_shows_them(store):
    """An API started on an empty inventory (a new deployment, a test) read no cluster with a time: the first
    clusters to join were taken for "much of the fleet changed" and the page showed the empty fleet of before."""
    from regatta.web.fleet_cache import FleetCache

    cache = FleetCache()
    assert await cache.clusters(store) == ([], 0.0)
    store.upsert_cluster(record("eks-a"))
    store.upsert_cluster(record("eks-b"))
    clusters, age = await cache.clusters(store)
    assert sorted(c.name for c in clusters) == ["eks-a", "eks-b"] and age == 0.0


async def test_the_api_creates_the_checkpoint_file_at_once_so_a_young_trail_verifies(tmp_path):
    """A trail's first records come up to a minute before their first checkpoint; `audit verify` in that minute
    found no file and said it had been removed. The file is there, empty, from the API's start."""
    import asyncio

    from regatta.api.app import checkpoint_audit
    from regatta.inventory.audit_files import read_checkpoints

    path = tmp_path / "cp.jsonl"
    inventory = Inventory(f"sqlite:///{tmp_path / 'r.db'}")
    writing = asyncio.create_task(checkpoint_audit(inventory, str(path)))
    for _ in range(100):
        if path.exists():
            break
        await asyncio.sleep(0.02)
    writing.cancel()
    assert path.exists() and path.read_text() == "" and path.stat().st_mode & 0o777 == 0o600
    assert read_checkpoints(path, inventory.audit_keys) == ([], [])
