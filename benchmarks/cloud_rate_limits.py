"""A 200-cluster PatchWave against a cloud account that throttles, twice: with the account's
limit configured (REGATTA_CLOUD_RATE_LIMITS, two worker processes sharing one schedule through
the inventory) and without it (the same two workers: like for like). Target: no 429 from the account with the limit configured; the
run without it meets 429s and still completes every cluster.

    python benchmarks/cloud_rate_limits.py --clusters 200 --limit 50 --out benchmarks/results/cloud_rate_limits_200.json
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stack import UPGRADE_SETTINGS, BenchStack, parse, save_figures  # noqa: E402
from regatta.formats.fleet_file import FleetSpec  # noqa: E402
from regatta.models import PatchWaveInput, PatchWaveResult  # noqa: E402
from regatta.rules.operation_ids import wave_id  # noqa: E402


def small_fleet(clusters: int) -> FleetSpec:
    """Clusters of one pool of two nodes: the cloud calls are what this measures, not the drains."""
    return FleetSpec.model_validate({"clusters": [
        {"name": f"rl-{i:04d}", "provider": "eks", "region": "us-east-1", "version": "1.30", "labels": {"bench": "yes"},
         "node_pools": [{"name": "general", "nodes": 2}]} for i in range(clusters)]})


async def one_run(clusters: int, limit: float, *, configured: bool, concurrency: int) -> dict:
    env = {"REGATTA_CLOUD_RATE_LIMITS": f"eks/default={limit:g}"} if configured else {}
    async with BenchStack(small_fleet(clusters), workers=2, worker_env=env) as stack:
        httpx.post(f"{stack.settings.sim_url}/sim/cloud-rate-limits", json={"provider": "eks", "requests_per_second": limit},
                   timeout=30).raise_for_status()
        wave = PatchWaveInput(name=f"rl-{'limited' if configured else 'unlimited'}", target_version="1.31",
                              selector={"labels": {"bench": "yes"}}, stages=[{"name": "all", "concurrency": concurrency}],
                              failure_budget="100%", upgrade_settings=UPGRADE_SETTINGS)
        started = time.perf_counter()
        result = await stack.client.execute_workflow("PatchWave", wave, id=wave_id(wave.name),
                                                     task_queue=stack.settings.task_queue, result_type=PatchWaveResult)
        seconds = time.perf_counter() - started
        report = await stack.sim_report()
        at_target = sum(1 for c in report["clusters"].values() if c["control_plane_version"] == "1.31")
        return {"limit_configured": configured, "workers": stack.worker_count, "seconds": round(seconds, 1),
                "clusters_per_min": round(clusters / seconds * 60, 1), "counts": result.counts, "at_target": at_target,
                "throttled_requests": report["throttled_requests"].get("eks", 0),
                "pdb_violations": len(report["pdb_violations"]), "double_drains": len(report["double_drains"]),
                "cpu_seconds": stack.cpu_used()}


async def main(clusters: int, limit: float, out: Path, concurrency: int) -> dict:
    limited = await one_run(clusters, limit, configured=True, concurrency=concurrency)
    unlimited = await one_run(clusters, limit, configured=False, concurrency=concurrency)
    figures = {
        "benchmark": "cloud_rate_limits", "clusters": clusters, "account_limit_rps": limit, "concurrency": concurrency,
        "with_limit": limited, "without_limit": unlimited,
        "limiting_process": max(limited["cpu_seconds"], key=lambda name: limited["cpu_seconds"][name]),
    }
    save_figures(figures, out)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--limit", type=float, default=50, help="the simulated EKS account's requests per second")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/cloud_rate_limits_200.json")
    arguments = parse(parser)
    asyncio.run(main(arguments.clusters, arguments.limit, arguments.out, arguments.concurrency))
