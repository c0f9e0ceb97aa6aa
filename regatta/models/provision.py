"""ProvisionCluster: the cluster asked for (what `regatta provision --file` reads), progress and result.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from regatta.models.base import Model, ProviderKind
from regatta.models.fleet import ClusterNetwork, ClusterRef, NodeTaint, fill_default_node_sizes
from regatta.models.operations import Reported
from regatta.models.timings import CloudTimings


class NodePoolRequest(Model):
    name: str
    node_count: int
    node_size: str = Field(default="", description="the cloud's machine type; empty: its default (e2-standard-4 on"
                           " GKE, Standard_D4s_v5 on AKS, m5.large on EKS)")
    labels: dict[str, str] = Field(default_factory=dict)
    subnets: list[str] = Field(default_factory=list, description="empty: the cluster's network.subnets")
    node_role: str | None = Field(default=None, description="EKS; None: the cluster's network.node_role")
    taints: list[NodeTaint] = Field(default_factory=list)


class ProvisionClusterInput(CloudTimings):
    """What `regatta provision --file cluster.yaml` sends, and what the Temporal UI accepts."""

    name: str
    provider: ProviderKind = "eks"
    region: str
    version: str
    environment: str
    labels: dict[str, str] = Field(default_factory=dict)
    node_pools: list[NodePoolRequest]
    credential_ref: str = "default"
    network: ClusterNetwork = Field(default_factory=ClusterNetwork, description="where it lives and who it acts as"
                                   " (EKS subnets and roles, GKE network, AKS subnet): its cloud refuses a"
                                   " cluster without them")
    namespaces: list[str] = Field(default_factory=lambda: ["platform", "monitoring"])
    admin_group: str = "platform-sre"
    ticket: str | None = None
    requested_by: str = "temporal-ui"
    callback_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://",
                                     description="POSTed an HMAC-signed JSON note on every change of phase")
    ready_timeout_seconds: float = Field(default=900, gt=0)

    @model_validator(mode="after")
    def _node_sizes(self) -> ProvisionClusterInput:
        fill_default_node_sizes(self.provider, self.node_pools)
        return self

    @property
    def ref(self) -> ClusterRef:
        return ClusterRef(name=self.name, provider=self.provider, region=self.region, credential_ref=self.credential_ref)


class ProvisionClusterProgress(Reported):
    operation_id: str = ""
    cluster: str
    phase: Literal["validating", "creating", "bootstrapping", "registering", "compensating", "succeeded", "failed"] = "validating"
    step: str = "starting"
    # What exists because of this operation, in creation order: "cluster", "node_pool:<name>",
    # "inventory". A failure deletes these in reverse (the saga's compensations).
    created: list[str] = Field(default_factory=list)
    with_cluster: list[str] = Field(default_factory=list, description="node pools created in the cluster's own create"
                                    " request (GKE, AKS): deleting the cluster deletes them")
    bootstrapped: list[str] = Field(default_factory=list)
    message: str = ""


class ProvisionClusterResult(Model):
    operation_id: str
    cluster: str
    outcome: Literal["succeeded"]
    created: list[str]
    bootstrapped: list[str]
    message: str
