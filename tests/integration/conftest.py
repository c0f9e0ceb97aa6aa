"""Integration fixtures: an in-process worker on a fresh task queue, and a way to start an
upgrade with the short timeouts a time-scale-0 simulator allows."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle

from regatta.models import ClusterUpgradeInput, ClusterUpgradeProgress, ClusterUpgradeResult
from regatta.rules.operation_ids import operation_id

FAST = {
    "poll_interval_seconds": 0.05,
    "eviction_retry_seconds": 0.05,
    "drain_timeout_seconds": 10,
    "health_gate_timeout_seconds": 20,
    "cloud_operation_timeout_seconds": 60,
    "activity_heartbeat_timeout_seconds": 5,
}


async def queues_used(client: Client, operation_id: str) -> dict[str, set[str]]:
    """Each activity the operation ran, by the task queue it was scheduled on (a site's agent has its own)."""
    history = await client.get_workflow_handle(operation_id).fetch_history()
    used: dict[str, set[str]] = {}
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attributes = event.activity_task_scheduled_event_attributes
            used.setdefault(attributes.task_queue.name, set()).add(attributes.activity_type.name)
    return used


async def start_upgrade(client: Client, task_queue: str, cluster: str, **fields) -> WorkflowHandle:
    request = ClusterUpgradeInput(cluster=cluster, target_version=fields.pop("target_version", "1.31"), **{**FAST, **fields})
    return await client.start_workflow(
        "ClusterUpgrade", request, id=operation_id(cluster), task_queue=task_queue, result_type=ClusterUpgradeResult
    )


async def wait_phase(handle: WorkflowHandle, phase: str, progress_type: type[BaseModel], *, timeout: float = 30):
    """Poll the `progress` query until the operation reaches `phase`; fail if it ends first."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        progress = await handle.query("progress", result_type=progress_type)
        if progress.phase == phase:
            return progress
        assert progress.phase not in ("failed", "succeeded", "aborted"), f"ended before {phase}: {progress}"
        assert asyncio.get_running_loop().time() < deadline, f"never reached {phase}: {progress}"
        await asyncio.sleep(0.02)


async def clock_reads(handle: WorkflowHandle) -> int:
    """How many times the operation has read the fleet's clock (completed fleet.read_clock activities)."""
    history = await handle.fetch_history()
    scheduled = {e.event_id for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
                 and e.activity_task_scheduled_event_attributes.activity_type.name == "fleet.read_clock"}
    return sum(1 for e in history.events if e.HasField("activity_task_completed_event_attributes")
               and e.activity_task_completed_event_attributes.scheduled_event_id in scheduled)


async def clock_read_again(handle: WorkflowHandle, since: int, *, timeout: float = 30) -> None:
    """Wait until the operation has read the fleet's clock twice more than `since` readings: the
    second of them began after whatever the test did before counting (moved the clock, started a
    worker), so the operation has seen it. Instead of sleeping for the recheck interval."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (reads := await clock_reads(handle)) < since + 2:
        assert asyncio.get_running_loop().time() < deadline, f"read the fleet's clock {reads - since} times in {timeout}s"
        await asyncio.sleep(0.1)


async def wait_until(handle: WorkflowHandle, check, what: str, *, progress_type: type[BaseModel] = ClusterUpgradeProgress,
                     timeout: float = 60):
    """Poll `progress` until `check(progress)` holds; fail if the operation ends first or time runs out."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        progress = await handle.query("progress", result_type=progress_type)
        if check(progress):
            return progress
        assert progress.phase not in ("succeeded", "failed", "aborted"), f"ended before {what}: {progress}"
        assert asyncio.get_running_loop().time() < deadline, f"never {what}: {progress}"
        await asyncio.sleep(0.1)


@contextlib.contextmanager
def http_receiver(answer: Callable[[str, list[dict]], tuple[int, bytes]]) -> Iterator[ThreadingHTTPServer]:
    """A webhook receiver on 127.0.0.1 (a ticket system, a change gate): keeps every POST (`received`: path,
    headers, body) and answers what `answer(path, received)` says; stopped when the test ends."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "headers": dict(self.headers), "body": body})
            status, words = answer(self.path, received)
            self.send_response(status)
            self.send_header("Content-Length", str(len(words)))
            self.end_headers()
            self.wfile.write(words)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.received = received  # type: ignore[attr-defined]
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fleet(add_cluster):
    """Clusters tagged for one wave: fleet(env, n, **spec) → their names."""
    tag = uuid.uuid4().hex[:6]

    def add(env: str, count: int = 1, *, prefix: str | None = None, **spec) -> list[str]:
        return [add_cluster(prefix or f"wv{env[:4]}", env=env, labels={"wave": tag}, pools=1, nodes=2,
                            workloads=[{"name": "web", "namespace": "shop", "replicas": 2, "pdb": {"min_available": 1}}],
                            **spec) for _ in range(count)]

    add.tag = tag
    return add
