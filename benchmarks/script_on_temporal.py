"""The script's calls as Temporal activities: the smallest Temporal program that upgrades a cluster
the way Regatta does, and so the floor under what any Temporal-based tool can reach.

    python benchmarks/script_on_temporal.py --serve ADDRESS TASK_QUEUE   (started by BenchStack, REGATTA_SIM_URL set)

Per cluster, one bare workflow runs the script's steps (benchmarks/script_baseline.py `ScriptSteps`,
so the requests on the wire are the script's, call for call) as the activities ClusterUpgrade runs
them: the preflight's reads, the control plane, the add-ons, a health gate when any moved, each node
pool (the cluster described once more inside the last), with five no-op local activities where
ClusterUpgrade records to its inventory and audit trail. Sync activities on a thread pool of 64, as
Regatta's worker runs them, on as many worker processes and at the same concurrency as Regatta's
run. What it leaves out is everything of Regatta's own: the wave, the inventory and the audit trail,
heartbeats, the runbook's decisions, its payloads.

Against the script plus the raw fan-out it measures what the two cost together that neither costs
alone (on two saturated cores, SDK calls in threads and the SDK's event loop share one GIL per
process); Regatta against it is Regatta's own excess.
"""

from __future__ import annotations

import asyncio
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio import activity, workflow  # noqa: E402
from temporalio.common import RetryPolicy  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

from benchmarks.script_baseline import ScriptSteps  # noqa: E402
from regatta.kube.connect import ClusterConnections  # noqa: E402
from regatta.models import ClusterRef  # noqa: E402

CONNECTIONS: list[ClusterConnections] = []  # this worker process's, made when it starts


class Job(BaseModel):
    cluster: ClusterRef
    pools: list[str]
    target: str
    poll_seconds: float
    pool: str | None = None
    last: bool = False


def _steps(job: Job) -> ScriptSteps:
    return ScriptSteps(CONNECTIONS[0], job.cluster, job.target, job.poll_seconds)


@activity.defn(name="script.preflight")
def preflight(job: Job) -> None:
    _steps(job).preflight()


@activity.defn(name="script.control_plane")
def control_plane(job: Job) -> None:
    _steps(job).control_plane()


@activity.defn(name="script.addons")
def addons(job: Job) -> bool:
    return _steps(job).addons()


@activity.defn(name="script.gate")
def gate(job: Job) -> None:
    _steps(job).gate()


@activity.defn(name="script.node_pool")
def node_pool(job: Job) -> None:
    steps = _steps(job)
    steps.node_pool(job.pool or "")
    if job.last:
        steps.final_reads()


@activity.defn(name="script.record")
async def record(step: int) -> int:
    return step


@workflow.defn(name="ScriptOnTemporal", sandboxed=False)
class ScriptOnTemporal:
    @workflow.run
    async def run(self, job: Job) -> None:
        async def step(name: str, result_type: type | None = None, the_job: Job = job):
            return await workflow.execute_activity(name, the_job, result_type=result_type,
                                                   start_to_close_timeout=timedelta(seconds=600),
                                                   retry_policy=RetryPolicy(maximum_attempts=3))  # a failure ends the run

        async def local(n: int) -> None:  # where ClusterUpgrade reads or writes its inventory and audit trail
            await workflow.execute_local_activity("script.record", n, start_to_close_timeout=timedelta(seconds=30))

        await local(0)
        await local(1)
        await step("script.preflight")
        await step("script.control_plane")
        moved = await step("script.addons", bool)
        await local(2)
        if moved:
            await step("script.gate")
        for n, pool in enumerate(job.pools):
            await step("script.node_pool", the_job=job.model_copy(update={"pool": pool, "last": n == len(job.pools) - 1}))
        await local(3)
        await local(4)


async def serve(address: str, task_queue: str) -> None:
    from temporalio.client import Client

    CONNECTIONS.append(ClusterConnections(sim_url=os.environ["REGATTA_SIM_URL"]))
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    async with Worker(client, task_queue=task_queue, workflows=[ScriptOnTemporal],
                      activities=[preflight, control_plane, addons, gate, node_pool, record],
                      activity_executor=ThreadPoolExecutor(max_workers=64, thread_name_prefix="activity"),
                      max_concurrent_activities=64, workflow_runner=UnsandboxedWorkflowRunner()):
        await asyncio.Event().wait()


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--serve":
    asyncio.run(serve(sys.argv[2], sys.argv[3]))
