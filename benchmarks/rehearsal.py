"""A 1,000-cluster wave rehearsed on its twin: the wave planned over the whole fleet, one real ClusterUpgrade (and its
baseline) run per shape of cluster on a private stack, and the wave laid out from them. Target: under a minute per
1,000 clusters. Then the forecast's error: each shape's prediction at --compress set against the same upgrade run
--reference-compress times faster only (closer to the real fleet's pace).

    python benchmarks/rehearsal.py --clusters 1000 --shapes 12 --out benchmarks/results/rehearsal_1000.json
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stack import parse, save_figures  # noqa: E402
from regatta.formats.fleet_file import FleetSpec  # noqa: E402
from regatta.inventory.sweep import records_from_fleet  # noqa: E402
from regatta.models import PatchWaveInput  # noqa: E402
from regatta.rehearsal import rehearse_upgrades  # noqa: E402
from regatta.rules import rehearsals, waves  # noqa: E402

PROVIDERS = [("eks", "us-east-1", "m5.large"), ("gke", "us-central1", "e2-standard-4"),
             ("aks", "westeurope", "Standard_D4s_v5")]


def shape(index: int) -> dict:
    """One shape of cluster: its cloud, pools and workloads (the last shape's ledger has two budgets: its drains hold)."""
    provider, region, size = PROVIDERS[index % len(PROVIDERS)]
    pools = [{"name": f"pool{p}", "nodes": 2 + (index + p) % 3, "node_size": size} for p in range(1 + index % 3)]
    workloads = [{"name": "web", "namespace": "shop", "replicas": 3 + index % 4, "pdb": {"max_unavailable": 1}},
                 {"name": "api", "namespace": "shop", "replicas": 2 + index % 3, "pdb": {"min_available": 1}},
                 {"name": "db", "namespace": "data", "kind": "StatefulSet", "replicas": 3, "pdb": {"max_unavailable": 1},
                  "ready_seconds": 30 + 10 * index}]
    return {"provider": provider, "region": region, "version": "1.30", "node_pools": pools, "workloads": workloads}


def fleet(clusters: int, shapes: int) -> FleetSpec:
    """`clusters` clusters of `shapes` shapes: 2% canary, 18% staging, the rest prod; the last shape's clusters hold a
    workload two budgets select (two teams' budgets), which no drain gets past."""
    specs = []
    for i in range(clusters):
        kind = i % shapes
        env = "canary" if i < clusters * 0.02 else "staging" if i < clusters * 0.2 else "prod"
        spec = {**shape(kind), "name": f"r{i:04d}-{kind}", "labels": {"env": env, "bench": "rehearsal"}}
        if kind == shapes - 1:
            spec["workloads"] = [*spec["workloads"], {"name": "ledger", "namespace": "shop", "replicas": 2}]
            spec["pdbs"] = [{"name": f"ledger-{team}", "namespace": "shop", "selector": {"matchLabels": {"app": "ledger"}},
                             "max_unavailable": 1} for team in ("a", "b")]
        specs.append(spec)
    return FleetSpec.model_validate({"clusters": specs})


def the_wave(clusters: int) -> PatchWaveInput:
    return PatchWaveInput.model_validate({
        "name": "rehearsed", "target_version": "1.31", "failure_budget": "10%",
        "selector": {"labels": {"bench": "rehearsal"}},
        "stages": [{"name": "canary", "selector": {"environment": "canary"}, "concurrency": 5, "soak_seconds": 1800},
                   {"name": "staging", "selector": {"environment": "staging"}, "concurrency": 25, "soak_seconds": 3600},
                   {"name": "prod", "selector": {"environment": "prod"}, "concurrency": 50}]})


async def main(clusters: int, shapes: int, compress: float, reference_compress: float, out: Path) -> dict:
    twin = fleet(clusters, shapes)
    wave = the_wave(clusters)
    now = datetime.now(UTC)
    started = time.perf_counter()
    plan = waves.plan_wave(wave, records_from_fleet(twin), now=now)
    entries = {e.name: (s.name, e) for s in plan.stages for e in s.clusters if e.status == "pending"}
    requests = {name: waves.upgrade_request(wave, entry, stage=stage) for name, (stage, entry) in entries.items()}
    planned = time.perf_counter()
    rehearsed = await rehearse_upgrades(twin, requests, compress=compress, concurrency=shapes)
    ran = time.perf_counter()
    report = rehearsals.rehearse_wave(wave=wave, plan=plan, now=now, rehearsed=rehearsed, compress=compress,
                                      rehearsed_at=datetime.now(UTC))
    seconds = time.perf_counter() - started
    runs = sorted({r.rehearsed_as for r in rehearsed.values()})
    # the forecast's error: each shape again, reference_compress times faster only
    representatives = {name: requests[name] for name in runs}
    reference = await rehearse_upgrades(twin, representatives, compress=reference_compress, concurrency=shapes)
    errors = {name: abs(rehearsed[name].predicted_seconds - reference[name].predicted_seconds)
              / reference[name].predicted_seconds for name in runs}
    figures = {
        "benchmark": "rehearsal", "clusters": clusters, "shapes": shapes, "compress": compress,
        "reference_compress": reference_compress, "runs": len(runs),
        "seconds": round(seconds, 1), "seconds_per_1000_clusters": round(seconds / clusters * 1000, 1),
        "seconds_planning": round(planned - started, 2), "seconds_running": round(ran - planned, 1),
        "seconds_laying_out": round(seconds - (ran - started), 2),
        "wave_hours_predicted": round((report.total_seconds or 0) / 3600, 1), "halted_at": report.halted_at,
        "outcomes": {outcome: sum(1 for r in rehearsed.values() if r.outcome == outcome)
                     for outcome in ("succeeded", "failed", "refused", "stalled")},
        "forecast_error": {"mean": round(statistics.mean(errors.values()), 3), "max": round(max(errors.values()), 3),
                           "by_shape": {name: round(error, 3) for name, error in errors.items()}},
        "predicted_minutes_by_shape": {name: round(rehearsed[name].predicted_seconds / 60, 1) for name in runs},
        "reference_minutes_by_shape": {name: round(reference[name].predicted_seconds / 60, 1) for name in runs},
    }
    save_figures(figures, out)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--shapes", type=int, default=12)
    parser.add_argument("--compress", type=float, default=60.0)
    parser.add_argument("--reference-compress", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/rehearsal_1000.json")
    arguments = parse(parser)
    asyncio.run(main(arguments.clusters, arguments.shapes, arguments.compress, arguments.reference_compress,
                     arguments.out))
