"""A PatchWave over N simulated clusters, and a raw Temporal fan-out of the same activity count.

    python benchmarks/patch_wave.py --clusters 1000 --out benchmarks/results/patch_wave_1000.json

What runs (benchmarks/stack.py): a Temporal dev server, the fleet simulator at time scale 0 (or
--time-scale) and the real Regatta worker, each a process of its own. Every cluster
has 3 node pools x 3 nodes and PDB-protected workloads (as in upgrade_fleet.py); one wave takes
them all 1.30 -> 1.31 by surge in one stage of --concurrency clusters at once, continuing as new
as its history fills. Then the raw fan-out: N workflows each running, one after another, as many
no-op activities as an average cluster's upgrade ran. The script baseline (benchmarks/script_baseline.py:
the same SDK calls, no Temporal, no inventory) runs before the wave and again after the raw fan-out, on
the fleet loaded afresh each time; the ratios use the mean of its two times, and `script_drift` (after /
before) says how far the machine's speed moved meanwhile.

Prints the figures and saves them as JSON with the keys of upgrade_fleet.py (clusters,
clusters_per_min, ratio_to_raw, max_history_events, worker_peak_rss_mb, ...), plus the wave's
runs and, with a time scale above 0, its makespan against the plan's ideal.

With --profile DIR, py-spy samples every Regatta worker and the simulator while the wave runs
(`py-spy record --gil --nonblocking --format raw`: the thread holding the GIL, so where each
process's Python CPU goes) and writes DIR/PROCESS.txt as collapsed stacks; the script on Temporal's workers
are sampled the same way during their run, in DIR/script_on_temporal/. The sampling slows the
run: a profiled run's figures are not quoted.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
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
    Profile,
    bracketed,
    cpu_of_the_three,
    fleet,
    limiting_process,
    parse,
    per_cluster,
    postgres_schema,
    save_figures,
    script_figures,
    temporal_work,
)
from regatta.models import PatchWaveInput, PatchWaveResult  # noqa: E402
from regatta.rules.operation_ids import operation_id, wave_id  # noqa: E402

SAMPLE = 25  # children whose histories are read to count activities per upgrade


def upgrade_settings(time_scale: float) -> dict:
    """At time scale 0 everything is polled as fast as it goes; with realistic delays, polls come
    as often as the defaults ask (15 s for a cloud operation or a health gate, 5 s between
    evictions), scaled like the simulated cloud's own times."""
    if time_scale <= 0:
        return UPGRADE_SETTINGS
    return {**UPGRADE_SETTINGS, "poll_interval_seconds": max(0.05, 15 * time_scale),
            "eviction_retry_seconds": max(0.05, 5 * time_scale)}


def ideal_makespan(operations: list[dict], concurrency: int) -> float:
    """The critical path of the wave's own plan with no orchestration at all: each cluster's cloud
    operations back to back, each as long as the simulated cloud took for it, the clusters started
    in the order the wave started them, `concurrency` at a time, each slot refilled the instant it
    frees. What the wave adds beyond that (starting children, health gates, polls, workflow
    tasks) is what `makespan_over_ideal` measures."""
    work: dict[str, float] = {}
    first: dict[str, float] = {}
    for operation in operations:
        if operation["finished"] is None:
            continue
        name = operation["cluster"]
        work[name] = work.get(name, 0.0) + operation["finished"] - operation["created"]
        first[name] = min(first.get(name, operation["created"]), operation["created"])
    slots = [0.0] * concurrency
    for name in sorted(work, key=first.__getitem__):
        heapq.heapreplace(slots, slots[0] + work[name])
    return max(slots)


async def run(clusters: int, out: Path, *, concurrency: int, time_scale: float, workers: int = 1,
              profile: Path | None = None) -> dict:
    spec = fleet(clusters)
    # Several workers share the inventory on PostgreSQL, as in production (SQLite takes one writer).
    schema, database_url, admin = postgres_schema("wave", "regatta-bench") if workers > 1 else (None, None, None)
    try:
        return await _run(spec, out, concurrency=concurrency, time_scale=time_scale, workers=workers,
                          database_url=database_url, profile=profile)
    finally:
        if admin is not None:
            with admin.begin() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


