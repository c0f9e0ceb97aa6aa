"""A DR pair in the simulator and the inventory (primary, standby, warm copies, traffic records), and a failover or
failback started on it: what the DR, admission, replay and CLI tests share."""

from __future__ import annotations

import uuid

from regatta.formats.fleet_file import FleetSpec
from regatta.inventory.sweep import records_from_fleet
from regatta.models import DRFailbackInput, DRFailoverInput, DRProgress, DRResult
from regatta.rules.operation_ids import operation_id
from tests.conftest import sim_report
from tests.integration import conftest as integration
from tests.shared_http import http


class Pair:
    def __init__(self, simulator, inventory, *, primary_region: str = "us-east-1", env: str = "staging",
                 standby_pools: list[dict] | None = None, standby_workloads: list[dict] | None = None,
                 standby_version: str = "1.30", backup_age: float = 600, standby_site: str | None = None):
        suffix = uuid.uuid4().hex[:6]
        self.simulator, self.primary, self.standby = simulator, f"drp-{suffix}", f"drs-{suffix}"
        self.services = [f"checkout-{suffix}", f"api-{suffix}"]
        pools = [{"name": "general", "nodes": 3, "node_size": "m5.large"}]
        fleet = FleetSpec.model_validate({
            "clusters": [
                {"name": self.primary, "provider": "eks", "region": primary_region, "version": "1.30",
                 "labels": {"env": env, "team": "tests"}, "node_pools": pools, "workloads": PRIMARY_WORKLOADS,
                 "last_backup_age_seconds": backup_age},
                {"name": self.standby, "provider": "eks", "region": "us-west-2", "version": standby_version,
                 "labels": {"env": env, "team": "tests"}, "node_pools": standby_pools or pools,
                 "workloads": WARM_COPIES if standby_workloads is None else standby_workloads, "site": standby_site},
            ],
            "traffic": [{"service": s, "weights": {self.primary: 100, self.standby: 0}} for s in self.services],
        })
        http.post(f"{simulator.url}/sim/clusters", json=fleet.model_dump(), timeout=10).raise_for_status()
        for record in records_from_fleet(fleet):
            inventory.upsert_cluster(record)
        inventory.declare_dr_pair(self.primary, self.standby)

    def report(self, cluster: str) -> dict:
        return sim_report(self.simulator, cluster)

    def replicas(self, cluster: str) -> dict[str, int]:
        """Deployments as their namespace/name → desired replicas, read over the cluster's API."""
        items = http.get(f"{self.simulator.url}/k8s/{cluster}/apis/apps/v1/deployments", timeout=10,
                          headers={"Authorization": f"Bearer {self.simulator.world.api_token}"}).json()["items"]
        return {f"{d['metadata']['namespace']}/{d['metadata']['name']}": d["spec"]["replicas"] for d in items}

    def traffic(self) -> dict[str, dict]:
        records = http.get(f"{self.simulator.url}/traffic/v1/records", params={"cluster": self.primary}, timeout=10).json()
        return {r["service"]: {"weights": r["weights"], "changes": len(r["changes"])} for r in records["records"]}

    def region(self, region: str, *, down: bool) -> None:
        http.post(f"{self.simulator.url}/sim/regions", json={"region": region, "unreachable": down}, timeout=10).raise_for_status()


async def failover(client, task_queue, pair: Pair, **fields):
    request = DRFailoverInput(cluster=pair.primary, standby=fields.pop("standby", pair.standby), requested_by="sre-alice",
                              ticket="INC-7", **{**FAST, **fields})
    return await client.start_workflow("DRFailover", request, id=operation_id(pair.primary), task_queue=task_queue,
                                       result_type=DRResult)


async def failback(client, task_queue, pair: Pair, **fields):
    request = DRFailbackInput(cluster=pair.primary, requested_by="sre-alice", ticket="CHG-8", **{**FAST, **fields})
    return await client.start_workflow("DRFailback", request, id=operation_id(pair.primary), task_queue=task_queue,
                                       result_type=DRResult)


async def wait_phase(handle, phase: str, timeout: float = 30) -> DRProgress:
    return await integration.wait_phase(handle, phase, DRProgress, timeout=timeout)


FAST = {"poll_interval_seconds": 0.05, "fence_timeout_seconds": 2, "restore_timeout_seconds": 30,
        "ready_timeout_seconds": 30, "activity_heartbeat_timeout_seconds": 5}


PRIMARY_WORKLOADS = [
    {"name": "checkout", "namespace": "shop", "replicas": 3, "pdb": {"min_available": 2}},
    {"name": "payments", "namespace": "shop", "replicas": 4, "pdb": {"max_unavailable": 1}},
    {"name": "catalog", "namespace": "shop", "replicas": 4},
    {"name": "batch", "namespace": "jobs", "replicas": 2},
]


WARM_COPIES = [
    {"name": "checkout", "namespace": "shop", "replicas": 0, "annotations": {"regatta.dev/dr-replicas": "3"}},
    {"name": "payments", "namespace": "shop", "replicas": 0, "annotations": {"regatta.dev/dr-replicas": "4"}},
]
