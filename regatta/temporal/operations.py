"""Operations as a client sees them: start one (refusing when another holds the cluster),
follow its progress, send it control Updates, and describe where it stands.

Used by the CLI and the HTTP API (regatta/api), after `admission.admit` has made the checks that
come before a start. Operation ids are Temporal workflow ids; control payloads are plain dicts so
the same code steers every workflow type. Nothing here renders: the CLI's render.py does.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import OrderedDict
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from regatta.models import ClusterRecord
from regatta.models.operations import OperationStatus
from regatta.models.search_attributes import CLUSTER, ENVIRONMENT, FINAL_PROGRESS_MEMO, TICKET, operation_tags
from regatta.rules import operation_catalog, outcomes, suggestions
from regatta.settings import Settings
from regatta.temporal.connect import connect
from regatta.temporal.outcomes import OperationFailed, OperationRefused, cause_of

__all__ = ["OperationFailed", "OperationRefused", "cause_of"]  # named here too, as callers have always imported them




async def start(settings: Settings, request: BaseModel, *, cluster: ClusterRecord | None = None) -> WorkflowHandle:
    """Start the operation `request` asks for, as its catalog entry says (regatta/rules/operation_catalog.py): under
    its id, which is its lock (`cluster-<name>` for every operation that changes one cluster, `wave-<name>`,
    `policy-<bundle>`...), refused with the holder named when another run holds it. `cluster` is the record it acts
    on (its Cluster and Environment search attributes), None for a fleet-wide one."""
    entry = operation_catalog.for_request(request)
    operation_id = entry.operation_id(request, suffix=secrets.token_hex(4) if entry.random_id else "")
    return await _start(settings, workflow=entry.workflow, operation_id=operation_id, request=request,
                        ticket=getattr(request, "ticket", None), cluster=None if entry.fleet_wide else cluster,
                        holding=entry.holding(request), rule=entry.rule)


async def _start(settings: Settings, *, workflow: str, operation_id: str, request: BaseModel, ticket: str | None,
                 holding: str, rule: str, cluster: ClusterRecord | None = None) -> WorkflowHandle:
    client = await connect(settings)
    try:
        return await client.start_workflow(
            workflow, request, id=operation_id, task_queue=settings.task_queue,
            search_attributes=operation_tags(operation=workflow, cluster=cluster.name if cluster else None,
                                             environment=cluster.environment if cluster else None, ticket=ticket),
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


async def no_such_operation(client: Any, operation_id: str, *, suggest: bool) -> OperationRefused:
    """The refusal of an id Temporal does not know; with `suggest` (the CLI, whose user reaches Temporal itself), naming
    the recent operations' ids most like it. The API never suggests: a token would learn ids outside its scope."""
    known: list[str] = []
    if suggest:
        try:
            known = list(dict.fromkeys([execution.id async for execution in client.list_workflows("", limit=500)]))
        except RPCError:
            pass  # the refusal stands without suggestions
    hint = suggestions.known_names_hint(operation_id, known, what="operation") if known else ""
    return OperationRefused(f"no operation {operation_id}{hint}; operation ids look like cluster-<cluster>,"
                            " wave-<wave>, policy-<bundle>")


async def send_update(settings: Settings, operation_id: str, update: str, payload: dict, *, suggest: bool = False) -> dict:
    client = await connect(settings)
    handle = client.get_workflow_handle(operation_id)
    try:
        return await handle.execute_update(update, payload, result_type=dict)
    except WorkflowUpdateFailedError as error:
        raise OperationRefused(f"{update} refused by {operation_id}: {cause_of(error)}") from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND and "completed" not in error.message:  # else: it has ended
            raise await no_such_operation(client, operation_id, suggest=suggest) from None
        if error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.INVALID_ARGUMENT):
            raise OperationRefused(
                f"{operation_id} cannot take {update}: {error.message}. `regatta op status {operation_id}` shows where it stands"
            ) from None
        raise


