"""Upgrade readiness: what a target Kubernetes version would break on a cluster, found before the
upgrade starts (issue 29). A report holds findings; each has a severity, the objects it concerns and
what to do. The facts it is read from are here too: the dated table of API removals that ships with
Regatta (`regatta/formats/api_removals.yaml`), the API server's own count of deprecated APIs
requested, the apiVersions objects were last applied with, and each node pool's room for a surge node (the
add-ons are the cloud's ManagedAddon, regatta/models/fleet.py).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, computed_field

from regatta.models.base import Model

Severity = Literal["blocking", "warning", "info"]
ReadinessCheck = Literal["removed_api", "deprecated_api", "addon", "budget", "surge_room", "cloud_insight", "skew",
                         "version", "unreadable"]

# Blocking findings an operator accepts: the finding's id → why it may go ahead anyway (audited).
AcceptedFindings = dict[Annotated[str, Field(min_length=1, max_length=300)],
                        Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$")]]


class ApiRemoval(Model):
    """One kind in one API version that a Kubernetes release stops serving."""

    group_version: str = Field(description="the version no longer served, e.g. policy/v1beta1")
    kind: str
    resource: str = Field(description="the kind's REST resource, as apiserver_requested_deprecated_apis names it")
    removed_in: str = Field(description="the first minor release that does not serve it, e.g. 1.25")
    use_instead: str | None = Field(description="the group/version to move to; None when the API has no successor")
    available_since: str | None = None
    note: str = ""


class ApiRemovalTable(Model):
    """The removals that ship with Regatta, dated like the support calendar."""

    as_of: date
    source: str
    removals: list[ApiRemoval]


class RequestedDeprecatedApi(Model):
    """One series of the API server's `apiserver_requested_deprecated_apis` gauge: a deprecated API
    some client asked for since the API server started (a label per field; group "" is the core group)."""

    group: str = ""
    version: str
    resource: str
    subresource: str = ""
    removed_release: str = ""

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


class AppliedObject(Model):
    """An object and the apiVersion its manifest was last applied with (kubectl's
    last-applied-configuration, or the managed fields' apiVersion): the next apply of that manifest
    is refused once the version is no longer served."""

    group_version: str
    kind: str
    namespace: str | None = None
    name: str

    @property
    def reference(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


class RoomPlace(Model):
    """One place a pool's new nodes take their addresses from, and how many of them must fit there: an EKS
    group's Availability Zone (its subnets there), a GKE pool's Pod range."""

    name: str = Field(description="the zone (us-east-1a) or the range (Pod range 10.4.0.0/14)")
    free_addresses: dict[str, int] = Field(description="each subnet there (or the range) and its free addresses: one node"
                                           " takes all of its addresses in one")
    surge_nodes: int = Field(description="the new nodes the cloud's upgrade puts here at once")


class NodePoolRoom(Model):
    """Room for a node pool's surge: where the nodes its cloud's upgrade adds take their addresses, and what
    one node takes (what stops a surge on a real cloud: EKS and GKE raise a pool's size themselves)."""

    name: str
    node_count: int = Field(description="the pool's nodes: a blue/green replacement adds as many")
    places: list[RoomPlace]
    addresses_per_node: int | None = Field(default=None, description="what one node takes: a GKE node its Pod block;"
                                           " an EKS node 1 + its max pods under the VPC CNI (read from its nodes)")

    def room(self, place: RoomPlace) -> int:
        """How many new nodes fit in a place."""
        each = max(1, self.addresses_per_node or 1)
        return sum(free // each for free in place.free_addresses.values())


class ReadinessFinding(Model):
    """One thing the target version would break or put at risk on one cluster."""

    id: str = Field(description="stable within a cluster and target: what an operator names to accept it, e.g."
                    " removed_api:policy/v1beta1/PodDisruptionBudget")
    check: ReadinessCheck
    severity: Severity
    summary: str
    objects: list[str] = Field(default_factory=list)
    what_to_do: str
    version: str | None = Field(default=None, description="the step of the path it belongs to, where it is one step's")
    can_accept: bool = Field(default=True, description="whether an operator may accept it and go ahead; False for what"
                             " the cloud itself would refuse (the version-skew policy)")

    def line(self) -> str:
        """One line, as an upgrade's progress and the audit trail give it."""
        return f"{self.severity} [{self.id}] {self.summary}"


class ApiUsage(Model):
    """What a cluster's clients and manifests use of the APIs that releases after its own remove: the
    gauge's series and the objects last applied with a removed version, with the removals they were
    read against (the shipped table's, from the control plane's version on)."""

    table: ApiRemovalTable
    requested: list[RequestedDeprecatedApi] = Field(default_factory=list, description="at most 100 series")
    applied: list[AppliedObject] = Field(default_factory=list, description="at most 500 objects")
    unread: str | None = Field(default=None, description="why the cluster's API would not say (its credentials may"
                               " not read /metrics or list the kinds); None when it was read")


class ReadinessReport(Model):
    """Everything found for one cluster and one target version."""

    cluster: str
    current_version: str
    target_version: str
    path: list[str] = Field(description="the minor versions the control plane passes through, the target last")
    findings: list[ReadinessFinding] = Field(default_factory=list)
    read_at: datetime | None = Field(default=None, description="when the cluster was read (a stored report: the fleet"
                                     " sweep's read for its next minor)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ready(self) -> bool:
        """No blocking finding."""
        return not any(finding.severity == "blocking" for finding in self.findings)
