"""Operations as a client sees them: start one (refusing when another holds the cluster),
follow its progress, send it control Updates, and describe where it stands.

Used by the CLI and the HTTP API (regatta/api). Operation ids are Temporal workflow ids; control
payloads are plain dicts so the same code steers every workflow type.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from regatta import planning
from regatta.models import ClusterRecord, PatchWaveInput, ProvisionClusterInput, WaveForecast, WavePlan
from regatta.search_attributes import CLUSTER, ENVIRONMENT, OPERATION, TICKET
from regatta.settings import Settings
from regatta.temporal_client import connect


class OperationRefused(Exception):
    """The request was refused and nothing changed (CLI exit code 2)."""


class OperationFailed(Exception):
    """The operation ran and failed, or was aborted (CLI exit code 1)."""


def _cause(error: BaseException) -> str:
    """The innermost message: what the operator needs, without the SDK's wrapping."""
    message = str(error)
    while getattr(error, "cause", None) is not None:
        error = error.cause
        message = getattr(error, "message", None) or str(error)
    return message


def provision_holder(inventory, request: ProvisionClusterInput) -> ClusterRecord:
    """The record a new cluster's ProvisionCluster runs under, once the fleet rules allow it."""
    taken = any(r.name == request.name for r in inventory.list_clusters())
    problems = planning.fleet_rule_violations(
        name=request.name, provider=request.provider, region=request.region, version=request.version,
        pools=[(p.name, p.node_count) for p in request.node_pools], taken=taken)
    if problems:
        raise OperationRefused("; ".join(problems))
    return ClusterRecord(name=request.name, provider=request.provider, region=request.region,
                         environment=request.environment, control_plane_version=request.version)


async def start_operation(
    settings: Settings, *, workflow: str, cluster: ClusterRecord, request: BaseModel, ticket: str | None
) -> WorkflowHandle:
    """Start an operation on one cluster under its lock, `cluster-<name>`."""
    attributes = [SearchAttributePair(CLUSTER, cluster.name), SearchAttributePair(ENVIRONMENT, cluster.environment)]
    return await _start(settings, workflow=workflow, operation_id=planning.operation_id(cluster.name), request=request,
                        ticket=ticket, attributes=attributes, holding=f"cluster {cluster.name}",
                        rule="at most one operation runs on a cluster")


async def start_wave(settings: Settings, *, request: PatchWaveInput) -> WorkflowHandle:
    """Start a PatchWave under `wave-<name>`: one wave of a name runs at a time."""
    return await _start(settings, workflow="PatchWave", operation_id=planning.wave_id(request.name), request=request,
                        ticket=request.ticket, attributes=[], holding=f"wave {request.name}",
                        rule="one wave of a name runs at a time")


async def _start(settings: Settings, *, workflow: str, operation_id: str, request: BaseModel, ticket: str | None,
                 attributes: list, holding: str, rule: str) -> WorkflowHandle:
    client = await connect(settings)
    attributes = [*attributes, SearchAttributePair(OPERATION, workflow)]
    if ticket:
        attributes.append(SearchAttributePair(TICKET, ticket))
    try:
        return await client.start_workflow(
            workflow, request, id=operation_id, task_queue=settings.task_queue,
            search_attributes=TypedSearchAttributes(attributes),
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError:
        holder = await client.get_workflow_handle(operation_id).describe()
        held_ticket = (holder.typed_search_attributes.get(TICKET) if holder.typed_search_attributes else None) or "no ticket"
        raise OperationRefused(
            f"{holding} is held by {holder.workflow_type} {operation_id} (started"
            f" {holder.start_time:%Y-%m-%d %H:%M:%S} UTC, {held_ticket}); {rule}."
            f" Wait for it (`regatta op status {operation_id}`) or stop it (`regatta op abort {operation_id}`)"
        ) from None


async def send_update(settings: Settings, operation_id: str, update: str, payload: dict) -> dict:
    handle = (await connect(settings)).get_workflow_handle(operation_id)
    try:
        return await handle.execute_update(update, payload, result_type=dict)
    except WorkflowUpdateFailedError as error:
        raise OperationRefused(f"{update} refused by {operation_id}: {_cause(error)}") from None
    except RPCError as error:
        if error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.INVALID_ARGUMENT):
            raise OperationRefused(
                f"{operation_id} cannot take {update}: {error.message}. `regatta op status {operation_id}` shows where it stands"
            ) from None
        raise


