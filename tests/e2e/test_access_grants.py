"""Time-bound access to a cluster, as a person uses it: `regatta access request` starts an AccessGrant, the
kubeconfig it hands out (once, sealed to the requester's key) works with the real kubectl for exactly the role
asked, and stops working when the grant is revoked or runs out, including when the worker was dead at the moment
of expiry (the grant is `overdue` until a worker returns and takes it back). Production waits for a second person."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import yaml

from tests.e2e.access_grant_runs import grant_id_of, grants, kubectl, regatta


async def test_a_view_grant_works_for_what_view_allows_is_handed_out_once_and_ends_when_revoked(
        queue_settings, worker, add_cluster, tmp_path, client, inventory):
    cluster = add_cluster("grant")
    config = tmp_path / "grant.yaml"
    asked = await asyncio.to_thread(regatta, queue_settings, "access", "request", cluster, "--role", "view", "--for", "1h",
                                    "--reason", "INC-7 looking at checkout", "--ticket", "INC-7", "--requested-by", "ana",
                                    "--output", str(config))
    assert asked.returncode == 0, asked.stdout + asked.stderr
    grant_id = grant_id_of(asked.stdout)
    assert "granted until" in asked.stdout and oct(config.stat().st_mode & 0o777) == "0o600"
    user = yaml.safe_load(config.read_text())["users"][0]["user"]
    assert set(user) == {"token"} and user["token"].startswith("simsa-")

    assert "checkout-" in kubectl(config, "get", "pods", "-A").stdout
    nodes = kubectl(config, "get", "nodes")
    assert nodes.returncode == 1 and "cannot list resource \"nodes\"" in nodes.stderr
    pod = kubectl(config, "get", "pods", "-n", "shop", "-o", "name").stdout.splitlines()[0].removeprefix("pod/")
    delete = kubectl(config, "delete", "pod", pod, "-n", "shop", "--wait=false")
    assert delete.returncode == 1 and "forbidden" in delete.stderr

    # handed out once, and only to the person who asked
    again = await asyncio.to_thread(regatta, queue_settings, "access", "kubeconfig", grant_id, "--output",
                                    str(tmp_path / "again.yaml"), "--requested-by", "ana")
    assert again.returncode == 2 and "handed out once" in again.stderr and not (tmp_path / "again.yaml").exists()
    other = await asyncio.to_thread(regatta, queue_settings, "access", "kubeconfig", grant_id, "--output",
                                    str(tmp_path / "bob.yaml"), "--requested-by", "bob")
    assert other.returncode == 2 and "only they receive its kubeconfig" in other.stderr
    refusals = [r for r in inventory.audit(operation_id=grant_id) if r.outcome == "refused"]
    assert [(r.requested_by, r.action) for r in refusals] == [("ana", "hand out (CLI)"), ("bob", "hand out (CLI)")]

    listed = grants(queue_settings, grant_id)
    assert (listed["phase"], listed["person"], listed["role"], listed["approved_by"]) == ("granted", "ana", "view", None)
    assert listed["handed_out_at"] is not None

    revoked = await asyncio.to_thread(regatta, queue_settings, "access", "revoke", grant_id, "--reason", "done",
                                      "--requested-by", "ana")
    assert revoked.returncode == 0 and "revoked" in revoked.stdout, revoked.stdout + revoked.stderr
    after = kubectl(config, "get", "pods", "-A")
    assert after.returncode == 1 and "Unauthorized" in after.stderr
    admin = tmp_path / "admin.yaml"  # Regatta's own view of the cluster: the binding and the account are gone
    assert regatta(queue_settings, "clusters", "kubeconfig", cluster, "--output", str(admin)).returncode == 0
    left = json.loads(kubectl(admin, "get", "clusterrolebindings,serviceaccounts", "-A", "-l",
                              "app.kubernetes.io/managed-by=regatta", "-o", "json").stdout)
    assert left["items"] == []
    listed = grants(queue_settings, grant_id)
    assert listed["phase"] == "revoked" and listed["revoked_by"] == "ana"
    # who could reach the cluster, and when: during the grant ana, after it nobody
    during = regatta(queue_settings, "access", "list", "--cluster", cluster, "--at", listed["granted_at"], "--output", "json")
    assert [g["person"] for g in json.loads(during.stdout)] == ["ana"], during.stderr
    after_it = regatta(queue_settings, "access", "list", "--cluster", cluster, "--at", listed["revoked_at"], "--output", "json")
    assert json.loads(after_it.stdout) == []
    nonsense = regatta(queue_settings, "access", "list", "--at", "last tuesday")
    assert nonsense.returncode == 2 and "give a moment as" in nonsense.stderr

    trail = [r for r in inventory.audit(operation_id=grant_id) if r.outcome != "refused"]
    assert [r.action for r in trail] == ["access request", "grant", "hand out", "revoke", "revoke"]
    assert all(r.operation == "access" for r in trail)
    kinds = await asyncio.to_thread(regatta, queue_settings, "audit", "list", "--kind", "access", "--output", "json")
    assert any(r["operation_id"] == grant_id and r["action"] == "hand out" for r in json.loads(kinds.stdout))
    # the history holds the kubeconfig sealed: no token in it
    raw = b"".join(e.SerializeToString() for e in (await client.get_workflow_handle(grant_id).fetch_history()).events)
    assert user["token"].encode() not in raw and b"simsa-" not in raw


@pytest.mark.parametrize("duration, problem", [("5s", "a grant lasts from 30 s"), ("2 days", "is not a duration")])
def test_a_request_that_does_not_fit_is_refused_before_anything_starts(queue_settings, add_cluster, duration, problem):
    cluster = add_cluster("nogrant")
    asked = regatta(queue_settings, "access", "request", cluster, "--for", duration, "--reason", "x")
    assert asked.returncode == 2 and problem in asked.stderr
    nameless = regatta(queue_settings, "access", "request", cluster, "--reason", " ")
    assert nameless.returncode == 2 and "say why with --reason" in nameless.stderr


async def test_over_the_api_a_grant_is_asked_approved_handed_out_to_its_requester_once_and_revoked(
        queue_settings, inventory, worker, add_cluster, tmp_path):
    """The same grant over the HTTP API: the token's name is who asks; an operator of the cluster's environment may
    ask, a viewer may not; an approver approves (never the requester); the kubeconfig goes to the requester once;
    another environment's token learns nothing of the grant."""
    import uuid

    import httpx

    from regatta.api.app import create_app
    from regatta.api.tokens import create_token

    cluster = add_cluster("apigrant", env="prod")

    def token(name: str, role: str, *envs: str) -> dict[str, str]:
        _, secret = create_token(inventory, name=f"{name}-{uuid.uuid4().hex[:6]}", role=role, environments=list(envs))
        return {"Authorization": f"Bearer {secret}"}

    operator, approver, viewer, stranger = (token("op", "operator", "prod"), token("ap", "approver", "prod"),
                                            token("vw", "viewer", "prod"), token("st", "operator", "staging"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(queue_settings, inventory)),
                                 base_url="http://regatta.test", timeout=60) as api:
        ask = {"cluster": cluster, "role": "view", "duration": "1h", "reason": "INC-11"}
        refused = await api.post("/v1/access", json=ask, headers=viewer)
        assert refused.status_code == 403 and "may not start" in refused.json()["error"]
        # the role before the body: a viewer's malformed request is the same 403, not a 422 that says how it is read
        unread = await api.post("/v1/access", json={"cluster": 7, "role": "root"}, headers=viewer)
        assert unread.status_code == 403 and "may not start" in unread.json()["error"]
        malformed = await api.post("/v1/access", json={"cluster": cluster, "role": "root", "reason": "x"}, headers=operator)
        assert malformed.status_code == 422 and "role" in malformed.json()["error"]
        bad = await api.post("/v1/access", json={**ask, "duration": "3 days"}, headers=operator)
        assert bad.status_code == 422 and "is not a duration" in bad.json()["error"]
        started = await api.post("/v1/access", json=ask, headers=operator)
        assert started.status_code == 201 and started.json()["needs_approval"] is True, started.text
        grant_id = started.json()["grant_id"]
        for _ in range(100):
            listed = (await api.get("/v1/access", params={"cluster": cluster}, headers=viewer)).json()
            if listed and listed[0]["state"] == "awaiting_approval":
                break
            await asyncio.sleep(0.1)
        assert listed[0]["grant_id"] == grant_id and listed[0]["state"] == "awaiting_approval"
        assert all(g["cluster"] != cluster for g in (await api.get("/v1/access", headers=stranger)).json())
        unseen = await api.post(f"/v1/access/{grant_id}/revoke", json={}, headers=stranger)
        assert unseen.status_code == 404  # outside its environments: as if there were no such grant
        own = await api.post(f"/v1/access/{grant_id}/approve", json={}, headers=operator)
        assert own.status_code == 403  # an operator does not approve at all
        approved = await api.post(f"/v1/access/{grant_id}/approve", json={"comment": "ok"}, headers=approver)
        assert approved.status_code == 200, approved.text
        for _ in range(100):
            if (await api.get("/v1/access", params={"cluster": cluster}, headers=viewer)).json()[0]["state"] == "granted":
                break
            await asyncio.sleep(0.1)
        not_theirs = await api.post(f"/v1/access/{grant_id}/kubeconfig", headers=approver)
        assert not_theirs.status_code == 403 and "only they receive" in not_theirs.json()["error"]
        handed = await api.post(f"/v1/access/{grant_id}/kubeconfig", headers=operator)
        assert handed.status_code == 200 and handed.headers["cache-control"] == "no-store", handed.text
        config = tmp_path / "api.yaml"
        config.write_text(handed.json()["kubeconfig"])
        assert kubectl(config, "get", "pods", "-n", "shop").returncode == 0
        twice = await api.post(f"/v1/access/{grant_id}/kubeconfig", headers=operator)
        assert twice.status_code == 409 and "handed out once" in twice.json()["error"]
        revoked = await api.post(f"/v1/access/{grant_id}/revoke", json={"reason": "done"}, headers=operator)
        assert revoked.status_code == 200, revoked.text
        for _ in range(100):
            if (await api.get("/v1/access", params={"cluster": cluster}, headers=viewer)).json()[0]["state"] == "revoked":
                break
            await asyncio.sleep(0.1)
        assert kubectl(config, "get", "pods", "-n", "shop").returncode == 1
        final = (await api.get("/v1/access", params={"cluster": cluster}, headers=viewer)).json()[0]
        assert final["state"] == "revoked" and final["approved_by"].startswith("ap-") and final["person"].startswith("op-")


