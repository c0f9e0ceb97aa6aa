"""Rehearsals from the CLI: the real ClusterUpgrade run on a twin in a private stack predicts what the real run then
meets (a budget that holds a drain, by name and pods), and a wave's rehearsal runs one upgrade per shape of cluster and
lays them out as the wave would, halting where its failure budget says."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

from regatta.api.app import create_app
from regatta.models import PatchWaveResult
from regatta.temporal.operations import status
from tests.browsing import Browser
from tests.cli_runs import regatta, status_until
from tests.conftest import sim_report


def _ledger(tag: str) -> dict:
    """Two teams each gave ledger a budget: a pod two budgets select is never evicted (the eviction API answers 500),
    so the cloud's drain of a node holding one is held until the cloud gives up (EKS: 15 minutes, then
    PodEvictionFailure). Nothing before the upgrade says so; the cluster runs a thousand times faster than a real one."""
    return {"name": "rehearse", "provider": "eks", "region": "us-east-1", "version": "1.30", "time_scale": 0.001,
            "labels": {"env": "staging", "rehearse": tag},
            "node_pools": [{"name": "general", "nodes": 2, "node_size": "m5.large"}],
            "workloads": [{"name": "ledger", "namespace": "shop", "replicas": 2},
                          {"name": "catalog", "namespace": "shop", "replicas": 2, "pdb": {"max_unavailable": 1}}],
            "pdbs": [{"name": "ledger-team-a", "namespace": "shop", "selector": {"matchLabels": {"app": "ledger"}},
                      "max_unavailable": 1},
                     {"name": "ledger-team-b", "namespace": "shop", "selector": {"matchLabels": {"app": "ledger"}},
                      "min_available": 1}]}


async def _twin_of(settings, tmp_path, selector: str):
    """`regatta fleet snapshot` of the clusters a selector takes, as a file."""
    twin = tmp_path / "twin.yaml"
    taken = await regatta(settings, "fleet", "snapshot", "--selector", selector, "--output", str(twin))
    assert taken.returncode == 0, taken.stderr
    return twin


async def test_a_rehearsal_predicts_the_budgets_that_then_hold_the_real_drain(queue_settings, add_fleet, simulator,
                                                                              worker, tmp_path, inventory):
    tag = uuid.uuid4().hex[:6]
    [name] = add_fleet(_ledger(tag))
    twin = await _twin_of(queue_settings, tmp_path, f"rehearse={tag}")
    before = sim_report(simulator, name)["clusters"][name]

    rehearsed = await regatta(queue_settings, "upgrade", "rehearse", name, "--to", "1.31", "--twin", str(twin),
                              "--compress", "600", "--output", "json")
    assert rehearsed.returncode == 0, rehearsed.stdout + rehearsed.stderr
    [prediction] = json.loads(rehearsed.stdout)
    assert prediction["cluster"] == name and prediction["outcome"] == "failed", prediction["message"]
    assert "PodEvictionFailure" in prediction["message"], prediction["message"]
    [stall] = prediction["stalls"]
    assert stall["budgets"] == ["shop/ledger-team-a", "shop/ledger-team-b"]
    assert stall["pods"] and all(p.startswith("shop/ledger-") for p in stall["pods"])
    assert stall["seconds"] >= 600  # EKS asks for 15 minutes before it gives up; the twin says most of them
    # the real cluster was read, never changed
    after = sim_report(simulator, name)["clusters"][name]
    assert after["control_plane_version"] == before["control_plane_version"] == "1.30"
    assert not any(n["unschedulable"] for n in after["nodes"].values()) and after["held_drains"] == {}

    kept = re.search(r"kept as (rehearsal-[0-9a-f]+)", rehearsed.stderr)
    assert kept, rehearsed.stderr
    shown = await regatta(queue_settings, "rehearsal", "show", kept[1], "--output", "json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["accuracy"]["ended"] == 0  # nothing real has run yet

    real = await regatta(queue_settings, "upgrade", "start", name, "--to", "1.31", "--poll-interval", "0.2", "--wait")
    assert real.returncode == 1, real.stdout + real.stderr
    assert "PodEvictionFailure" in real.stdout + real.stderr
    held = sim_report(simulator, name)["clusters"][name]["held_drains"]
    assert [h["budgets"] for h in held.values()] == [stall["budgets"]], held  # the budgets the rehearsal named

    # the rehearsal held against the real run: it failed as rehearsed, held by the same pods, and the comparison is kept
    shown = await regatta(queue_settings, "rehearsal", "show", kept[1], "--output", "json")
    assert shown.returncode == 0, shown.stderr
    accuracy = json.loads(shown.stdout)["accuracy"]
    [line] = accuracy["clusters"]
    assert (line["predicted_outcome"], line["actual_outcome"]) == ("failed", "failed") and accuracy["outcomes_agreed"] == 1
    assert line["stalls_met"] == stall["budgets"] and line["actual_seconds"] > 0 and line["error"] is not None
    listed = await regatta(queue_settings, "rehearsal", "list", "--output", "json")
    assert [r["accuracy"]["ended"] for r in json.loads(listed.stdout) if r["rehearsal_id"] == kept[1]] == [1]
    table = await regatta(queue_settings, "rehearsal", "show", kept[1])  # as a person reads it
    assert table.returncode == 0 and "1 ended since; 1 as rehearsed" in table.stdout, table.stdout
    assert "shop/ledger-team-a, shop/ledger-team-b" in table.stdout and "failed" in table.stdout
    missing = await regatta(queue_settings, "rehearsal", "show", "rehearsal-nope")
    assert missing.returncode == 2 and "no rehearsal rehearsal-nope" in missing.stderr
    # the real upgrade's page in the fleet view links to the rehearsal taken before it
    browser = Browser(create_app(queue_settings, inventory), inventory)
    await browser.sign_in("viewer", "*")
    page = await browser.page(f"/ui/operations/cluster-{name}")
    assert page.status_code == 200 and f'href="/ui/rehearsals/{kept[1]}"' in page.text, page.text[:2000]


async def test_a_rehearsal_refuses_what_it_cannot_run(queue_settings, add_cluster, tmp_path):
    name = add_cluster("rehearse-refused", pools=1, nodes=1)
    slower = await regatta(queue_settings, "upgrade", "rehearse", name, "--to", "1.31", "--compress", "0.5")
    assert slower.returncode == 2 and "--compress 0.5" in slower.stderr
    other = tmp_path / "twin.yaml"
    other.write_text("clusters: []\n")
    missing = await regatta(queue_settings, "upgrade", "rehearse", name, "--to", "1.31", "--twin", str(other))
    assert missing.returncode == 2 and f"does not hold {name}" in missing.stderr
    unknown = await regatta(queue_settings, "upgrade", "rehearse", "no-such-cluster-x", "--to", "1.31")
    assert unknown.returncode == 2 and "no-such-cluster-x" in unknown.stderr


async def test_a_wave_rehearsal_runs_each_shape_once_and_halts_where_the_failure_budget_would(
        queue_settings, add_fleet, simulator, worker, tmp_path, inventory, client):
    tag = uuid.uuid4().hex[:6]
    plain = {**_ledger(tag), "name": "plain", "pdbs": [], "labels": {"env": "canary", "rehearse": tag}}
    names = add_fleet({**plain, "name": "canary-a"}, {**plain, "name": "canary-b"},
                      {**_ledger(tag), "name": "staging", "labels": {"env": "staging", "rehearse": tag}},
                      {**plain, "name": "prod", "labels": {"env": "prod", "rehearse": tag}})
    canary_a, canary_b, staging, prod = names
    twin = await _twin_of(queue_settings, tmp_path, f"rehearse={tag}")
    wave = tmp_path / "wave.yaml"
    wave.write_text(f"""