async def status(settings: Settings, operation_id: str) -> dict[str, Any]:
    handle = (await connect(settings)).get_workflow_handle(operation_id)
    try:
        described = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise OperationRefused(f"no operation {operation_id}; operation ids look like cluster-<cluster name>") from None
        raise
    attributes = described.typed_search_attributes
    result: dict[str, Any] = {
        "operation_id": operation_id,
        "run_id": described.run_id,
        "workflow_type": described.workflow_type,
        "status": described.status.name if described.status else "UNKNOWN",
        "started": described.start_time,
        "closed": described.close_time,
        "cluster": attributes.get(CLUSTER) if attributes else None,
        "environment": attributes.get(ENVIRONMENT) if attributes else None,
        "progress": None,
        "failure": None,
    }
    try:
        result["progress"] = await handle.query("progress", result_type=dict)
    except Exception as error:  # noqa: BLE001 - no worker to answer is worth saying, not failing on
        result["progress_error"] = _cause(error)
    if described.status == WorkflowExecutionStatus.FAILED:
        try:
            await handle.result()
        except WorkflowFailureError as error:
            result["failure"] = _cause(error)
    return result


async def query(settings: Settings, operation_id: str, name: str) -> Any:
    """Ask a running (or ended) operation a Query by name."""
    handle = (await connect(settings)).get_workflow_handle(operation_id)
    try:
        return await handle.query(name, result_type=dict)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise OperationRefused(f"no operation {operation_id}; a wave's id is wave-<name>") from None
        raise OperationRefused(f"{operation_id} cannot answer {name}: {_cause(error)}") from None
    except WorkflowQueryFailedError as error:
        raise OperationRefused(f"{operation_id} cannot answer {name}: {_cause(error)}") from None


def render_forecast(forecast: WaveForecast, console: Console, *, cluster: str | None = None, output: str = "table") -> None:
    """`regatta wave plan` and `regatta wave forecast`: each cluster's first touch and why then."""
    rows = forecast.clusters
    if cluster is not None:
        rows = [row for row in rows if row.cluster == cluster]
        if not rows:
            missing = {"cluster": cluster, "in_wave": False,
                       "because": f"{cluster} is not in this wave: the wave did not select it when it planned (a"
                                  " cluster that joined the fleet later, or one its selector does not take)"}
            print(json.dumps(missing, indent=2)) if output == "json" else console.print(missing["because"])
            return
    if output == "json":
        print(json.dumps(forecast.model_copy(update={"clusters": rows}).model_dump(mode="json"), indent=2))
        return
    console.print(f"[bold]{forecast.wave}[/], forecast at {forecast.forecast_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC;"
                  f" assumes {'; '.join(forecast.assumes)}")
    table = Table()
    for column in ("CLUSTER", "STAGE", "STATUS", "FIRST TOUCH (UTC)", "EXPECTED DONE (UTC)", "BECAUSE"):
        table.add_column(column)
    for row in rows:
        when = f"{row.earliest_touch.astimezone(UTC):%a %Y-%m-%d %H:%M}" if row.earliest_touch else "—"
        done = f"{row.expected_done.astimezone(UTC):%a %Y-%m-%d %H:%M}" if row.expected_done else "—"
        table.add_row(row.cluster, row.stage or "—", row.status, when, done, row.because)
    console.print(table)


