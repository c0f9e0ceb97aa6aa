"""The CLI driven as an operator drives it, for the lifecycle beyond upgrades: provisioning, decommissioning,
failover and failback, node image upgrades, the audit trail's verification and the CLI through the API as its
token (the same helpers as test_cli.py; a file of its own so that the suite's processes share the work)."""

from __future__ import annotations

import asyncio
import json

from tests.cli_runs import regatta, status_until
from tests.conftest import sim_report


async def test_provision_from_a_file(queue_settings, simulator, worker, tmp_path):
    import uuid

    name = f"gke-cli-{uuid.uuid4().hex[:6]}"
    spec = tmp_path / "cluster.yaml"
    spec.write_text(
        f"name: {name}\nprovider: gke\nregion: europe-west4\nversion: '1.31'\nenvironment: staging\n"
        "labels: {team: search}\nnode_pools:\n- {name: general, node_count: 2, node_size: e2-standard-4}\n"
        "ready_timeout_seconds: 20\n"
    )
    built = await regatta(queue_settings, "provision", "--file", str(spec), "--ticket", "CHG-9", "--wait", "--poll-interval", "0.05")
    assert built.returncode == 0, built.stdout + built.stderr
    assert f"{name} is up" in built.stdout
    assert sim_report(simulator, name)["clusters"][name]["control_plane_version"] == "1.31"

    again = await regatta(queue_settings, "provision", "--file", str(spec))
    assert again.returncode == 2 and "already in the inventory" in again.stderr
    spec.write_text(spec.read_text().replace("europe-west4", "mars-1").replace(name, name + "x"))
    region = await regatta(queue_settings, "provision", "--file", str(spec))
    assert region.returncode == 2 and "not allowed for gke" in region.stderr
    missing = await regatta(queue_settings, "provision", "--file", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert "Traceback" not in again.stderr + region.stderr + missing.stderr


async def test_decommission_needs_a_second_person(queue_settings, add_cluster, simulator, worker):
    name = add_cluster("clidel", workloads=[{"name": "coredns", "namespace": "kube-system", "replicas": 2}])
    busy = add_cluster("clibusy")
    refused = await regatta(queue_settings, "decommission", busy, "--force-empty")
    assert refused.returncode == 2 and "needs --reason" in refused.stderr

    started = await regatta(queue_settings, "decommission", name, "--ticket", "CHG-D", "--requested-by", "alice",
                            "--poll-interval", "0.05")
    assert started.returncode == 0 and f"regatta op approve cluster-{name}" in started.stdout
    assert "it waits for approval by someone else" in started.stdout, started.stdout  # said once its checks passed
    status = await status_until(queue_settings, f"cluster-{name}", lambda d: d["progress"]["phase"] == "awaiting_approval")
    assert status["progress"]["phase"] == "awaiting_approval"
    own = await regatta(queue_settings, "op", "approve", f"cluster-{name}", "--approver", "alice")
    assert own.returncode == 2 and "a second person must" in own.stderr
    other = await regatta(queue_settings, "op", "approve", f"cluster-{name}", "--approver", "bob", "--comment", "ok")
    assert other.returncode == 0, other.stderr
    for _ in range(100):
        if name not in sim_report(simulator, name)["clusters"]:
            break
        await asyncio.sleep(0.1)
    assert name not in sim_report(simulator, name)["clusters"]


async def test_a_decommission_its_first_check_refuses_says_so_and_exits_1_not_that_it_waits(
        queue_settings, add_cluster, worker):
    name = add_cluster("clifull")  # its workloads run outside the platform's namespaces
    started = await regatta(queue_settings, "decommission", name, "--ticket", "CHG-E", "--requested-by", "alice")
    assert started.returncode == 1, started.stdout + started.stderr
    assert f"{name} still runs workloads" in started.stderr and "pass force_empty" in started.stderr
    assert "waits for approval" not in started.stdout and f"cluster-{name} started and ended at once" in started.stderr
    shown = await regatta(queue_settings, "op", "status", f"cluster-{name}", "--output", "json")
    assert shown.returncode == 1, shown.stdout + shown.stderr  # a failed operation is a failure here too
    found = json.loads(shown.stdout)
    assert (found["status"], found["outcome"], found["succeeded"]) == ("FAILED", "failed", False)
    for verb in ("status", "pause"):  # an id with its last character lost: the refusal names the one meant
        misspelt = await regatta(queue_settings, "op", verb, f"cluster-{name}"[:-1])
        said = " ".join(misspelt.stderr.split())
        assert misspelt.returncode == 2 and f"did you mean cluster-{name}" in said, said
    table = await regatta(queue_settings, "op", "status", f"cluster-{name}")
    assert table.returncode == 1 and "FAILED → failed" in table.stdout and "still runs workloads" in table.stdout
    listed = await regatta(queue_settings, "op", "list", "--limit", "200", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    [mine] = [o for o in json.loads(listed.stdout) if o["id"] == f"cluster-{name}"]
    assert (mine["type"], mine["cluster"], mine["outcome"], mine["succeeded"]) == (
        "DecommissionCluster", name, "failed", False)
    running = await regatta(queue_settings, "op", "list", "--running", "--limit", "200", "--output", "json")
    assert running.returncode == 0 and f"cluster-{name}" not in running.stdout
    version = await regatta(queue_settings, "--version")
    assert version.returncode == 0 and version.stdout.startswith("regatta 0."), version.stdout + version.stderr


async def test_failover_and_failback_from_the_cli_with_their_refusals(queue_settings, simulator, inventory, worker):
    from tests.integration.dr_pairs import Pair

    pair = Pair(simulator, inventory)
    fast = ["--poll-interval", "0.05", "--requested-by", "sre-alice"]
    wrong = await regatta(queue_settings, "failover", pair.primary, "--to", "eks-elsewhere")
    assert wrong.returncode == 2 and f"the standby of {pair.primary} is {pair.standby}, not eks-elsewhere" in wrong.stderr
    reason = await regatta(queue_settings, "failover", pair.primary, "--to", pair.standby, "--override-capacity", " ")
    assert reason.returncode == 2 and "needs a reason" in reason.stderr
    timeout = await regatta(queue_settings, "failover", pair.primary, "--to", pair.standby, "--fence-timeout", "0")
    assert timeout.returncode == 2 and "fence_timeout_seconds" in timeout.stderr and "greater than 0" in timeout.stderr
    early = await regatta(queue_settings, "failback", pair.primary)
    assert early.returncode == 2 and "nothing to fail back" in early.stderr

    drill = await regatta(queue_settings, "failover", pair.primary, "--to", pair.standby, "--drill", "--wait", *fast)
    assert drill.returncode == 0, drill.stderr
    assert "drill:" in drill.stdout and "RTO" in drill.stdout

    moved = await regatta(queue_settings, "failover", pair.primary, "--to", pair.standby, "--ticket", "INC-9", "--wait", *fast)
    assert moved.returncode == 0, moved.stderr
    assert f"{pair.standby} serves {pair.primary}'s workloads" in moved.stdout
    status = await regatta(queue_settings, "op", "status", f"cluster-{pair.primary}")
    assert f"{pair.primary} → {pair.standby}" in status.stdout and "RTO" in status.stdout
    listed = await regatta(queue_settings, "dr", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr  # it raised NameError in both outputs once
    serving = {p["primary"]: p["serving"] for p in json.loads(listed.stdout)}
    table = await regatta(queue_settings, "dr", "list")
    assert table.returncode == 0, table.stderr
    assert pair.primary in table.stdout and pair.standby in table.stdout and "DR pair" in table.stderr  # its title
    assert serving[pair.primary] == "standby"
    again = await regatta(queue_settings, "failover", pair.primary, "--to", pair.standby)
    assert again.returncode == 2 and "fail back first" in again.stderr

    back = await regatta(queue_settings, "failback", pair.primary, "--wait", *fast)
    assert back.returncode == 0, back.stderr
    assert "back on standby" in back.stdout
    unpair = await regatta(queue_settings, "dr", "unpair", pair.primary)
    assert unpair.returncode == 0 and "dr-role" not in inventory.get_cluster(pair.standby).labels


async def test_node_image_upgrades_from_the_cli_and_their_refusals(queue_settings, add_cluster, simulator, worker, tmp_path):
    import uuid

    name = add_cluster("imgcli", version="1.31", pools=1, nodes=2, node_image="1.31.0-20260101")
    wrong = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.31", "--node-image", "1.30.2-20261101")
    assert wrong.returncode == 2 and "--node-image: 1.30.2-20261101 is not a node image of Kubernetes 1.31 on EKS" in wrong.stderr
    own = add_cluster("imgown", provider="kubeconfig", version="1.31", pools=1, nodes=1)
    hardware = await regatta(queue_settings, "upgrade", "start", own, "--to", "1.31", "--node-image", "x")
    assert hardware.returncode == 2 and "no cloud node image" in hardware.stderr
    assert {n["image"] for n in sim_report(simulator, name)["clusters"][name]["nodes"].values()} == {"1.31.0-20260101"}

    done = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.31", "--node-image", "1.31.2-20261101",
                         "--wait", "--poll-interval", "0.05")
    assert done.returncode == 0, done.stderr
    assert "on node image 1.31.2-20261101" in done.stdout
    assert {n["image"] for n in sim_report(simulator, name)["clusters"][name]["nodes"].values()} == {"1.31.2-20261101"}

    tag = uuid.uuid4().hex[:6]
    imaged = add_cluster("imgwave", env="canary", labels={"wave": tag}, version="1.31", pools=1, nodes=1)
    wave = tmp_path / "wave.yaml"
    wave.write_text(f"""\
name: img-{tag}
target_version: "1.31"
node_images: {{eks: 1.31.2-20261101}}
selector: {{labels: {{wave: "{tag}"}}}}
stages: [{{name: canary}}]
""")
    plan = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--plan-only")
    assert plan.returncode == 0 and "(node images: eks 1.31.2-20261101)" in plan.stdout and imaged in plan.stdout
    wave.write_text(wave.read_text().replace("eks: 1.31.2-20261101", "eks: 1.30.2-20261101"))
    bad = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--plan-only")
    assert bad.returncode == 2 and "node_images.eks: 1.30.2-20261101 is not a node image of Kubernetes 1.31" in bad.stderr


async def test_audit_verify_exits_0_on_an_intact_trail_and_1_naming_the_edited_record(queue_settings, tmp_path):
    import sqlalchemy

    from regatta.inventory import Inventory
    from regatta.models import OperationRecord

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    inventory = Inventory(url)
    for n in range(1, 4):
        inventory.append_audit(OperationRecord(operation_id="cluster-x", operation="ClusterUpgrade", cluster="x",
                                               requested_by="sre-alice", ticket="CHG-9", action="upgrade",
                                               outcome="started" if n == 1 else "succeeded", detail=f"line {n}"))
    env = {"REGATTA_DATABASE_URL": url}
    intact = await regatta(queue_settings, "audit", "verify", env=env)
    assert intact.returncode == 0 and "audit trail intact: 3 records" in intact.stdout
    listed = await regatta(queue_settings, "audit", "list", "--cluster", "x", env=env)
    assert listed.returncode == 0 and "CHG-9" in listed.stdout and "AT (UTC)" in listed.stdout

    with inventory.engine.begin() as connection:
        connection.execute(sqlalchemy.text("UPDATE audit_log SET outcome = 'failed' WHERE detail = 'line 2'"))
    inventory.close()
    broken = await regatta(queue_settings, "audit", "verify", env=env)
    assert broken.returncode == 1 and "the audit chain breaks at record 2 (1 records before it hold)" in broken.stderr
    assert "edited after it was written" in broken.stderr


async def test_the_cli_goes_through_the_api_as_its_token_when_told_to(queue_settings, inventory, add_cluster, worker,
                                                                        simulator, served_api):
    import uuid

    from regatta.api.tokens import create_token

    staging, prod = add_cluster("cliapi", env="staging", pools=1, nodes=1), add_cluster("cliapi", env="prod", pools=1, nodes=1)
    name = f"cli-{uuid.uuid4().hex[:6]}"
    _, secret = create_token(inventory, name=name, role="operator", environments=["staging"])
    env = {"REGATTA_API_URL": served_api, "REGATTA_TOKEN": secret}

    started = await regatta(queue_settings, "upgrade", "start", staging, "--to", "1.31", "--ticket", f"CHG-{name}",
                            "--wait", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"started cluster-{staging} over the API" in started.stdout and "succeeded" in started.stdout
    status = await regatta(queue_settings, "op", "status", f"cluster-{staging}", "--output", "json", env=env)
    assert status.returncode == 0 and json.loads(status.stdout)["progress"]["phase"] == "succeeded"
    # A script's typed view of the same: the API client's status and the operation's result, as their kind's models.
    from regatta.api.client import ApiClient
    from regatta.models import ClusterUpgradeProgress, ClusterUpgradeResult
    from regatta.rules.operation_catalog import progress_of
    from regatta.temporal.operations import result

    typed = await asyncio.to_thread(ApiClient(served_api, secret).operation, f"cluster-{staging}")
    progress = progress_of(typed)
    assert isinstance(progress, ClusterUpgradeProgress) and progress.phase == "succeeded", typed
    assert typed.succeeded is True and typed.condition is not None and typed.condition.state == "succeeded"
    assert typed.started is not None and typed.closed is not None and typed.closed >= typed.started
    ended = await result(queue_settings, f"cluster-{staging}")
    assert isinstance(ended, ClusterUpgradeResult) and ended.outcome == "succeeded", ended
    assert {r.requested_by for r in inventory.audit(cluster=staging)} == {name}  # the token is who asked
    listed = await regatta(queue_settings, "op", "list", "--limit", "1000", "--output", "json", env=env)
    assert listed.returncode == 0, listed.stderr  # refused over the API before GET /v1/operations
    assert all(o["environment"] == "staging" for o in json.loads(listed.stdout))
    assert f"cluster-{staging}" in {o["id"] for o in json.loads(listed.stdout)}
    table = await regatta(queue_settings, "op", "list", "--limit", "1000", env=env)
    assert table.returncode == 0 and f"cluster-{staging}" in table.stdout and "succeeded" in table.stdout, table.stderr

    other_env = await regatta(queue_settings, "upgrade", "start", prod, "--to", "1.31", "--ticket", f"CHG-x-{name}",
                              env=env)
    assert other_env.returncode == 2 and "no cluster" in other_env.stderr and "that token" in other_env.stderr
    no_ticket = await regatta(queue_settings, "upgrade", "start", staging, "--to", "1.31", env=env)
    assert no_ticket.returncode == 2 and "--ticket" in no_ticket.stderr
    tokenless = await regatta(queue_settings, "op", "status", f"cluster-{staging}",
                              env={"REGATTA_API_URL": env["REGATTA_API_URL"], "REGATTA_TOKEN": ""})
    assert tokenless.returncode == 2 and "REGATTA_TOKEN is not" in tokenless.stderr
    down = await regatta(queue_settings, "op", "status", f"cluster-{staging}",
                         env={**env, "REGATTA_API_URL": "http://127.0.0.1:9"})
    assert down.returncode == 3 and "does not answer" in down.stderr
    assert sim_report(simulator, prod)["clusters"][prod]["control_plane_version"] == "1.30"

