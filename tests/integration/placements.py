"""Clusters for placement and a placed application's rollout: what the placement, metrics and fleet-view tests share."""

from __future__ import annotations

import uuid

from regatta.formats.fleet_file import FleetSpec
from regatta.inventory.sweep import records_from_fleet, sweep
from regatta.kube.connect import ClusterConnections
from regatta.models.policy import BundleSpec, PolicyRolloutResult
from regatta.rules.operation_ids import policy_id
from tests.conftest import eks_cluster
from tests.integration.cluster_api import ClusterApi
from tests.shared_http import http


class Fleet:
    """Clusters of the sizes a test asks for, labelled for its bundle, swept so their CPU is known."""

    def __init__(self, simulator, inventory, settings):
        self.simulator, self.inventory, self.settings = simulator, inventory, settings
        self.tag = uuid.uuid4().hex[:6]
        self.names: dict[str, str] = {}

    def add(self, sizes: dict[str, tuple[str, int, str]], *, traffic: bool = False,
            environments: dict[str, str] | None = None, sites: dict[str, str] | None = None) -> dict[str, str]:
        """short name → (node size, nodes, region); pods start in half a second (time scale 0.1). `sites`: short name
        → the private site it sits in (its agent alone reaches it)."""
        specs = []
        for short, (size, nodes, region) in sizes.items():
            name = self.names[short] = f"pl{short}-{self.tag}"
            spec = eks_cluster(name, pools=1, nodes=nodes, workloads=[], labels={"placement": self.tag}, time_scale=0.1,
                               env=(environments or {}).get(short, "staging"))
            spec["region"], spec["node_pools"][0]["node_size"] = region, size
            spec["site"] = (sites or {}).get(short)
            specs.append(spec)
        weights = {self.names[s]: 1 for s in sizes}
        fleet = FleetSpec.model_validate({"clusters": specs, "traffic": [{"service": self.app, "weights": weights}]
                                          if traffic else []})
        http.post(f"{self.simulator.url}/sim/clusters", json=fleet.model_dump(), timeout=10).raise_for_status()
        for record in records_from_fleet(fleet):
            self.inventory.upsert_cluster(record)
        self.sweep()
        return self.names

    def sweep(self) -> None:
        by_site: dict[str | None, list[str]] = {}
        for name in self.names.values():
            by_site.setdefault(self.inventory.get_cluster(name).site, []).append(name)
        for site, names in by_site.items():  # a site's clusters as its agent sweeps them
            connections = ClusterConnections(sim_url=self.settings.sim_url, site=site)
            try:
                sweep(connections, self.inventory, names)
            finally:
                connections.close()

    @property
    def app(self) -> str:
        return f"app-{self.tag}"

    @property
    def workload(self) -> str:
        return f"Deployment/web-{self.tag}/web"

    def bundle(self, placement: dict, *, replicas: int = 6, budget: dict | None = None, **fields) -> BundleSpec:
        namespace = f"web-{self.tag}"
        manifests = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace},
             "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                      "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                          {"name": "web", "image": "web:1", "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}}}]}}}},
        ]
        if budget is not None:
            manifests.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                              "metadata": {"name": "web", "namespace": namespace},
                              "spec": {**budget, "selector": {"matchLabels": {"app": "web"}}}})
        return BundleSpec.model_validate({
            "name": self.app, "manifests": manifests, "targets": {"selector": {"labels": {"placement": self.tag}}},
            "placement": placement, "stages": fields.pop("stages", [{"name": "all", "concurrency": 5}]),
            "requested_by": "sre-alice", "ticket": "CHG-PLACE", **FAST, **fields})

    def deployment(self, short: str) -> dict | None:
        name = self.names[short]
        found = ClusterApi(self.simulator, name, site=self.inventory.get_cluster(name).site).get(
            f"/apis/apps/v1/namespaces/web-{self.tag}/deployments/web")
        return found.json() if found.status_code == 200 else None

    def running(self) -> dict[str, int]:
        """Each cluster's ready replicas of the application, read from its own API."""
        found = {}
        for short in self.names:
            body = self.deployment(short)
            found[short] = (body or {}).get("status", {}).get("readyReplicas", 0) if body else 0
        return found

    def traffic(self) -> dict[str, int]:
        """The weights the traffic manager holds for the application's service."""
        return http.get(f"{self.simulator.url}/traffic/v1/records/{self.app}", timeout=10).json()["weights"]

    def shares(self) -> dict[str, int]:
        decision = self.inventory.placement(self.app)
        assert decision is not None
        short = {v: k for k, v in self.names.items()}
        return {short[s.cluster]: s.replicas[self.workload] for s in decision.chosen}


async def roll_out(client, task_queue, spec: BundleSpec):
    handle = await client.start_workflow("PolicyRollout", spec, id=policy_id(spec.name), task_queue=task_queue,
                                         result_type=PolicyRolloutResult)
    return handle


FAST = {"timeout_seconds": 20, "poll_interval_seconds": 0.05, "activity_heartbeat_timeout_seconds": 5}