name: rehearsed-{tag}
target_version: "1.31"
selector: {{labels: {{rehearse: "{tag}"}}}}  # quoted: a tag of digits alone is a number to YAML
failure_budget: 0
upgrade_settings: {{poll_interval_seconds: 0.2}}
stages:
- {{name: canary, selector: {{environment: canary}}, concurrency: 2}}
- {{name: staging, selector: {{environment: staging}}}}
- {{name: prod, selector: {{environment: prod}}}}
""")
    rehearsed = await regatta(queue_settings, "wave", "rehearse", "--file", str(wave), "--twin", str(twin),
                              "--compress", "600", "--output", "json")
    assert rehearsed.returncode == 0, rehearsed.stdout + rehearsed.stderr
    # the canaries and prod are one shape (their labels differ, not their pools, workloads or budgets): two runs
    assert "rehearsing 4 clusters as 2 runs" in rehearsed.stderr and "time=" not in rehearsed.stderr
    report = json.loads(rehearsed.stdout)
    by = {c["cluster"]: c for c in report["clusters"]}
    assert by[canary_a]["outcome"] == by[canary_b]["outcome"] == "succeeded"
    assert by[canary_a]["starts"] == by[canary_b]["starts"]  # two at once
    assert by[staging]["outcome"] == "failed" and by[staging]["stalls"][0]["budgets"] == [
        "shop/ledger-team-a", "shop/ledger-team-b"]
    assert by[prod]["outcome"] == "not_started" and report["halted_at"] == "staging"
    assert [s["halts"] for s in report["stages"]] == [False, True, False]
    # nothing of the real fleet moved
    assert all(sim_report(simulator, n)["clusters"][n]["control_plane_version"] == "1.30" for n in names)

    kept = re.search(r"kept as (rehearsal-[0-9a-f]+)", rehearsed.stderr)
    assert kept, rehearsed.stderr
    table = await regatta(queue_settings, "rehearsal", "show", kept[1])  # the same report, as a person reads it
    assert table.returncode == 0 and "halted at stage staging" in table.stdout, table.stdout + table.stderr

    # The real wave attaches its rehearsal as it starts, and holds itself against it when it ends: the canaries
    # succeeded and staging failed on the budgets it named, as rehearsed; prod never started.
    real = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--wait")
    assert real.returncode == 1, real.stdout + real.stderr  # halted by its failure budget
    assert f"rehearsed as {kept[1]}" in real.stdout, real.stdout
    wave_id = f"wave-rehearsed-{tag}"
    status = await regatta(queue_settings, "op", "status", wave_id, "--output", "json")
    assert status.returncode == 1, status.stderr  # a halted wave's status exits 1
    assert json.loads(status.stdout)["progress"]["rehearsal_id"] == kept[1]
    result = await client.get_workflow_handle(wave_id, result_type=PatchWaveResult).result()
    assert result.outcome == "halted" and result.rehearsal_id == kept[1]
    assert result.held_against_rehearsal and result.held_against_rehearsal.startswith(
        f"held against {kept[1]}: 3 of 3 clusters ended as rehearsed"), result.held_against_rehearsal
    trail = {(line.action, line.outcome): line.detail for line in inventory.audit(operation_id=wave_id)}
    assert trail[("rehearsal", "attached")].startswith(kept[1]) and "halted at stage staging" in trail[
        ("rehearsal", "attached")], trail
    assert "2 of 2 predicted budget holds met" in trail[("rehearsal", "compared")], trail
    shown = await regatta(queue_settings, "rehearsal", "show", kept[1], "--output", "json")
    record = json.loads(shown.stdout)
    assert record["operation_id"] == wave_id and record["attached_at"] is not None
    assert {c["cluster"]: c["actual_outcome"] for c in record["accuracy"]["clusters"]} == {
        canary_a: "succeeded", canary_b: "succeeded", staging: "failed"}
    assert sim_report(simulator, prod)["clusters"][prod]["control_plane_version"] == "1.30"
    browser = Browser(create_app(queue_settings, inventory), inventory)
    await browser.sign_in("viewer", "*")
    page = await browser.page(f"/ui/rehearsals/{kept[1]}")
    assert page.status_code == 200 and f'href="/ui/operations/{wave_id}"' in page.text, page.text[:2000]
    page = await browser.page(f"/ui/operations/{wave_id}")
    assert page.status_code == 200 and f'href="/ui/rehearsals/{kept[1]}"' in page.text, page.text[:2000]


async def test_a_bundles_rehearsal_names_the_cluster_that_refuses_it_and_where_the_real_rollout_then_halts(
        queue_settings, add_fleet, simulator, worker, tmp_path, inventory):
    """Two clusters run Kyverno and one does not; all three have a namespace `team-a` that holds nothing a drain meets.
    The bundle gives a ClusterPolicy and a ConfigMap in team-a: the twin must carry the namespaces and the custom
    resources each cluster serves to tell the two apart."""
    tag = uuid.uuid4().hex[:6]
    base = {"provider": "eks", "region": "us-east-1", "version": "1.31", "namespaces": ["team-a"],
            "node_pools": [{"name": "general", "nodes": 1, "node_size": "m5.large"}]}
    canary, kyverno, bare = add_fleet(
        {**base, "name": "pol-canary", "labels": {"env": "canary", "pol": tag}, "policy_engines": ["kyverno"]},
        {**base, "name": "pol-kyverno", "labels": {"env": "staging", "pol": tag}, "policy_engines": ["kyverno"]},
        {**base, "name": "pol-bare", "labels": {"env": "staging", "pol": tag}})
    twin = await _twin_of(queue_settings, tmp_path, f"pol={tag}")
    bundle = tmp_path / "bundle.yaml"
    bundle.write_text(f"""
