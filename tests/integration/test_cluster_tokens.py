"""A cluster's API token expires as its cloud's does (EKS 15 minutes after it is made, a Google or Entra
token after about an hour; in the simulator, scaled like every other delay), and a drain or a gate holds
one client far longer than that: Regatta renews the token before it expires, and once more when the API
server answers 401 anyway (a token revoked early). A second 401 is the API server's answer."""

from __future__ import annotations

import time

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from regatta.clouds import KubeEndpoint
from regatta.kube.connect import ClusterConnections
from regatta.models import ClusterRef
from tests.conftest import sim_report
from tests.integration.conftest import start_upgrade
from tests.shared_http import http


@pytest.fixture
def token_lifetime(simulator):
    def set_to(seconds: float | None, *, revoke: bool = False) -> None:
        http.post(f"{simulator.url}/sim/token-lifetime", json={"seconds": seconds, "revoke": revoke},
                   timeout=10).raise_for_status()

    yield set_to
    set_to(None)


def test_a_client_outlives_its_token_it_renews_it_before_expiry_and_once_on_a_401(add_fleet, simulator, token_lifetime):
    [name] = add_fleet({"name": "tokens", "provider": "eks", "region": "us-east-1", "version": "1.30",
                        "node_pools": [{"name": "general", "nodes": 1}]})
    token_lifetime(1.0)
    connections = ClusterConnections(sim_url=simulator.url)
    core = k8s.CoreV1Api(connections.api_client(ClusterRef(name=name, provider="eks", region="us-east-1")))
    first = connections.api_client(ClusterRef(name=name, provider="eks", region="us-east-1")).token.token
    assert len(core.list_node().items) == 1
    time.sleep(1.2)  # past the first token's life: the next request carries a new one
    assert len(core.list_node().items) == 1
    second = core.api_client.token.token
    assert second != first and first not in simulator.world.issued_tokens  # the old one no longer exists

    token_lifetime(60, revoke=True)  # every token handed out stops working at once
    assert len(core.list_node().items) == 1  # a 401, a new token, the same request again
    assert core.api_client.token.token != second


def test_a_second_401_is_the_api_servers_answer(simulator, add_fleet):
    [name] = add_fleet({"name": "refused", "provider": "eks", "region": "us-east-1", "version": "1.30",
                        "node_pools": [{"name": "general", "nodes": 1}]})
    stale = KubeEndpoint(host=f"{simulator.world.kube_url}/k8s/{name}", bearer_token="simtok-not-a-token",
                         ca_data=simulator.world.ca_data, expires_at=time.time() + 600)
    fetched = []

    def renew() -> KubeEndpoint:
        fetched.append(1)
        return stale

    client = ClusterConnections(sim_url=simulator.url).client_for(stale, renew=renew)
    with pytest.raises(ApiException) as refused:
        k8s.CoreV1Api(client).list_node()
    assert refused.value.status == 401
    assert len(fetched) == 1  # one fresh token after the first 401, then the second 401 stands: no loop


async def test_an_upgrade_whose_drains_outlive_many_tokens_completes(
        client, worker, task_queue, add_fleet, simulator, token_lifetime):
    [name] = add_fleet({"name": "longdrain", "provider": "eks", "region": "us-east-1", "version": "1.30", "time_scale": 0.01,
                        "node_pools": [{"name": "general", "nodes": 2}],
                        "workloads": [{"name": "checkout", "namespace": "shop", "replicas": 3, "pdb": {"min_available": 2}}]})
    token_lifetime(1.0)
    issued = simulator.world.tokens_issued
    result = await (await start_upgrade(client, task_queue, name, strategy="blue_green")).result()
    assert result.outcome == "succeeded"
    report = sim_report(simulator, name)
    assert report["pdb_violations"] == [] and report["double_drains"] == []
    assert report["tokens_issued"] > issued + 2, "the upgrade never needed a second token: nothing was tested"
