"""The fleet's rules for a new cluster: a well-formed, free name, a supported version, an allowed
region, node pools within limits.

Pure: called by ProvisionCluster's validation step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from regatta.models import ClusterNetwork
from regatta.models.errors import ErrorType
from regatta.rules import pool_names
from regatta.rules.refusals import Refusal
from regatta.rules.versions import InvalidVersion, parse_target_version

ALLOWED_REGIONS = {
    "eks": ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "ap-northeast-1"),
    "gke": ("us-central1", "us-east1", "europe-west1", "europe-west4", "asia-southeast1"),
    "aks": ("eastus", "eastus2", "westus2", "westeurope", "northeurope", "australiaeast"),
}


MAX_NODE_POOLS = 10


NODES_PER_POOL = range(1, 101)


_CLUSTER_NAME = re.compile(r"^[a-z][a-z0-9-]{2,38}[a-z0-9]$")


_POOL_NAME = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")


class FleetRuleViolation(Refusal):
    error_type = ErrorType.FLEET_RULE_VIOLATION


def fleet_rule_violations(
    *, name: str, provider: str, region: str, version: str, pools: Sequence[tuple[str, int]], taken: bool
) -> list[str]:
    """Every rule a new cluster breaks, each saying what to change. Empty when it may be built."""
    problems = []
    if not _CLUSTER_NAME.match(name):
        problems.append(f"name {name!r} must be 4-40 characters of lowercase letters, digits and '-', starting with a letter")
    if taken:
        problems.append(f"a cluster named {name} is already in the inventory; choose another name")
    if provider not in ALLOWED_REGIONS:
        problems.append(f"provider {provider!r} cannot create clusters; use one of {', '.join(ALLOWED_REGIONS)}")
    elif region not in ALLOWED_REGIONS[provider]:
        problems.append(f"region {region!r} is not allowed for {provider}; allowed: {', '.join(ALLOWED_REGIONS[provider])}")
    try:
        parse_target_version(version)
    except InvalidVersion as error:
        problems.append(str(error))
    if not pools:
        problems.append("at least one node pool is required")
    if len(pools) > MAX_NODE_POOLS:
        problems.append(f"at most {MAX_NODE_POOLS} node pools, not {len(pools)}")
    names = [pool for pool, _ in pools]
    for pool, count in pools:
        if not _POOL_NAME.match(pool):
            problems.append(f"node pool name {pool!r} must be lowercase letters, digits and '-', starting with a letter")
        elif (problem := pool_names.name_problem(provider, pool)) is not None:
            problems.append(f"node pool {pool}: {problem}")
        if count not in NODES_PER_POOL:
            problems.append(f"node pool {pool} asks for {count} nodes; allowed {NODES_PER_POOL.start} to {NODES_PER_POOL.stop - 1}")
    if len(set(names)) != len(names):
        problems.append("node pool names must be unique")
    return problems


def network_problems(*, provider: str, network: ClusterNetwork, pools: Sequence[tuple[str, list[str], str | None]]) -> list[str]:
    """What a new cluster's cloud would refuse for want of a network or an identity: EKS creates a
    cluster only with an IAM role and VPC subnets, and a node group only with subnets and a node
    role (each pool's own, or the cluster's). `pools`: (name, subnets, node_role)."""
    if provider != "eks":
        return []
    problems = []
    if not network.cluster_role:
        problems.append("network.cluster_role: EKS needs the cluster's IAM role ARN")
    if not network.subnets:
        problems.append("network.subnets: EKS needs the VPC subnets the cluster's control plane uses")
    for name, subnets, node_role in pools:
        if not (node_role or network.node_role):
            problems.append(f"node pool {name}: EKS needs a node IAM role (node_role, or network.node_role)")
        if not (subnets or network.subnets):
            problems.append(f"node pool {name}: EKS needs subnets (subnets, or network.subnets)")
    return problems


def born_with_first_pool(provider: str) -> bool:
    """Whether the cloud creates a cluster only with nodes, its first node pool in the create request: GKE
    ("Cluster.initial_node_count must be greater than zero") and AKS ("Must define at least one system pool");
    EKS creates the control plane alone and its node groups after."""
    return provider in ("gke", "aks")


def pools_deleted_before_the_cluster(provider: str, pools: Sequence[tuple[str, str | None]]) -> list[str]:
    """Which node pools a decommission deletes one by one before the cluster (`pools`: (name, mode)): EKS
    deletes no cluster with node groups left; AKS deletes no last System pool, and takes whatever pools are
    left with the cluster; GKE takes them all with it, but deleting them first (the last one too) is allowed."""
    if provider == "aks":
        return [name for name, mode in pools if (mode or "").lower() != "system"]
    return [name for name, _ in pools]
