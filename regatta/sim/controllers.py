"""The controllers that run inside simulated clusters and act on the objects written to them: Cluster API's on a
management cluster (regatta/sim/cluster_api.py) and the system-upgrade-controller on a k3s or RKE2 cluster
(regatta/sim/system_upgrade.py). The object store (regatta/sim/kube_objects.py) hands each write of their kinds to
their admission webhooks first and to their reconcilers after; a node's labels changed through the API are told
to the system-upgrade-controller too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regatta.sim.world import Cluster, World

CLUSTER_API_GROUPS = ("cluster.x-k8s.io/", "controlplane.cluster.x-k8s.io/")
SYSTEM_UPGRADE_GROUP = "upgrade.cattle.io/"


def has_status_subresource(api: str, kind: str) -> bool:
    """Whether writes to the object itself leave its status alone (Cluster API's kinds and Plans have a status
    subresource; the other kinds the store keeps are kept as sent)."""
    return api.startswith(CLUSTER_API_GROUPS) or api.startswith(SYSTEM_UPGRADE_GROUP)


def admit(world: World, c: Cluster, api: str, plural: str, old: dict[str, Any] | None, body: dict[str, Any]) -> None:
    """The kind's defaulting and validating webhooks: may change `body`, or refuse it with a SimError (422)."""
    if api.startswith(CLUSTER_API_GROUPS):
        from regatta.sim import cluster_api

        cluster_api.admit(api, plural, old, body)
    elif api.startswith(SYSTEM_UPGRADE_GROUP):
        from regatta.sim import system_upgrade

        system_upgrade.admit(plural, body)


def notice(world: World, c: Cluster, key: tuple[str, str, str, str]) -> None:
    """An object was written or deleted: the controller that owns its kind reconciles it."""
    if key[0].startswith(CLUSTER_API_GROUPS):
        from regatta.sim import cluster_api

        cluster_api.notice(world, c, key)
    elif key[0].startswith(SYSTEM_UPGRADE_GROUP):
        from regatta.sim import system_upgrade

        system_upgrade.notice(world, c)


def nodes_relabelled(world: World, c: Cluster) -> None:
    """A node's labels changed: the system-upgrade-controller selects nodes by them."""
    if c.provider == "suc":
        from regatta.sim import system_upgrade

        system_upgrade.notice(world, c)
