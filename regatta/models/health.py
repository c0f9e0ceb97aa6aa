"""Health gates: node readiness, and the checks beyond it (a Prometheus query that must stay below a
threshold, a smoke-test Job that must complete).

Used by ClusterUpgrade, waves (per stage) and the health activities.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from regatta.models.base import Model
from regatta.models.fleet import ClusterRef


class HealthGate(Model):
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


class SmokeTestCheck(Model):
    """A Job run in the cluster after each step; it must complete."""

    image: str = Field(min_length=1)
    command: list[str] = Field(default_factory=list)
    namespace: str = "default"
    timeout_seconds: float = Field(default=600, gt=0, le=6 * 3600)


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


class RunHealthCheck(Model):
    cluster: ClusterRef
    check: HealthCheck
    after: str = Field(description="what just finished, named in the failure message")
    request_token: str = Field(description="names the smoke test's Job, so a retried activity finds its own Job")


class HealthCheckResult(Model):
    name: str
    passed: bool
    value: float | None = Field(default=None, description="the highest sample (prometheus)")
    detail: str = ""