async def test_in_the_fleet_view_a_person_asks_takes_the_kubeconfig_once_and_sees_an_overdue_grant(
        queue_settings, inventory, worker, add_cluster, tmp_path, client):
    import re
    import uuid
    from datetime import UTC, datetime, timedelta

    import httpx

    from regatta.api.app import create_app
    from regatta.api.tokens import create_token
    from regatta.models import AccessGrantRecord

    cluster = add_cluster("uigrant")  # staging: a view grant needs nobody's approval
    name = f"web-{uuid.uuid4().hex[:6]}"
    _, secret = create_token(inventory, name=name, role="operator", environments=["staging"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(queue_settings, inventory)),
                                 base_url="http://regatta.test", timeout=60) as browser:
        form = await browser.get("/ui/login")
        guard = re.search(r'name="csrf" value="([^"]+)"', form.text)[1]
        assert (await browser.post("/ui/login", data={"token": secret, "csrf": guard, "next": "/ui/access"})).status_code == 303
        page = await browser.get("/ui/access")
        assert page.status_code == 200 and f"<option>{cluster}</option>" in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]
        forged = await browser.post("/ui/access", data={"csrf": "forged", "cluster": cluster, "reason": "x"})
        assert forged.status_code == 403
        asked = await browser.post("/ui/access", data={"csrf": csrf, "cluster": cluster, "role": "view", "duration": "1h",
                                                       "reason": "INC-12"})
        assert asked.status_code == 303 and "it is being granted" in httpx.URL(asked.headers["location"]).params["message"]
        grant_id = re.search(r"asked: (\S+);", httpx.URL(asked.headers["location"]).params["message"])[1]
        for _ in range(100):
            page = await browser.get("/ui/access")
            found = re.search(rf'<tr data-grant="{grant_id}">.*?</tr>', page.text, re.S)
            row = found[0] if found else ""
            if "value=\"kubeconfig\"" in row:
                break
            await asyncio.sleep(0.1)
        assert ">granted<" in row and 'value="approve"' not in row  # nobody approves their own, nor a grant that needs none
        import base64

        from temporalio.client import WorkflowUpdateFailedError

        with pytest.raises(WorkflowUpdateFailedError):  # a key nothing can be sealed to: refused before any token
            await client.get_workflow_handle(grant_id).execute_update(
                "hand_out", {"requested_by": name, "recipient_key": base64.b64encode(bytes(32)).decode()}, result_type=dict)
        taken = await browser.post(f"/ui/access/{grant_id}/kubeconfig", data={"csrf": csrf})
        assert taken.status_code == 200 and taken.headers["cache-control"] == "no-store"
        assert taken.headers["content-disposition"].startswith("attachment;")
        config = tmp_path / "ui.yaml"
        config.write_bytes(taken.content)
        assert kubectl(config, "get", "pods", "-n", "shop").returncode == 0
        again = await browser.post(f"/ui/access/{grant_id}/kubeconfig", data={"csrf": csrf})
        assert again.status_code == 303 and "handed out once" in httpx.URL(again.headers["location"]).params["message"]
        revoked = await browser.post(f"/ui/access/{grant_id}/revoke", data={"csrf": csrf})
        assert revoked.status_code == 303
        for _ in range(100):
            if kubectl(config, "get", "pods", "-n", "shop").returncode == 1:
                break
            await asyncio.sleep(0.2)
        assert kubectl(config, "get", "pods", "-n", "shop").returncode == 1

        # a grant whose time is up while no worker takes it back is shown as overdue
        now = datetime.now(UTC)
        inventory.record_access_grant(AccessGrantRecord(
            grant_id=f"access-{cluster}-overdue1", cluster=cluster, environment="staging", person="someone", role="view",
            reason="INC-13", phase="granted", requested_at=now - timedelta(hours=2), granted_at=now - timedelta(hours=2),
            expires_at=now - timedelta(minutes=5)))
        page = await browser.get("/ui/access")
        row = re.search(rf'<tr data-grant="access-{cluster}-overdue1">.*?</tr>', page.text, re.S)[0]
        assert "overdue" in row and "takes it back when a worker returns" in row