# A run that has ended answers its `progress` query only by a worker replaying its whole history
# (a wave's runs hold thousands of events), and its answer never changes again: this process keeps
# the last answers (and failures) of ended runs, by operation and run, the oldest dropped first.
ENDED_RUNS_KEPT = 4096
_ended_runs: OrderedDict[tuple[str, str], tuple[Any, str | None, str | None, Any]] = OrderedDict()
# What each completed run came to (its result's outcome), read once by whichever asks first: status() or a list.
_ended_outcomes: OrderedDict[tuple[str, str], str | None] = OrderedDict()


def _keep_outcome(operation_id: str, run_id: str, outcome: str | None) -> None:
    _ended_outcomes[(operation_id, run_id)] = outcome
    while len(_ended_outcomes) > ENDED_RUNS_KEPT:
        _ended_outcomes.popitem(last=False)


async def _described(settings: Settings, operation_id: str, *, suggest: bool) -> tuple[Any, Any, Any]:
    """(client, handle, description) of an operation, or the refusal naming the operations there are."""
    client = await connect(settings)
    handle = client.get_workflow_handle(operation_id)
    try:
        return client, handle, await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise await no_such_operation(client, operation_id, suggest=suggest) from None
        raise


async def status(settings: Settings, operation_id: str, *, suggest: bool = False) -> dict[str, Any]:
    client, handle, described = await _described(settings, operation_id, suggest=suggest)
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
        "outcome": None,
        "succeeded": None,
    }
    ended = described.status not in (None, WorkflowExecutionStatus.RUNNING)
    kept = _ended_runs.get((operation_id, described.run_id)) if ended else None
    if kept is not None:
        result["progress"], result["failure"], result["outcome"], result["condition"] = kept
        return _judged(result)
    if ended:  # a one-cluster operation keeps its last progress in its memo (workflows/pieces/final_progress.py)
        result["progress"] = await described.memo_value(FINAL_PROGRESS_MEMO, None)
    try:
        if result["progress"] is None:
            result["progress"] = await handle.query("progress", result_type=dict)
    except Exception as error:  # noqa: BLE001 - no worker to answer is worth saying, not failing on
        result["progress_error"] = cause_of(error)
    if (operation_id, described.run_id) in _ended_outcomes:  # a list read this run's result already
        result["outcome"] = _ended_outcomes[(operation_id, described.run_id)]
    elif described.status in (WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.COMPLETED):
        # The close event of this run alone (not a later run of the same id, which could run for hours): what a
        # completed one came to, or why it failed.
        this_run = client.get_workflow_handle(operation_id, run_id=described.run_id)
        try:
            result["outcome"] = outcomes.outcome_of_result(await this_run.result(follow_runs=False))
            _keep_outcome(operation_id, described.run_id, result["outcome"])
        except WorkflowFailureError as error:
            result["failure"] = cause_of(error)
        except Exception as error:  # noqa: BLE001 - a result this process cannot decode (a retired codec key): unknown
            result["result_error"] = cause_of(error)
    if ended and described.status != WorkflowExecutionStatus.COMPLETED:
        result["outcome"] = outcomes.outcome_of(result["status"], None)
    _conditioned(result)  # read into its kind's model once: an ended run's is kept as it is answered
    if ended and "progress_error" not in result and "result_error" not in result:
        _ended_runs[(operation_id, described.run_id)] = (result["progress"], result["failure"], result["outcome"],
                                                          result["condition"])
        while len(_ended_runs) > ENDED_RUNS_KEPT:
            _ended_runs.popitem(last=False)
    return _judged(result)


async def operation(settings: Settings, operation_id: str, *, suggest: bool = False) -> OperationStatus:
    """`status`, typed: an OperationStatus, its progress read into its kind's model by
    `operation_catalog.progress_of`."""
    return OperationStatus.model_validate(await status(settings, operation_id, suggest=suggest))


async def result(settings: Settings, operation_id: str) -> BaseModel:
    """An operation's result as its kind's model (a ClusterUpgradeResult, a PatchWaveResult, ...), waiting while it
    runs. A run that failed raises OperationFailed with its cause; an operation that does not exist, OperationRefused."""
    client, _, described = await _described(settings, operation_id, suggest=False)
    entry = operation_catalog.by_workflow(described.workflow_type)
    if entry is None:
        raise OperationRefused(f"{operation_id} is a {described.workflow_type}, not an operation Regatta runs")
    try:
        returned: BaseModel = await client.get_workflow_handle(operation_id, result_type=entry.result).result()
    except WorkflowFailureError as error:
        raise OperationFailed(f"{operation_id} failed: {cause_of(error)}") from None
    return returned


