"""How Regatta's operations are timed, in named groups with their defaults written once, as Cluster API groups a
machine's timeouts. A group is a set of an input's own fields: the JSON stays flat, as the Temporal UI, the API and
the files have always taken it (`poll_interval_seconds` beside `cluster`); an input takes the groups it is timed by.

- `CloudTimings`: an operation on one cluster through its cloud (ClusterUpgrade, ClusterRollback, ProvisionCluster,
  DecommissionCluster): how often it looks, how long one cloud operation may run, how long an activity may be silent.
- `GateTimings`: what an upgrade (or its rollback) waits for on the cluster: a drain the budgets block, a health gate.
- `KubeTimings`: an operation on clusters' Kubernetes APIs alone (PolicyRollout's bundle, MoveWorkloads): looks
  every second, a slower cluster is one answer away.
- `RecoveryTimings`: a failover or failback: fencing, restoring, readiness, approval.

`heartbeat_seconds` is the one rule for how long a polling activity may be silent.
"""

from __future__ import annotations

from pydantic import Field

from regatta.models.base import Model

# An activity that polls reports at each poll; a kube-only one (a bundle given, a move) is never given less than this.
KUBE_HEARTBEAT_FLOOR_SECONDS = 30.0


def heartbeat_seconds(*, at_least: float, poll_interval_seconds: float) -> float:
    """How long an activity that reports at every poll may stay silent before Temporal takes it for dead: three polls,
    and never less than `at_least`."""
    return max(at_least, 3 * poll_interval_seconds)


class CloudTimings(Model):
    poll_interval_seconds: float = Field(default=15, gt=0, description="how often a cloud operation and the cluster"
                                         " are looked at")
    cloud_operation_timeout_seconds: float = Field(default=3600, gt=0, description="how long one cloud operation may"
                                                   " run (the clouds' own take up to an hour)")
    activity_heartbeat_timeout_seconds: float = Field(default=60, gt=0, description="how long a polling activity may be"
                                                      " silent before it is taken for dead (at least three polls)")

    def heartbeat_seconds(self) -> float:
        return heartbeat_seconds(at_least=self.activity_heartbeat_timeout_seconds,
                                 poll_interval_seconds=self.poll_interval_seconds)


class GateTimings(Model):
    health_gate_timeout_seconds: float = Field(default=600, gt=0, description="how long the cluster may take to be"
                                               " healthy again after a step")


class KubeTimings(Model):
    poll_interval_seconds: float = Field(default=1, gt=0, le=60, description="how often the clusters are looked at")
    cloud_operation_timeout_seconds: float = Field(default=600, description="how long a call through a cluster's cloud"
                                                   " may run (a health check's)")
    activity_heartbeat_timeout_seconds: float = Field(default=KUBE_HEARTBEAT_FLOOR_SECONDS, description="how long a"
                                                      " health check's polling activity may be silent")

    def heartbeat_seconds(self) -> float:
        """A bundle given or replicas moved: three polls, and never less than KUBE_HEARTBEAT_FLOOR_SECONDS."""
        return heartbeat_seconds(at_least=KUBE_HEARTBEAT_FLOOR_SECONDS, poll_interval_seconds=self.poll_interval_seconds)


class RecoveryTimings(Model):
    fence_timeout_seconds: float = Field(default=120, gt=0, description="how long to try reaching a cluster to fence it")
    restore_timeout_seconds: float = Field(default=1800, gt=0, description="how long a Velero restore may take")
    ready_timeout_seconds: float = Field(default=900, gt=0, description="how long the restored workloads may take to be"
                                         " ready")
    approval_timeout_seconds: float = Field(default=4 * 3600, gt=0, description="how long a gated failover waits for"
                                            " a second person")
    poll_interval_seconds: float = Field(default=10, gt=0, description="how often the clusters are looked at")
    activity_heartbeat_timeout_seconds: float = Field(default=60, gt=0, description="how long a polling activity may be"
                                                      " silent before it is taken for dead (at least three polls)")

    def heartbeat_seconds(self) -> float:
        return heartbeat_seconds(at_least=self.activity_heartbeat_timeout_seconds,
                                 poll_interval_seconds=self.poll_interval_seconds)
