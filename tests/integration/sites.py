"""A cluster behind a private site's agent, in the simulator and the inventory: its API server answers only the
site's agent (what the site-agent, DR, placement and policy CLI tests share)."""

from __future__ import annotations

import uuid

from regatta.formats.fleet_file import FleetSpec
from regatta.inventory import Inventory
from regatta.inventory.sweep import records_from_fleet
from tests.conftest import eks_cluster
from tests.shared_http import http


def add_site_cluster(simulator, inventory: Inventory, *, site: str, time_scale: float | None = None,
                     labels: dict[str, str] | None = None, policy_engines: list[str] | None = None) -> str:
    name = f"site-{uuid.uuid4().hex[:8]}"
    # An EKS cluster whose API server has a private endpoint only: the cloud's API is public, the cluster's is not.
    spec = {**eks_cluster(name, pools=1, nodes=2, time_scale=time_scale, labels=labels, policy_engines=policy_engines),
            "site": site}
    fleet = FleetSpec.model_validate({"clusters": [spec]})
    http.post(f"{simulator.url}/sim/clusters", json=fleet.model_dump(), timeout=10).raise_for_status()
    for record in records_from_fleet(fleet):
        inventory.upsert_cluster(record)
    return name
