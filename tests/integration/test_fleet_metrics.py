"""The API's /metrics as Prometheus scrapes it: one series per cluster for what it is, its health,
nodes, capacity, requests and cost; compliance and placement; operations running and a running
rollout's clusters by stage and state; and the Grafana dashboard in deploy/grafana naming only
series (and labels) that a scrape declares."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from regatta.formats import fleet_data
from regatta.models import AbortInput
from regatta.models.policy import DriftSweepInput, DriftSweepResult, PolicyRolloutProgress
from regatta.rules import cost
from regatta.rules.operation_ids import policy_id
from tests.integration.cluster_api import ClusterApi
from tests.integration.conftest import wait_until
from tests.integration.placements import Fleet, roll_out

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "fleet.json"


def families(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def value(samples: list, **labels: str) -> float:
    found = [s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{labels}: {found}"
    return found[0]


@pytest.fixture
def fleet(simulator, inventory, settings) -> Fleet:
    return Fleet(simulator, inventory, settings)


async def test_the_fleet_for_prometheus_and_a_dashboard_of_series_that_exist(api, client, worker, task_queue, fleet,
                                                                              inventory):
    names = fleet.add({"a": ("m5.xlarge", 2, "us-east-1"), "b": ("m5.large", 1, "us-west-2")})
    placed = await asyncio.wait_for((await roll_out(client, task_queue, fleet.bundle({"divide": "weight"}))).result(), 120)
    assert placed.outcome == "succeeded", placed.message
    # Someone scales b's copy by hand: a drift the sweep finds.
    scaled = ClusterApi(fleet.simulator, names["b"]).merge(f"/apis/apps/v1/namespaces/web-{fleet.tag}/deployments/web",
                                                            {"spec": {"replicas": 5}})
    assert scaled.status_code == 200, scaled.text
    swept = await client.execute_workflow("DriftSweep", DriftSweepInput(bundle=fleet.app), id=f"drift-{fleet.app}",
                                          task_queue=task_queue, result_type=DriftSweepResult)
    assert swept.drifts == 1, [(d.key.words(), d.kind, [(f.path, f.before, f.after) for f in d.fields]) for d, _ in inventory.drifts(bundle=fleet.app)]
    # A second bundle waits for approval, so an operation is running while we scrape.
    waiting = fleet.bundle({"divide": "weight"}).model_copy(update={
        "name": f"hold-{fleet.tag}", "stages": [{"name": "gated", "approval_required": True}]})
    handle = await roll_out(client, task_queue, waiting)
    await wait_until(handle, lambda p: p.phase == "awaiting_approval", "waiting", progress_type=PolicyRolloutProgress)
    try:
        scraped = await api.get("/metrics", headers=api.token("viewer", "*"))  # Prometheus scrapes with a token
        refused = await api.get("/metrics")
        staging = await api.get("/metrics", headers=api.token("viewer", "no-such-environment"))
    finally:
        await handle.execute_update("abort", AbortInput(reason="scraped", requested_by="test"))
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    assert refused.status_code == 401
    scoped = families(staging.text)  # a token of another environment: none of these clusters, no wave's stages
    assert not [s for s in scoped.get("regatta_cluster_info", []) if s.labels["cluster"] in names.values()]
    assert not scoped.get("regatta_stage_clusters") and not [
        s for s in scoped.get("regatta_compliance", []) if s.labels["cluster"] in names.values()]
    series = families(scraped.text)

    record = inventory.get_cluster(names["a"])
    assert value(series["regatta_cluster_info"], cluster=names["a"]) == 1
    assert next(s.labels for s in series["regatta_cluster_info"] if s.labels["cluster"] == names["a"]) == {
        "cluster": names["a"], "provider": "eks", "region": "us-east-1", "environment": "staging", "version": "1.30"}
    assert value(series["regatta_cluster_healthy"], cluster=names["a"]) == 1
    assert value(series["regatta_cluster_nodes"], cluster=names["a"]) == 2
    assert value(series["regatta_cluster_cpu_millicores"], cluster=names["a"], kind="allocatable") == 2 * 3920
    assert value(series["regatta_cluster_cost_per_month"], cluster=names["a"], currency="USD") == pytest.approx(
        cost.cluster_cost(record, fleet_data.price_list()).monthly)
    assert value(series["regatta_cluster_end_of_support_timestamp_seconds"], cluster=names["a"], source="eks") > 0
    assert value(series["regatta_compliance"], cluster=names["a"], bundle=fleet.app, state="compliant") == 1
    assert value(series["regatta_placement_replicas"], app=fleet.app, cluster=names["b"], workload=fleet.workload) == 3
    assert value(series["regatta_drifts"], cluster=names["b"], bundle=fleet.app) == 1
    assert value(series["regatta_temporal_up"]) == 1
    assert value(series["regatta_operations_running"], kind="PolicyRollout") >= 1
    assert value(series["regatta_stage_clusters"], operation=policy_id(waiting.name), stage="gated", state="pending") == 2

    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 15
    labels_of: dict[str, set[str]] = {name: {k for s in samples for k in s.labels} for name, samples in series.items()}
    for expr in exprs:
        used = set(re.findall(r"\bregatta_[a-z_]+\b", expr))
        assert used, expr
        missing = used - set(labels_of)
        assert not missing, f"the dashboard asks for series /metrics does not serve: {missing} in {expr}"
        keys = set(re.findall(r"(\w+)\s*(?:=|!=|=~|!~)\s*\"", expr))
        for group in re.findall(r"\b(?:by|on|group_left|ignoring)\s*\(([^)]*)\)", expr):
            keys |= {k.strip() for k in group.split(",") if k.strip()}
        known = set().union(*(labels_of[name] for name in used))
        assert keys <= known, f"{expr}: labels {keys - known} are on none of {used}"