def render_plan(plan: WavePlan, console: Console) -> None:
    """Which clusters go in which stage and when: `regatta wave start --plan-only`."""
    total = sum(len(stage.clusters) for stage in plan.stages)
    images = f" (node images: {', '.join(f'{k} {v}' for k, v in sorted(plan.node_images.items()))})" if plan.node_images else ""
    console.print(f"[bold]{plan.wave}[/] to {plan.target_version}{images}: {total} clusters in {len(plan.stages)} stages,"
                  f" failure budget {plan.failure_budget} (planned {plan.planned_at:%Y-%m-%d %H:%M} UTC)")
    table = Table()
    for column in ("STAGE", "CLUSTER", "STATUS", "EARLIEST START (UTC)", "NOTE"):
        table.add_column(column)
    for stage in plan.stages:
        gate = " (approval)" if stage.approval_required else ""
        label = f"{stage.name}{gate}\n×{stage.concurrency}, soak {stage.soak_seconds:g}s"
        for i, entry in enumerate(stage.clusters or [None]):
            if entry is None:
                table.add_row(label, "", "", "", "no cluster")
                continue
            start = f"{entry.earliest_start.astimezone(UTC):%Y-%m-%d %H:%M}" if entry.earliest_start else "—"
            table.add_row(label if i == 0 else "", entry.name, entry.status, start, entry.detail)
    console.print(table)
    for name in plan.unstaged:
        console.print(f"not in any stage (not touched): {name}: {plan.unstaged_reasons.get(name, '')}")


def _render_wave(progress: dict[str, Any], console: Console) -> None:
    table = Table()
    for column in ("STAGE", "STATUS", "DONE", "UPGRADING", "WAITING", "FAILED", "ABORTED", "SKIPPED", "APPROVED BY"):
        table.add_column(column)
    notes = []
    for stage in progress["stages"]:
        count = {status: sum(1 for c in stage["clusters"] if c["status"] == status)
                 for status in ("succeeded", "at_target", "upgrading", "waiting_window", "held", "failed", "aborted", "skipped")}
        table.add_row(stage["name"], stage["status"], f"{count['succeeded'] + count['at_target']}/{len(stage['clusters'])}",
                      str(count["upgrading"]), str(count["waiting_window"] + count["held"]), str(count["failed"]), str(count["aborted"]),
                      str(count["skipped"]),
                      stage.get("approved_by") or "")
        notes += [f"{c['name']}: {c['status']} — {c['detail']}" for c in stage["clusters"]
                  if c["status"] in ("waiting_window", "held", "failed", "aborted", "skipped")]
    console.print(table)
    for note in notes[:20]:
        console.print(f"  {note}")
    if len(notes) > 20:
        console.print(f"  … and {len(notes) - 20} more (regatta op status --output json)")
    if progress.get("halted_reason"):
        console.print(f"  [red]halted:[/] {progress['halted_reason']}")


