"""The CLI driven as an operator drives it, against the real dev server, simulator and worker:
what it prints, and the exit codes scripts rely on (0 done, 1 failed, 2 refused, 3 unreachable)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.cli_runs import regatta, status_until
from tests.conftest import set_faults, sim_report


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

    # selectors as kubectl -l writes them
    pci = add_cluster("listpci", env="canary", labels={"pci": "yes"})
    sets = await regatta(queue_settings, "clusters", "list", "--output", "json", "--selector", "env in (canary,nope),!pci")
    assert sets.returncode == 0, sets.stderr
    names = {c["name"] for c in json.loads(sets.stdout)}
    assert name in names and pci not in names, names
    bad = await regatta(queue_settings, "clusters", "list", "--selector", "env in canary")
    assert bad.returncode == 2 and "is not a label requirement" in " ".join(bad.stderr.split()), bad.stderr


async def test_a_token_for_an_environment_no_cluster_is_in_is_refused_naming_the_nearest(queue_settings, add_cluster):
    tag = uuid.uuid4().hex[:5]
    add_cluster("tokenv", env=f"canary{tag}")
    typo = await regatta(queue_settings, "token", "create", "--name", f"t-{tag}", "--role", "viewer", "--env", f"canry{tag}")
    said = " ".join(typo.stderr.split())  # the console wraps long lines
    assert typo.returncode == 2 and "did you mean" in said and f"canary{tag}" in said, typo.stderr
    assert "--new-environment" in said and "rgt_" not in typo.stdout  # no token was made
    meant = await regatta(queue_settings, "token", "create", "--name", f"t-{tag}", "--role", "viewer", "--env",
                          f"canry{tag}", "--new-environment")
    assert meant.returncode == 0 and meant.stdout.startswith("rgt_"), meant.stderr
    again = await regatta(queue_settings, "token", "create", "--name", f"t-{tag}", "--role", "viewer", "--env", "*")
    said = " ".join(again.stderr.split())  # the banner's command run twice: the refusal gives a name that is free
    assert again.returncode == 2 and f"choose another name, e.g. --name t-{tag}-2" in said, said


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
    jump = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.29")
    assert jump.returncode == 2 and "cannot be downgraded" in jump.stderr
    unknown = await regatta(queue_settings, "upgrade", "start", "no-such-cluster", "--to", "1.31")
    assert unknown.returncode == 2 and "not in the inventory" in unknown.stderr
    strategy = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.31", "--strategy", "yolo")
    assert strategy.returncode == 2 and "'surge', 'blue_green'" in strategy.stderr
    # an id no other test starts: the dev server is shared, and a decommission test runs `cluster-no-such-cluster`
    never = f"cluster-never-started-{uuid.uuid4().hex[:8]}"
    control = await regatta(queue_settings, "op", "pause", never)
    assert control.returncode == 2 and never in control.stderr
    status = await regatta(queue_settings, "op", "status", never)
    assert status.returncode == 2 and f"no operation {never}" in status.stderr
    output = await regatta(queue_settings, "clusters", "list", "--output", "xml")
    assert output.returncode == 2 and "'table', 'wide', 'json', 'yaml', 'name'" in " ".join(output.stderr.split())
    fleet = await regatta(queue_settings, "clusters", "import", "/nonexistent/fleet.yaml")
    assert fleet.returncode == 2 and "does not exist" in fleet.stderr
    template = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.31", "--launch-template-version", "hardened")
    assert template.returncode == 2 and "give NODE_GROUP=VERSION" in template.stderr
    hooks = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.31", "--hooks-file", "/nonexistent/hooks.yaml")
    assert hooks.returncode == 2 and "--hooks-file /nonexistent/hooks.yaml" in hooks.stderr
    everything = (jump.stderr + unknown.stderr + strategy.stderr + control.stderr + status.stderr + output.stderr + fleet.stderr
                  + template.stderr + hooks.stderr)
    assert "Traceback" not in everything
    state = sim_report(simulator, name)["clusters"][name]
    assert state["control_plane_version"] == "1.30" and not any(n["unschedulable"] for n in state["nodes"].values())


async def test_several_minors_are_planned_before_and_gone_through_one_at_a_time(queue_settings, add_cluster, simulator,
                                                                                 worker):
    name = add_cluster("climinors", version="1.29", pools=1, nodes=1)
    plan = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.31", "--plan-only", "--soak", "30")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    lines = plan.stdout.splitlines()
    assert f"{name}: 1.29 → 1.31 by surge, 2 minors, one at a time" in lines[0]
    assert lines[1].strip().startswith("1.30: readiness for the rest of the path, control plane to 1.30, EKS managed")
    assert "then a soak of 30s" in lines[1] and lines[2].strip().startswith("1.31:") and "soak" not in lines[2]
    assert lines[3].strip().startswith("way back: `regatta upgrade rollback` takes the last minor back within 7 days"), plan.stdout
    nothing = await regatta(queue_settings, "op", "status", f"cluster-{name}")
    assert nothing.returncode == 2, "--plan-only started the upgrade"
    refused = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.28", "--plan-only")
    assert refused.returncode == 2 and "cannot be downgraded" in refused.stderr

    run = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.31", "--soak", "0", "--wait",
                        "--poll-interval", "0.05")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "through 1.30 → 1.31" in run.stdout and "by way of 1.30" in run.stdout
    status = await regatta(queue_settings, "op", "status", f"cluster-{name}")
    assert status.returncode == 0 and "minors: 1.30 (done) → 1.31 (done)" in status.stdout
    assert sim_report(simulator, name)["clusters"][name]["control_plane_version"] == "1.31"

    # and the way back: the last minor taken back (EKS, within its window)
    back = await regatta(queue_settings, "upgrade", "rollback", name, "--reason", "1.31 breaks the ledger", "--wait",
                         "--poll-interval", "0.05")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "rollback of" in back.stdout and f"{name} is back on 1.30" in back.stdout
    status = await regatta(queue_settings, "op", "status", f"cluster-{name}")
    assert status.returncode == 0 and "1.31 → 1.30 because 1.31 breaks the ledger" in status.stdout
    assert sim_report(simulator, name)["clusters"][name]["control_plane_version"] == "1.30"
    again = await regatta(queue_settings, "upgrade", "rollback", name, "--reason", "twice", "--wait", "--poll-interval",
                          "0.05")
    assert again.returncode == 1 and "already a rollback" in again.stdout + again.stderr
    no_reason = await regatta(queue_settings, "upgrade", "rollback", name)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr


async def test_a_blue_green_upgrade_keeping_its_old_pool_goes_back_with_upgrade_rollback(queue_settings, add_cluster,
                                                                                         simulator, worker):
    name = add_cluster("clikeep", provider="gke", pools=1, nodes=1)
    start = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.31", "--strategy", "blue_green",
                          "--keep-old-pools", "120", "--poll-interval", "0.05")
    assert start.returncode == 0, start.stdout + start.stderr
    shown = await status_until(queue_settings, f"cluster-{name}", lambda found: found["progress"]["phase"] == "keeping")
    assert shown["progress"]["kept_pools"] == ["pool0"]
    back = await regatta(queue_settings, "upgrade", "rollback", name, "--reason", "1.31 breaks the ledger", "--wait")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "keeps the old node pools: going back to them" in back.stdout
    assert "went back to pool0 because 1.31 breaks the ledger" in " ".join(back.stdout.split())
    state = sim_report(simulator, name)["clusters"][name]
    assert list(state["node_pools"]) == ["pool0"] and all(n["version"].startswith("v1.30.") for n in state["nodes"].values())


async def test_an_unreachable_temporal_exits_3(queue_settings):
    result = await regatta(queue_settings, "op", "status", "cluster-x", env={"REGATTA_TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert result.returncode == 3 and "cannot reach Temporal" in result.stderr


@pytest.mark.parametrize("strategy", ["blue_green", "surge"])
async def test_upgrade_start_wait_then_status_and_audit(strategy, queue_settings, add_cluster, simulator, worker):
    name = add_cluster("cli")
    run = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.31", "--strategy", strategy,
                        "--ticket", "CHG-42", "--wait", "--poll-interval", "0.05", "--requested-by", "sre-cli")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"started cluster-{name}" in run.stdout and "pool pool0" in run.stdout
    assert "runs 1.31 on the control plane and every node pool" in run.stdout
    # the bars' last frame is where the upgrade ended, not the last poll before it
    last_frame = {line.split()[1]: line for line in run.stdout.splitlines() if line.startswith("pool ")}
    assert all("3/3" in line and "done" in line for line in last_frame.values()), run.stdout

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
    # exit 1 as its start did: a script reading status learns it failed from the code, not only from the words
    assert status.returncode == 1 and "FAILED → failed" in status.stdout and "shop/payments-pdb" in status.stdout


LISTS = (("clusters", "list"), ("op", "list"), ("audit", "list"), ("token", "list"), ("schedule", "list"),
         ("dr", "list"), ("access", "list"), ("placement", "list"), ("policy", "drift", "list"), ("rehearsal", "list"))


async def test_every_list_piped_is_plain_columns_a_grep_finds_whole_names_in(queue_settings, add_cluster):
    """`regatta clusters list | grep eks-prod` as a new user tries it: piped, every list prints its header and one
    line a row, every column whole, nothing cut at 80 columns or drawn in boxes; `-o name` one name a line, `-o
    yaml` YAML."""
    import yaml

    tag = uuid.uuid4().hex[:6]
    long = add_cluster("grep-a-cluster-whose-name-is-longer-than-a-narrow-terminal-is-wide", env="staging",
                       labels={"grep": tag})
    token = f"grep-token-{uuid.uuid4().hex[:6]}-with-a-name-as-long-as-some-are"
    made = await regatta(queue_settings, "token", "create", "--name", token, "--role", "viewer", "--env", "staging")
    assert made.returncode == 0, made.stderr
    narrow = {"COLUMNS": "80"}
    results = await asyncio.gather(*(regatta(queue_settings, *command, env=narrow, cold=True) for command in LISTS))
    for command, shown in zip(LISTS, results, strict=True):
        assert shown.returncode == 0, (command, shown.stderr)
        assert not any(box in shown.stdout for box in "│┃━─┏┗"), (command, shown.stdout[:500])
        first = shown.stdout.splitlines()[0] if shown.stdout else ""
        assert first == first.upper() or first.startswith("no "), (command, first)  # the header comes first
    by = dict(zip(LISTS, results, strict=True))
    assert [line.split()[0] for line in by[("clusters", "list")].stdout.splitlines() if long in line] == [long]
    assert any(line.split()[0] == token for line in by[("token", "list")].stdout.splitlines())
    assert "token" in by[("audit", "list")].stdout and "a month" in by[("clusters", "list")].stderr  # the title
    names = await regatta(queue_settings, "clusters", "list", "-o", "name", "--selector", "env=staging", env=narrow)
    assert names.returncode == 0 and long in names.stdout.splitlines(), names.stdout
    as_yaml = await regatta(queue_settings, "token", "list", "-o", "yaml", env=narrow)
    assert as_yaml.returncode == 0 and token in [t["name"] for t in yaml.safe_load(as_yaml.stdout)]
    wrong = await regatta(queue_settings, "token", "list", "-o", "xml")
    assert wrong.returncode == 2 and "xml" in wrong.stderr
    # The tables that are not lists too: a wave's plan, a readiness check, costs; none drawn in boxes, a long name whole.
    shows = [("wave", "start", "--selector", f"grep={tag}", "--to", "1.31", "--name", f"grep-{tag}", "--plan-only"),
             ("upgrade", "readiness", "--selector", f"grep={tag}", "--to", "1.31"),
             ("clusters", "cost", "--by", "environment")]
    for command, shown in zip(shows, await asyncio.gather(*(regatta(queue_settings, *c, env=narrow) for c in shows)),
                              strict=True):
        assert shown.returncode == 0, (command, shown.stderr)
        assert not any(box in shown.stdout for box in "│┃━─┏┗"), (command, shown.stdout[:500])
        if command[0] != "clusters":
            assert [line for line in shown.stdout.splitlines() if long in line and len(line.split()) > 1], (
                command, shown.stdout[:800])
