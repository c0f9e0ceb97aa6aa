"""What keeps a cluster from being deleted: a DR role, traffic it serves, non-system workloads still
running; and which namespaces are the platform's own.

Pure: called by DecommissionCluster, the pre-start checks and disaster recovery.
"""

from __future__ import annotations

from collections.abc import Sequence

SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "platform", "monitoring", "velero"})


def non_system_workloads(deployments: Sequence[tuple[str, int, int]]) -> list[str]:
    """Deployments with replicas outside the namespaces the platform itself runs."""
    return [f"{name} ({desired} replicas)" for name, desired, _ in deployments
            if desired > 0 and name.split("/", 1)[0] not in SYSTEM_NAMESPACES]


def decommission_blockers(labels: dict[str, str]) -> list[str]:
    """Roles that forbid deleting a cluster, as the inventory labels them until traffic and DR
    records of their own exist: `traffic=serving`, and `dr-role=<primary|standby>`."""
    blockers = []
    if labels.get("traffic") == "serving":
        blockers.append("it serves traffic (label traffic=serving); shift its traffic away and relabel it first")
    if labels.get("dr-role"):
        blockers.append(f"it holds the DR role {labels['dr-role']!r}; hand the role to another cluster first")
    return blockers


def is_system_workload(key: str) -> bool:
    return key.split("/", 1)[0] in SYSTEM_NAMESPACES
