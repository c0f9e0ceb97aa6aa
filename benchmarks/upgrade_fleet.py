"""Upgrade N clusters at once and compare with a raw Temporal fan-out of the same work.

    python benchmarks/upgrade_fleet.py --clusters 100 --out benchmarks/results/upgrade_fleet.json

What runs (benchmarks/stack.py): a Temporal dev server, the fleet simulator at time scale 0 and
the real Regatta worker, each a process of its own (so the worker's peak RSS is its own). Every
cluster has 3 node pools x 3 nodes and PDB-protected workloads; each is upgraded 1.30 -> 1.31 by
surge, each started as `regatta upgrade` starts it (its search attributes set). Then a raw
fan-out: N workflows, each running as many no-op activities, one after another, as an average
upgrade ran, on a bare worker process. `ratio_to_raw` is our time over
the raw time: what Regatta's orchestration and real API calls cost above Temporal itself.

Prints the figures and saves them as JSON (keys: clusters, clusters_per_min, activities_per_s,
ratio_to_raw, max_history_events, worker_peak_rss_mb, and more).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stack import (  # noqa: E402
    UPGRADE_SETTINGS,
    BenchStack,
    PeakRss,
    cpu_of_the_three,
    fleet,
    limiting_process,
    parse,
    save_figures,
    script_figures,
    temporal_work,
)
from regatta.inventory.sweep import records_from_fleet  # noqa: E402
from regatta.models import ClusterUpgradeInput  # noqa: E402
from regatta.models.search_attributes import operation_tags  # noqa: E402
from regatta.rules.operation_ids import operation_id  # noqa: E402


async def run(clusters: int, out: Path) -> dict:
    spec = fleet(clusters)
    environments = {record.name: record.environment for record in records_from_fleet(spec)}
    async with BenchStack(spec) as stack:
        client = stack.client
        with PeakRss(stack.worker.pid) as rss:
            started = time.perf_counter()
            handles = await asyncio.gather(*[
                client.start_workflow("ClusterUpgrade",
                                      ClusterUpgradeInput(cluster=c.name, target_version="1.31", **UPGRADE_SETTINGS),
                                      id=operation_id(c.name), task_queue=stack.settings.task_queue,
                                      # as `regatta upgrade` and the API start it (regatta/temporal/operations.py)
                                      search_attributes=operation_tags(operation="ClusterUpgrade", cluster=c.name,
                                                                       environment=environments[c.name]))
                for c in spec.clusters
            ])
            results = await asyncio.gather(*[h.result() for h in handles], return_exceptions=True)
            ours = time.perf_counter() - started
        cpu_used = stack.cpu_used()
        failures = [str(r) for r in results if isinstance(r, BaseException)]
        histories = await asyncio.gather(*[h.fetch_history() for h in handles])
        events = [len(h.events) for h in histories]
        works = [temporal_work(h) for h in histories]
        activities = sum(w["activities"] for w in works)
        local_activities = sum(w["local_activities"] for w in works)
        per_upgrade, local_per_upgrade = max(1, round(activities / clusters)), round(local_activities / clusters)
        report = await stack.sim_report()
        raw_time, raw_cpu = await stack.raw_fan_out(clusters, per_upgrade, local_per_upgrade, workers=1)
        script = await stack.script_baseline(concurrency=clusters)

    figures = {
        "clusters": clusters,
        "succeeded": clusters - len(failures),
        "failures": failures[:5],
        "seconds": round(ours, 2),
        "clusters_per_min": round(clusters / ours * 60, 1),
        "activities": activities,
        "activities_per_upgrade": round(activities / clusters, 1),
        "activities_per_s": round(activities / ours, 1),
        "local_activities_per_upgrade": round(local_activities / clusters, 1),
        "temporal_actions_per_cluster": round(sum(w["actions"] for w in works) / clusters, 2),
        "raw_fan_out_seconds": round(raw_time, 2),
        "raw_fan_out_activities": per_upgrade * clusters,
        "raw_fan_out_local_activities": local_per_upgrade * clusters,
        "ratio_to_raw": round(ours / raw_time, 2),
        **script_figures(script, raw_time, ours=ours, clusters=clusters),
        "cpu_seconds_per_cluster": cpu_of_the_three(cpu_used, script, raw_cpu, clusters),
        "history_events_per_upgrade": round(sum(events) / len(events), 1),
        "max_history_events": max(events),
        "worker_peak_rss_mb": round(rss.peak / 2**20, 1),
        # CPU seconds each process burned during our run: on 2 cores, what saturates limits us.
        "cpu_seconds": cpu_used,
        "limiting_process": limiting_process(cpu_used),
        "cpu_seconds_available": round(ours * (os.cpu_count() or 1), 1),
        "pdb_violations": len(report["pdb_violations"]),
        "skew_violations": len(report["skew_violations"]),
        "double_drains": len(report["double_drains"]),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figures(figures, out)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "upgrade_fleet.json")
    args = parse(parser)
    if args.clusters < 1:
        parser.error("--clusters must be at least 1")
    asyncio.run(run(args.clusters, args.out))
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
