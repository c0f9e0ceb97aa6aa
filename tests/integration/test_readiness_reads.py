"""Readiness as the fleet sees it without reaching a cluster: the fleet sweep reads each cluster's
readiness for its next minor and stores it; `GET /v1/readiness`, the metrics, the fleet view's
column, its readiness page and a cluster's page show that read, each to the tokens whose
environments cover the cluster."""

from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families

from regatta.kube.connect import ClusterConnections
from regatta.models import FleetSweepInput, FleetSweepResult
from tests.browsing import Browser, clusters_on
from tests.integration.readiness_objects import FINDING, FLOWSCHEMA


async def test_the_sweep_stores_each_clusters_readiness_and_the_api_metrics_and_fleet_view_show_it_in_scope(
        api, client, worker, task_queue, add_cluster, simulator, inventory, queue_settings):
    tag = uuid.uuid4().hex[:6]
    clean = add_cluster("rdclean", version="1.31", pools=1, nodes=1, env="staging", labels={"sweep": tag})
    stale = add_cluster("rdstale", version="1.31", pools=1, nodes=1, env=f"prod-{tag}", labels={"sweep": tag})
    # a client that still asks for v1beta3, as an old controller would: the API server's gauge remembers it
    kube = ClusterConnections(sim_url=simulator.url).api_client(inventory.get_cluster(stale).ref)
    kube.call_api("/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas", "POST", body=FLOWSCHEMA,
                  header_params={"Content-Type": "application/json"}, auth_settings=["BearerToken"],
                  _return_http_data_only=True, _preload_content=False)

    swept = await client.execute_workflow("FleetSweep", FleetSweepInput(selector={"labels": {"sweep": tag}}),
                                          id=f"fleet-sweep-{tag}", task_queue=task_queue, result_type=FleetSweepResult)
    assert swept.total == 2
    stored = {r.cluster: r for r in inventory.readiness_reports() if r.cluster in (clean, stale)}
    assert stored[clean].target_version == stored[stale].target_version == "1.32"
    assert stored[clean].ready and not stored[stale].ready and stored[stale].read_at is not None
    assert [f.id for f in stored[stale].findings if f.severity == "blocking"] == [FINDING]

    everyone = api.token("viewer", "*")
    listed = await api.get("/v1/readiness", headers=everyone)
    assert listed.status_code == 200
    by_cluster = {r["cluster"]: r for r in listed.json()}
    assert by_cluster[stale]["ready"] is False and by_cluster[clean]["ready"] is True
    blocking = await api.get("/v1/readiness", params={"to": "1.32", "blocking": "true"}, headers=everyone)
    assert stale in [r["cluster"] for r in blocking.json()] and clean not in [r["cluster"] for r in blocking.json()]
    assert (await api.get("/v1/readiness", params={"to": "1.33"}, headers=everyone)).json() == [
        r for r in (await api.get("/v1/readiness", headers=everyone)).json() if r["target_version"] == "1.33"]
    staging_only = (await api.get("/v1/readiness", headers=api.token("viewer", "staging"))).json()
    assert clean in [r["cluster"] for r in staging_only] and stale not in [r["cluster"] for r in staging_only]
    bad = await api.get("/v1/readiness", params={"to": "2.0"}, headers=everyone)
    assert bad.status_code == 422 and "not supported" in bad.text
    assert (await api.get("/v1/readiness")).status_code == 401

    scraped = {f.name: f.samples for f in text_string_to_metric_families(
        (await api.get("/metrics", headers=everyone)).text)}
    findings = scraped["regatta_cluster_upgrade_readiness_findings"]
    assert [s.value for s in findings if s.labels == {"cluster": stale, "target": "1.32", "severity": "blocking"}] == [1]
    assert [s.value for s in findings if s.labels == {"cluster": clean, "target": "1.32", "severity": "blocking"}] == [0]
    staged = {f.name: f.samples for f in text_string_to_metric_families(
        (await api.get("/metrics", headers=api.token("viewer", "staging"))).text)}
    assert not [s for s in staged["regatta_cluster_upgrade_readiness_findings"] if s.labels["cluster"] == stale]

    from regatta.api.app import create_app

    browser = Browser(create_app(queue_settings, inventory), inventory)
    unsigned = await browser.page("/ui/readiness")  # no session: nothing read, only the way to sign in
    assert unsigned.status_code == 303 and unsigned.headers["location"].startswith("/ui/login")
    await browser.sign_in("viewer", "*")
    fleet = await browser.page("/ui", sort="readiness", desc="1", label=f"sweep={tag}")
    assert fleet.status_code == 200 and clusters_on(fleet.text) == [stale, clean]
    assert "1.32: 1 blocking" in fleet.text and "1.32: ready" in fleet.text
    page = await browser.page("/ui/readiness")
    assert page.status_code == 200
    shown = clusters_on(page.text)
    assert shown.index(stale) < shown.index(clean) and FINDING in page.text  # not ready first, naming the finding
    detail = await browser.page(f"/ui/clusters/{stale}")
    assert "Readiness for 1.32" in detail.text and FINDING in detail.text and "not ready" in detail.text
    other = Browser(create_app(queue_settings, inventory), inventory)
    await other.sign_in("viewer", "staging")
    assert stale not in clusters_on((await other.page("/ui/readiness")).text)

    inventory.remove_cluster(stale)  # a cluster that leaves the fleet takes its report with it
    assert stale not in [r.cluster for r in inventory.readiness_reports()]
