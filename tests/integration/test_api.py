"""The HTTP API as a change-ticket system drives it, against the real Temporal dev server, worker
and simulator: tickets as idempotency keys, controls as Updates, 4xx that say what to fix, and
every cell of the role × endpoint × environment matrix."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import httpx

from regatta.api.tokens import create_token, token_hash
from regatta.rules import access
from tests.api_calls import finished, ticket, upgrade
from tests.conftest import sim_report


async def test_a_ticket_starts_one_operation_and_sending_it_again_returns_that_operation(
        api, worker, add_cluster, simulator, inventory):
    name = add_cluster("api", env="staging", pools=1, nodes=2)
    operator = api.token("operator", "staging")
    change = ticket()
    first = await api.post("/v1/operations", headers=operator, json={"kind": "upgrade", "ticket": change, "input": upgrade(name)})
    assert first.status_code == 201, first.text
    assert first.json() == {"operation_id": f"cluster-{name}", "kind": "upgrade", "ticket": change,
                            "status_url": f"/v1/operations/cluster-{name}", "replayed": False, "path": ["1.31"]}
    again = await api.post("/v1/operations", headers=operator, json={"kind": "upgrade", "ticket": change, "input": upgrade(name)})
    assert again.status_code == 200 and again.json()["operation_id"] == f"cluster-{name}" and again.json()["replayed"]
    other = await api.post("/v1/operations", headers=operator,
                           json={"kind": "upgrade", "ticket": change, "input": upgrade(name, strategy="blue_green")})
    assert other.status_code == 409 and "with a different request" in other.json()["error"]

    done = await finished(api, operator, f"cluster-{name}")
    assert done["status"] == "COMPLETED" and done["progress"]["phase"] == "succeeded" and done["environment"] == "staging"
    assert sim_report(simulator, name)["clusters"][name]["control_plane_version"] == "1.31"
    trail = inventory.audit(cluster=name)
    token_name = trail[0].requested_by
    assert token_name.startswith("operator-") and all(r.requested_by == token_name for r in trail)
    assert ("api start", "started") in [(r.action, r.outcome) for r in trail]
    assert [(r.action, r.outcome) for r in trail if r.operation == "ClusterUpgrade"][-1] == ("upgrade", "succeeded")
    assert {r.ticket for r in trail} == {change}


async def test_controls_are_updates_and_a_validators_refusal_is_a_409_with_its_message(
        api, worker, add_cluster, inventory):
    name = add_cluster("apictl", env="staging", pools=1, nodes=2, time_scale=0.01)
    operator = api.token("operator", "staging")
    started = await api.post("/v1/operations", headers=operator,
                             json={"kind": "upgrade", "ticket": ticket(), "input": upgrade(name)})
    operation = started.json()["operation_id"]
    paused = await api.post(f"/v1/operations/{operation}/pause", headers=operator, json={"reason": "change freeze"})
    assert paused.status_code == 200 and paused.json()["progress"]["paused"]
    twice = await api.post(f"/v1/operations/{operation}/pause", headers=operator, json={})
    assert twice.status_code == 409 and "already paused" in twice.json()["error"]
    assert (await api.post(f"/v1/operations/{operation}/resume", headers=operator)).status_code == 200
    aborted = await api.post(f"/v1/operations/{operation}/abort", headers=operator, json={"reason": "wrong cluster"})
    assert aborted.status_code == 200 and aborted.json()["progress"]["abort_requested"]
    done = await finished(api, operator, operation)
    assert done["progress"]["phase"] == "aborted" and "wrong cluster" in done["progress"]["message"]
    outcomes = [(r.action, r.outcome) for r in inventory.audit(operation_id=operation) if r.operation == "api"]
    assert outcomes == [("api start", "started"), ("api pause", "paused"), ("api pause", "refused"),
                        ("api resume", "resumed"), ("api abort", "abort_requested")]


async def test_the_requester_cannot_approve_their_own_decommission(api, worker, add_cluster):
    name = add_cluster("apidec", env="staging", pools=1, nodes=1, workloads=[])
    admin = api.token("admin", "*")
    started = await api.post("/v1/operations", headers=admin, json={
        "kind": "decommission", "ticket": ticket(), "input": {"cluster": name, "poll_interval_seconds": 0.05}})
    assert started.status_code == 201, started.text
    operation = started.json()["operation_id"]
    for _ in range(100):
        found = (await api.get(f"/v1/operations/{operation}", headers=admin)).json()
        if found["progress"] and found["progress"]["phase"] == "awaiting_approval":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError('test_api.py:108: what this loop waited for never came')
    own = await api.post(f"/v1/operations/{operation}/approve", headers=admin, json={"comment": "lgtm"})
    assert own.status_code == 409 and "cannot approve it; a second person must" in own.json()["error"]
    other = api.token("approver", "staging")
    approved = await api.post(f"/v1/operations/{operation}/approve", headers=other, json={"comment": "checked"})
    assert approved.status_code == 200, approved.text
    done = await finished(api, admin, operation)
    assert done["status"] == "COMPLETED"


async def test_bad_requests_are_4xx_that_say_what_to_fix_and_change_nothing(api, worker, add_cluster, simulator):
    name = add_cluster("apibad", env="staging", pools=1, nodes=1)
    operator = api.token("operator", "staging")

    def start(body: dict, headers=operator):
        return api.post("/v1/operations", headers=headers, json=body)

    cases = [
        (await api.get("/v1/clusters"), 401, "Authorization: Bearer"),
        (await api.get("/v1/clusters", headers={"Authorization": "Bearer rgt_nope"}), 401, "unknown or revoked"),
        (await start({"kind": "reboot", "ticket": ticket(), "input": {}}), 422, "kind"),
        (await start({"kind": "upgrade", "ticket": "no spaces allowed", "input": upgrade(name)}), 422, "ticket"),
        (await start({"kind": "upgrade", "ticket": ticket(), "input": {"cluster": name}}), 422,
         "input does not fit a ClusterUpgrade: target_version: Field required"),
        (await start({"kind": "upgrade", "ticket": ticket(), "input": upgrade("no-such-cluster")}), 404,
         "no cluster 'no-such-cluster' that token"),
        (await start({"kind": "upgrade", "ticket": ticket(), "input": upgrade(name, target_version="1.29")}), 422,
         "cannot be downgraded"),
        (await start({"kind": "upgrade", "ticket": ticket(), "input": upgrade(name, target_version="1.30")}), 409,
         "nothing to do"),
        (await start({"kind": "upgrade", "ticket": ticket(), "input": upgrade(name, strategy="yolo")}), 422, "strategy"),
        (await start({"kind": "upgrade", "ticket": ticket(), "input": upgrade(name, callback_url="ftp://x")}), 422,
         "callback_url: String should match pattern"),
        (await start({"kind": "upgrade", "ticket": ticket(), "input": upgrade(name, callback_url="http://127.0.0.1:9/x")}),
         422, "no REGATTA_WEBHOOK_SECRET is set"),
        (await api.post("/v1/operations", headers=operator, content=b"{not json"), 422, "the request does not fit"),
        (await api.post("/v1/operations/cluster-nothing-here/pause", headers=operator, json={}), 404, "no operation"),
        (await api.post(f"/v1/operations/cluster-{name}/reboot", headers=operator, json={}), 422, "control"),
        (await api.get("/v1/clusters", headers=operator, params={"label": "team"}), 422, "give key=value"),
    ]
    for response, status, says in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert says in response.json()["error"], response.text
    assert sim_report(simulator, name)["clusters"][name]["control_plane_version"] == "1.30"


async def test_a_revoked_token_is_refused(api, inventory):
    _, secret = create_token(inventory, name=f"ci-{uuid.uuid4().hex[:6]}", role="viewer", environments=["*"])
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await api.get("/v1/clusters", headers=headers)).status_code == 200
    inventory.revoke_token(inventory.token_by_hash(token_hash(secret)).name)
    refused = await api.get("/v1/clusters", headers=headers)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]


ENDPOINTS = ("list", "read", "start", "pause", "resume", "abort", "approve")
ACTION_OF = {"list": "read", "read": "read", "start": "start", "pause": "control", "resume": "control", "abort": "control",
             "approve": "approve"}
# The table docs/api.md promises, written out here rather than read from regatta/rules/access.py: a role
# given one endpoint too many (or too few) there fails this test.
ALLOWED = {
    "viewer": {"list", "read"},
    "operator": {"list", "read", "start", "pause", "resume", "abort"},
    "approver": {"list", "read", "approve"},
    "admin": {"list", "read", "start", "pause", "resume", "abort", "approve"},
}


async def test_every_cell_of_role_by_endpoint_by_environment(api, worker, add_cluster, inventory):
    """Each role, scoped to staging, to prod, or to every environment, calls each endpoint on a
    staging and a prod cluster. Allowed calls get past the gate (to a 2xx, or to the refusal
    the operation itself gives: a finished upgrade cannot be paused); a role's refusal is a 403, and a
    cluster or operation outside the token's environments a 404 as for one that does not exist."""
    clusters = {env: add_cluster(f"mx{env[:4]}", env=env, pools=1, nodes=1, workloads=[]) for env in ("staging", "prod")}
    admin = api.token("admin", "*")
    for name in clusters.values():  # one finished operation per environment to steer
        started = await api.post("/v1/operations", headers=admin,
                                 json={"kind": "upgrade", "ticket": ticket(), "input": upgrade(name)})
        assert started.status_code == 201, started.text
        await finished(api, admin, started.json()["operation_id"])

    cells = 0
    for role, scope in itertools.product(ALLOWED, ("staging", "prod", "*")):
        headers = api.token(role, scope)
        for endpoint, (env, name) in itertools.product(ENDPOINTS, clusters.items()):
            operation = f"cluster-{name}"
            if endpoint == "list":
                response = await api.get("/v1/clusters", headers=headers)
            elif endpoint == "read":
                response = await api.get(f"/v1/operations/{operation}", headers=headers)
            elif endpoint == "start":  # a target the worker would refuse: allowed calls reach that refusal
                response = await api.post("/v1/operations", headers=headers, json={
                    "kind": "upgrade", "ticket": ticket(), "input": upgrade(name, target_version="1.29")})
            else:
                response = await api.post(f"/v1/operations/{operation}/{endpoint}", headers=headers, json={})
            allowed = endpoint in ALLOWED[role] and (endpoint == "list" or scope in ("*", env))
            expected = {"list": {200}, "read": {200}, "start": {422}}.get(endpoint, {409})
            cell = f"{role} scoped to {scope}: {endpoint} on {env} answered {response.status_code} {response.text}"
            if allowed:
                assert response.status_code in expected, cell
            elif endpoint not in ALLOWED[role]:  # the role: 403, before anything is read
                assert response.status_code == 403, cell
                assert f"may not {ACTION_OF[endpoint]}" in response.json()["error"], cell
            else:  # another environment's cluster or operation: answered as if there were none
                assert response.status_code == 404, cell
                assert name not in response.json()["error"].replace(f"'{name}'", "").replace(operation, ""), cell
            if endpoint == "list" and allowed:
                listed = {c["name"] for c in response.json()}
                assert (name in listed) == (scope in ("*", env)), cell  # a token sees only its environments
            cells += 1
    assert cells == len(ALLOWED) * 3 * len(ENDPOINTS) * 2 and set(ALLOWED) == set(access.ROLES)


