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
