"""The HTTP API under load: 100 requests a second for 60 s on loopback, 49 in 50 a status read of
an operation and one in 50 the start of an upgrade (each on a cluster of its own, under a ticket
of its own), against `regatta api` as its own process, on a Temporal dev server with the worker
running (a status read asks the operation's `progress` query, which a worker answers) and the
inventory on SQLite. Reports p50, p95 and p99 latency and the errors, per kind and overall.
Targets: p99 <= 50 ms, 0 errors.

    python benchmarks/api_load.py --seconds 60 --rate 100 --out benchmarks/results/api_load.json

The started upgrades run (two a second, 120 a minute, within what two cores upgrade), so the API
answers while the worker, the simulator and Temporal work beside it, as in production. Requests
are sent on a fixed schedule (open loop): a slow answer does not slow the next request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stack import BenchStack, cpu_seconds, parse, postgres_schema, save_figures  # noqa: E402
from regatta.api.tokens import create_token  # noqa: E402
from regatta.devstack import wait_for_port  # noqa: E402
from regatta.formats.fleet_file import FleetSpec  # noqa: E402

WARM_UP_STARTS = 50  # operations there are to read before the measured minute
START_EVERY = 50  # one request in this many starts an upgrade


def records(count: int) -> FleetSpec:
    return FleetSpec.model_validate({"clusters": [
        {"name": f"api-{i:04d}", "provider": "eks", "region": "us-east-1", "version": "1.30", "labels": {"env": "staging"},
         "node_pools": [{"name": "general", "nodes": 1}]} for i in range(count)]})


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 1) if ordered else 0.0


def summary(latencies: list[float], errors: int) -> dict:
    return {"requests": len(latencies) + errors, "errors": errors, "p50_ms": percentile(latencies, 0.50),
            "p95_ms": percentile(latencies, 0.95), "p99_ms": percentile(latencies, 0.99),
            "max_ms": round(max(latencies, default=0) * 1000, 1),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else 0.0}


async def main(seconds: float, rate: float, out: Path, *, inventory: str = "sqlite") -> dict:
    # SQLite is the saved runs' inventory; on PostgreSQL (production's) the server shares the two cores with the
    # API, Temporal, the worker and the load, and its runs here came out slower (2026-12-06: p99 70-992 ms).
    schema, database_url, admin = postgres_schema("api", "regatta-bench") if inventory == "postgresql" else (None, None, None)
    try:
        figures = await _measure(seconds, rate, database_url=database_url)
    finally:
        if admin is not None:
            with admin.begin() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    figures["inventory"] = inventory
    save_figures(figures, out)
    return figures


async def _measure(seconds: float, rate: float, *, database_url: str | None) -> dict:
    starts_needed = int(seconds * rate / START_EVERY) + WARM_UP_STARTS + 10
    spec = records(starts_needed)
    names = iter(c.name for c in spec.clusters)
    async with BenchStack(spec, database_url=database_url) as stack:
        _, secret = create_token(stack.inventory, name="ticket-system", role="operator", environments=["*"])
        port = 18700 + os.getpid() % 1000
        api = stack._spawn([sys.executable, "-m", "regatta.cli", "api", "--port", str(port)], stack.settings.as_env())
        wait_for_port("127.0.0.1", port, timeout=60, process=api)
        api_process = psutil.Process(api.pid)
        headers = {"Authorization": f"Bearer {secret}"}
        started_ids: list[str] = []
        kinds: dict[str, tuple[list[float], list[int]]] = {"status": ([], [0]), "start": ([], [0])}
        # status reads by what they found: a running operation (its query answered by a worker that is
        # busy upgrading), an ended one read for the first time (a worker replays its history to
        # answer), an ended one read again (answered from the API process's own memory)
        found: dict[str, list[float]] = {"running": [], "ended_first_read": [], "ended_read_again": []}
        ended_seen: set[str] = set()
        first_errors: list[str] = []

        def failed(kind: str, what: str) -> None:
            kinds[kind][1][0] += 1
            if len(first_errors) < 5:
                first_errors.append(f"{kind}: {what}"[:300])
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10, limits=limits) as http:

            async def start_one(record: bool = True) -> None:
                name = next(names)
                began = time.perf_counter()
                try:
                    answer = await http.post("/v1/operations", json={
                        "kind": "upgrade", "ticket": f"LOAD-{name}", "input": {"cluster": name, "target_version": "1.31"}})
                    problem = None if answer.status_code == 201 else f"{answer.status_code} {answer.text}"
                    if problem is None:
                        started_ids.append(answer.json()["operation_id"])
                except httpx.HTTPError as error:
                    problem = repr(error)
                if record:
                    kinds["start"][0].append(time.perf_counter() - began) if problem is None else failed("start", problem)

            async def read_one(n: int) -> None:
                operation = started_ids[n % len(started_ids)]
                began = time.perf_counter()
                try:
                    answer = await http.get(f"/v1/operations/{operation}")
                    problem = None if answer.status_code == 200 else f"{answer.status_code} {answer.text}"
                except httpx.HTTPError as error:
                    problem = repr(error)
                took = time.perf_counter() - began
                if problem is not None:
                    failed("status", problem)
                    return
                kinds["status"][0].append(took)
                if answer.json().get("status") == "RUNNING":
                    found["running"].append(took)
                else:
                    found["ended_read_again" if operation in ended_seen else "ended_first_read"].append(took)
                    ended_seen.add(operation)

            for _ in range(WARM_UP_STARTS):  # operations to read, and every code path warmed once
                await start_one(record=False)
            for n in range(50):
                await read_one(n)
            kinds["status"][0].clear()
            for latencies in found.values():
                latencies.clear()

            cpu_before = cpu_seconds(api_process)
            temporal_before = cpu_seconds(stack.pieces["temporal_server"])
            worker_before = cpu_seconds(stack.pieces["worker"])
            pending: set[asyncio.Task] = set()
            began = time.perf_counter()
            total = int(seconds * rate)
            for n in range(total):
                delay = began + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(start_one() if n % START_EVERY == START_EVERY - 1 else read_one(n))
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.gather(*pending)
            elapsed = time.perf_counter() - began
            api_cpu = cpu_seconds(api_process) - cpu_before
            temporal_cpu = cpu_seconds(stack.pieces["temporal_server"]) - temporal_before
            worker_cpu = cpu_seconds(stack.pieces["worker"]) - worker_before

    every = [*kinds["status"][0], *kinds["start"][0]]
    overall = summary(every, kinds["status"][1][0] + kinds["start"][1][0])
    figures = {
        "benchmark": "api_load", "seconds": round(elapsed, 1), "rate_asked": rate,
        "rate_achieved": round(overall["requests"] / elapsed, 1),
        "overall": overall, "status_reads": summary(*(kinds["status"][0], kinds["status"][1][0])),
        "starts": summary(*(kinds["start"][0], kinds["start"][1][0])),
        "status_reads_by_what_they_found": {kind: summary(latencies, 0) for kind, latencies in found.items()},
        "cpu_seconds": {"api": round(api_cpu, 1), "temporal_server": round(temporal_cpu, 1), "worker": round(worker_cpu, 1)},
        "limiting_process": max((("api", api_cpu), ("temporal_server", temporal_cpu), ("worker", worker_cpu)),
                                key=lambda pair: pair[1])[0],
        "first_errors": first_errors,
    }
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=100, help="requests per second, one in 50 a start")
    parser.add_argument("--inventory", choices=["postgresql", "sqlite"], default="sqlite",
                        help="where the API and the worker keep the inventory (production's is PostgreSQL)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/api_load.json")
    arguments = parse(parser)
    asyncio.run(main(arguments.seconds, arguments.rate, arguments.out, inventory=arguments.inventory))