async def test_holds_over_the_api_are_scoped_like_every_control_and_a_wave_answers_its_forecast(
        api, worker, add_cluster, inventory, simulator):
    from tests.integration.waves import wave_request

    name = add_cluster("apihold", env="staging", pools=1, nodes=1, labels={"wave": "apihold"})
    operator, viewer, prod_operator = api.token("operator", "staging"), api.token("viewer", "*"), api.token("operator", "prod")
    body = {"until": "2099-01-01T00:00:00Z", "reason": "quarter close"}
    assert (await api.post(f"/v1/clusters/{name}/hold", headers=viewer, json=body)).status_code == 403
    assert (await api.post(f"/v1/clusters/{name}/hold", headers=prod_operator, json=body)).status_code == 404
    naive = await api.post(f"/v1/clusters/{name}/hold", headers=operator, json={**body, "until": "2099-01-01T00:00:00"})
    assert naive.status_code == 422 and "with a time zone" in naive.json()["error"]
    past = await api.post(f"/v1/clusters/{name}/hold", headers=operator, json={**body, "until": "2001-01-01T00:00:00Z"})
    assert past.status_code == 422 and "has already passed" in past.json()["error"]
    missing = await api.post("/v1/clusters/no-such-cluster/hold", headers=operator, json=body)
    assert missing.status_code == 404
    assert inventory.get_cluster(name).hold is None  # no refusal wrote anything

    held = await api.post(f"/v1/clusters/{name}/hold", headers=operator, json=body)
    assert held.status_code == 201 and held.json()["reason"] == "quarter close"
    assert inventory.get_cluster(name).hold.held_by.startswith("operator-")  # the token's name is who holds it
    listed = (await api.get("/v1/clusters", headers=operator, params={"label": "wave=apihold"})).json()
    assert listed[0]["hold"]["until"].startswith("2099-01-01")

    wave = wave_request("apihold", [{"name": "all"}], estimated_upgrade_minutes=30)
    started = await api.post("/v1/operations", headers=operator, json={"kind": "wave", "ticket": ticket(),
                                                                       "input": wave.model_dump(mode="json")})
    assert started.status_code == 201, started.text
    operation = started.json()["operation_id"]
    for _ in range(100):
        told = await api.get(f"/v1/operations/{operation}/forecast", headers=viewer)
        if told.status_code == 200 and told.json()["clusters"] and told.json()["clusters"][0]["status"] == "held":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError('test_api.py:253: what this loop waited for never came')
    entry = told.json()["clusters"][0]
    assert entry["cluster"] == name and entry["earliest_touch"].startswith("2099-01-01") and "quarter close" in entry["because"]
    not_a_wave = await api.get(f"/v1/operations/cluster-{name}/forecast", headers=viewer)
    assert not_a_wave.status_code == 404  # no operation runs on the cluster itself

    # A wave's own controls over the API (the catalog's: skip and retry name a cluster); a control its kind does not
    # take is a 409 that says which it does, sent to nothing.
    no_cluster = await api.post(f"/v1/operations/{operation}/skip", headers=operator, json={"reason": "held"})
    assert no_cluster.status_code == 422 and "skip needs a cluster" in no_cluster.json()["error"]
    viewer_skip = await api.post(f"/v1/operations/{operation}/skip", headers=viewer, json={"cluster": name, "reason": "x"})
    assert viewer_skip.status_code == 403
    not_in = await api.post(f"/v1/operations/{operation}/skip", headers=operator, json={"cluster": "nope", "reason": "x"})
    assert not_in.status_code == 409 and "nope is not in this wave" in not_in.json()["error"]
    go_back = await api.post(f"/v1/operations/{operation}/go_back", headers=operator, json={"reason": "x"})
    assert go_back.status_code == 409 and "takes no go_back" in go_back.json()["error"], go_back.text
    skipped = await api.post(f"/v1/operations/{operation}/skip", headers=operator,
                             json={"cluster": name, "reason": "held for the quarter close"})
    assert skipped.status_code == 200, skipped.text
    assert [c["status"] for s in skipped.json()["progress"]["stages"] for c in s["clusters"]] == ["skipped"]
    found = (await api.get(f"/v1/operations/{operation}", headers=viewer)).json()
    assert found["condition"]["reason"] in ("Running", "Succeeded", "Planning"), found["condition"]
    lines = [(r.action, r.outcome) for r in inventory.audit(operation_id=operation) if r.operation == "api"]
    assert ("api skip", "refused") in lines and ("api skip", "skipped") in lines, lines

    assert (await api.post(f"/v1/clusters/{name}/release", headers=operator)).status_code == 200
    again = await api.post(f"/v1/clusters/{name}/release", headers=operator)
    assert again.status_code == 409 and "is not held" in again.json()["error"]
    await api.post(f"/v1/operations/{operation}/abort", headers=operator, json={"reason": "test over"})


