"""Health gates: node readiness, and the checks beyond it (a Prometheus query that must stay below a
threshold, a smoke-test Job that must complete).

Used by ClusterUpgrade, waves (per stage) and the health activities.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from regatta.models.base import Model
from regatta.models.fleet import ClusterRef, TargetsByRef


class HealthGate(TargetsByRef, Model):
    cluster: ClusterRef
    timeout_seconds: float
    poll_interval_seconds: float
    after: str = Field(description="what just finished, named in the failure message")
    failure_type: str = "HealthGateFailed"
    min_ready_nodes: int = 0


class HealthReport(Model):
    healthy: bool
    problems: list[str] = Field(default_factory=list)


class PrometheusCheck(Model):
    """A PromQL query whose value must stay below a threshold for a while (an error rate, a
    latency). `$cluster` in the URL or the query is replaced by the cluster's name."""

    url: str = Field(pattern=r"^https?://", description="Prometheus' base URL, e.g. http://prometheus.$cluster.internal:9090")
    query: str = Field(min_length=1, description="PromQL; the highest value of the series it returns is what counts")
    below: float = Field(description="every sample must be below this")
    for_seconds: float = Field(default=300, gt=0, le=24 * 3600, description="how long it must stay below")
    interval_seconds: float = Field(default=15, gt=0, le=3600, description="seconds between samples")
    no_data: Literal["fail", "pass"] = Field(default="fail", description="what a query returning no series means")


# Where a smoke test may not run: the cluster's own namespaces, whose service accounts hold its keys.
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "gatekeeper-system", "kyverno",
                               "cert-manager", "platform"})


class SmokeTestCheck(Model):
    """A Job run in the cluster after each step; it must complete. It runs unprivileged (no service account
    token, no root, no privilege escalation, no capabilities), never in a system namespace, and where
    REGATTA_SMOKE_TEST_IMAGES is set, only an image it names (regatta/kube/smoke_test.py)."""

    image: str = Field(min_length=1, max_length=500, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")
    command: list[str] = Field(default_factory=list, max_length=50)
    namespace: str = Field(default="default", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    timeout_seconds: float = Field(default=600, gt=0, le=6 * 3600)

    @field_validator("namespace")
    @classmethod
    def _not_a_system_namespace(cls, namespace: str) -> str:
        if namespace in SYSTEM_NAMESPACES or namespace.startswith("kube-"):
            raise ValueError(f"a smoke test does not run in {namespace}, a system namespace whose service accounts hold"
                             " the cluster's keys: name the namespace of the application it tests")
        return namespace


class HealthCheck(Model):
    """One check of a health gate beyond node readiness: exactly one of `prometheus` or `smoke_test`."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40, description="named in every failure")
    prometheus: PrometheusCheck | None = None
    smoke_test: SmokeTestCheck | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> HealthCheck:
        if (self.prometheus is None) == (self.smoke_test is None):
            raise ValueError(f"health check {self.name!r}: give exactly one of prometheus or smoke_test")
        return self


class RunHealthCheck(TargetsByRef, Model):
    cluster: ClusterRef
    check: HealthCheck
    after: str = Field(description="what just finished, named in the failure message")
    request_token: str = Field(description="names the smoke test's Job, so a retried activity finds its own Job")


class HealthCheckResult(Model):
    name: str
    passed: bool
    value: float | None = Field(default=None, description="the highest sample (prometheus)")
    detail: str = ""


# Where in each minor of an upgrade a hook runs (Cluster API's lifecycle hooks, by the same names).
HookPoint = Literal["before_control_plane", "after_control_plane", "before_node_pools", "after_node_pools"]


class WebhookCall(Model):
    """A signed POST of the upgrade's moment to a URL (the owner's own check, a change system's gate). A 2xx
    answer lets the upgrade go on; a 4xx (but 408 and 429) is the hook saying no; anything else, or no answer, is
    asked again until `timeout_seconds`, and then the hook has said no."""

    url: str = Field(pattern=r"^https?://", max_length=2000)
    timeout_seconds: float = Field(default=60, gt=0, le=3600)


class UpgradeHook(Model):
    """A check at one point of each minor of an upgrade that gates the next step: exactly one of `webhook` or
    `smoke_test`. One that fails stops the upgrade before that step, naming the hook and what it said."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40, description="named in every failure")
    at: HookPoint
    webhook: WebhookCall | None = None
    smoke_test: SmokeTestCheck | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> UpgradeHook:
        if (self.webhook is None) == (self.smoke_test is None):
            raise ValueError(f"hook {self.name!r}: give exactly one of webhook or smoke_test")
        return self


class HookCall(Model):
    """What a webhook hook is POSTed (all but `url` and `timeout_seconds`), signed by the activity."""

    url: str
    timeout_seconds: float
    hook: str
    at: HookPoint
    operation_id: str
    cluster: str
    ticket: str | None = None
    from_version: str
    minor: str = Field(description="the minor this part of the upgrade moves the cluster to")
    target_version: str
