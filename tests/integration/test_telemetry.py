"""What the worker tells a log pipeline: with JSON lines, every line of an operation (the
runbook's steps, and what its activities log from their threads) carries the operation id and
the cluster; text lines carry the same in brackets."""

from __future__ import annotations

import io
import json
import logging

from regatta.rules.operation_ids import operation_id
from regatta.telemetry import JsonLines, TextLines
from tests.integration.conftest import start_upgrade


async def test_every_json_line_of_an_upgrade_names_its_operation_and_cluster(client, worker, task_queue, add_cluster):
    cluster = add_cluster("logs", pools=1, nodes=2)
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    before = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        handle = await start_upgrade(client, task_queue, cluster, strategy="blue_green")  # we drain: activity lines
        assert (await handle.result()).outcome == "succeeded"
    finally:
        root.removeHandler(handler)
        root.setLevel(before)
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    ours = [line for line in lines if line.get("operation_id") == operation_id(cluster)]
    assert ours and all(line["cluster"] == cluster for line in ours), ours[:3]
    steps = [line for line in ours if line["logger"] == "temporalio.workflow"]
    drained = [line for line in ours if line["logger"] == "regatta.activities" and line["message"].startswith("drained node")]
    assert steps and drained, {line["logger"] for line in ours}
    assert drained[0]["activity"] == "kube.drain_nodes" and drained[0]["workflow_type"] == "ClusterUpgrade"
    assert {"time", "level", "message"} <= set(drained[0])

    record = logging.LogRecord("regatta.activities", logging.INFO, __file__, 1, "drained node %s", ("n1",), None)
    record.temporal_activity = {"workflow_id": operation_id(cluster), "workflow_type": "ClusterUpgrade"}
    assert f"[{operation_id(cluster)} {cluster}] drained node n1" in TextLines().format(record)


async def test_one_trace_runs_from_an_api_request_through_the_workflow_to_its_activities(
        queue_settings, inventory, add_cluster):
    import httpx
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from regatta.api.app import create_app
    from regatta.api.tokens import create_token
    from regatta.telemetry import use_tracer_provider
    from regatta.temporal.connect import connect
    from tests.api_calls import finished, ticket, upgrade
    from workers.main import build_worker

    name = add_cluster("traced", env="staging", pools=1, nodes=2)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    use_tracer_provider(provider)
    try:
        client = await connect(queue_settings)  # traced, as every client is while tracing is on
        async with build_worker(client, queue_settings):
            api = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(queue_settings, inventory)),
                                    base_url="http://regatta.test", timeout=60)
            _, secret = create_token(inventory, name="traced-operator", role="operator", environments=["staging"])
            operator = {"Authorization": f"Bearer {secret}"}
            started = await api.post("/v1/operations", headers=operator,
                                     json={"kind": "upgrade", "ticket": ticket(), "input": upgrade(name)})
            assert started.status_code == 201, started.text
            done = await finished(api, operator, f"cluster-{name}")
            assert done["progress"]["phase"] == "succeeded", done
    finally:
        use_tracer_provider(None)
    spans = exporter.get_finished_spans()
    request = next(s for s in spans if s.kind == SpanKind.SERVER and s.name == "POST /v1/operations")
    trace = [s for s in spans if s.context.trace_id == request.context.trace_id]
    names = {s.name for s in trace}
    assert {"StartWorkflow:ClusterUpgrade", "RunWorkflow:ClusterUpgrade"} <= names, names
    activities = {n for n in names if n.startswith("RunActivity:")}
    # the cloud's steps, and the inventory's local activities, are in the request's trace too
    assert {"RunActivity:cloud.upgrade", "RunActivity:cloud.read_for_upgrade", "RunActivity:inventory.get_cluster",
            "RunActivity:inventory.record_operation"} <= activities, names
