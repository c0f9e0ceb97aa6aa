"""Callbacks: an operation started with a callback URL POSTs a signed note on every change of
phase, in order, to a receiver on this machine; a receiver that refuses does not stop it."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import time
import uuid

import httpx

from regatta.api.app import create_app
from regatta.api.tokens import create_token
from regatta.rules import signing
from regatta.temporal.connect import connect
from tests.callback_receiver import SECRET
from tests.integration.conftest import FAST
from workers.main import build_worker


async def test_every_phase_change_is_posted_signed_and_in_order(queue_settings, inventory, add_cluster, receiver):
    settings = dataclasses.replace(queue_settings, webhook_secret=SECRET)
    name = add_cluster("cb", env="staging", pools=1, nodes=2)
    refused = add_cluster("cbref", env="staging", pools=1, nodes=1)
    _, secret = create_token(inventory, name=f"itsm-{uuid.uuid4().hex[:6]}", role="operator", environments=["staging"])
    headers = {"Authorization": f"Bearer {secret}"}
    async with build_worker(await connect(settings), settings), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(settings, inventory)), base_url="http://regatta.test") as api:
        for cluster, path in ((name, "/hook"), (refused, "/refuse")):
            started = await api.post("/v1/operations", headers=headers, json={
                "kind": "upgrade", "ticket": f"CHG-{uuid.uuid4().hex[:6]}",
                "input": {"cluster": cluster, "target_version": "1.31", "callback_url": receiver.url + path, **FAST}})
            assert started.status_code == 201, started.text
        for operation in (f"cluster-{name}", f"cluster-{refused}"):
            for _ in range(600):
                found = (await api.get(f"/v1/operations/{operation}", headers=headers)).json()
                if found["status"] != "RUNNING":
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"{operation} never ended: {found}")
            assert found["status"] == "COMPLETED", found  # a refusing receiver does not stop the upgrade

    notes = [r for r in receiver.received if r["path"] == "/hook"]
    for note in notes:  # checked as a receiver would, from docs/api.md's formula, not with Regatta's own module
        sent_at = note["headers"]["X-Regatta-Timestamp"]
        wanted = hmac.new(SECRET.encode(), f"{sent_at}.".encode() + note["body"], hashlib.sha256).hexdigest()
        assert note["headers"]["X-Regatta-Signature"] == f"sha256={wanted}"
        assert abs(time.time() - int(sent_at)) < 300
    bodies = [json.loads(n["body"]) for n in notes]
    assert [b["phase"] for b in bodies] == ["preflight", "control_plane", "node_pools", "recording", "succeeded"]
    assert [b["sequence"] for b in bodies] == [1, 2, 3, 4, 5]
    assert {b["operation_id"] for b in bodies} == {f"cluster-{name}"} and "url" not in bodies[0]
    assert all(b["workflow_type"] == "ClusterUpgrade" and b["ticket"].startswith("CHG-") for b in bodies)
    forged = signing.verification_problem(b"another secret", signature=notes[0]["headers"][signing.SIGNATURE_HEADER],
                                          timestamp=notes[0]["headers"][signing.TIMESTAMP_HEADER], body=notes[0]["body"],
                                          now=time.time())
    assert forged and "does not match" in forged
    assert [r["path"] for r in receiver.received].count("/refuse") == 5  # each note tried once: a 400 is final


def signed(body: dict, *, secret: str = SECRET, at: float | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    timestamp = int(at if at is not None else time.time())
    return raw, {"Content-Type": "application/json", signing.TIMESTAMP_HEADER: str(timestamp),
                 signing.SIGNATURE_HEADER: signing.sign(secret.encode(), timestamp, raw)}


async def test_a_signed_ticket_event_approves_its_operation_and_forgeries_and_replays_are_refused(
        queue_settings, inventory, add_cluster, worker):
    settings = dataclasses.replace(queue_settings, webhook_secret=SECRET)
    name = add_cluster("whdec", env="staging", pools=1, nodes=1, workloads=[])
    token_name = f"itsm-{uuid.uuid4().hex[:6]}"
    _, secret = create_token(inventory, name=token_name, role="operator", environments=["staging"])
    change = f"CHG-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, inventory)),
                                 base_url="http://regatta.test") as api:
        started = await api.post("/v1/operations", headers={"Authorization": f"Bearer {secret}"}, json={
            "kind": "decommission", "ticket": change, "input": {"cluster": name, "poll_interval_seconds": 0.05}})
        assert started.status_code == 201, started.text
        operation = started.json()["operation_id"]
        for _ in range(200):
            found = (await api.get(f"/v1/operations/{operation}", headers={"Authorization": f"Bearer {secret}"})).json()
            if (found["progress"] or {}).get("phase") == "awaiting_approval":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError('test_callbacks.py:112: what this loop waited for never came')

        def post(raw: bytes, headers: dict):
            return api.post("/v1/webhooks/ticket-events", content=raw, headers=headers)

        approval = {"event": "approved", "ticket": change, "by": "alice", "comment": "CAB approved"}
        unsigned = await post(json.dumps(approval).encode(), {"Content-Type": "application/json"})
        assert unsigned.status_code == 401 and "sign the request" in unsigned.json()["error"]
        forged = await post(*signed(approval, secret="guessed"))
        assert forged.status_code == 401 and "does not match" in forged.json()["error"]
        stale = await post(*signed(approval, at=time.time() - 3600))
        assert stale.status_code == 401 and "outside the 300s window" in stale.json()["error"]
        unknown = await post(*signed({**approval, "ticket": "CHG-never"}))
        assert unknown.status_code == 404 and "CHG-never" in unknown.json()["error"]
        own = await post(*signed({**approval, "by": token_name}))
        assert own.status_code == 409 and "cannot approve it; a second person must" in own.json()["error"]
        spelled = await post(*signed({**approval, "by": f" {token_name.upper()}@corp.example "}))
        assert spelled.status_code == 409 and "a second person must" in spelled.json()["error"]  # the same person
        elsewhere = await post(*signed({**approval, "operation_id": "cluster-something-else"}))
        assert elsewhere.status_code == 409 and f"{change} started {operation}" in elsewhere.json()["error"]

        raw, headers = signed({**approval, "operation_id": operation})
        accepted = await post(raw, headers)
        assert accepted.status_code == 200, accepted.text
        replayed = await post(raw, headers)
        assert replayed.status_code == 409 and "replay" in replayed.json()["error"]

        for _ in range(400):
            found = (await api.get(f"/v1/operations/{operation}", headers={"Authorization": f"Bearer {secret}"})).json()
            if found["status"] != "RUNNING":
                break
            await asyncio.sleep(0.05)
        assert found["status"] == "COMPLETED", found
    trail = [(r.requested_by, r.action, r.outcome) for r in inventory.audit(operation_id=operation) if r.operation == "api"]
    assert (token_name, "webhook approved", "refused") in trail and ("alice", "webhook approved", "approved") in trail
