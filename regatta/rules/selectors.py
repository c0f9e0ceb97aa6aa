"""Which clusters a selector takes (labels, environment, provider, region, explicit names), and what a
cluster lacks when one does not take it.

Pure: called by wave planning, the inventory's filters and the pre-start checks.
"""

from __future__ import annotations

from regatta.models import (
    ClusterRecord,
    ClusterSelector,
)


def selects(selector: ClusterSelector, cluster: ClusterRecord) -> bool:
    if selector.clusters is not None and cluster.name not in selector.clusters:
        return False
    if selector.environment is not None and cluster.environment != selector.environment:
        return False
    if selector.provider is not None and cluster.provider != selector.provider:
        return False
    if selector.region is not None and cluster.region != selector.region:
        return False
    return all(cluster.labels.get(key) == value for key, value in selector.labels.items())


def misses(selector: ClusterSelector, cluster: ClusterRecord) -> list[str]:
    """What a selector asks for that the cluster does not have, in words ('label tier=1 (it has
    none)'); empty when the selector takes it."""
    found = []
    if selector.clusters is not None and cluster.name not in selector.clusters:
        found.append("to be one of " + ", ".join(selector.clusters[:5]) + ("…" if len(selector.clusters) > 5 else ""))
    for field in ("environment", "provider", "region"):
        wanted = getattr(selector, field)
        if wanted is not None and getattr(cluster, field) != wanted:
            found.append(f"{field} {wanted} (it is {getattr(cluster, field)})")
    for key, value in sorted(selector.labels.items()):
        has = cluster.labels.get(key)
        if has != value:
            found.append(f"label {key}={value} (it has {f'{key}={has}' if has is not None else f'no {key} label'})")
    return found
