"""`regatta fleet snapshot`: a twin of the default simulated fleet, taken through the same adapters and cluster clients
the workers use, holds what the fleet file says; the simulator loads it; and a twin of the twin is the twin."""

from __future__ import annotations

import uuid

import yaml

from regatta.formats.fleet_file import FleetSpec, load_fleet
from regatta.inventory.sweep import records_from_fleet
from regatta.models import OperationRecord
from tests.cli_runs import regatta
from tests.conftest import set_faults, sim_report
from tests.shared_http import http


def _tagged(fleet: FleetSpec, tag: str) -> FleetSpec:
    """The fleet with each cluster renamed NAME-TAG and labelled twin=TAG (so a selector takes only these), the
    management clusters it names renamed alike."""
    raw = fleet.model_dump(mode="json")
    for cluster in raw["clusters"]:
        cluster["name"] = f"{cluster['name']}-{tag}"
        cluster["labels"] = {**cluster["labels"], "twin": tag}
        if cluster.get("management"):
            cluster["management"]["context"] = f"{cluster['management']['context']}-{tag}"
    raw["traffic"], raw["dr_pairs"] = [], []
    return FleetSpec.model_validate(raw)


def _load(simulator, inventory, fleet: FleetSpec) -> None:
    http.post(f"{simulator.url}/sim/clusters", json=fleet.model_dump(mode="json"), timeout=60).raise_for_status()
    for record in records_from_fleet(fleet):
        inventory.upsert_cluster(record)


def _shape(fleet: FleetSpec, tag: str) -> dict:
    """What a rehearsal depends on, cluster by cluster (names without their tag)."""
    out = {}
    for cluster in fleet.clusters:
        budgets = {(b.namespace, b.name): (b.min_available, b.max_unavailable, b.selector.matchLabels)
                   for b in cluster.pdbs}
        budgets |= {(w.namespace, f"{w.name}-pdb"): (w.pdb.min_available, w.pdb.max_unavailable, w.pod_labels)
                    for w in cluster.workloads if w.pdb}
        out[cluster.name.removesuffix(f"-{tag}")] = {
            "provider": cluster.provider, "region": cluster.region, "version": cluster.version,
            "labels": {k: v for k, v in cluster.labels.items() if k != "twin"},
            "pools": {p.name: (p.nodes, p.node_size, p.version or cluster.version) for p in cluster.node_pools},
            "workloads": {(w.namespace, w.name): (w.kind, w.replicas, w.pod_labels) for w in cluster.workloads},
            "budgets": budgets,
        }
    return out


async def test_a_twin_of_the_default_fleet_holds_what_the_fleet_file_says_and_loads_as_itself(
        queue_settings, simulator, inventory, tmp_path):
    tag = uuid.uuid4().hex[:6]
    fleet = _tagged(load_fleet(), tag)
    _load(simulator, inventory, fleet)
    # an EKS upgrade recorded from start to success: the twin's EKS timings are calibrated from the trail
    for seq, outcome in ((1, "started"), (2, "succeeded")):
        inventory.append_audit(OperationRecord(
            operation_id=f"cluster-eks-prod-use1-{tag}", operation="ClusterUpgrade", cluster=f"eks-prod-use1-{tag}",
            requested_by="sre", action="upgrade", outcome=outcome, seq=seq, run_id=f"run-{tag}"))

    path = tmp_path / "twin.yaml"
    taken = await regatta(queue_settings, "fleet", "snapshot", "--selector", f"twin={tag}", "--output", str(path))
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert f"twin of {len(fleet.clusters)} clusters written to {path}" in taken.stdout
    twin = load_fleet(path)  # the fleet file's own reader takes it, every check included
    source, copy = _shape(fleet, tag), _shape(twin, tag)
    assert source.keys() == copy.keys()
    for name in source:
        for part in ("provider", "region", "version", "labels", "pools"):
            assert copy[name][part] == source[name][part], (name, part)
        # every workload of the fleet file, as it was made; the policy engines' own controllers come with them
        assert {key: value for key, value in copy[name]["workloads"].items() if key in source[name]["workloads"]} == \
            source[name]["workloads"], name
        assert source[name]["budgets"].items() <= copy[name]["budgets"].items(), name
    assert any(line.startswith("  eks: ") and "recorded upgrade" in line for line in taken.stdout.splitlines())
    assert twin.timings["eks"].control_plane_upgrade_seconds is not None
    assert "# timings for eks: " in path.read_text()

    # nothing but what the drain and placement need was asked of any API server: no Secret, no ConfigMap
    for cluster in twin.clusters:
        calls = sim_report(simulator, cluster.name)["clusters"][cluster.name]["kube_calls"]
        assert not [op for op in calls if "secret" in op or "configmap" in op], (cluster.name, calls)

    # the twin loads into the simulator as a fleet of its own, and its twin is itself
    again = uuid.uuid4().hex[:6]
    second = _tagged(twin, again)
    _load(simulator, inventory, second)
    path2 = tmp_path / "twin2.yaml"
    retaken = await regatta(queue_settings, "fleet", "snapshot", "--selector", f"twin={again}", "--output", str(path2))
    assert retaken.returncode == 0, retaken.stdout + retaken.stderr
    assert _shape(load_fleet(path2), again) == _shape(second, again)
    assert yaml.safe_load(path2.read_text())["clusters"][0]["node_pools"][0].get("allocatable")


async def test_a_snapshot_refuses_what_it_cannot_do_and_names_a_cluster_it_could_not_read(
        queue_settings, add_cluster, simulator, tmp_path):
    nothing = await regatta(queue_settings, "fleet", "snapshot", "--selector", "twin=no-such-tag", "--output",
                            str(tmp_path / "t.yaml"))
    assert nothing.returncode == 2 and "no cluster in the inventory matches --selector twin=no-such-tag" in nothing.stderr
    nowhere = await regatta(queue_settings, "fleet", "snapshot", "--output", "/nonexistent/dir/twin.yaml")
    assert nowhere.returncode == 2 and "/nonexistent/dir does not exist" in nowhere.stderr
    tag = uuid.uuid4().hex[:6]
    kept, lost = add_cluster("kept", labels={"twin": tag}), add_cluster("lost", labels={"twin": tag})
    set_faults(simulator, lost, unreachable=True)
    taken = await regatta(queue_settings, "fleet", "snapshot", "--selector", f"twin={tag}", "--output", "-")
    assert taken.returncode == 0, taken.stderr
    twin = FleetSpec.model_validate(yaml.safe_load(taken.stdout))
    assert [c.name for c in twin.clusters] == [kept]
    assert f"left out of {lost}: the whole cluster (it could not be read" in taken.stderr
    assert f"# left out of {lost}: the whole cluster: it could not be read" in taken.stdout