name: guard-{tag}
targets: {{selector: {{labels: {{pol: "{tag}"}}}}}}
policy_mode: enforce
failure_budget: 0
timeout_seconds: 30
poll_interval_seconds: 0.1
stages:
- {{name: canary, selector: {{environment: canary}}, soak_seconds: 600}}
- {{name: rest, selector: {{environment: staging}}, concurrency: 2, approval_required: true}}
manifests:
- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: owners, namespace: team-a}}, data: {{team: a}}}}
- apiVersion: kyverno.io/v1
  kind: ClusterPolicy
  metadata: {{name: require-team}}
  spec:
    rules:
    - name: team-label
      match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}
      validate: {{message: a team label, pattern: {{metadata: {{labels: {{team: "?*"}}}}}}}}
""")
    rehearsed = await regatta(queue_settings, "policy", "rehearse", "--file", str(bundle), "--twin", str(twin),
                              "--compress", "600", "--output", "json")
    assert rehearsed.returncode == 0, rehearsed.stdout + rehearsed.stderr
    report = json.loads(rehearsed.stdout)
    by = {c["cluster"]: c for c in report["clusters"]}
    assert report["outcome"] == "halted", report["message"]
    assert by[canary]["outcome"] == by[kyverno]["outcome"] == "applied", by
    assert by[bare]["outcome"] == "failed" and "kyverno is not installed" in by[bare]["detail"], by[bare]
    assert [s["halts"] for s in report["stages"]] == [False, True]
    assert report["stages"][1]["starts_seconds"] >= 600  # after the canary's soak, on the fleet's clock
    assert any("stage rest waits for a second person's approval" in line for line in report["not_rehearsed"])
    kept = re.search(r"kept as (rehearsal-[0-9a-f]+)", rehearsed.stderr)
    assert kept, rehearsed.stderr
    table = await regatta(queue_settings, "rehearsal", "show", kept[1])
    assert table.returncode == 0 and f"bundle guard-{tag}" in table.stdout and "halted" in table.stdout, table.stdout
    browser = Browser(create_app(queue_settings, inventory), inventory)
    await browser.sign_in("viewer", "*")
    page = await browser.page(f"/ui/rehearsals/{kept[1]}")
    assert page.status_code == 200 and f'<tr data-cluster="{bare}"><td>{bare}</td><td>rest</td><td>failed</td>' in page.text
    # nothing real was given anything
    objects = sim_report(simulator, bare)["clusters"][bare]
    assert "owners" not in json.dumps(objects.get("objects", {}))

    # the real rollout meets what the rehearsal said: the bare cluster has no Kyverno to enforce the policy, and the rollout halts
    bundle.write_text(bundle.read_text().replace("soak_seconds: 600", "soak_seconds: 0"))
    started = await regatta(queue_settings, "policy", "rollout", "--file", str(bundle))
    assert started.returncode == 0, started.stdout + started.stderr
    await status_until(queue_settings, f"policy-guard-{tag}", lambda s: any(
        stage["status"] == "awaiting_approval" for stage in (s.get("progress") or {}).get("stages", [])))
    approved = await regatta(queue_settings, "op", "approve", f"policy-guard-{tag}", "--stage", "rest",
                             "--approver", "second-sre")
    assert approved.returncode == 0, approved.stderr
    for _ in range(300):  # a halted rollout's `op status` exits 1, so it is read here as that command reads it
        ended = await status(queue_settings, f"policy-guard-{tag}")
        if ended["status"] != "RUNNING":
            break
        await asyncio.sleep(0.1)
    real = {c["name"]: c for stage in ended["progress"]["stages"] for c in stage["clusters"]}
    assert ended["progress"]["phase"] == "halted" and real[bare]["status"] == "failed"
    assert real[canary]["status"] == real[kyverno]["status"] == "applied"
    assert "kyverno is not installed" in real[bare]["detail"]
