"""Regatta's own disaster recovery for the inventory and its audit trail (issue 32): `regatta backup` writes it,
`regatta restore` reads it into a new database (SQLite, and PostgreSQL where one answers) and verifies the trail's
chain against the head the backup signed; a restored trail someone changed, or one cut short, does not verify; and a
new stack pointed at the restored database carries on: a worker runs an operation there and the chain still holds."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from dataclasses import replace

import pytest

from regatta.inventory import Inventory
from regatta.inventory.audit_files import AuditKeys, make_key_file
from regatta.models import AccessGrantInput, OperationRecord
from regatta.temporal.operations import start
from tests.integration.inventory_rows import postgres_schema, record
from tests.warm_cli import WARM
from workers.main import build_worker


def regatta(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return WARM.run_now(list(args), {**os.environ, **env, "COLUMNS": "250"}, timeout=120)


@pytest.fixture
def source(tmp_path) -> tuple[Inventory, dict[str, str]]:
    """An inventory with clusters, a token, a grant and a keyed trail, and the environment that reaches it."""
    keys = tmp_path / "audit.key"
    make_key_file(keys)
    url = f"sqlite:///{tmp_path / 'source.db'}"
    inventory = Inventory(url, audit_keys=AuditKeys.from_file(keys))
    for name in ("eks-a", "gke-b"):
        inventory.upsert_cluster(record(name))
    for n in range(5):
        inventory.append_audit(OperationRecord(operation_id=f"op-{n}", operation="ClusterUpgrade", cluster="eks-a",
                                               requested_by="ana", action="upgrade", outcome="succeeded", detail=f"#{n}"))
    return inventory, {"REGATTA_DATABASE_URL": url, "REGATTA_AUDIT_KEY_FILE": str(keys)}


def test_a_backup_restores_into_a_new_database_with_its_chain_verified_and_refuses_a_second_time(source, tmp_path):
    inventory, env = source
    backup = tmp_path / "inventory.backup"
    written = regatta(env, "backup", "--output", str(backup))
    assert written.returncode == 0 and "the trail's head signed at record 5" in written.stdout, written.stderr
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    header = json.loads(backup.read_text().splitlines()[0])
    assert header["tables"]["clusters"] == 2 and header["tables"]["audit_log"] == 5 and "web_sessions" not in header["tables"]

    target = {**env, "REGATTA_DATABASE_URL": f"sqlite:///{tmp_path / 'restored.db'}"}
    restored = regatta(target, "restore", "--input", str(backup))
    assert restored.returncode == 0 and "audit trail verified: 5 records hold (5 keyed, 1 signed head matched)" in restored.stdout, \
        restored.stdout + restored.stderr
    copy = Inventory(target["REGATTA_DATABASE_URL"], audit_keys=inventory.audit_keys)
    assert [c.name for c in copy.list_clusters()] == ["eks-a", "gke-b"]
    assert [r.detail for r in copy.audit()] == [f"#{n}" for n in range(5)]
    again = regatta(target, "restore", "--input", str(backup))
    assert again.returncode == 2 and "is not empty" in again.stderr


def test_a_restored_trail_that_was_changed_or_cut_short_does_not_verify(source, tmp_path):
    inventory, env = source
    backup = tmp_path / "inventory.backup"
    assert regatta(env, "backup", "--output", str(backup)).returncode == 0
    lines = backup.read_text().splitlines()
    edited = [line.replace('"detail": "#2"', '"detail": "#2 (nothing happened)"') for line in lines]
    (tmp_path / "edited.backup").write_text("\n".join(edited) + "\n")
    changed = regatta({**env, "REGATTA_DATABASE_URL": f"sqlite:///{tmp_path / 'edited.db'}"}, "restore", "--input",
                      str(tmp_path / "edited.backup"))
    assert changed.returncode == 1 and "does not hold" in changed.stderr and "record 3" in changed.stderr, changed.stderr
    # the last record left out, and the header's counts made to agree: the signed head still knows
    header = json.loads(lines[0])
    header["tables"]["audit_log"] = 4
    last = max(i for i, line in enumerate(lines) if '"table": "audit_log"' in line)
    cut = [json.dumps(header)] + [line for i, line in enumerate(lines[1:], start=1) if i != last]
    (tmp_path / "cut.backup").write_text("\n".join(cut) + "\n")
    short = regatta({**env, "REGATTA_DATABASE_URL": f"sqlite:///{tmp_path / 'cut.db'}"}, "restore", "--input",
                    str(tmp_path / "cut.backup"))
    assert short.returncode == 1 and "does not hold" in short.stderr, short.stdout + short.stderr
    (tmp_path / "torn.backup").write_text("\n".join(lines[:3]) + "\n")  # a file not written whole
    torn_db = {**env, "REGATTA_DATABASE_URL": f"sqlite:///{tmp_path / 'torn.db'}"}
    torn = regatta(torn_db, "restore", "--input", str(tmp_path / "torn.backup"))
    assert torn.returncode == 2 and "cut short" in torn.stderr
    whole = regatta(torn_db, "restore", "--input", str(backup))  # nothing of the torn file stayed: the whole one goes in
    assert whole.returncode == 0, whole.stdout + whole.stderr
    header["revision"] = "0001"
    (tmp_path / "old.backup").write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    older = regatta({**env, "REGATTA_DATABASE_URL": f"sqlite:///{tmp_path / 'old.db'}"}, "restore", "--input",
                    str(tmp_path / "old.backup"))
    assert older.returncode == 2 and "taken at schema revision 0001" in older.stderr


@pytest.mark.postgres
async def test_a_new_stack_on_the_restored_postgresql_database_carries_on(source, tmp_path, client, queue_settings,
                                                                          simulator, add_cluster):
    inventory, env = source
    name = add_cluster("restored")  # a cluster the simulator serves, so an operation can run on it
    inventory.upsert_cluster(Inventory(queue_settings.database_url).get_cluster(name))
    backup = tmp_path / "inventory.backup"
    assert regatta(env, "backup", "--output", str(backup)).returncode == 0
    with postgres_schema("regatta_restore") as url:
        restored = regatta({**env, "REGATTA_DATABASE_URL": url}, "restore", "--input", str(backup))
        assert restored.returncode == 0, restored.stdout + restored.stderr
        stack = replace(queue_settings, database_url=url, audit_key_file=env["REGATTA_AUDIT_KEY_FILE"])
        async with build_worker(client, stack):
            handle = await start(stack, AccessGrantInput(
                cluster=name, role="view", duration_seconds=600, reason="after the restore", requested_by="ana"),
                cluster=Inventory(url).get_cluster(name))
            deadline = time.monotonic() + 30
            while (await handle.query("progress", result_type=dict))["phase"] != "granted":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            await handle.execute_update("revoke", {"requested_by": "ana", "reason": "drill done"}, result_type=dict)
            await handle.result()
        carried = Inventory(url, audit_keys=inventory.audit_keys)
        trail = carried.audit()
        assert len(trail) > 5 and trail[5].operation == "access"  # new records after the restored ones, ids past them
        assert carried.verify_audit().ok
        verified = regatta({**env, "REGATTA_DATABASE_URL": url}, "audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
