"""The workflow ids of operations: one id per cluster is the lock that keeps two mutating operations
off it (DESIGN rule 5); one per wave name.
"""

from __future__ import annotations


def operation_id(cluster: str) -> str:
    """The workflow id of every mutating operation on a cluster. Temporal runs at most one
    workflow per id at a time, which is what keeps two operations off one cluster (DESIGN rule 5)."""
    return f"cluster-{cluster}"


def wave_id(name: str) -> str:
    """The workflow id of a PatchWave: one wave of a name runs at a time (a schedule's runs add a timestamp)."""
    return f"wave-{name}"


def policy_id(bundle: str) -> str:
    """The workflow id of a PolicyRollout: one rollout of a bundle at a time."""
    return f"policy-{bundle}"


def drift_id(bundle: str | None) -> str:
    """The workflow id of a DriftSweep: of one bundle, or of all of them."""
    return f"drift-{bundle or 'all'}"


def move_id(app: str) -> str:
    """The workflow id of a MoveWorkloads: one move of an application's replicas at a time."""
    return f"move-{app}"


def evacuate_id(cluster: str) -> str:
    """The workflow id of an EvacuateCluster."""
    return f"evacuate-{cluster}"


def access_grant_id(cluster: str, suffix: str) -> str:
    """The workflow id of an AccessGrant: a person may hold several grants on a cluster, one id each (`suffix` is
    random, made by the starter)."""
    return f"access-{cluster}-{suffix}"