async def _run(spec, out: Path, *, concurrency: int, time_scale: float, workers: int, database_url: str | None,
               profile: Path | None) -> dict:
    clusters = len(spec.clusters)
    async with BenchStack(spec, time_scale=time_scale, workers=workers, database_url=database_url) as stack:
        client = stack.client
        wave = PatchWaveInput(name=f"bench-{clusters}", target_version="1.31", selector={"labels": {"bench": "yes"}},
                              stages=[{"name": "all", "concurrency": concurrency}], failure_budget="100%",
                              upgrade_settings=upgrade_settings(time_scale))
        poll = upgrade_settings(time_scale)["poll_interval_seconds"]
        # The script runs before the wave and again after it: the machine's speed drifts by a fifth within an hour
        # here, and a baseline measured on one side of the wave alone moved the ratio with it (docs/benchmarks.md).
        script_before = await stack.script_baseline(concurrency=concurrency, poll_seconds=poll)
        await stack.reload_fleet()
        stack.mark_cpu()  # what the script cost the simulator is not the wave's
        profiled = {name: p.pid for name, p in stack.pieces.items() if name.startswith("worker") or name == "simulator"}
        with PeakRss(stack.worker.pid) as rss, Profile(profile, profiled):
            started = time.perf_counter()
            handle = await client.start_workflow("PatchWave", wave, id=wave_id(wave.name),
                                                 task_queue=stack.settings.task_queue, result_type=PatchWaveResult)
            result = await handle.result()
            ours = time.perf_counter() - started
        cpu_used = stack.cpu_used()
        runs = [w async for w in client.list_workflows(f'WorkflowId = "{wave_id(wave.name)}"')]
        wave_events = [len((await client.get_workflow_handle(r.id, run_id=r.run_id).fetch_history()).events) for r in runs]
        sample = [spec.clusters[i * clusters // min(SAMPLE, clusters)].name for i in range(min(SAMPLE, clusters))]
        child_histories = [await client.get_workflow_handle(operation_id(name)).fetch_history() for name in sample]
        works = [temporal_work(h) for h in child_histories]
        per_upgrade = {key: round(sum(w[key] for w in works) / len(works), 1) for key in works[0]}
        wave_work = [temporal_work(await client.get_workflow_handle(r.id, run_id=r.run_id).fetch_history()) for r in runs]
        wave_actions = sum(w["actions"] for w in wave_work)
        report = await stack.sim_report()
        operations = await stack.sim_operations()
        activities, local_activities = round(per_upgrade["activities"]), round(per_upgrade["local_activities"])
        raw_time, raw_cpu = await stack.raw_fan_out(clusters, activities, local_activities, workers=workers,
                                                    concurrency=concurrency)
        on_temporal, on_temporal_cpu = await stack.script_on_temporal(target=wave.target_version, workers=workers,
                                                                      concurrency=concurrency, poll_seconds=poll,
                                                                      profile=profile and profile / "script_on_temporal")
        script = bracketed(script_before, await stack.script_baseline(concurrency=concurrency, poll_seconds=poll))

    figures = {
        "clusters": clusters,
        "outcome": result.outcome,
        "counts": result.counts,
        "seconds": round(ours, 2),
        "clusters_per_min": round(clusters / ours * 60, 1),
        "concurrency": concurrency,
        "worker_processes": workers,
        "inventory": "postgresql" if database_url else "sqlite",
        "activities_per_upgrade": per_upgrade["activities"],
        "local_activities_per_upgrade": per_upgrade["local_activities"],
        "history_events_per_upgrade": per_upgrade["events"],
        # What a Temporal Cloud bill counts, per cluster: the upgrade's own actions and its share of the wave's.
        "temporal_actions_per_cluster": round(per_upgrade["actions"] + wave_actions / clusters, 2),
        "temporal_work_per_upgrade": per_upgrade,
        "raw_fan_out_seconds": round(raw_time, 2),
        "raw_fan_out_activities": activities * clusters,
        "raw_fan_out_local_activities": local_activities * clusters,
        "ratio_to_raw": round(ours / raw_time, 2),
        "raw_fan_out_workers": workers,
        "raw_fan_out_concurrency": concurrency,
        **script_figures(script, raw_time, ours=ours, clusters=clusters),
        # the script's calls as activities of bare workflows (benchmarks/script_on_temporal.py): the floor under any
        # Temporal program making them, and how far it is above the script plus the raw fan-out
        "script_on_temporal_seconds": round(on_temporal, 2),
        "ratio_to_script_on_temporal": round(ours / on_temporal, 2),
        "script_on_temporal_ratio_to_script_plus_raw": round(on_temporal / (script["seconds"] + raw_time), 2),
        "cpu_seconds_per_cluster": {**cpu_of_the_three(cpu_used, script, raw_cpu, clusters),
                                    "script_on_temporal": per_cluster(on_temporal_cpu, clusters)},
        "wave_runs": len(runs),
        "wave_history_events": wave_events,
        "max_history_events": max(wave_events + [len(h.events) for h in child_histories]),
        "worker_peak_rss_mb": round(rss.peak / 2**20, 1),
        "cpu_seconds": cpu_used,
        "limiting_process": limiting_process(cpu_used),
        "cpu_seconds_available": round(ours * (os.cpu_count() or 1), 1),
        "pdb_violations": len(report["pdb_violations"]),
        "skew_violations": len(report["skew_violations"]),
        "double_drains": len(report["double_drains"]),
    }
    if time_scale > 0:
        ideal = ideal_makespan(operations, concurrency)
        figures["plan_ideal_seconds"] = round(ideal, 1)
        figures["makespan_over_ideal"] = round(ours / ideal, 3)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figures(figures, out)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--time-scale", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=1, help="Regatta worker processes (production runs two)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "patch_wave.json")
    parser.add_argument("--profile", type=Path, default=None,
                        help="a directory: py-spy samples the workers and the simulator during the wave")
    args = parse(parser)
    if args.clusters < 1 or not 1 <= args.concurrency <= 200:
        parser.error("--clusters must be at least 1 and --concurrency between 1 and 200")
    asyncio.run(run(args.clusters, args.out, concurrency=args.concurrency, time_scale=args.time_scale,
                              workers=args.workers, profile=args.profile))
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
