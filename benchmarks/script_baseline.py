"""The script a platform team would write instead of Regatta: per cluster, the same cloud and
cluster calls a surge ClusterUpgrade makes, in the same order, through the same SDK adapters
(regatta/clouds, regatta/kube), on a thread pool of the same concurrency, with no Temporal, no
inventory and no audit trail. It is the yardstick of what the calls themselves cost, so that
Regatta's time splits into the calls (this script) and the orchestration (the raw fan-out).

    python benchmarks/script_baseline.py --fleet FLEET.yaml --concurrency 100 --out RESULT.json
        (started by benchmarks/upgrade_fleet.py and benchmarks/patch_wave.py, with REGATTA_SIM_URL set)

Per cluster, as ClusterUpgrade runs them (workflows/cluster_upgrade.py, activities/cloud.py):
the preflight's reads (control plane, node pools, nodes and health, the cloud's insights, and the readiness
gate's: the pools' room, the API versions in use and the add-ons when the control plane moves); the
control plane's upgrade (start, poll until done, the start asked again as the activity does,
the health gate); the EKS managed add-ons moved to their defaults, each waited for, and a health
gate when any moved; then each node pool the same way as the control plane; the cluster described
once more after the last. The adapters are Regatta's own, so the requests on the wire are the
same (a script with boto3 calls written out would send the same ones); what the script leaves
out is everything Regatta does around them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.kube import inspect  # noqa: E402
from regatta.clouds.base import read_surge_room  # noqa: E402
from regatta.formats.fleet_data import api_removals  # noqa: E402
from regatta.formats.fleet_file import FleetSpec  # noqa: E402
from regatta.inventory.sweep import records_from_fleet  # noqa: E402
from regatta.kube import api_usage, health  # noqa: E402
from regatta.kube.connect import ClusterConnections  # noqa: E402
from regatta.models import CloudOperation, ClusterRef  # noqa: E402
from regatta.rules import versions  # noqa: E402


def wait(provider, cluster: ClusterRef, operation: CloudOperation, poll_seconds: float) -> CloudOperation:
    while operation.status not in ("succeeded", "failed"):
        time.sleep(poll_seconds)
        operation = provider.poll_operation(cluster, operation)
    if operation.status == "failed":
        raise RuntimeError(f"{operation.id} on {cluster.name} failed: {operation.errors}")
    return operation


class ScriptSteps:
    """One cluster's upgrade as the script makes it, step by step: each step the calls one of ClusterUpgrade's
    activities makes (benchmarks/script_on_temporal.py runs each as an activity of its own)."""

    def __init__(self, connections: ClusterConnections, cluster: ClusterRef, target: str, poll_seconds: float):
        self.cluster, self.target, self.poll_seconds = cluster, target, poll_seconds
        self.provider = connections.provider(cluster)
        self.connections = connections
        self.api = connections.api_client(cluster)

    def gate(self) -> None:
        problems = health.wait_until_healthy(self.api, timeout_seconds=600, poll_interval_seconds=self.poll_seconds,
                                             on_poll=lambda problems: None)
        if problems:
            raise RuntimeError(f"{self.cluster.name} unhealthy: {problems}")

    def _step(self, start) -> None:
        wait(self.provider, self.cluster, start(), self.poll_seconds)
        start()  # asked again once done, as cloud.upgrade does: the cloud answers with the finished operation
        self.gate()

    def preflight(self) -> None:
        """The preflight's reads (cloud.read_for_upgrade): with the readiness gate's, the pools' room for their surge
        and, as the control plane moves, the API versions in use and the managed add-ons against the target."""
        provider, cluster, target = self.provider, self.cluster, self.target
        control_plane = provider.describe_control_plane(cluster)
        described = provider.list_node_pools(cluster)
        inspection = inspect(self.connections, cluster, pods=False)
        provider.upgrade_insights(cluster)
        read_surge_room(provider, cluster, described, lambda: inspection.nodes)
        if versions.moves_control_plane(control_plane.version, target):
            api_usage.api_usage(self.api, api_removals(), control_plane=control_plane.version, target=target)
            if versions.moves_addons_after_control_plane(cluster.provider):
                provider.managed_addons(cluster, version=target)

    def control_plane(self) -> None:
        self._step(lambda: self.provider.start_control_plane_upgrade(
            self.cluster, version=self.target, request_token=f"script-{self.cluster.name}-cp"))

    def addons(self) -> bool:
        """The EKS managed add-ons moved to their defaults, each waited for; whether any moved (a health gate follows)."""
        moved = False
        for addon in self.provider.managed_addons(self.cluster, version=self.target):
            if addon.default_version is None or addon.default_version == addon.version:
                continue
            wait(self.provider, self.cluster, self.provider.start_addon_update(
                self.cluster, addon=addon.name, version=addon.default_version,
                request_token=f"script-{self.cluster.name}-{addon.name}"[:64]), self.poll_seconds)
            moved = True
        return moved

    def node_pool(self, pool: str) -> None:
        self._step(lambda: self.provider.start_node_pool_upgrade(
            self.cluster, node_pool=pool, version=self.target, request_token=f"script-{self.cluster.name}-{pool}"))

    def final_reads(self) -> None:
        """The cluster described once more after the last pool (what the inventory records)."""
        self.provider.describe_control_plane(self.cluster)
        self.provider.list_node_pools(self.cluster)


def upgrade(connections: ClusterConnections, cluster: ClusterRef, pools: list[str], target: str, poll_seconds: float) -> None:
    steps = ScriptSteps(connections, cluster, target, poll_seconds)
    steps.preflight()
    steps.control_plane()
    if steps.addons():
        steps.gate()
    for pool in pools:
        steps.node_pool(pool)
    steps.final_reads()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fleet", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--target", default="1.31")
    parser.add_argument("--poll-seconds", type=float, default=0.05)
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args()
    spec = FleetSpec.model_validate(yaml.safe_load(arguments.fleet.read_text()))
    pools = {c.name: [p.name for p in c.node_pools] for c in spec.clusters}
    refs = [record.ref for record in records_from_fleet(spec)]
    connections = ClusterConnections(sim_url=os.environ["REGATTA_SIM_URL"])
    failures: list[str] = []

    def one(cluster: ClusterRef) -> None:
        try:
            upgrade(connections, cluster, pools[cluster.name], arguments.target, arguments.poll_seconds)
        except Exception as error:  # noqa: BLE001 - a script reports and carries on, as Regatta's wave does
            failures.append(f"{cluster.name}: {error}")

    cpu_before, started = os.times(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=arguments.concurrency) as pool:
        list(pool.map(one, refs))
    seconds, cpu_after = time.perf_counter() - started, os.times()
    arguments.out.write_text(json.dumps({
        "seconds": round(seconds, 2), "clusters": len(refs), "failures": failures[:5], "failed": len(failures),
        "cpu_seconds": round(cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system, 1)}))


if __name__ == "__main__":
    main()
