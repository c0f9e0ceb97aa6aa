"""Chaos, measured: a 50-cluster PatchWave and then a PolicyRollout to the same clusters, on two
worker processes over the inventory on PostgreSQL, while

- a worker is SIGKILLed (and another started in its place) 20 times at random moments,
- every simulated API (clouds and clusters) answers 20 % of requests with 429, 500 or 503,
- the Temporal server is killed once and started again on its file,
- every database connection the workers hold is dropped once (pg_terminate_backend).

    python benchmarks/chaos.py --clusters 50 --kills 20 --out benchmarks/results/chaos_50.json

It reports what an SRE would be woken up for, each with target zero: PodDisruptionBudget, version
skew and double-drain violations (the simulator's own arithmetic), cloud operations started twice
(the simulator's record of every operation), audit lines lost or duplicated (each run's trail is
numbered 1..n), clusters not at the target version and clusters without the bundle; and each
cluster's final state. Saved as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
import sqlalchemy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.policy_rollout import bundle  # noqa: E402
from benchmarks.stack import (  # noqa: E402
    UPGRADE_SETTINGS,
    BenchStack,
    cpu_seconds,
    fleet,
    machine,
    postgres_schema,
    save_figures,
)
from regatta.inventory import Inventory  # noqa: E402
from regatta.models import PatchWaveInput, PatchWaveResult  # noqa: E402
from regatta.models.policy import PolicyRolloutResult  # noqa: E402
from regatta.rules.operation_ids import policy_id, wave_id  # noqa: E402

APPLICATION = "regatta-chaos"  # the workers' connections carry it, so only theirs are dropped
# Heartbeats every few seconds, so an activity on a killed worker is retried within seconds.
CHAOS_UPGRADE = {**UPGRADE_SETTINGS, "activity_heartbeat_timeout_seconds": 5}


def drop_connections(admin: sqlalchemy.Engine) -> int:
    with admin.begin() as connection:
        return len(connection.execute(sqlalchemy.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name AND pid <> pg_backend_pid()"),
            {"name": APPLICATION}).all())


class Chaos:
    """Kills a worker at random moments (and starts another in its place), restarts Temporal once
    and drops the workers' database connections once; records what it did and when, and the CPU
    every process spent, the killed ones included."""

    def __init__(self, stack: BenchStack, admin: sqlalchemy.Engine, *, seed: int):
        self.stack, self.admin = stack, admin
        self.random = random.Random(seed)
        self.events: list[dict] = []
        self.kills = 0
        self.started = time.perf_counter()
        self.spent = {"workers": 0.0, "temporal_server": 0.0}

    def note(self, what: str, **details) -> None:
        self.events.append({"at_seconds": round(time.perf_counter() - self.started, 1), "what": what, **details})

    async def run(self, kills: int, *, gap: tuple[float, float], restart_temporal_at: int | None = None,
                  drop_connections_at: int | None = None) -> None:
        for n in range(1, kills + 1):
            await asyncio.sleep(self.random.uniform(*gap))
            victim = self.random.randrange(len(self.stack.workers))
            process = self.stack.workers[victim]
            self.spent["workers"] += cpu_seconds(psutil.Process(process.pid))
            process.kill()
            process.wait()
            self.stack.workers[victim] = self.stack.start_worker()
            self.kills += 1
            self.note("worker SIGKILLed and replaced", kill=self.kills, pid=process.pid)
            if n == restart_temporal_at:
                assert self.stack.temporal is not None
                self.spent["temporal_server"] += cpu_seconds(psutil.Process(self.stack.temporal.pid))
                self.stack.restart_temporal()
                self.note("Temporal server killed and started again on its file")
            if n == drop_connections_at:
                self.note("database connections dropped", connections=drop_connections(self.admin))

    def cpu_used(self) -> dict[str, float]:
        now = self.stack.cpu_used()
        workers = self.spent["workers"] + sum(cpu_seconds(psutil.Process(w.pid)) for w in self.stack.workers)
        assert self.stack.temporal is not None
        temporal = self.spent["temporal_server"] + cpu_seconds(psutil.Process(self.stack.temporal.pid))
        return {"workers": round(workers, 1), "temporal_server": round(temporal, 1), "simulator": now["simulator"],
                "harness": now["harness"]}


async def outcome(client, workflow: str, request, *, id: str, task_queue: str, result_type):
    """Start `workflow` and wait for its result, through the Temporal restart: the long poll for the
    result breaks when the server goes away; the operation does not."""
    from temporalio.service import RPCError

    handle = await client.start_workflow(workflow, request, id=id, task_queue=task_queue, result_type=result_type)
    while True:
        try:
            return await handle.result()
        except RPCError:
            await asyncio.sleep(1)


def audit_faults(inventory: Inventory) -> dict[str, list[str]]:
    """Each workflow run's trail is numbered 1..n: a gap is a lost line, a repeat a duplicate."""
    runs: dict[tuple[str, str], list[int]] = {}
    for line in inventory.audit():
        if line.seq:
            runs.setdefault((line.operation_id, line.run_id), []).append(line.seq)
    lost, duplicated = [], []
    for (operation, run), seqs in runs.items():
        counts = Counter(seqs)
        duplicated += [f"{operation} run {run[:8]} line {seq}" for seq, count in counts.items() if count > 1]
        lost += [f"{operation} run {run[:8]} line {seq}" for seq in range(1, max(seqs) + 1) if seq not in counts]
    return {"lost": lost, "duplicated": duplicated}