def render_status(described: dict[str, Any], console: Console) -> None:
    """Where any operation stands: the fields its progress query returns, the ones it has."""
    progress = described.get("progress") or {}
    console.print(f"[bold]{described['operation_id']}[/] {described['workflow_type']}: {described['status']}")
    if progress:
        if "stages" in progress:
            pass  # a wave: its own table below
        elif "target_version" in progress:
            onto = f" on node image {progress['target_node_image']}" if progress.get("target_node_image") else ""
            console.print(f"  cluster {progress.get('cluster')} → {progress['target_version']}{onto} by {progress.get('strategy')}")
        elif "source" in progress:
            drill = " (drill)" if progress.get("drill") else ""
            console.print(f"  service of {progress.get('cluster')}: {progress['source']} → {progress['target']}{drill}")
        else:
            console.print(f"  cluster {progress.get('cluster')}")
        console.print(f"  phase {progress.get('phase')}: {progress.get('step')}")
        for flag, reason in (("paused", "pause_reason"), ("abort_requested", "abort_reason")):
            if progress.get(flag):
                console.print(f"  [yellow]{flag.replace('_', ' ')}[/] {progress.get(reason) or ''}")
        if escalation := progress.get("drain_escalation"):
            console.print(f"  [yellow]drain of {escalation['node']} blocked[/] since {escalation['blocked_since']}: step"
                          f" {escalation['step']} since {escalation['step_since']}; budgets {', '.join(escalation['budgets'])};"
                          f" pods {', '.join(escalation['pods'])}")
        for line in progress.get("health_checks") or []:
            console.print(f"  health check {line}")
        if progress.get("rto_seconds") is not None:
            rpo = progress.get("rpo_seconds")
            console.print(f"  RTO {progress['rto_seconds']:.1f}s, RPO {f'{rpo:.0f}s' if rpo is not None else 'unknown'}")
        for key in ("control_plane", "approved_by", "backup", "fencing", "created", "restored", "scaled", "deleted",
                    "workloads"):
            if progress.get(key):
                value = progress[key]
                if isinstance(value, dict):  # a backup names itself; a plan reads as what → how many
                    value = value.get("name") or ", ".join(f"{k} → {v}" for k, v in value.items())
                console.print(f"  {key.replace('_', ' ')}: {', '.join(value) if isinstance(value, list) else value}")
        if progress.get("stages"):
            images = progress.get("node_images") or {}
            onto = f" (node images: {', '.join(f'{k} {v}' for k, v in sorted(images.items()))})" if images else ""
            console.print(f"  wave {progress['wave']} → {progress['target_version']}{onto}: failure budget"
                          f" {progress['failure_budget']}, {progress['failed']} failed")
            _render_wave(progress, console)
        if progress.get("pools"):
            table = Table()
            for column in ("NODE POOL", "FROM", "TO", "NODES DONE", "STATUS", "REPLACEMENT"):
                table.add_column(column)
            for pool in progress["pools"]:
                table.add_row(pool["name"], pool["from_version"], pool["to_version"],
                              f"{pool['nodes_done']}/{pool['nodes_total']}", pool["status"], pool.get("replacement_pool") or "")
            console.print(table)
        if progress.get("message"):
            console.print(f"  {progress['message']}")
    if described.get("failure"):
        console.print(f"  [red]why it stopped:[/] {described['failure']}")


async def follow(handle: WorkflowHandle, console: Console, *, interval: float = 0.5) -> dict:
    """Show a progress bar for the control plane and each node pool until the operation ends."""
    outcome = asyncio.ensure_future(handle.result())
    bars: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[state]}"),
                  console=console, transient=False) as bar:
        step = bar.add_task("step", total=None, state="")
        while not outcome.done():
            try:
                progress = await handle.query("progress", result_type=dict)
            except Exception:  # noqa: BLE001 - a query can race the workflow's end; try again
                progress = None
            if progress:
                bar.update(step, description=f"[bold]{progress['phase']}[/]", state=progress["step"])
                if "control_plane" in progress and "control plane" not in bars and progress["control_plane"] != "skipped":
                    bars["control plane"] = bar.add_task("control plane", total=1, state="")
                if "control plane" in bars:
                    bar.update(bars["control plane"], completed=1 if progress["control_plane"] == "done" else 0,
                               state=progress["control_plane"])
                for stage in progress.get("stages", []):
                    name = f"stage {stage['name']}"
                    if name not in bars:
                        bars[name] = bar.add_task(name, total=max(len(stage["clusters"]), 1), state="")
                    finished = sum(1 for c in stage["clusters"] if c["status"] in ("succeeded", "at_target", "failed", "aborted", "skipped"))
                    bar.update(bars[name], completed=finished, state=stage["status"])
                for pool in progress.get("pools", []):
                    name = f"pool {pool['name']}"
                    if name not in bars:
                        bars[name] = bar.add_task(name, total=max(pool["nodes_total"], 1), state="")
                    bar.update(bars[name], completed=pool["nodes_done"], state=pool["status"])
            await asyncio.wait([outcome], timeout=interval)
    try:
        result = outcome.result()
    except WorkflowFailureError as error:
        raise OperationFailed(_cause(error)) from None
    if result.get("outcome") != "succeeded":
        raise OperationFailed(f"{result.get('outcome')}: {result.get('message')}")
    console.print(f"[green]{result.get('message')}[/]")
    return result
