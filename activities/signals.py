"""Health checks beyond node readiness, for the upgrade's health gates: a Prometheus query that
must stay below a threshold, and a smoke test Job in the cluster. A check that fails is a
non-retryable `HealthCheckFailed` naming the check and its value; Prometheus or the cluster's
API being briefly unavailable is retried."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.failures import refuse, translated_failures
from regatta import prometheus
from regatta.kube import smoke_test
from regatta.kube.connect import ClusterConnections
from regatta.models import Activity, HealthCheckResult, RunHealthCheck
from regatta.models.errors import ErrorType
from regatta.outbound_connections import OutboundRefused
from regatta.rules.outbound import OutboundRules


class SignalActivities:
    def __init__(self, connections: ClusterConnections, *, outbound: OutboundRules | None = None,
                 smoke_test_images: tuple[str, ...] = ()):
        self.connections = connections
        self.outbound = outbound or OutboundRules()
        self.smoke_test_images = smoke_test_images  # REGATTA_SMOKE_TEST_IMAGES; empty: any image

    @activity.defn(name=Activity.CHECK_PROMETHEUS)
    def check_prometheus(self, request: RunHealthCheck) -> HealthCheckResult:
        check, name = request.check.prometheus, request.check.name
        if check is None:
            raise refuse(f"health check {name} has no prometheus query", error_type=ErrorType.INVALID_HEALTH_CHECK)
        try:
            highest = prometheus.watch_below(check, cluster=request.cluster.name, name=name, rules=self.outbound,
                                             on_sample=lambda value: activity.heartbeat(value))
        except OutboundRefused as refused:
            raise refuse(str(refused), error_type=ErrorType.OUTBOUND_REFUSED) from None
        except prometheus.CheckFailed as failed:
            raise ApplicationError(f"{failed} after {request.after}", {"check": name, "value": failed.value},
                                   type=ErrorType.HEALTH_CHECK_FAILED, non_retryable=True) from None
        except prometheus.BadQuery as error:
            raise refuse(f"health check {name}: {error}; fix the check", error_type=ErrorType.INVALID_HEALTH_CHECK) from None
        seen = f"highest {highest:g}" if highest is not None else "no data, which the check allows"
        return HealthCheckResult(name=name, passed=True, value=highest,
                                 detail=f"stayed below {check.below:g} for {check.for_seconds:g}s ({seen})")

    @activity.defn(name=Activity.RUN_SMOKE_TEST)
    def run_smoke_test(self, request: RunHealthCheck) -> HealthCheckResult:
        name = request.check.name
        job = smoke_test.job_name(name, request.request_token)
        with translated_failures():
            try:
                if request.check.smoke_test is None:
                    raise refuse(f"health check {name} has no smoke test", error_type=ErrorType.INVALID_HEALTH_CHECK)
                said = smoke_test.run_smoke_test(self.connections.api_client(request.cluster), request.check.smoke_test,
                                                 name=name, job=job, on_poll=activity.heartbeat,
                                                 allowed_images=self.smoke_test_images)
            except smoke_test.SmokeTestRefused as refused:
                raise refuse(f"{refused}; fix the check, or allow the image", error_type=ErrorType.INVALID_HEALTH_CHECK) from None
            except smoke_test.SmokeTestFailed as failed:
                raise ApplicationError(f"{failed} after {request.after}", {"check": name, "job": job},
                                       type=ErrorType.HEALTH_CHECK_FAILED, non_retryable=True) from None
        return HealthCheckResult(name=name, passed=True, detail=said)