async def test_a_request_withdrawn_before_approval_or_never_approved_grants_nothing(
        queue_settings, worker, add_cluster, client, inventory):
    from regatta.models import AccessGrantInput, AccessGrantResult
    from regatta.temporal.operations import start

    cluster = add_cluster("withdrawn")  # staging: an edit grant still waits for a second person
    record = inventory.get_cluster(cluster)
    withdrawn = await start(queue_settings, AccessGrantInput(
        cluster=cluster, role="edit", duration_seconds=600, reason="INC-14", requested_by="ana"), cluster=record)
    deadline = time.monotonic() + 30
    while (await withdrawn.query("progress", result_type=dict))["phase"] != "awaiting_approval":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    await withdrawn.execute_update("revoke", {"requested_by": "ana", "reason": "not needed"}, result_type=dict)
    result = AccessGrantResult.model_validate(await withdrawn.result())
    assert result.outcome == "refused" and "withdrawn by ana" in result.message and result.granted_at is None
    from temporalio.service import RPCError

    unapproved = await start(queue_settings, AccessGrantInput(
        cluster=cluster, role="admin", duration_seconds=600, reason="INC-15", requested_by="ana",
        approval_timeout_seconds=1), cluster=record)
    result = AccessGrantResult.model_validate(await unapproved.result())
    assert result.outcome == "refused" and "nobody approved it within 1s" in result.message
    with pytest.raises(RPCError, match="already completed"):  # ended: nothing left to approve
        await unapproved.execute_update("approve", {"approver": "bo"}, result_type=dict)
    phases = {g.grant_id: g.phase for g in inventory.access_grants(cluster=cluster)}
    assert phases == {withdrawn.id: "refused", unapproved.id: "refused"}