async def ended_outcome(client: Any, operation_id: str, run_id: str, status_name: str) -> str | None:
    """What an ended run came to, for a list of many (the fleet view's): a completed run's result read from its
    close event alone, kept in this process once read; the status itself for one that did not complete."""
    if status_name != "COMPLETED":
        return outcomes.outcome_of(status_name, None)
    if (operation_id, run_id) in _ended_outcomes:
        return _ended_outcomes[(operation_id, run_id)]
    try:
        returned = await client.get_workflow_handle(operation_id, run_id=run_id).result(follow_runs=False)
    except Exception:  # noqa: BLE001 - unread is unknown, shown as such, and asked again next time
        return None
    found = outcomes.outcome_of_result(returned)
    _keep_outcome(operation_id, run_id, found)
    return found


async def list_operations(client: Any, *, limit: int = 100, running_only: bool = False,
                          environments: list[str] | None = None) -> list[dict[str, Any]]:
    """Operations newest first (Temporal's visibility): id, run, type, status, cluster, environment, started, closed,
    and for an ended one its outcome and whether it succeeded (`ended_outcome`). What `regatta op list` and the fleet
    view's operations page show. With `environments`, only those tagged with one of them."""
    found: list[dict[str, Any]] = []
    where = ["ExecutionStatus = 'Running'"] if running_only else []
    if environments is not None:  # only operations tagged with one of them (names of letters, digits, - _ . only)
        named = [e for e in environments if re.fullmatch(r"[\w.-]+", e)]
        where.append(f"Environment IN ({', '.join(repr(e) for e in named)})" if named else "Environment = ''")
    async for execution in client.list_workflows(" AND ".join(where), limit=limit):
        attributes = execution.typed_search_attributes
        found.append({"id": execution.id, "run_id": execution.run_id, "type": execution.workflow_type,
                      "status": execution.status.name if execution.status else "UNKNOWN",
                      "cluster": attributes.get(CLUSTER) if attributes else None,
                      "environment": attributes.get(ENVIRONMENT) if attributes else None,
                      "started": execution.start_time, "closed": execution.close_time, "outcome": None})

    async def judge(operation: dict[str, Any]) -> None:
        if operation["status"] != "RUNNING":
            operation["outcome"] = await ended_outcome(client, operation["id"], operation["run_id"], operation["status"])
        operation["succeeded"] = outcomes.succeeded(operation["status"], operation["outcome"])

    await asyncio.gather(*(judge(operation) for operation in found))  # each read once per process, then kept
    return found


def _judged(found: dict[str, Any]) -> dict[str, Any]:
    """`succeeded`: true or false once it has ended and its outcome is known, null while it runs or when not."""
    found["succeeded"] = outcomes.succeeded(found["status"], found["outcome"])
    return found


def _conditioned(found: dict[str, Any]) -> dict[str, Any]:
    """`condition`: where it stands for machines (state, reason, message, ended), from its progress read into its
    kind's model (regatta/rules/operation_catalog.py), or from Temporal's status when the run ended before it could
    say; the progress as that model writes it."""
    typed = operation_catalog.typed_progress(found["workflow_type"], found["progress"])
    if typed is not None:
        found["progress"] = typed.model_dump(mode="json")
    condition = outcomes.condition_of_run(found["status"], typed.condition if typed else None, found.get("failure"))
    found["condition"] = condition.model_dump(mode="json") if condition else None
    return found


async def query(settings: Settings, operation_id: str, name: str, *, suggest: bool = False) -> Any:
    """Ask a running (or ended) operation a Query by name."""
    client = await connect(settings)
    handle = client.get_workflow_handle(operation_id)
    try:
        return await handle.query(name, result_type=dict)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise await no_such_operation(client, operation_id, suggest=suggest) from None
        raise OperationRefused(f"{operation_id} cannot answer {name}: {cause_of(error)}") from None
    except WorkflowQueryFailedError as error:
        raise OperationRefused(f"{operation_id} cannot answer {name}: {cause_of(error)}") from None
