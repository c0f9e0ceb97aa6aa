"""A long-lived process (the API, the fleet view) keeps one Temporal client per way of connecting
and answers every request with it, rather than connecting once per request; other settings of
the same server share it, another server, namespace or TLS setting gets its own."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from regatta.api.app import create_app
from regatta.api.tokens import create_token
from regatta.settings import Settings
from regatta.temporal import connect as connection
from regatta.temporal.connect import connect


async def test_one_client_serves_every_call_with_the_same_connection_settings(settings: Settings):
    first = await connect(settings)
    assert await connect(replace(settings, task_queue="another-queue", home=settings.home / "elsewhere")) is first
    described = await first.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=settings.namespace))
    assert described.namespace_info.name == settings.namespace  # the server answered, in the namespace asked for


async def test_the_api_answers_many_requests_on_the_client_its_first_request_made(queue_settings: Settings, inventory,
                                                                                  monkeypatch):
    # "localhost" rather than 127.0.0.1: a way of connecting no other test used, so this count starts at zero.
    fresh = replace(queue_settings, temporal_address=queue_settings.temporal_address.replace("127.0.0.1", "localhost"))
    made = []
    real = connection._connect

    async def connecting(settings, runtime):  # the real connection, counted
        made.append(settings.temporal_address)
        return await real(settings, runtime)

    monkeypatch.setattr(connection, "_connect", connecting)
    _, secret = create_token(inventory, name="load-probe", role="viewer", environments=["*"])
    app = create_app(fresh)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        answers = [(await http.get("/v1/operations/cluster-not-a-cluster", headers={"Authorization": f"Bearer {secret}"}))
                   for _ in range(20)]
    assert [a.status_code for a in answers] == [404] * 20, answers[0].text
    assert made == [fresh.temporal_address]  # the first request connected; the other nineteen used its client


async def test_an_ended_upgrade_reads_from_its_memo_without_a_worker(client, queue_settings: Settings, task_queue,
                                                                     add_cluster):
    from regatta.temporal.operations import status
    from tests.integration.conftest import start_upgrade
    from workers.main import build_worker

    cluster = add_cluster("ended", pools=1)
    async with build_worker(client, queue_settings):
        handle = await start_upgrade(client, task_queue, cluster)
        assert (await handle.result()).outcome == "succeeded"
    # No worker polls this queue now: a query would wait for one. The ended run keeps its progress in its memo.
    read = await asyncio.wait_for(status(queue_settings, handle.id), timeout=20)
    assert read["status"] == "COMPLETED" and "progress_error" not in read, read
    assert read["progress"]["phase"] == "succeeded" and read["progress"]["pools"][0]["status"] == "done", read


async def test_an_ended_wave_reads_again_without_a_worker_replaying_it(client, queue_settings: Settings, task_queue,
                                                                       add_cluster):
    import uuid

    from regatta.temporal.operations import status
    from tests.integration.waves import start_wave, wave_request
    from workers.main import build_worker

    tag = uuid.uuid4().hex[:6]
    add_cluster("endedwave", labels={"wave": tag}, pools=1, nodes=2)
    async with build_worker(client, queue_settings):
        handle = await start_wave(client, task_queue, wave_request(tag, [{"name": "all"}]))
        assert (await handle.result()).outcome == "succeeded"
        first = await status(queue_settings, handle.id)  # a wave keeps no memo: its query, answered once
    assert first["progress"]["phase"] == "succeeded", first
    # No worker now: the API process kept the ended run's answer.
    again = await asyncio.wait_for(status(queue_settings, handle.id), timeout=20)
    assert again["progress"] == first["progress"] and "progress_error" not in again, again
