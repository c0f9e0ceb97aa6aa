"""Payload encryption against the real dev server: what Temporal stores is ciphertext, the worker
and clients holding the key read it, a rotated key still opens old histories, the API's codec
endpoint decrypts for token holders, and bad keys are refused saying what to fix."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import httpx
import pytest
from temporalio.api.common.v1 import Payload

from regatta.api.app import create_app
from regatta.api.tokens import create_token
from regatta.models import ClusterUpgradeInput, ClusterUpgradeResult
from regatta.rules.operation_ids import operation_id
from regatta.temporal.codec import ENCODING, CodecKeyError, EncryptionCodec, keys_from_env, new_key_line
from regatta.temporal.connect import connect
from tests.browsing import Browser
from tests.conftest import sim_report
from tests.integration.conftest import FAST
from workers.main import build_worker


def key_env(*lines: str) -> str:
    return ",".join(":".join(line.split()) for line in lines)


async def run_upgrade(settings, cluster: str, requested_by: str) -> tuple:
    client = await connect(settings)
    async with build_worker(client, settings):
        handle = await client.start_workflow(
            "ClusterUpgrade", ClusterUpgradeInput(cluster=cluster, target_version="1.31", requested_by=requested_by, **FAST),
            id=operation_id(cluster), task_queue=settings.task_queue, result_type=ClusterUpgradeResult)
        return handle, await handle.result()


async def test_histories_hold_ciphertext_and_a_rotated_key_still_opens_them(
        queue_settings, add_cluster, client, inventory, monkeypatch):
    old, new = new_key_line("k1"), new_key_line("k2")
    monkeypatch.setenv("REGATTA_CODEC_KEYS", key_env(old))
    first = add_cluster("enc", pools=1, nodes=1)
    who = f"sre-{uuid.uuid4().hex}"
    handle, result = await run_upgrade(queue_settings, first, who)
    assert result.outcome == "succeeded"

    # What the Temporal server holds: no payload readable, none with who asked in it.
    raw = await client.get_workflow_handle(handle.id).fetch_history()
    text = raw.to_json()
    assert who not in text and "sre-" not in text
    started = raw.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert started.metadata["encoding"] == ENCODING and started.metadata["encryption-key-id"] == b"k1"
    opened = (await EncryptionCodec({"k1": base64.b64decode(old.split()[1])}).decode([started]))[0]
    assert who in opened.data.decode()
    assert [r.requested_by for r in inventory.audit(operation_id=handle.id)][0] == who  # the worker read it

    # Rotation: k2 encrypts from now on, k1 still opens what it sealed.
    monkeypatch.setenv("REGATTA_CODEC_KEYS", key_env(new, old))
    rotated = await connect(queue_settings)
    assert (await rotated.get_workflow_handle(handle.id, result_type=ClusterUpgradeResult).result()).outcome == "succeeded"
    second = add_cluster("enc", pools=1, nodes=1)
    handle2, _ = await run_upgrade(queue_settings, second, who)
    fresh = (await client.get_workflow_handle(handle2.id).fetch_history()).events[0]
    assert fresh.workflow_execution_started_event_attributes.input.payloads[0].metadata["encryption-key-id"] == b"k2"

    # A process that dropped k1 too early says which key it lacks.
    monkeypatch.setenv("REGATTA_CODEC_KEYS", key_env(new))
    forgetful = await connect(queue_settings)
    with pytest.raises(Exception) as lacking:
        await forgetful.get_workflow_handle(handle.id, result_type=ClusterUpgradeResult).result()
    assert "encrypted with key 'k1', which this process does not hold" in repr(lacking.value) + repr(lacking.value.__cause__)


async def test_the_api_codec_endpoint_decrypts_for_token_holders_only(queue_settings, inventory, monkeypatch):
    line = new_key_line("k1")
    monkeypatch.setenv("REGATTA_CODEC_KEYS", key_env(line))
    codec = EncryptionCodec({"k1": base64.b64decode(line.split()[1])})
    sealed = (await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'{"ticket": "CHG-77"}')]))[0]
    body = {"payloads": [{"metadata": {k: base64.b64encode(v).decode() for k, v in sealed.metadata.items()},
                          "data": base64.b64encode(sealed.data).decode()}]}
    app = create_app(queue_settings, inventory)
    _, secret = create_token(inventory, name=f"ui-{uuid.uuid4().hex[:6]}", role="viewer", environments=["*"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://regatta.test") as api:
        anonymous = await api.post("/codec/decode", json=body, headers={"X-Namespace": "default"})
        assert anonymous.status_code == 401
        decoded = await api.post("/codec/decode", json=body, headers={"Authorization": f"Bearer {secret}",
                                                                      "X-Namespace": "default"})
        assert decoded.status_code == 200, decoded.text
        payload = decoded.json()["payloads"][0]
        assert json.loads(base64.b64decode(payload["data"])) == {"ticket": "CHG-77"}
        in_the_url = await api.post(f"/codec/t/{secret}/decode", json=body, headers={"X-Namespace": "default"})
        assert in_the_url.status_code in (401, 404)  # no secret ever travels in a URL (logs, traces keep URLs)
        _, scoped = create_token(inventory, name=f"ui-{uuid.uuid4().hex[:6]}", role="viewer", environments=["staging"])
        narrow = await api.post("/codec/decode", json=body, headers={"Authorization": f"Bearer {scoped}"})
        assert narrow.status_code == 403 and "every environment" in narrow.json()["error"]  # staging opens no prod payload
        forging = await api.post("/codec/encode", json=body, headers={"Authorization": f"Bearer {secret}"})
        assert forging.status_code == 403 and "may not admin" in forging.json()["error"]  # ciphertext is an admin's
        garbage = await api.post("/codec/decode", content=b"[]", headers={"Authorization": f"Bearer {secret}"})
        assert garbage.status_code == 422 and "Payloads JSON" in garbage.json()["error"]

    # The Temporal UI's way: the fleet view's session cookie, which the browser sends along.
    browser = Browser(app, inventory)
    signed_out = await browser.http.post("/ui/codec/decode", json=body)
    assert signed_out.status_code == 401 and "sign in to the fleet view" in signed_out.json()["error"]
    await browser.sign_in("viewer", "*")
    from_the_ui = await browser.http.post("/ui/codec/decode", json=body, headers={"X-Namespace": "default",
                                                                                 "Origin": "http://localhost:8233"})
    assert from_the_ui.status_code == 200 and from_the_ui.json() == decoded.json()
    assert from_the_ui.headers["access-control-allow-origin"] == "http://localhost:8233"
    page = await browser.page("/ui", provider="eks")
    assert "access-control-allow-origin" not in page.headers  # no other origin reads the fleet view
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"] and page.headers["x-frame-options"] == "DENY"


async def test_a_payload_written_without_the_key_is_refused_by_a_worker_that_holds_it(
        queue_settings, add_cluster, simulator, monkeypatch):
    """Someone who reaches Temporal without the key (a DecommissionCluster started by hand, an approval
    forged under another name) writes plaintext: the worker refuses to read it, and nothing runs."""
    for name in ("REGATTA_CODEC_KEYS", "REGATTA_CODEC_KEY_FILE", "REGATTA_CODEC_ACCEPT_PLAINTEXT"):
        monkeypatch.delenv(name, raising=False)
    plain = await connect(queue_settings)
    monkeypatch.setenv("REGATTA_CODEC_KEYS", key_env(new_key_line("k1")))
    keyed = await connect(queue_settings)
    cluster = add_cluster("plain", pools=1, nodes=1)
    async with build_worker(keyed, queue_settings):
        handle = await plain.start_workflow(
            "ClusterUpgrade", ClusterUpgradeInput(cluster=cluster, target_version="1.31", requested_by="mallory", **FAST),
            id=operation_id(cluster), task_queue=queue_settings.task_queue)
        failed = []
        for _ in range(150):
            history = await keyed.get_workflow_handle(handle.id).fetch_history()
            failed = [e.workflow_task_failed_event_attributes.failure.message for e in history.events
                      if e.HasField("workflow_task_failed_event_attributes")]
            if failed:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError('test_payload_codec.py:133: what this loop waited for never came')
        await plain.get_workflow_handle(handle.id).terminate("test over")
    assert failed and any("not encrypted" in message for message in failed), failed
    assert not any(e.HasField("activity_task_scheduled_event_attributes") for e in history.events)
    assert sim_report(simulator, cluster)["clusters"][cluster]["control_plane_version"] == "1.30"


@pytest.mark.parametrize(("env", "says"), [
    ({"REGATTA_CODEC_KEYS": "k1"}, "give id:base64key pairs"),
    ({"REGATTA_CODEC_KEYS": "k1:not-base64!"}, "key 'k1' is not base64"),
    ({"REGATTA_CODEC_KEYS": f"k1:{base64.b64encode(b'short').decode()}"}, "is 5 bytes; AES-256 needs 32"),
    ({"REGATTA_CODEC_KEYS": key_env(new_key_line("k1"), new_key_line("k1"))}, "appears twice"),
    ({"REGATTA_CODEC_KEY_FILE": "/nonexistent/keys"}, "cannot read /nonexistent/keys"),
])
def test_keys_that_cannot_be_used_are_refused_saying_what_to_fix(env, says):
    with pytest.raises(CodecKeyError, match=says.replace("(", r"\(")):
        keys_from_env(env)


def test_a_key_file_lists_the_encrypting_key_first(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"# newest first\n{new_key_line('2026-12')}\n{new_key_line('2026-11')}\n")
    assert list(keys_from_env({"REGATTA_CODEC_KEY_FILE": str(keys)})) == ["2026-12", "2026-11"]
    assert keys_from_env({}) == {}
