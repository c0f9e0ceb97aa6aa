"""Cold starts over a large fleet: what an SRE waits for when a process has just started.

    python benchmarks/cold_start.py --clusters 10000 --out benchmarks/results/cold_start_10000.json

Over an inventory of N clusters (SQLite, filled as the fleet view's benchmark fills it) and a
Temporal dev server, each figure is measured --repeat times from a process that has just started,
as a person would meet it:

- the API: `regatta api` started; /healthz answering (alive), then /readyz (ready: what a load
  balancer or the compose healthcheck waits for before sending anyone); then the fleet view's
  first page (sign-in first, which reads no cluster). Target: the first page ≤ 300 ms.
- `regatta clusters list` (the table, and `--output json`) as a whole command, interpreter start
  to exit, exit code checked. Target: ≤ 1.5 s.
- `regatta worker` started until Temporal sees it polling both its workflow and its activity
  task queue (DescribeTaskQueue's pollers). Target: ≤ 3 s.

The medians are what the table quotes; every run's figures are saved.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fleet_view import filled_fleet  # noqa: E402
from benchmarks.stack import parse, save_figures, spawn  # noqa: E402
from benchmarks.targets import verdicts  # noqa: E402

REGATTA = [str(Path(sys.executable).parent / "regatta")]  # the entry point a user runs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api_cold_start(env: dict[str, str], secret: str, log: Path) -> dict[str, float]:
    """One `regatta api` from its start: seconds until /healthz answers, then the first fleet page."""
    port = free_port()
    started = time.perf_counter()
    process = spawn([*REGATTA, "api", "--port", str(port)], env, log=log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            alive = None
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"regatta api exited with {process.returncode}: see {log}")
                try:
                    if alive is None and http.get("/healthz").status_code == 200:
                        alive = time.perf_counter() - started
                    if alive is not None and http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
            ready = time.perf_counter() - started
            form = http.get("/ui/login")
            guard = form.text.split('name="csrf" value="')[1].split('"')[0]
            signed = http.post("/ui/login", data={"token": secret, "csrf": guard})
            assert signed.status_code == 303, signed.text[:300]
            pages = []
            for _ in range(3):
                start = time.perf_counter()
                answer = http.get("/ui")
                pages.append((time.perf_counter() - start) * 1000)
                assert answer.status_code == 200 and answer.text.count("<tr data-cluster=") == 50, answer.text[:300]
            return {"alive_seconds": round(alive, 2), "ready_seconds": round(ready, 2), "first_page_ms": round(pages[0], 1),
                    "second_page_ms": round(pages[1], 1), "third_page_ms": round(pages[2], 1)}
    finally:
        process.kill()
        process.wait()


def command_seconds(args: list[str], env: dict[str, str], *, rows: int) -> float:
    """A whole CLI command, interpreter start to exit; its exit code and output checked."""
    start = time.perf_counter()
    done = subprocess.run([*REGATTA, *args], env=env, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"regatta {' '.join(args)} exited with {done.returncode}: {done.stderr[-500:]}")
    if "json" in args:
        import json

        assert len(json.loads(done.stdout)) == rows, "the JSON does not list every cluster"
    else:
        assert done.stdout.count("\n") >= rows, "the table does not list every cluster"
    return round(seconds, 2)


async def worker_ready(client, env: dict[str, str], task_queue: str, log: Path) -> float:
    """Seconds from `regatta worker` started to Temporal seeing it poll its workflow and activity queues."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    started = time.perf_counter()
    process = spawn([*REGATTA, "worker", "--metrics-port", "0"], env, log=log)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"regatta worker exited with {process.returncode}: see {log}")
            polled = []
            for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
                described = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                    namespace="default", task_queue=TaskQueue(name=task_queue), task_queue_type=kind))
                polled.append(any(p.identity.startswith(f"{process.pid}@") for p in described.pollers))
            if all(polled):
                return round(time.perf_counter() - started, 2)
            await asyncio.sleep(0.02)
    finally:
        process.kill()
        process.wait()


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}


async def run(clusters: int, repeat: int) -> dict:
    async with filled_fleet(clusters, name="cold-start") as (env, settings, inventory, secret, _):
        inventory.close()
        child_env = {**os.environ, **settings.as_env()}
        api_runs = [api_cold_start(child_env, secret, settings.home / f"api-{i}.log") for i in range(repeat)]
        for figures in api_runs:
            print(f"api: ready {figures['ready_seconds']} s, first page {figures['first_page_ms']} ms,"
                  f" then {figures['second_page_ms']} ms")
        listing = [{"table_seconds": command_seconds(["clusters", "list"], child_env, rows=clusters),
                    "json_seconds": command_seconds(["clusters", "list", "--output", "json"], child_env, rows=clusters)}
                   for _ in range(repeat)]
        print(f"regatta clusters list: {listing}")
        workers = [{"ready_seconds": await worker_ready(env.client, child_env, settings.task_queue, settings.home / f"worker-{i}.log")}
                   for i in range(repeat)]
        print(f"regatta worker ready: {workers}")
        return {"clusters": clusters, "repeat": repeat, "api": medians(api_runs), "clusters_list": medians(listing),
                "worker": medians(workers), "runs": {"api": api_runs, "clusters_list": listing, "worker": workers}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parse(parser)
    result = asyncio.run(run(args.clusters, args.repeat))
    missed = [v for v in verdicts(f"cold_start_{args.clusters}", result) if v["met"] is False]
    print(f"cold starts over {args.clusters} clusters: {'MISSED ' + str(missed) if missed else 'met'}")
    if args.out:
        save_figures(result, args.out)
    os._exit(1 if missed else 0)


if __name__ == "__main__":
    main()
