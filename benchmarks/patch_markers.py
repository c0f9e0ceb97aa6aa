"""What a `workflow.patched` costs the Temporal server: the same bare workflow run with no patch
and with four, in alternating rounds, on one worker against a Temporal dev server.

    python benchmarks/patch_markers.py --workflows 600 --out benchmarks/results/patch_markers.json

Each workflow runs an upgrade's shape of work (7 no-op activities, 5 no-op local activities);
with patches it also asks `workflow.patched` four times, which records a marker and (Temporal's
core SDK does this by itself) upserts the `TemporalChangeVersion` search attribute for each. The
server's CPU per workflow, with and without, is the cost workflows/pieces/patches.py saves by
answering every released patch with one marker.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio import workflow  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from benchmarks.stack import cpu_seconds, noop, parse, save_figures  # noqa: E402
from regatta.devstack import temporal_binary  # noqa: E402


@workflow.defn(name="PatchedFanOut", sandboxed=False)
class PatchedFanOut:
    """An upgrade's activities and local activities, asking `patches` patches among them."""

    @workflow.run
    async def run(self, patches: int) -> int:
        for step in range(7):
            if step < 5:
                await workflow.execute_local_activity("bench.noop", step, start_to_close_timeout=timedelta(seconds=30))
            if step < patches:
                workflow.patched(f"patch-{step}")  # what is measured
            await workflow.execute_activity("bench.noop", step, start_to_close_timeout=timedelta(seconds=30))
        return patches


async def run(workflows: int, rounds: int, concurrency: int) -> dict:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary(), dev_server_log_level="error")
    try:
        server = next(p for p in psutil.Process().children(recursive=True) if p.name().startswith("temporal"))
        per_workflow: dict[int, list[float]] = {0: [], 4: []}
        async with Worker(env.client, task_queue="patches", workflows=[PatchedFanOut], activities=[noop],
                          max_concurrent_activities=64):
            for patches in [0, 4] * rounds:
                limit = asyncio.Semaphore(concurrency)

                async def one(patches: int = patches, limit: asyncio.Semaphore = limit) -> None:
                    async with limit:
                        await env.client.execute_workflow("PatchedFanOut", patches, id=f"w-{uuid.uuid4().hex}",
                                                          task_queue="patches")

                before, started = cpu_seconds(server), time.perf_counter()
                await asyncio.gather(*[one() for _ in range(workflows)])
                per_workflow[patches].append((cpu_seconds(server) - before) / workflows * 1000)
                print(f"{patches} patches: {per_workflow[patches][-1]:.1f} ms of server CPU per workflow,"
                      f" {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        await env.shutdown()
    without, with_four = statistics.median(per_workflow[0]), statistics.median(per_workflow[4])
    return {"workflows_per_round": workflows, "rounds": rounds, "concurrency": concurrency,
            "server_cpu_ms_per_workflow": {"no patch": round(without, 2), "four patches": round(with_four, 2)},
            "server_cpu_ms_per_patch": round((with_four - without) / 4, 2),
            "rounds_ms": {str(k): [round(v, 2) for v in vs] for k, vs in per_workflow.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of each kind")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "patch_markers.json")
    arguments = parse(parser)
    save_figures(asyncio.run(run(arguments.workflows, arguments.rounds, arguments.concurrency)), arguments.out)


if __name__ == "__main__":
    main()