async def test_a_router_serves_on_its_own_with_the_dependencies_it_declares(queue_settings, inventory, add_cluster):
    """Each router reaches the settings and the inventory through app.state, so one can be mounted
    and tested alone (what the old one-closure app could not be)."""
    from fastapi import FastAPI

    from regatta.api import clusters
    from regatta.api.errors import install_error_handlers

    app = FastAPI()
    app.state.settings, app.state.inventory, app.state.codec = queue_settings, inventory, None
    install_error_handlers(app)
    app.include_router(clusters.router)
    name = add_cluster("router", env="staging", pools=1, nodes=1, workloads=[])
    _, secret = create_token(inventory, name=f"viewer-{uuid.uuid4().hex[:8]}", role="viewer", environments=["staging"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://regatta.test") as alone:
        listed = await alone.get("/v1/clusters", params={"environment": "staging"}, headers={"Authorization": f"Bearer {secret}"})
        assert listed.status_code == 200 and name in [c["name"] for c in listed.json()]
        anonymous = await alone.get("/v1/clusters")
        assert anonymous.status_code == 401 and "Bearer" in anonymous.json()["error"]
        assert (await alone.get("/v1/operations/x")).status_code == 404  # not mounted here


async def test_the_operations_list_shows_a_token_only_the_operations_of_its_environments(
        api, worker, add_cluster, inventory):
    """`GET /v1/operations` is what `regatta op list` shows over the API: a staging token lists staging's upgrade and
    not prod's, nor the fleet-wide operations; a token for every environment lists them all; a viewer may read it,
    a bad limit is a 422 that says which, and no token is a 401."""
    tag = uuid.uuid4().hex[:6]
    staging, prod = add_cluster(f"lst{tag}", env="staging", pools=1, nodes=1), add_cluster(f"lsp{tag}", env="prod", pools=1, nodes=1)
    everyone = api.token("operator", "*")
    for name in (staging, prod):
        made = await api.post("/v1/operations", headers=everyone, json={"kind": "upgrade", "ticket": ticket(), "input": upgrade(name)})
        assert made.status_code == 201, made.text
        await finished(api, everyone, f"cluster-{name}")

    seen = await api.get("/v1/operations", params={"limit": 1000}, headers=api.token("viewer", "staging"))
    assert seen.status_code == 200, seen.text
    ids = {o["id"] for o in seen.json()}
    assert f"cluster-{staging}" in ids and f"cluster-{prod}" not in ids
    assert all(o["environment"] == "staging" and o["cluster"] for o in seen.json())
    mine = next(o for o in seen.json() if o["id"] == f"cluster-{staging}")
    assert (mine["type"], mine["status"], mine["outcome"], mine["succeeded"]) == ("ClusterUpgrade", "COMPLETED", "succeeded", True)
    every = {o["id"] for o in (await api.get("/v1/operations", params={"limit": 1000}, headers=everyone)).json()}
    assert {f"cluster-{staging}", f"cluster-{prod}"} <= every
    running = await api.get("/v1/operations", params={"running": "true"}, headers=everyone)
    assert running.status_code == 200 and f"cluster-{staging}" not in {o["id"] for o in running.json()}
    for bad in (0, 1001):
        refused = await api.get("/v1/operations", params={"limit": bad}, headers=everyone)
        assert refused.status_code == 422 and "limit" in refused.text, refused.text
    assert (await api.get("/v1/operations")).status_code == 401