def operations_started_twice(sim_url: str) -> list[str]:
    operations = httpx.get(f"{sim_url}/sim/operations", timeout=60).json()["operations"]
    started = Counter((o["cluster"], o["node_pool"], o["type"], json.dumps(o["params"], sort_keys=True))
                      for o in operations if o["status"] != "Failed")
    return [f"{cluster} {pool or ''} {kind} x{count}" for (cluster, pool, kind, _), count in started.items() if count > 1]


async def main(clusters: int, kills: int, out: Path, *, seed: int, concurrency: int, time_scale: float) -> dict:
    schema, url, admin = postgres_schema("chaos", APPLICATION)
    spec = fleet(clusters)
    names = [c.name for c in spec.clusters]
    try:
        async with BenchStack(spec, time_scale=time_scale, workers=2, database_url=url, temporal_on_file=True) as stack:
            with httpx.Client(timeout=30) as http:
                for name in names:
                    http.post(f"{stack.settings.sim_url}/sim/faults", json={"cluster": name, "error_rate": 0.2}).raise_for_status()
            chaos = Chaos(stack, admin, seed=seed)
            # Most of the kills and the Temporal restart while the wave runs; the rest of the kills and
            # the dropped connections while the rollout runs (it is shorter: the kills come faster).
            during_wave = round(kills * 0.7)
            mayhem = asyncio.create_task(chaos.run(during_wave, gap=(1.0, 6.0), restart_temporal_at=max(1, during_wave // 2)))
            started = time.perf_counter()
            wave = PatchWaveInput(name=f"chaos-{clusters}", target_version="1.31", selector={"labels": {"bench": "yes"}},
                                  stages=[{"name": "all", "concurrency": concurrency}], failure_budget="100%",
                                  upgrade_settings=CHAOS_UPGRADE)
            wave_result = await outcome(stack.client, "PatchWave", wave, id=wave_id(wave.name),
                                        task_queue=stack.settings.task_queue, result_type=PatchWaveResult)
            wave_seconds = time.perf_counter() - started
            chaos.note("wave finished", outcome=wave_result.outcome)
            await mayhem
            mayhem = asyncio.create_task(chaos.run(kills - during_wave, gap=(0.3, 1.5), drop_connections_at=1))
            request = bundle(concurrency)
            rollout = await outcome(stack.client, "PolicyRollout", request, id=policy_id(request.name),
                                    task_queue=stack.settings.task_queue, result_type=PolicyRolloutResult)
            chaos.note("policy rollout finished", outcome=rollout.outcome)
            if not mayhem.done():
                chaos.note("the rollout ended before the chaos did")
                await mayhem
            seconds = time.perf_counter() - started
            report = await stack.sim_report()
            twice = operations_started_twice(stack.settings.sim_url)
            audit = audit_faults(Inventory(url))
            final = {name: {"control_plane": state["control_plane_version"],
                            "node_pools": sorted({p["version"] for p in state["node_pools"].values()}),
                            "bundle_objects": sum(1 for o in state["objects"] if "platform-" in o or "deny-" in o)}
                     for name, state in report["clusters"].items() if name in names}
            cpu = chaos.cpu_used()
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    not_at_target = sorted(n for n, s in final.items() if s["control_plane"] != "1.31" or s["node_pools"] != ["1.31"])
    without_bundle = sorted(n for n, s in final.items() if s["bundle_objects"] < 12)
    violations = {"pdb_violations": len(report["pdb_violations"]), "skew_violations": len(report["skew_violations"]),
                  "double_drains": len(report["double_drains"]), "cloud_operations_started_twice": len(twice),
                  "audit_lines_lost": len(audit["lost"]), "audit_lines_duplicated": len(audit["duplicated"]),
                  "clusters_not_at_target": len(not_at_target), "clusters_without_the_bundle": len(without_bundle)}
    figures = {
        "benchmark": "chaos", "clusters": clusters, "seed": seed, "time_scale": time_scale, "concurrency": concurrency,
        "transient_error_rate": 0.2, "worker_kills": chaos.kills,
        "wave": {"outcome": wave_result.outcome, "counts": wave_result.counts, "seconds": round(wave_seconds, 1)},
        "policy_rollout": {"outcome": rollout.outcome, "counts": rollout.counts},
        "seconds": round(seconds, 1), "violations": violations, "all_zero": not any(violations.values()),
        "details": {"pdb_violations": report["pdb_violations"][:10], "skew_violations": report["skew_violations"][:10],
                    "double_drains": report["double_drains"][:10], "cloud_operations_started_twice": twice[:10],
                    "audit": {k: v[:10] for k, v in audit.items()}, "not_at_target": not_at_target[:10],
                    "without_bundle": without_bundle[:10]},
        "chaos": chaos.events, "cpu_seconds": cpu, "limiting_process": max(cpu, key=lambda name: cpu[name]),
        "final_state": final, "machine": machine(),
    }
    save_figures(figures, out, printed_without=("final_state", "chaos"))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--time-scale", type=float, default=0.002, help="simulated seconds x this (operations take time)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/chaos_50.json")
    arguments = parser.parse_args()

    def interrupted(signum, frame):
        raise KeyboardInterrupt  # so the stack stops its children and the schema is dropped on the way out

    signal.signal(signal.SIGTERM, interrupted)
    asyncio.run(main(arguments.clusters, arguments.kills, arguments.out, seed=arguments.seed,
                     concurrency=arguments.concurrency, time_scale=arguments.time_scale))
