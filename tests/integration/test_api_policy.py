"""The policy plane over the HTTP API, as a change-ticket system drives it: kind `policy` starts a
PolicyRollout from the bundle's JSON; a bad bundle is a 422 that says what to fix; a token may
start a rollout only where every one of its clusters lies; compliance by bundle, by cluster and
by state, and a record's history, scoped to the token's environments."""

from __future__ import annotations

import uuid

from tests.api_calls import finished, ticket

FAST = {"timeout_seconds": 20, "poll_interval_seconds": 0.05}


def bundle(tag: str, **fields) -> dict:
    return {"name": f"api-{tag}", "targets": {"selector": {"labels": {"apipol": tag}}}, "stages": [{"name": "all"}],
            "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "kube-system"},
                           "data": {"env": "{{ cluster.environment }}"}}], **FAST, **fields}


async def test_a_rollout_over_the_api_and_compliance_scoped_to_the_tokens_environments(api, worker, add_cluster, inventory):
    tag = uuid.uuid4().hex[:6]
    staging = add_cluster("apipol", env="staging", labels={"apipol": tag}, pools=1, nodes=2)
    prod = add_cluster("apipol", env="prod", labels={"apipol": tag}, pools=1, nodes=2)
    staging_operator = api.token("operator", "staging")
    refused = await api.post("/v1/operations", headers=staging_operator,
                             json={"kind": "policy", "ticket": ticket(), "input": bundle(tag)})
    assert refused.status_code == 403, refused.text  # the bundle reaches prod too

    operator = api.token("operator", "staging", "prod")
    bad = await api.post("/v1/operations", headers=operator, json={"kind": "policy", "ticket": ticket(), "input": bundle(
        tag, overrides=[{"target": {"kind": "Secret"}, "patch": [{"op": "add", "path": "/x", "value": 1}]}])})
    assert bad.status_code == 422 and "overrides[0].target matches none" in bad.json()["error"]

    started = await api.post("/v1/operations", headers=operator, json={"kind": "policy", "ticket": ticket(), "input": bundle(tag)})
    assert started.status_code == 201, started.text
    assert started.json()["operation_id"] == f"policy-api-{tag}"
    done = await finished(api, operator, f"policy-api-{tag}")
    assert done["status"] == "COMPLETED" and done["progress"]["phase"] == "succeeded", done

    everything = await api.get("/v1/policy/compliance", params={"bundle": f"api-{tag}"}, headers=operator)
    assert {(r["cluster"], r["state"]) for r in everything.json()} == {(staging, "compliant"), (prod, "compliant")}
    viewer = api.token("viewer", "staging")
    seen = await api.get("/v1/policy/compliance", params={"bundle": f"api-{tag}"}, headers=viewer)
    assert [r["cluster"] for r in seen.json()] == [staging]
    broken = await api.get("/v1/policy/compliance", params={"bundle": f"api-{tag}", "state": "non_compliant"}, headers=operator)
    assert broken.json() == []
    history = await api.get(f"/v1/policy/compliance/{staging}/api-{tag}/history", headers=viewer)
    assert [r["state"] for r in history.json()] == ["compliant"]
    hidden = await api.get(f"/v1/policy/compliance/{prod}/api-{tag}/history", headers=viewer)
    assert hidden.status_code == 404 and "that token" in hidden.text  # as if there were no such cluster
    assert (await api.get("/v1/policy/compliance/no-such-cluster/x/history", headers=operator)).status_code == 404
