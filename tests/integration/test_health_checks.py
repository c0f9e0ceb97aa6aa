"""Health gates beyond node readiness, against the simulator and a small local server that
speaks the Prometheus query API's JSON: a query that stays below its threshold lets the upgrade
go on; one that does not stops it, naming the check and its value, before the next step; a
smoke-test Job in the cluster must complete; a wave stage's checks reach each cluster's upgrade
and a failed one counts against the failure budget."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from temporalio.client import WorkflowFailureError

from regatta.models import ClusterUpgradeProgress, HealthCheck
from tests.conftest import set_faults, sim_report
from tests.integration.conftest import start_upgrade
from tests.integration.waves import start_wave, wave_request


class FakePrometheus:
    """`GET /api/v1/query` answering a vector whose value is set per cluster (found in the query)."""

    def __init__(self):
        self.values: dict[str, float] = {}
        self.default: float | None = 0.01
        self.queries: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                query = parse_qs(url.query).get("query", [""])[0]
                owner.queries.append(query)
                if url.path != "/api/v1/query":
                    self.send_response(404)
                    self.end_headers()
                    return
                if "syntax error" in query:
                    body = {"status": "error", "errorType": "bad_data", "error": "1:8: parse error: unexpected identifier"}
                    status = 400
                else:
                    value = next((v for cluster, v in owner.values.items() if cluster in query), owner.default)
                    result = [] if value is None else [{"metric": {"job": "web"}, "value": [1764000000.0, str(value)]}]
                    body, status = {"status": "success", "data": {"resultType": "vector", "result": result}}, 200
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prometheus():
    server = FakePrometheus()
    yield server
    server.close()


def error_rate(prometheus: FakePrometheus, **fields) -> dict:
    return {"name": "error-rate", "prometheus": {
        "url": prometheus.url, "query": 'sum(rate(http_requests_total{cluster="$cluster",code=~"5.."}[5m]))',
        "below": 0.05, "for_seconds": 0.3, "interval_seconds": 0.1, **fields}}


async def test_a_query_that_stays_below_its_threshold_passes_after_every_step(
        client, worker, task_queue, add_cluster, prometheus):
    name = add_cluster("sig", pools=2, nodes=1)
    handle = await start_upgrade(client, task_queue, name, health_checks=[error_rate(prometheus)])
    assert (await handle.result()).outcome == "succeeded"
    progress = await handle.query("progress", result_type=ClusterUpgradeProgress)
    assert [line.split(":")[0] for line in progress.health_checks] == [
        "error-rate after the control plane upgrade", "error-rate after node pool pool0", "error-rate after node pool pool1"]
    assert "stayed below 0.05 for 0.3s (highest 0.01)" in progress.health_checks[0]
    assert f'cluster="{name}"' in prometheus.queries[0]  # $cluster became the cluster's name


async def test_a_query_above_its_threshold_stops_the_upgrade_naming_the_check_and_its_value(
        client, worker, task_queue, add_cluster, simulator, prometheus, inventory):
    name = add_cluster("sig", pools=1, nodes=1)
    prometheus.values[name] = 0.2
    handle = await start_upgrade(client, task_queue, name, health_checks=[error_rate(prometheus)])
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    cause = failure.value.cause
    assert cause.type == "HealthCheckFailed"
    assert "health check error-rate: sum(rate(http_requests_total" in cause.message
    assert "= 0.2, not below 0.05 after the control plane upgrade" in cause.message
    state = sim_report(simulator, name)["clusters"][name]
    assert state["control_plane_version"] == "1.31"
    assert {n["version"] for n in state["nodes"].values()} == {"v1.30.2"}  # the node pools were not touched
    assert any("= 0.2, not below 0.05" in r.detail for r in inventory.audit(cluster=name) if r.outcome == "failed")


async def test_no_data_fails_unless_the_check_says_none_means_healthy_and_a_bad_query_is_refused(
        client, worker, task_queue, add_cluster, prometheus):
    prometheus.default = None
    silent = add_cluster("sig", pools=1, nodes=1)
    handle = await start_upgrade(client, task_queue, silent, health_checks=[error_rate(prometheus)])
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert failure.value.cause.type == "HealthCheckFailed" and "returned no data" in failure.value.cause.message

    fine = add_cluster("sig", pools=1, nodes=1)
    handle = await start_upgrade(client, task_queue, fine, health_checks=[error_rate(prometheus, no_data="pass")])
    assert (await handle.result()).outcome == "succeeded"

    typo = add_cluster("sig", pools=1, nodes=1)
    handle = await start_upgrade(client, task_queue, typo, health_checks=[error_rate(prometheus, query="syntax error here")])
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert failure.value.cause.type == "InvalidHealthCheck"
    # Prometheus' kind of error and status, never its words (no third party's body reaches a reader)
    assert "(bad_data, HTTP 400)" in failure.value.cause.message and "fix the check" in failure.value.cause.message
    assert "parse error" not in failure.value.cause.message


async def test_a_smoke_test_job_must_complete_and_one_that_fails_stops_the_upgrade(
        client, worker, task_queue, add_cluster, simulator):
    smoke = {"name": "checkout", "smoke_test": {"image": "registry.local/smoke:1", "command": ["/smoke", "--checkout"],
                                                "namespace": "shop", "timeout_seconds": 30}}
    passing = add_cluster("smk", pools=1, nodes=1)
    handle = await start_upgrade(client, task_queue, passing, health_checks=[smoke])
    assert (await handle.result()).outcome == "succeeded"
    progress = await handle.query("progress", result_type=ClusterUpgradeProgress)
    assert len(progress.health_checks) == 2 and all("completed" in line for line in progress.health_checks)

    failing = add_cluster("smk", pools=1, nodes=1)
    set_faults(simulator, failing, job_failure="checkout returned 503 for 4 of 10 requests")
    handle = await start_upgrade(client, task_queue, failing, health_checks=[smoke])
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert failure.value.cause.type == "HealthCheckFailed"
    assert "health check checkout: smoke test Job shop/regatta-smoke-checkout-" in failure.value.cause.message
    assert "failed: checkout returned 503 for 4 of 10 requests after the control plane upgrade" in failure.value.cause.message


async def test_a_stage_check_reaches_each_cluster_and_a_failed_one_counts_against_the_failure_budget(
        client, worker, task_queue, fleet, simulator, prometheus):
    healthy, sick = fleet("prod", 1), fleet("prod", 1, prefix="wvsick")
    prometheus.values[sick[0]] = 0.3
    handle = await start_wave(client, task_queue, wave_request(fleet.tag, [
        {"name": "prod", "selector": {"environment": "prod"}, "concurrency": 1,
         "health_checks": [error_rate(prometheus)]}], failure_budget=0))
    result = await handle.result()
    assert result.outcome == "halted" and result.counts.get("failed") == 1
    assert "health check error-rate" in result.failed[sick[0]] and "= 0.3, not below 0.05" in result.failed[sick[0]]
    assert any(healthy[0] in q for q in prometheus.queries) and any(sick[0] in q for q in prometheus.queries)


def test_a_health_check_names_exactly_one_kind():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="give exactly one of prometheus or smoke_test"):
        HealthCheck.model_validate({"name": "both-or-none"})
    with pytest.raises(ValidationError, match="give exactly one of prometheus or smoke_test"):
        HealthCheck.model_validate({"name": "both", "prometheus": {"url": "http://p:9090", "query": "up", "below": 1},
                                    "smoke_test": {"image": "x"}})
    with pytest.raises(ValidationError, match="String should match pattern"):
        HealthCheck.model_validate({"name": "Not A DNS Name", "smoke_test": {"image": "x"}})


def test_a_smoke_test_runs_unprivileged_never_in_a_system_namespace_and_only_an_allowed_image(add_cluster, simulator):
    """What an operator's health check could otherwise do with the upgrade's access: run any image in
    kube-system, whose service accounts hold the cluster's keys."""
    from kubernetes import client as k8s
    from pydantic import ValidationError

    from regatta.kube import smoke_test
    from regatta.kube.connect import ClusterConnections
    from regatta.models import ClusterRef, SmokeTestCheck

    for namespace in ("kube-system", "kube-anything", "platform"):
        with pytest.raises(ValidationError, match="system namespace"):
            SmokeTestCheck(image="registry.local/smoke:1", namespace=namespace)
    name = add_cluster("smkpriv", pools=1, nodes=1)
    api = ClusterConnections(sim_url=simulator.url).api_client(ClusterRef(name=name, provider="eks", region="us-east-1"))
    check = SmokeTestCheck(image="docker.io/evil/miner:latest", namespace="shop", timeout_seconds=30)
    with pytest.raises(smoke_test.SmokeTestRefused, match="not one REGATTA_SMOKE_TEST_IMAGES allows"):
        smoke_test.run_smoke_test(api, check, name="probe", job="regatta-smoke-probe-1", poll_seconds=0.05,
                                  allowed_images=("registry.local/smoke/*", "registry.local/smoke:1"))
    jobs = k8s.BatchV1Api(api)
    assert jobs.list_namespaced_job("shop").items == []  # refused before anything was created
    allowed = check.model_copy(update={"image": "registry.local/smoke:1"})
    smoke_test.run_smoke_test(api, allowed, name="probe", job="regatta-smoke-probe-2", poll_seconds=0.05,
                              allowed_images=("registry.local/smoke:1",))
    pod = jobs.read_namespaced_job("regatta-smoke-probe-2", "shop").spec.template.spec
    assert pod.automount_service_account_token is False and pod.security_context.run_as_non_root is True
    container = pod.containers[0].security_context
    assert container.allow_privilege_escalation is False and container.capabilities.drop == ["ALL"]
