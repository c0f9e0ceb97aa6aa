"""What clusters cost: node pools × the price per node-hour of their size, plus the managed
control plane's fee, per hour and per month; the same summed per environment or per label; and
how much of what the nodes offer the pods request (utilization, from the fleet sweep).

Pure: `regatta clusters list`, the API's /metrics and the fleet view call it.
"""

from __future__ import annotations

from collections.abc import Iterable

from regatta.models import ClusterRecord
from regatta.models.cost import ClusterCost, PriceList


def cluster_cost(cluster: ClusterRecord, prices: PriceList) -> ClusterCost:
    cloud = prices.clouds.get(cluster.provider)
    hourly = cloud.control_plane_hourly if cloud else 0.0
    unpriced = []
    for pool in cluster.node_pools:
        rate = cloud.nodes.get(pool.node_size) if cloud else None
        if rate is None:
            unpriced.append(f"{pool.name} ({pool.node_size})")
            continue
        hourly += rate * pool.node_count
    return ClusterCost(cluster=cluster.name, hourly=round(hourly, 4), monthly=round(hourly * prices.hours_per_month, 2),
                       currency=prices.currency, unpriced=unpriced)


def grouping(cluster: ClusterRecord, by: str) -> str:
    """What a cluster is counted under: its environment, provider, region, or `label:<key>` value."""
    if by.startswith("label:"):
        return cluster.labels.get(by[6:], "(none)")
    if by not in ("environment", "provider", "region"):
        raise ValueError(f"group by environment, provider, region or label:<key>, not {by!r}")
    return str(getattr(cluster, by))


def cost_by(clusters: Iterable[ClusterRecord], prices: PriceList, by: str) -> dict[str, float]:
    """Monthly cost summed per group, the dearest first."""
    totals: dict[str, float] = {}
    for cluster in clusters:
        key = grouping(cluster, by)
        totals[key] = round(totals.get(key, 0.0) + cluster_cost(cluster, prices).monthly, 2)
    return dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))


def utilization(cluster: ClusterRecord) -> tuple[float | None, float | None]:
    """Requested ÷ allocatable for CPU and for memory at the last sweep (None: not swept)."""
    cpu = (cluster.cpu_requested_m / cluster.cpu_allocatable_m
           if cluster.cpu_allocatable_m and cluster.cpu_requested_m is not None else None)
    memory = (cluster.memory_requested_mi / cluster.memory_allocatable_mi
              if cluster.memory_allocatable_mi and cluster.memory_requested_mi is not None else None)
    return cpu, memory
