"""The CLI driven as an operator drives it, against the real dev server, simulator and worker:
what it prints, and the exit codes scripts rely on (0 done, 1 failed, 2 refused, 3 unreachable)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

from tests.conftest import REGATTA, set_faults, sim_report


async def regatta(settings, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `regatta ARGS` in a child process without blocking the worker on this loop."""
    environment = {**os.environ, **settings.as_env(), "COLUMNS": "200", **(env or {})}
    process = await asyncio.create_subprocess_exec(
        REGATTA, *args, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())


async def status_until(settings, operation_id: str, check, *, timeout: float = 60) -> dict:
    """Poll where an operation stands in this process (the same status `op status --output json`
    prints, read by the same function), then ask the CLI once and return what it printed. A CLI
    start per poll cost the suite most of a core."""
    from regatta.temporal.operations import status

    deadline = asyncio.get_running_loop().time() + timeout
    while not check(await status(settings, operation_id)):
        assert asyncio.get_running_loop().time() < deadline, f"{operation_id} never got there"
        await asyncio.sleep(0.1)
    shown = await regatta(settings, "op", "status", operation_id, "--output", "json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


async def test_clusters_list_shows_the_fleet_and_filters_by_labels(queue_settings, add_cluster):
    name = add_cluster("list", env="canary")
    listed = await regatta(queue_settings, "clusters", "list", "--output", "json", "--selector", "env=canary")
    assert listed.returncode == 0, listed.stderr
    found = {c["name"]: c for c in json.loads(listed.stdout)}
    assert name in found and all(c["labels"]["env"] == "canary" for c in found.values())
    # two pools of three m5.large at 0.096 an hour, and EKS's 0.10 control plane, 730 hours a month
    assert found[name]["estimated_cost"] == {"hourly": 0.676, "monthly": 493.48, "currency": "USD", "unpriced": []}
    assert found[name]["provider"] == "eks" and found[name]["control_plane_version"] == "1.30"

    table = await regatta(queue_settings, "clusters", "list", "--selector", "env=canary", "--refresh")
    assert table.returncode == 0 and name in table.stdout and "healthy" in table.stdout

    bad = await regatta(queue_settings, "clusters", "list", "--selector", "env")
    assert bad.returncode == 2 and "key=value" in bad.stderr


async def test_clusters_list_shows_the_estimated_cost_from_the_price_list_or_a_price_file(
        queue_settings, add_cluster, tmp_path):
    name = add_cluster("cost", env="sandbox")
    table = await regatta(queue_settings, "clusters", "list", "--selector", "env=sandbox")
    assert table.returncode == 0 and "USD/MONTH" in table.stdout and "493" in table.stdout, table.stdout + table.stderr
    mine = tmp_path / "prices.yaml"
    mine.write_text("clouds:\n  eks:\n    control_plane_hourly: 0\n    nodes: {m5.large: 0.01}\n")
    cheaper = await regatta(queue_settings, "clusters", "list", "--selector", "env=sandbox", "--output", "json",
                            env={"REGATTA_PRICE_FILE": str(mine)})
    assert {c["name"]: c["estimated_cost"]["monthly"] for c in json.loads(cheaper.stdout)}[name] == 43.8
    grouped = await regatta(queue_settings, "clusters", "cost", "--by", "label:env", "--output", "json")
    assert grouped.returncode == 0 and json.loads(grouped.stdout)["monthly"]["sandbox"] >= 493.48, grouped.stderr
    wrong = await regatta(queue_settings, "clusters", "cost", "--by", "colour")
    assert wrong.returncode == 2 and "label:<key>" in wrong.stderr
    mine.write_text("clouds: [not, a, mapping]\n")
    broken = await regatta(queue_settings, "clusters", "list", env={"REGATTA_PRICE_FILE": str(mine)})
    assert broken.returncode == 2 and "REGATTA_PRICE_FILE" in broken.stderr and "clouds" in broken.stderr


async def test_refusals_exit_2_and_change_nothing(queue_settings, add_cluster, simulator, worker):
    name = add_cluster("refuse")
    jump = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.32")
    assert jump.returncode == 2 and "upgrade to 1.31 first" in jump.stderr
    unknown = await regatta(queue_settings, "upgrade", "start", "no-such-cluster", "--to", "1.31")
    assert unknown.returncode == 2 and "not in the inventory" in unknown.stderr
    strategy = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.31", "--strategy", "yolo")
    assert strategy.returncode == 2 and "'surge', 'blue_green'" in strategy.stderr
    control = await regatta(queue_settings, "op", "pause", "cluster-no-such-cluster")
    assert control.returncode == 2 and "cluster-no-such-cluster" in control.stderr
    status = await regatta(queue_settings, "op", "status", "cluster-no-such-cluster")
    assert status.returncode == 2 and "no operation cluster-no-such-cluster" in status.stderr
    output = await regatta(queue_settings, "clusters", "list", "--output", "yaml")
    assert output.returncode == 2 and "'table', 'json'" in output.stderr
    fleet = await regatta(queue_settings, "clusters", "import", "/nonexistent/fleet.yaml")
    assert fleet.returncode == 2 and "does not exist" in fleet.stderr
    everything = jump.stderr + unknown.stderr + strategy.stderr + control.stderr + status.stderr + output.stderr + fleet.stderr
    assert "Traceback" not in everything
    state = sim_report(simulator, name)["clusters"][name]
    assert state["control_plane_version"] == "1.30" and not any(n["unschedulable"] for n in state["nodes"].values())


async def test_an_unreachable_temporal_exits_3(queue_settings):
    result = await regatta(queue_settings, "op", "status", "cluster-x", env={"REGATTA_TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert result.returncode == 3 and "cannot reach Temporal" in result.stderr


async def test_upgrade_start_wait_then_status_and_audit(queue_settings, add_cluster, simulator, worker):
    name = add_cluster("cli")
    run = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.31", "--strategy", "blue_green",
                        "--ticket", "CHG-42", "--wait", "--poll-interval", "0.05", "--requested-by", "sre-cli")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"started cluster-{name}" in run.stdout and "pool pool0" in run.stdout
    assert "runs 1.31 on the control plane and every node pool" in run.stdout

    status = await regatta(queue_settings, "op", "status", f"cluster-{name}", "--output", "json")
    described = json.loads(status.stdout)
    assert described["status"] == "COMPLETED" and described["progress"]["phase"] == "succeeded"
    assert [p["status"] for p in described["progress"]["pools"]] == ["done", "done"]

    trail = json.loads((await regatta(queue_settings, "audit", "list", "--cluster", name, "--output", "json")).stdout)
    assert trail[0]["requested_by"] == "sre-cli" and trail[0]["ticket"] == "CHG-42"
    assert trail[-1]["outcome"] == "succeeded"

    again = await regatta(queue_settings, "op", "abort", f"cluster-{name}")
    assert again.returncode == 2 and "already" in again.stderr.lower() + again.stdout.lower()


async def test_a_failed_upgrade_exits_1_and_status_says_why(queue_settings, add_cluster, simulator, worker):
    name = add_cluster("clifail")
    set_faults(simulator, name, blocking_pdbs=["shop/payments-pdb"])
    run = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.31", "--strategy", "blue_green",
                        "--wait", "--poll-interval", "0.05", "--drain-timeout", "1")
    assert run.returncode == 1
    assert "shop/payments-pdb" in run.stderr
    status = await regatta(queue_settings, "op", "status", f"cluster-{name}")
    assert status.returncode == 0 and "FAILED" in status.stdout and "shop/payments-pdb" in status.stdout


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


async def test_failover_and_failback_from_the_cli_with_their_refusals(queue_settings, simulator, inventory, worker):
    from tests.integration.test_disaster_recovery import Pair

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
    assert pair.primary in table.stdout and pair.standby in table.stdout and "DR pairs" in table.stdout
    assert serving[pair.primary] == "standby"
    again = await regatta(queue_settings, "failover", pair.primary, "--to", pair.standby)
    assert again.returncode == 2 and "fail back first" in again.stderr

    back = await regatta(queue_settings, "failback", pair.primary, "--wait", *fast)
    assert back.returncode == 0, back.stderr
    assert "back on standby" in back.stdout
    unpair = await regatta(queue_settings, "dr", "unpair", pair.primary)
    assert unpair.returncode == 0 and "dr-role" not in inventory.get_cluster(pair.standby).labels


async def test_wave_plan_only_start_and_refusals(queue_settings, add_cluster, worker, tmp_path, simulator):
    import uuid

    tag = uuid.uuid4().hex[:6]
    canary = add_cluster("wvcli", env="canary", labels={"wave": tag}, pools=1, nodes=2)
    done = add_cluster("wvcli", env="canary", labels={"wave": tag}, version="1.31", pools=1, nodes=2)
    wave = tmp_path / "wave.yaml"
    wave.write_text(f"""\
name: cli-{tag}
target_version: "1.31"
selector: {{labels: {{wave: "{tag}"}}}}
stages:
- name: canary
  selector: {{environment: canary}}
upgrade_settings: {{poll_interval_seconds: 0.05, health_gate_timeout_seconds: 20, activity_heartbeat_timeout_seconds: 5}}
""")
    plan = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--plan-only")
    assert plan.returncode == 0, plan.stderr
    assert f"cli-{tag} to 1.31: 2 clusters in 1 stages" in plan.stdout
    assert canary in plan.stdout and done in plan.stdout and "at_target" in plan.stdout

    started = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--wait", "--requested-by", "sre-alice")
    assert started.returncode == 0, started.stderr
    assert f"cli-{tag} done: 1 at_target, 1 succeeded" in started.stdout
    assert sim_report(simulator, canary)["clusters"][canary]["control_plane_version"] == "1.31"
    status = await regatta(queue_settings, "op", "status", f"wave-cli-{tag}")
    assert status.returncode == 0 and "canary" in status.stdout and "PatchWave: COMPLETED" in status.stdout

    wave.write_text(wave.read_text().replace("- name: canary", "- name: canary\n  concurrency: 0"))
    bad = await regatta(queue_settings, "wave", "start", "--file", str(wave))
    assert bad.returncode == 2 and f"{wave}:6: stages.0.concurrency: Input should be greater than or equal to 1" in bad.stderr
    both = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--to", "1.31")
    assert both.returncode == 2 and "not both" in both.stderr
    neither = await regatta(queue_settings, "wave", "start")
    assert neither.returncode == 2 and "--file wave.yaml, or --selector" in neither.stderr
    quick = await regatta(queue_settings, "wave", "start", "--selector", f"wave={tag}", "--to", "1.31", "--plan-only")
    assert quick.returncode == 0 and "2 clusters in 1 stages" in quick.stdout and "Traceback" not in bad.stderr + quick.stderr


async def test_patch_schedules_fire_on_their_calendar_skip_freezes_and_sweeps_record_capacity(
        queue_settings, add_cluster, worker, tmp_path, client):
    import uuid
    from datetime import UTC, datetime, timedelta

    tag = uuid.uuid4().hex[:6]
    cluster = add_cluster("sched", env="dev", labels={"wave": tag}, pools=1, nodes=2)
    now = datetime.now(UTC)
    wave = tmp_path / "wave.yaml"
    wave.write_text(f"""\
name: sched-{tag}
target_version: "1.31"
selector: {{labels: {{wave: "{tag}"}}}}
stages: [{{name: all}}]
freezes: [{{name: launch, start: "{(now - timedelta(hours=1)).isoformat()}", end: "{(now + timedelta(days=1)).isoformat()}"}}]
""")
    created = await regatta(queue_settings, "schedule", "create", tag, "--file", str(wave), "--days", "tue",
                            "--week-of-month", "2", "--at", "02:00", "--timezone", "Europe/Berlin")
    assert created.returncode == 0, created.stderr
    assert f"created schedule patch-{tag}" in created.stdout and "week 2 tue 02:00 Europe/Berlin" in created.stdout
    listing = await regatta(queue_settings, "schedule", "list", "--output", "json")
    assert listing.returncode == 0, listing.stderr
    listed = json.loads(listing.stdout)
    mine = next(s for s in listed if s["id"] == f"patch-{tag}")
    for fire in mine["next"]:  # the second Tuesday of a month, 02:00 in Berlin
        local = datetime.fromisoformat(fire).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
        assert local.weekday() == 1 and 8 <= local.day <= 14 and (local.hour, local.minute) == (2, 0)

    again = await regatta(queue_settings, "schedule", "create", tag, "--file", str(wave), "--days", "tue")
    assert again.returncode == 2 and "exists already" in again.stderr
    for bad, says in ((["--days", "tuesday"], "days must be among"), (["--days", "tue", "--at", "25:00"], "not a time of day"),
                      (["--days", "tue", "--timezone", "Mars/Base"], "unknown time zone")):
        refused = await regatta(queue_settings, "schedule", "create", f"x{tag}", "--file", str(wave), *bad)
        assert refused.returncode == 2 and says in refused.stderr, refused.stderr

    # Fired during the freeze, the wave ends at once and says why; the cluster is untouched.
    assert (await regatta(queue_settings, "schedule", "trigger", f"patch-{tag}")).returncode == 0
    run = None
    for _ in range(100):
        runs = [w async for w in client.list_workflows('WorkflowType = "PatchWave"') if w.id.startswith(f"wave-sched-{tag}")]
        if runs:
            run = runs[0]
            break
        await asyncio.sleep(0.1)
    assert run is not None, "the schedule started no wave"
    result = await client.get_workflow_handle(run.id).result()
    assert result["outcome"] == "not_started" and "the freeze launch is in force" in result["message"]

    assert (await regatta(queue_settings, "schedule", "pause", f"patch-{tag}")).returncode == 0
    paused = json.loads((await regatta(queue_settings, "schedule", "list", "--output", "json")).stdout)
    assert next(s for s in paused if s["id"] == f"patch-{tag}")["paused"]
    assert (await regatta(queue_settings, "schedule", "delete", f"patch-{tag}")).returncode == 0
    gone = await regatta(queue_settings, "schedule", "delete", f"patch-{tag}")
    assert gone.returncode == 2 and "no schedule" in gone.stderr

    sweep = await regatta(queue_settings, "schedule", "sweep", "--every-minutes", "60", "--selector", f"wave={tag}")
    assert sweep.returncode == 0, sweep.stderr
    try:
        assert (await regatta(queue_settings, "schedule", "trigger", "fleet-sweep")).returncode == 0
        from regatta.inventory import Inventory

        swept = Inventory(queue_settings.database_url)
        for _ in range(200):  # polled in this process; the CLI is asked once it is there
            if swept.get_cluster(cluster).pods_capacity is not None:
                break
            await asyncio.sleep(0.1)
        record = {r["name"]: r for r in json.loads((await regatta(queue_settings, "clusters", "list", "--output", "json",
                                                                 "--selector", f"wave={tag}")).stdout)}[cluster]
        assert record["pods_capacity"] == 2 * 29 and record["health"] == "healthy"
        table = await regatta(queue_settings, "clusters", "list", "--selector", f"wave={tag}")
        assert f"/{2 * 29}" in table.stdout
    finally:
        await regatta(queue_settings, "schedule", "delete", "fleet-sweep")


async def test_sim_clock_moves_the_calendar_that_plans_read_and_refuses_nonsense(
        queue_settings, add_cluster, simulator, sim_clock, tmp_path):
    import uuid

    tag = uuid.uuid4().hex[:6]
    cluster = add_cluster("wvclk", env="prod", labels={"wave": tag}, pools=1, nodes=1)
    wave = tmp_path / "wave.yaml"
    wave.write_text(f"""\
name: clock-{tag}
target_version: "1.31"
selector: {{labels: {{wave: "{tag}"}}}}
stages: [{{name: prod}}]
maintenance_windows: [{{days: [tue], start: "02:00", duration_minutes: 60, timezone: UTC}}]
""")
    set_to = await regatta(queue_settings, "sim-clock", "--set", "2026-12-07T23:00:00Z")  # a Monday night
    assert set_to.returncode == 0 and "fleet clock: 2026-12-07T23:00" in set_to.stdout
    plan = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--plan-only")
    assert plan.returncode == 0 and cluster in plan.stdout and "2026-12-08 02:00" in plan.stdout, plan.stdout
    moved = await regatta(queue_settings, "sim-clock", "--advance", "4h")  # Tuesday 03:00, inside the window
    assert moved.returncode == 0 and "fleet clock: 2026-12-08T03:00" in moved.stdout
    plan = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--plan-only")
    assert plan.returncode == 0 and "2026-12-08 03:00" in plan.stdout, plan.stdout

    unit = await regatta(queue_settings, "sim-clock", "--advance", "2 weeks")
    assert unit.returncode == 2 and "e.g. 90m, 2h or 3d" in unit.stderr
    both = await regatta(queue_settings, "sim-clock", "--advance", "2h", "--wall")
    assert both.returncode == 2 and "one of --advance, --set or --wall" in both.stderr
    naive = await regatta(queue_settings, "sim-clock", "--set", "2026-12-08T03:00:00")
    assert naive.returncode == 2 and "with a time zone" in naive.stderr
    real = await regatta(queue_settings, "sim-clock", env={"REGATTA_SIM_URL": ""})
    assert real.returncode == 2 and "a real fleet runs on the wall clock" in real.stderr
    back = await regatta(queue_settings, "sim-clock", "--wall")
    assert back.returncode == 0 and "wall clock +0s" in back.stdout


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
    assert {r.requested_by for r in inventory.audit(cluster=staging)} == {name}  # the token is who asked

    other_env = await regatta(queue_settings, "upgrade", "start", prod, "--to", "1.31", "--ticket", f"CHG-x-{name}",
                              env=env)
    assert other_env.returncode == 2 and "scoped to staging and may not start in prod" in other_env.stderr
    no_ticket = await regatta(queue_settings, "upgrade", "start", staging, "--to", "1.31", env=env)
    assert no_ticket.returncode == 2 and "--ticket" in no_ticket.stderr
    tokenless = await regatta(queue_settings, "op", "status", f"cluster-{staging}",
                              env={"REGATTA_API_URL": env["REGATTA_API_URL"], "REGATTA_TOKEN": ""})
    assert tokenless.returncode == 2 and "REGATTA_TOKEN is not" in tokenless.stderr
    down = await regatta(queue_settings, "op", "status", f"cluster-{staging}",
                         env={**env, "REGATTA_API_URL": "http://127.0.0.1:9"})
    assert down.returncode == 3 and "does not answer" in down.stderr
    assert sim_report(simulator, prod)["clusters"][prod]["control_plane_version"] == "1.30"


async def test_holds_and_the_forecast_from_the_cli(queue_settings, add_cluster, simulator, sim_clock, worker, tmp_path):
    """`regatta cluster hold|release`, the hold in `clusters list`, a direct upgrade refused on a
    held cluster, and `wave plan` / `wave forecast` answering when each cluster will be touched."""
    import uuid
    from datetime import datetime, timedelta

    tag = uuid.uuid4().hex[:6]
    sim_clock(now="2026-12-07T09:00:00+00:00")  # a Monday
    free = add_cluster("wvfc", env="prod", labels={"wave": tag}, pools=1, nodes=1)
    held = add_cluster("wvfc", env="prod", labels={"wave": tag}, pools=1, nodes=1)
    stray = add_cluster("wvfc", env="dev", labels={"wave": tag}, pools=1, nodes=1)

    hold = await regatta(queue_settings, "cluster", "hold", held, "--until", "2026-12-09T09:00:00Z", "--reason", "year-end audit",
                         "--held-by", "sre-maria")
    assert hold.returncode == 0 and f"{held} is held until 2026-12-09 09:00Z by sre-maria: year-end audit" in hold.stdout
    listed = await regatta(queue_settings, "clusters", "list", "--selector", f"wave={tag}")
    assert listed.returncode == 0 and "until 2026-12-09 09:00Z" in listed.stdout and "year-end audit" in listed.stdout
    as_json = json.loads((await regatta(queue_settings, "clusters", "list", "--selector", f"wave={tag}", "--output", "json")).stdout)
    assert {c["name"]: (c["hold"] or {}).get("reason") for c in as_json} == {free: None, held: "year-end audit", stray: None}

    refused = await regatta(queue_settings, "upgrade", "start", held, "--to", "1.31")
    assert refused.returncode == 2 and "is held until 2026-12-09 09:00Z by sre-maria: year-end audit" in refused.stderr
    assert "--override-hold" in refused.stderr

    wave = tmp_path / "wave.yaml"
    wave.write_text(f"""\
name: fc-{tag}
target_version: "1.31"
selector: {{labels: {{wave: "{tag}"}}}}
estimated_upgrade_minutes: 30
stages: [{{name: prod, selector: {{environment: prod}}}}]
""")
    plan = await regatta(queue_settings, "wave", "plan", "--file", str(wave), "--output", "json")
    assert plan.returncode == 0, plan.stderr
    told = {c["cluster"]: c for c in json.loads(plan.stdout)["clusters"]}
    first, done = (datetime.fromisoformat(told[free][k]) for k in ("earliest_touch", "expected_done"))
    assert first.strftime("%Y-%m-%d %H:%M") == "2026-12-07 09:00" and done - first == timedelta(minutes=30)  # the clock runs on
    assert told[held]["earliest_touch"] == "2026-12-09T09:00:00Z" and "year-end audit" in told[held]["because"]
    assert told[stray]["earliest_touch"] is None and "prod needs environment prod (it is dev)" in told[stray]["because"]
    one = await regatta(queue_settings, "wave", "plan", "--file", str(wave), "--cluster", held)
    assert one.returncode == 0 and "Wed 2026-12-09 09:00" in one.stdout and free not in one.stdout
    nobody = await regatta(queue_settings, "wave", "plan", "--file", str(wave), "--cluster", "joined-later")
    assert nobody.returncode == 0 and "joined-later is not in this wave" in nobody.stdout

    started = await regatta(queue_settings, "wave", "start", "--file", str(wave))
    assert started.returncode == 0, started.stderr
    def free_done_held_waits(described: dict) -> bool:
        entries = {c["name"]: c["status"] for s in (described["progress"] or {}).get("stages", []) for c in s["clusters"]}
        return entries.get(free) == "succeeded" and entries.get(held) == "held"

    await status_until(queue_settings, f"wave-fc-{tag}", free_done_held_waits)
    asked = await regatta(queue_settings, "wave", "forecast", f"wave-fc-{tag}", "--output", "json")
    found = {c["cluster"]: c for c in json.loads(asked.stdout)["clusters"]}
    assert found[free]["status"] == "succeeded" and found[held]["status"] == "held", asked.stdout
    assert found[held]["earliest_touch"] == "2026-12-09T09:00:00Z", asked.stdout
    missing = await regatta(queue_settings, "wave", "forecast", "wave-no-such-wave")
    assert missing.returncode == 2 and "no operation wave-no-such-wave" in missing.stderr

    released = await regatta(queue_settings, "cluster", "release", held, "--released-by", "sre-maria")
    assert released.returncode == 0 and "released" in released.stdout
    again = await regatta(queue_settings, "cluster", "release", held)
    assert again.returncode == 2 and "is not held" in again.stderr
    past = await regatta(queue_settings, "cluster", "hold", held, "--until", "2026-01-01T00:00:00Z", "--reason", "x")
    assert past.returncode == 2 and "has already passed" in past.stderr
    garbled = await regatta(queue_settings, "cluster", "hold", held, "--until", "next week", "--reason", "x")
    assert garbled.returncode == 2 and "give a time with a zone" in garbled.stderr
    relative = await regatta(queue_settings, "cluster", "hold", stray, "--until", "90m", "--reason", "migration")
    assert relative.returncode == 0 and f"{stray} is held until 2026-12-07 10:3" in relative.stdout
    no_reason = await regatta(queue_settings, "upgrade", "start", held, "--to", "1.31", "--override-hold", " ")
    assert no_reason.returncode == 2 and "needs a reason" in no_reason.stderr
    sim_clock(advance_seconds=2 * 86400 + 60)  # past the time the wave was told: the held cluster goes
    described = await status_until(queue_settings, f"wave-fc-{tag}", lambda d: d["status"] != "RUNNING")
    assert described["progress"]["phase"] == "succeeded", described
    assert sim_report(simulator, held)["clusters"][held]["control_plane_version"] == "1.31"


async def test_a_scheduled_wave_leaves_a_held_cluster_alone_and_upgrades_the_rest(
        queue_settings, add_cluster, worker, tmp_path, client, simulator):
    import uuid
    from datetime import UTC, datetime, timedelta

    tag = uuid.uuid4().hex[:6]
    free = add_cluster("schold", env="dev", labels={"wave": tag}, pools=1, nodes=1)
    held = add_cluster("schold", env="dev", labels={"wave": tag}, pools=1, nodes=1)
    hold = await regatta(queue_settings, "cluster", "hold", held, "--until", "3d", "--reason", "data migration")
    assert hold.returncode == 0, hold.stderr
    wave = tmp_path / "wave.yaml"
    wave.write_text(f"""\
name: schold-{tag}
target_version: "1.31"
selector: {{labels: {{wave: "{tag}"}}}}
stages: [{{name: all, concurrency: 2}}]
upgrade_settings: {{poll_interval_seconds: 0.05, health_gate_timeout_seconds: 20, activity_heartbeat_timeout_seconds: 5}}
""")
    created = await regatta(queue_settings, "schedule", "create", tag, "--file", str(wave), "--days", "tue")
    assert created.returncode == 0, created.stderr
    try:
        assert (await regatta(queue_settings, "schedule", "trigger", f"patch-{tag}")).returncode == 0
        entries = {}
        for _ in range(300):
            runs = [w async for w in client.list_workflows('WorkflowType = "PatchWave"') if w.id.startswith(f"wave-schold-{tag}")]
            if runs:
                progress = await client.get_workflow_handle(runs[0].id).query("progress")
                entries = {c["name"]: c for s in progress["stages"] for c in s["clusters"]}
                if entries.get(free, {}).get("status") == "succeeded":
                    break
            await asyncio.sleep(0.1)
        assert entries[free]["status"] == "succeeded" and entries[held]["status"] == "held", entries
        assert "data migration" in entries[held]["detail"]
        assert datetime.fromisoformat(entries[held]["earliest_start"]) > datetime.now(UTC) + timedelta(days=2)
        assert sim_report(simulator, held)["clusters"][held]["control_plane_version"] == "1.30"
        await client.get_workflow_handle(runs[0].id).execute_update("abort", {"reason": "test over"})
    finally:
        await regatta(queue_settings, "schedule", "delete", f"patch-{tag}")
