"""Chaos, measured: a 50-cluster PatchWave by blue/green (Regatta cordons and drains every old node
itself, under PodDisruptionBudgets) and then a PolicyRollout to the same clusters, on two worker
processes over the inventory on PostgreSQL, while

- a worker is SIGKILLed (and another started in its place) every few seconds from the first minute
  to the last, every third kill timed while a drain is emptying a node,
- every simulated API (clouds and clusters) answers 20 % of requests with 429, 500 or 503,
- one cluster in five has a budget that never lets a pod go: the drain climbs its policy's ladder
  (owner told, approval asked); on half of them an SRE approves deleting the pods each time, on
  the other half the budget lets go while the approval waits,
- the Temporal server is killed once mid-wave and started again on its file,
- every database connection the workers hold is dropped once mid-rollout (pg_terminate_backend).

    python benchmarks/chaos.py --clusters 50 --out benchmarks/results/chaos_50.json

It reports what an SRE would be woken up for, each with target zero and each counted from evidence
Regatta did not write for the purpose (benchmarks/chaos_counters.py; tests/unit/test_chaos_counters.py
plants each fault and sees it counted): operations that never finished and workflow tasks that
failed (a nondeterminism found on replay after a kill), budget, version-skew and double-drain violations (the
simulator's arithmetic), pods deleted past their budget without an approval, the same cloud change
accepted twice (the simulator's raw request log, before any request token merges retries) or run as
two operations, a changing activity completed twice with the same input (every Temporal history),
audit lines lost or duplicated (each operation's trail against the lines it must write, first and
last included), clusters not at the target, and bundle objects missing or unlike what the rollout
rendered for that cluster. Saved as JSON with each cluster's final state and a timeline of the chaos.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
import time
from pathlib import Path

import httpx
import psutil
import sqlalchemy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import chaos_counters  # noqa: E402
from benchmarks.policy_rollout import bundle  # noqa: E402
from benchmarks.stack import (  # noqa: E402
    UPGRADE_SETTINGS,
    BenchStack,
    cpu_seconds,
    fleet,
    parse,
    postgres_schema,
    save_figures,
)
from regatta.inventory import Inventory  # noqa: E402
from regatta.models import ApproveInput, PatchWaveInput, PatchWaveResult  # noqa: E402
from regatta.models.policy import PolicyRolloutResult  # noqa: E402
from regatta.rules import bundles  # noqa: E402
from regatta.rules.operation_ids import operation_id, policy_id, wave_id  # noqa: E402

APPLICATION = "regatta-chaos"  # the workers' connections carry it, so only theirs are dropped
# Heartbeats every few seconds, so an activity on a killed worker is retried within seconds; a drain
# the budgets block reports at once, and is never timed out (the SRE answers it).
CHAOS_UPGRADE = {**UPGRADE_SETTINGS, "activity_heartbeat_timeout_seconds": 5, "drain_blocked_report_seconds": 1,
                 "drain_timeout_seconds": 10 ** 6}
# A blocked drain tells the owner after a second and asks for an approval to delete after two.
DRAIN_POLICY = {"notify_owner_after_seconds": 1, "ask_approval_after_seconds": 2, "delete_blocking_pods": True}
BLOCKING_BUDGET = "shop/web-pdb"  # the fleet file names a workload's budget <workload>-pdb
APPROVER = "chaos-sre"


def drop_connections(admin: sqlalchemy.Engine) -> int:
    with admin.begin() as connection:
        return len(connection.execute(sqlalchemy.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name AND pid <> pg_backend_pid()"),
            {"name": APPLICATION}).all())


class Chaos:
    """Kills a worker every few seconds until told to stop (and starts another in its place), every
    third kill while a drain is emptying a node; restarts Temporal once in the wave and drops the
    workers' database connections once in the rollout; records what it did and when, and the CPU
    every process spent, the killed ones included."""

    def __init__(self, stack: BenchStack, admin: sqlalchemy.Engine, *, seed: int, gap: tuple[float, float]):
        self.stack, self.admin = stack, admin
        self.random = random.Random(seed)
        self.gap = gap
        self.events: list[dict] = []
        self.kills = 0
        self.kills_inside_a_drain = 0
        self.phase = "wave"
        self.temporal_restarted = self.connections_dropped = False
        self.started = time.perf_counter()
        self.spent = {"workers": 0.0, "temporal_server": 0.0}

    def note(self, what: str, **details) -> None:
        self.events.append({"at_seconds": round(time.perf_counter() - self.started, 1), "phase": self.phase, "what": what,
                            **details})

    async def drain_in_flight(self, http: httpx.AsyncClient, *, within: float) -> str | None:
        """A node some drain is emptying right now (`cluster/node`), waiting up to `within` seconds."""
        deadline = time.perf_counter() + within
        while time.perf_counter() < deadline:
            draining = (await http.get(f"{self.stack.settings.sim_url}/sim/draining")).json()["draining"]
            if draining:
                cluster = self.random.choice(sorted(draining))
                return f"{cluster}/{draining[cluster][0]}"
            await asyncio.sleep(0.1)
        return None

    async def run(self, stop: asyncio.Event, *, restart_temporal_after: float) -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.random.uniform(*self.gap))
                    return
                except TimeoutError:
                    pass
                inside = await self.drain_in_flight(http, within=10) if (self.kills + 1) % 3 == 0 else None
                victim = self.random.randrange(len(self.stack.workers))
                process = self.stack.workers[victim]
                self.spent["workers"] += cpu_seconds(psutil.Process(process.pid))
                process.kill()
                process.wait()
                self.stack.workers[victim] = self.stack.start_worker()
                self.kills += 1
                self.kills_inside_a_drain += inside is not None
                self.note("worker SIGKILLed and replaced", kill=self.kills, pid=process.pid,
                          **({"inside_the_drain_of": inside} if inside else {}))
                if (self.phase == "wave" and not self.temporal_restarted
                        and time.perf_counter() - self.started >= restart_temporal_after):
                    assert self.stack.temporal is not None
                    self.spent["temporal_server"] += cpu_seconds(psutil.Process(self.stack.temporal.pid))
                    self.stack.restart_temporal()
                    self.temporal_restarted = True
                    self.note("Temporal server killed and started again on its file")
                if self.phase == "rollout" and not self.connections_dropped:
                    self.connections_dropped = True
                    self.note("database connections dropped", connections=drop_connections(self.admin))

    def cpu_used(self) -> dict[str, float]:
        now = self.stack.cpu_used()
        workers = self.spent["workers"] + sum(cpu_seconds(psutil.Process(w.pid)) for w in self.stack.workers)
        assert self.stack.temporal is not None
        temporal = self.spent["temporal_server"] + cpu_seconds(psutil.Process(self.stack.temporal.pid))
        return {"workers": round(workers, 1), "temporal_server": round(temporal, 1), "simulator": now["simulator"],
                "harness": now["harness"]}


class OnCall:
    """The SRE a blocked drain escalates to: on the clusters marked `approve`, approves deleting the
    pods each time the upgrade asks; on those marked `release`, lets the budget go instead (the
    workload recovered) once the upgrade has asked, without approving."""

    def __init__(self, stack: BenchStack, answers: dict[str, str], chaos: Chaos):
        self.stack, self.answers, self.chaos = stack, answers, chaos
        self.approvals = 0
        self.released: set[str] = set()
        self.asked: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
        from temporalio.service import RPCError

        waiting = dict(self.answers)
        async with httpx.AsyncClient(timeout=30) as http:
            while waiting and not stop.is_set():
                for cluster, answer in list(waiting.items()):
                    handle = self.stack.client.get_workflow_handle(operation_id(cluster))
                    try:
                        progress = await handle.query("progress")
                    except (RPCError, WorkflowQueryFailedError):
                        continue  # not started yet, or Temporal is restarting
                    if progress["phase"] in ("succeeded", "failed", "aborted"):
                        del waiting[cluster]
                        continue
                    escalation = progress.get("drain_escalation") or {}
                    if escalation.get("step") != "awaiting_approval":
                        continue
                    self.asked.add(cluster)
                    if answer == "release":
                        (await http.post(f"{self.stack.settings.sim_url}/sim/faults",
                                         json={"cluster": cluster, "error_rate": 0.2})).raise_for_status()
                        self.released.add(cluster)
                        self.chaos.note("budget let go while the approval waited", cluster=cluster)
                        del waiting[cluster]
                        continue
                    try:
                        await handle.execute_update("approve", ApproveInput(approver=APPROVER, comment="chaos: the budget"
                                                                            " is held on purpose"))
                        self.approvals += 1
                        self.chaos.note("deletion approved", cluster=cluster, node=escalation["node"])
                    except (RPCError, WorkflowUpdateFailedError):
                        pass  # the drain went through meanwhile, or Temporal is restarting: look again
                await asyncio.sleep(0.5)


async def outcome(client, workflow: str, request, *, id: str, task_queue: str, result_type, deadline: float):
    """Start `workflow` and wait for its result, through the Temporal restart (the long poll for the
    result breaks when the server goes away; the operation does not), until `deadline`
    (perf_counter seconds): None if it has not ended by then (a stuck operation, which the run
    reports rather than waiting for ever)."""
    from temporalio.service import RPCError

    handle = await client.start_workflow(workflow, request, id=id, task_queue=task_queue, result_type=result_type)
    while time.perf_counter() < deadline:
        try:
            return await asyncio.wait_for(handle.result(), timeout=max(1.0, deadline - time.perf_counter()))
        except RPCError:
            await asyncio.sleep(1)
        except TimeoutError:
            break
    return None


async def still_running(client) -> list[str]:
    return sorted([w.id async for w in client.list_workflows('ExecutionStatus = "Running"')])


async def histories(client) -> dict[str, list]:
    """Every workflow's history events, its runs (continued as new) one after another."""
    runs = [w async for w in client.list_workflows("")]
    runs.sort(key=lambda w: (w.id, w.start_time))
    found: dict[str, list] = {}
    for run in runs:
        history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        found.setdefault(run.id, []).extend(history.events)
    return found


