"""Drift, as an SRE meets it: someone changes and deletes objects a bundle put in a cluster with
the real kubectl; `regatta policy drift sweep` names each change (paths, before and after, the
field manager that made it, when), the compliance record says drifted, the audit trail has it; a
suppression with a reason, a ticket and an end quiets it; ignored paths and defaulting noise are
never drift; a bundle in `remediate` mode puts its objects back."""

from __future__ import annotations

import json
import uuid

import yaml

from tests.cli_runs import regatta
from tests.kubectl_runs import ok
from tests.replaying import replays


def bundle_file(tmp_path, tag: str, cluster: str, **fields) -> str:
    path = tmp_path / f"bundle-{uuid.uuid4().hex[:4]}.yaml"
    path.write_text(yaml.safe_dump({
        "name": f"drift-{tag}", "targets": {"selector": {"clusters": [cluster]}}, "stages": [{"name": "all"}],
        "timeout_seconds": 20, "poll_interval_seconds": 0.05,
        "manifests": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "limits", "namespace": "kube-system"},
             "data": {"level": "low", "cache": "on"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "namespace": "kube-system"},
             "data": {"team": "platform"}},
            {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "defaults", "namespace": "default"},
             "spec": {"limits": [{"type": "Container", "default": {"cpu": "1000m", "memory": "1Gi"}}]}},
        ], **fields}))
    return str(path)


async def sweep(queue_settings, tag: str) -> list[dict]:
    run = await regatta(queue_settings, "policy", "drift", "sweep", "--bundle", f"drift-{tag}", "--wait")
    assert run.returncode == 0, run.stdout + run.stderr
    listed = await regatta(queue_settings, "policy", "drift", "list", "--bundle", f"drift-{tag}", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


async def test_drift_names_who_changed_what_and_when_and_suppression_quiets_it(kube, queue_settings, worker, tmp_path,
                                                                                  inventory, simulator):
    tag = uuid.uuid4().hex[:6]
    file = bundle_file(tmp_path, tag, kube.cluster, drift={"ignore": [{"match": {"name": "limits"}, "paths": ["/data/cache"]}]})
    run = await regatta(queue_settings, "policy", "rollout", "--file", file, "--wait")
    assert run.returncode == 0, run.stdout + run.stderr
    assert await sweep(queue_settings, tag) == []  # the API server's '1' for '1000m' is no drift

    ok(kube("patch", "configmap", "limits", "-n", "kube-system", "--type", "merge", "-p",
            '{"data": {"level": "high", "cache": "off"}}'))
    ok(kube("delete", "configmap", "owner", "-n", "kube-system"))
    drifts = {d["key"]["name"]: d for d in await sweep(queue_settings, tag)}
    assert set(drifts) == {"limits", "owner"}
    changed = drifts["limits"]
    assert changed["kind"] == "changed" and changed["changed_by"] == "kubectl-patch" and changed["changed_at"]
    assert changed["fields"] == [{"path": "/data/level", "before": "low", "after": "high"}]  # /data/cache is ignored
    assert drifts["owner"]["kind"] == "deleted"
    [record] = inventory.compliance(bundle=f"drift-{tag}", cluster=kube.cluster)
    assert record.state == "drifted" and "kubectl-patch" in record.detail
    lines = [r for r in inventory.audit(cluster=kube.cluster) if r.action == "drift"]
    assert {r.outcome for r in lines} == {"found"} and any("/data/level: 'low' → 'high'" in r.detail for r in lines)
    status = await regatta(queue_settings, "policy", "status", "--cluster", kube.cluster)
    assert "drifted" in status.stdout

    refused = await regatta(queue_settings, "policy", "drift", "suppress", kube.cluster, f"drift-{tag}", "--reason", "x",
                            "--ticket", "CHG-9", "--until", "2020-01-01T00:00:00Z")
    assert refused.returncode == 2 and "has passed" in refused.stderr
    for name in ("limits", "owner"):
        done = await regatta(queue_settings, "policy", "drift", "suppress", kube.cluster, f"drift-{tag}", "--name", name,
                             "--reason", "load test this week", "--ticket", "CHG-9", "--until", "2099-01-01T00:00:00Z")
        assert done.returncode == 0, done.stderr
    drifts = await sweep(queue_settings, tag)
    assert len(drifts) == 2 and all("load test this week (CHG-9" in d["suppressed_by"] for d in drifts)
    assert inventory.compliance(bundle=f"drift-{tag}", cluster=kube.cluster)[0].state == "compliant"

    made = await regatta(queue_settings, "schedule", "drift", "--every-minutes", "30", "--bundle", f"drift-{tag}")
    assert made.returncode == 0 and f"drift-drift-{tag}" in made.stdout, made.stderr
    listed = json.loads((await regatta(queue_settings, "schedule", "list", "--output", "json")).stdout)
    assert any(s["id"] == f"drift-drift-{tag}" and "every 30 minutes" in s["note"] for s in listed)
    again = await regatta(queue_settings, "schedule", "drift", "--bundle", f"drift-{tag}")
    assert again.returncode == 2 and "exists already" in again.stderr
    bad = await regatta(queue_settings, "schedule", "drift", "--bundle", "Not A Name")
    assert bad.returncode == 2 and "is not a bundle name" in bad.stderr
    assert (await regatta(queue_settings, "schedule", "delete", f"drift-drift-{tag}")).returncode == 0


async def test_a_remediating_bundle_puts_its_objects_back_and_says_so(kube, queue_settings, worker, tmp_path, inventory,
                                                                       client, request):
    tag = uuid.uuid4().hex[:6]
    file = bundle_file(tmp_path, tag, kube.cluster, drift={"mode": "remediate"})
    run = await regatta(queue_settings, "policy", "rollout", "--file", file, "--wait")
    assert run.returncode == 0, run.stdout + run.stderr
    ok(kube("patch", "configmap", "limits", "-n", "kube-system", "--type", "merge", "-p", '{"data": {"level": "high"}}'))
    ok(kube("delete", "configmap", "owner", "-n", "kube-system"))
    drifts = await sweep(queue_settings, tag)
    assert {(d["key"]["name"], d["remediated"]) for d in drifts} == {("limits", True), ("owner", True)}
    await replays(client.get_workflow_handle(f"drift-drift-{tag}"), request, "drift_sweep_remediated")
    limits = json.loads(ok(kube("get", "configmap", "limits", "-n", "kube-system", "-o", "json")))
    assert limits["data"]["level"] == "low"
    assert json.loads(ok(kube("get", "configmap", "owner", "-n", "kube-system", "-o", "json")))["data"] == {"team": "platform"}
    assert {r.outcome for r in inventory.audit(cluster=kube.cluster) if r.action == "drift"} == {"remediated"}
    assert inventory.compliance(bundle=f"drift-{tag}", cluster=kube.cluster)[0].state == "compliant"
    assert await sweep(queue_settings, tag) == []  # put back: nothing drifts any more