def bundle_faults(sim_url: str, inventory: Inventory, names: list[str], request, revision: str) -> dict[str, list[str]]:
    """Each cluster's objects against what the rollout rendered for it (regatta/rules/bundles.py)."""
    faults = {}
    with httpx.Client(timeout=60) as http:
        for name in names:
            rendering = bundles.render(request, inventory.get_cluster(name), mode=None, bundle_revision=revision)
            rendered = {f"{o.key.api_version}/{o.key.kind}/{o.key.namespace or '-'}/{o.key.name}": o.body
                        for o in rendering.objects}
            held = http.get(f"{sim_url}/sim/objects", params={"cluster": name}).json()["objects"].values()
            live = {f"{o.get('apiVersion')}/{o.get('kind')}/{o['metadata'].get('namespace') or '-'}/{o['metadata']['name']}": o
                    for o in held}
            if found := chaos_counters.bundle_differences(rendered, live):
                faults[name] = found
    return faults


async def main(clusters: int, out: Path, *, seed: int, concurrency: int, time_scale: float,
               kill_every: tuple[float, float], deadline_seconds: float, rollout_deadline_seconds: float) -> dict:
    schema, url, admin = postgres_schema("chaos", APPLICATION)
    spec = fleet(clusters)
    names = [c.name for c in spec.clusters]
    blocked = {name: ("approve" if i % 10 == 0 else "release") for i, name in enumerate(names) if i % 5 == 0}
    try:
        async with BenchStack(spec, time_scale=time_scale, workers=2, database_url=url, temporal_on_file=True) as stack:
            with httpx.Client(timeout=30) as http:
                for name in names:
                    http.post(f"{stack.settings.sim_url}/sim/faults", json={
                        "cluster": name, "error_rate": 0.2,
                        "blocking_pdbs": [BLOCKING_BUDGET] if name in blocked else []}).raise_for_status()
            chaos = Chaos(stack, admin, seed=seed, gap=kill_every)
            on_call = OnCall(stack, blocked, chaos)
            stop = asyncio.Event()
            mayhem = asyncio.create_task(chaos.run(stop, restart_temporal_after=20))
            attending = asyncio.create_task(on_call.run(stop))
            started = time.perf_counter()
            wave = PatchWaveInput(name=f"chaos-{clusters}", target_version="1.31", selector={"labels": {"bench": "yes"}},
                                  strategy="blue_green", stages=[{"name": "all", "concurrency": concurrency}],
                                  failure_budget="100%", upgrade_settings=CHAOS_UPGRADE, drain_policies=[DRAIN_POLICY])
            deadline = started + deadline_seconds
            wave_result = await outcome(stack.client, "PatchWave", wave, id=wave_id(wave.name),
                                        task_queue=stack.settings.task_queue, result_type=PatchWaveResult,
                                        deadline=deadline)
            wave_seconds = time.perf_counter() - started
            chaos.note("wave finished" if wave_result else "wave still running at the deadline",
                       outcome=wave_result.outcome if wave_result else None)
            chaos.phase = "rollout"
            request = bundle(concurrency)
            rollout = await outcome(stack.client, "PolicyRollout", request, id=policy_id(request.name),
                                    task_queue=stack.settings.task_queue, result_type=PolicyRolloutResult,
                                    deadline=time.perf_counter() + rollout_deadline_seconds)
            chaos.note("policy rollout finished" if rollout else "rollout still running at the deadline",
                       outcome=rollout.outcome if rollout else None)
            stop.set()
            await asyncio.gather(mayhem, attending)
            seconds = time.perf_counter() - started
            cpu = chaos.cpu_used()
            report = await stack.sim_report()
            sim = stack.settings.sim_url
            async with httpx.AsyncClient(timeout=600) as http:
                changes = (await http.get(f"{sim}/sim/requests", params={"changes": "true"})).json()["requests"]
                operations = (await http.get(f"{sim}/sim/operations")).json()["operations"]
            running = await still_running(stack.client)
            events = await histories(stack.client)
            inventory = Inventory(url)
            lines = [line.model_dump() for line in inventory.audit()]
            ran = {wave_id(wave.name): "PatchWave", policy_id(request.name): "PolicyRollout",
                   **{operation_id(name): "ClusterUpgrade" for name in names}}
            bundle_found = (bundle_faults(sim, inventory, names, request, rollout.revision) if rollout
                            else {name: ["the rollout did not end"] for name in names})
            inventory.close()
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    cloud = chaos_counters.cloud_changes_accepted_twice(changes)
    twice = chaos_counters.operations_started_twice(operations)
    completions = chaos_counters.repeated_completions(events)
    failed_tasks = chaos_counters.failed_workflow_tasks(events)
    # A running operation's trail is not finished (lines may be in flight): its first line and duplicates are judged.
    audit = chaos_counters.audit_faults(lines, ran, running=running)
    unapproved = chaos_counters.pods_deleted_without_approval(report["pods_deleted"], lines)
    final = {name: {"control_plane": state["control_plane_version"],
                    "node_pools": sorted({p["version"] for p in state["node_pools"].values()})}
             for name, state in report["clusters"].items() if name in names}
    not_at_target = sorted(n for n, s in final.items() if s["control_plane"] != "1.31" or s["node_pools"] != ["1.31"])
    violations = {"pdb_violations": len(report["pdb_violations"]), "skew_violations": len(report["skew_violations"]),
                  "double_drains": len(report["double_drains"]), "pods_deleted_without_approval": len(unapproved),
                  "cloud_changes_accepted_twice": len(cloud["started_twice"]),
                  "cloud_operations_started_twice": len(twice), "activities_completed_twice": len(completions),
                  "workflow_tasks_failed": len(failed_tasks), "operations_never_finished": len(running),
                  "audit_lines_lost": len(audit["lost"]), "audit_lines_duplicated": len(audit["duplicated"]),
                  "clusters_not_at_target": len(not_at_target), "clusters_unlike_the_bundle": len(bundle_found)}
    drains = [e for e in chaos.events if "inside_the_drain_of" in e]
    figures = {
        "benchmark": "chaos", "clusters": clusters, "seed": seed, "time_scale": time_scale, "concurrency": concurrency,
        "strategy": "blue_green", "transient_error_rate": 0.2, "kill_every_seconds": list(kill_every),
        "blocked_budget_clusters": {"approve": sum(1 for a in blocked.values() if a == "approve"),
                                    "release": sum(1 for a in blocked.values() if a == "release")},
        "chaos_done": {"worker_kills": chaos.kills, "kills_inside_a_drain": chaos.kills_inside_a_drain,
                       "kills_in_the_wave": sum(1 for e in chaos.events if e["phase"] == "wave" and "kill" in e),
                       "kills_in_the_rollout": sum(1 for e in chaos.events if e["phase"] == "rollout" and "kill" in e),
                       "first_kill_at_seconds": next((e["at_seconds"] for e in chaos.events if "kill" in e), None),
                       "last_kill_at_seconds": next((e["at_seconds"] for e in reversed(chaos.events) if "kill" in e), None),
                       "temporal_restarted": chaos.temporal_restarted, "connections_dropped": chaos.connections_dropped,
                       "approvals_asked": len(on_call.asked), "deletions_approved": on_call.approvals,
                       "budgets_let_go": len(on_call.released), "pods_deleted": len(report["pods_deleted"]),
                       "drains_killed_inside": sorted({e["inside_the_drain_of"] for e in drains})[:20]},
        "evidence_read": {"cloud_changes": len(changes), "cloud_retries_merged_by_token": len(cloud["merged_by_token"]),
                          "cloud_operations": len(operations), "workflows": len(events),
                          "history_events": sum(len(e) for e in events.values()), "audit_lines": len(lines)},
        "wave": {"outcome": wave_result.outcome if wave_result else "still running", "counts": wave_result.counts
                 if wave_result else None, "seconds": round(wave_seconds, 1)},
        "policy_rollout": {"outcome": rollout.outcome if rollout else "still running",
                           "counts": rollout.counts if rollout else None},
        "seconds": round(seconds, 1), "violations": violations, "all_zero": not any(violations.values()),
        "details": {"pdb_violations": report["pdb_violations"][:10], "skew_violations": report["skew_violations"][:10],
                    "double_drains": report["double_drains"][:10], "pods_deleted_without_approval": unapproved[:10],
                    "cloud_changes_accepted_twice": cloud["started_twice"][:10],
                    "cloud_operations_started_twice": twice[:10], "activities_completed_twice": completions[:10],
                    "workflow_tasks_failed": failed_tasks[:10], "operations_never_finished": running[:10],
                    "audit": {k: v[:10] for k, v in audit.items()}, "not_at_target": not_at_target[:10],
                    "unlike_the_bundle": {k: v[:5] for k, v in list(bundle_found.items())[:10]}},
        "chaos": chaos.events, "cpu_seconds": cpu, "limiting_process": max(cpu, key=lambda name: cpu[name]),
        "final_state": final,
    }
    save_figures(figures, out, printed_without=("final_state", "chaos"))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--kill-every", type=float, nargs=2, default=(2.0, 6.0), metavar=("MIN", "MAX"),
                        help="seconds between worker kills, drawn uniformly")
    parser.add_argument("--time-scale", type=float, default=0.002, help="simulated seconds x this (operations take time)")
    parser.add_argument("--deadline", type=float, default=1500, help="seconds after which the wave, still running,"
                        " counts as never finished")
    parser.add_argument("--rollout-deadline", type=float, default=600, help="the same for the policy rollout, from"
                        " its start")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/chaos_50.json")
    arguments = parse(parser)

    def interrupted(signum, frame):
        raise KeyboardInterrupt  # so the stack stops its children and the schema is dropped on the way out

    signal.signal(signal.SIGTERM, interrupted)
    asyncio.run(main(arguments.clusters, arguments.out, seed=arguments.seed, concurrency=arguments.concurrency,
                     time_scale=arguments.time_scale, kill_every=tuple(arguments.kill_every),
                     deadline_seconds=arguments.deadline, rollout_deadline_seconds=arguments.rollout_deadline))
