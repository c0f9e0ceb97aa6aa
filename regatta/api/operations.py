"""`/v1/operations`: start an upgrade, wave, provision, decommission or failover from the same
input models the workflows take; read where one stands; steer it with its Updates; ask a wave's
forecast.

The change ticket is the idempotency key: the same ticket and request again answer with the
operation already started (200), never a second one; the same ticket with another request is
refused (409). A validator's refusal of an Update comes back as a 409 with its message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from regatta.api.errors import ApiError, readable, refused_to_start
from regatta.api.gate import Gate, gate
from regatta.inventory import UnknownCluster
from regatta.models import (
    ApiTicket,
    ClusterUpgradeInput,
    WaveForecast,
)
from regatta.models.operations import WorkflowName
from regatta.rules import access, operation_catalog
from regatta.temporal.admission import StartRefused, admit, environments_before_reading, environments_of_running
from regatta.temporal.connect import TemporalUnreachable, connect
from regatta.temporal.operations import OperationRefused, list_operations, query, send_update, status
from regatta.temporal.operations import start as start_run

# The kinds this route starts and the controls it sends, as the catalog has them (regatta/rules/operation_catalog.py;
# tests/unit/test_operation_catalog.py holds these to it): written out, as the OpenAPI schema lists them.
Kind = Literal["upgrade", "wave", "provision", "decommission", "failover", "failback", "policy", "evacuate", "rollback"]
Steer = Literal["pause", "resume", "abort", "approve", "go_back", "skip", "retry"]
# What the audit trail calls an accepted control.
CONTROL_OUTCOME = {"pause": "paused", "resume": "resumed", "abort": "abort_requested", "approve": "approved",
                   "go_back": "started", "skip": "skipped", "retry": "resumed"}

router = APIRouter(prefix="/v1/operations")
# How long admission may take (a bundle's git clone included) before the start is refused; the clone
# itself is killed at GIT_SECONDS (regatta/formats/bundle_file.py), so no thread outlives it for long.
ADMISSION_SECONDS = 60.0
# Admissions run on threads of their own, a few at a time: slow git sources cannot take the threads every
# other request needs (token checks, the inventory).
ADMISSIONS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="admission")
# A start's reads and writes of the inventory and the clock, off the event loop on threads of their own too: starts
# waiting for SQLite's one writer cannot take the threads token checks run on.
STARTS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="start")


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    ticket: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$",
                        description="the change ticket; also the idempotency key")
    input: dict[str, Any] = Field(description="the workflow's input, as the Temporal UI takes it (its ticket and"
                                  " requested_by are set from this request and the token)")


class StartResponse(BaseModel):
    operation_id: str
    kind: Kind
    ticket: str
    status_url: str
    replayed: bool = Field(description="true when the ticket had already started this operation")
    path: list[str] = Field(default_factory=list, description="an upgrade: the minors it takes the cluster through,"
                            " in order, each a whole upgrade of its own (empty when only node pools move)")


class ControlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500, description="why (pause, abort)")
    comment: str = Field(default="", max_length=500, description="what the approver says (approve)")
    stage: str | None = Field(default=None, max_length=100, description="the wave stage being approved (approve)")
    cluster: str | None = Field(default=None, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                                description="the cluster to skip or retry (skip, retry: a wave's or a rollout's)")


def named_clusters(value: Any) -> list[str]:
    """Every cluster a request names in its selectors (`clusters: [...]`), wherever they are."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "clusters" and isinstance(item, list):
                found += [name for name in item if isinstance(name, str)]
            else:
                found += named_clusters(item)
    elif isinstance(value, list):
        for item in value:
            found += named_clusters(item)
    return found


def digest(kind: str, request: BaseModel) -> str:
    body = {"kind": kind, "input": request.model_dump(mode="json", exclude={"requested_by"})}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


async def described(the: Gate, operation_id: str) -> dict[str, Any]:
    try:
        return await status(the.settings, operation_id)
    except OperationRefused as error:
        if not the.sees_every_environment:  # the same 404 as for one outside the token's environments
            raise the.unseen(f"operation {operation_id}") from None
        raise ApiError(404, str(error)) from None
    except TemporalUnreachable as error:
        raise ApiError(503, str(error)) from None


UNKNOWN_ENVIRONMENT = "(unknown: only a token for every environment may act on it)"


def environments_of(found: dict[str, Any], the: Gate, *, reading: bool = False) -> set[str]:
    """Where an operation acts: its Environment search attribute (with a failover's standby and an
    evacuation's receivers), or a wave's or a rollout's clusters'. A fleet-wide operation still planning
    has none yet: reading it shows no cluster, so any reader may; acting on it needs a token for every
    environment, as does acting on one whose clusters have left the inventory. Reading a failover or an
    evacuation needs every environment it acts in: its progress names the standby, the receivers."""
    environment = found.get("environment")
    if not environment and found.get("cluster"):  # an operation without the Environment attribute: its cluster's
        environment = next((r.environment for r in the.inventory.list_clusters() if r.name == found["cluster"]), None)
    if environment:
        return set(environments_of_running(found.get("workflow_type") or "", found.get("cluster") or "",
                                           environment, inventory=the.inventory))
    progress = found.get("progress") or {}
    names = {c["name"] for s in progress.get("stages", []) for c in s["clusters"]}
    if names:
        known = {r.name: r.environment for r in the.inventory.list_clusters() if r.name in names}
        return set(known.values()) | ({UNKNOWN_ENVIRONMENT} if set(known) != names else set())
    kind = operation_catalog.by_workflow(found.get("workflow_type"))
    if reading and kind is not None and kind.fleet_wide and progress.get("phase") == "planning":
        return set()  # still planning: it shows no cluster yet, so any reader may see that it plans
    return {UNKNOWN_ENVIRONMENT}


def scope_of_start(the: Gate, body: StartRequest, request: BaseModel) -> tuple[datetime, frozenset[str]]:
    """The fleet's time and the environments a start acts in, or the refusal (404 or 403) of a token that may not
    act there: reads of the fleet's clock and the inventory, made off the event loop."""
    now = the.fleet_now()
    try:
        where = environments_before_reading(request, inventory=the.inventory, now=now)
    except UnknownCluster as error:
        if the.sees_every_environment:
            raise ApiError(404, str(error)) from None
        the.audit(verb="start", outcome="refused", ticket=body.ticket, detail=f"no cluster {error.name!r} in its scope")
        raise the.unseen(f"cluster {error.name!r}") from None
    named = getattr(request, "cluster", None)
    if isinstance(named, str) and body.kind != "provision":  # a cluster by name outside the scope: as if none
        the.in_scope("start", {the.inventory.get_cluster(named).environment}, verb="start", what=f"cluster {named!r}",
                     ticket=body.ticket)
    elif not the.sees_every_environment:
        # A wave's or a bundle's selectors may name clusters: a name the token may not see, like one that does not
        # exist, is a 404; and what labels reach beyond its scope is a 403 that names no environment.
        visible = the.visible_clusters() or set()
        for named_there in named_clusters(request.model_dump(mode="json")):
            if named_there not in visible:
                the.audit(verb="start", outcome="refused", ticket=body.ticket,
                          detail=f"names cluster {named_there!r}, outside its scope or unknown")
                raise the.unseen(f"cluster {named_there!r}")
        if the.scope_refusal("start", where) is not None:
            the.audit(verb="start", outcome="refused", ticket=body.ticket, detail=str(the.scope_refusal("start", where)))
            raise ApiError(403, f"token {the.token.name} may start only in {', '.join(sorted(the.token.environments))};"
                           " this request's clusters reach beyond that")
    # the rest it acts on (a standby, an evacuation's receivers): a 403
    the.permit("start", where, verb="start", ticket=body.ticket)
    return now, where


@router.post("", response_model=StartResponse, status_code=201,
             responses={200: {"model": StartResponse, "description": "this ticket already started this operation"},
                        401: {}, 403: {}, 404: {}, 409: {}, 422: {}, 503: {}})
async def start(body: StartRequest, the: Gate = Depends(gate)) -> Any:
    """Who may start is decided before anything is read on the request's behalf: the role first, then
    (from the inventory alone) the environments it would act in; only then admission, which may read a
    bundle's git source, off the event loop and within ADMISSION_SECONDS."""
    the.may("start", verb="start", ticket=body.ticket)
    entry = operation_catalog.by_kind(body.kind)
    workflow, model = entry.workflow, entry.input
    try:
        request = model.model_validate({**body.input, "ticket": body.ticket, "requested_by": the.token.name})
    except ValidationError as error:
        raise ApiError(422, f"input does not fit a {workflow}: {readable(error)}") from None
    # The fleet's clock and the inventory are read and written in threads: on the event loop, a start waiting for
    # SQLite's one writer (up to its busy timeout) held every other request of the API behind it.
    now, where = await asyncio.get_running_loop().run_in_executor(STARTS, scope_of_start, the, body, request)
    if getattr(request, "callback_url", None) and not the.settings.webhook_secret:
        raise ApiError(422, "input.callback_url: callbacks are sent signed, and no REGATTA_WEBHOOK_SECRET is set;"
                       " set the same secret for the API and the worker, or leave callback_url out")
    try:
        admission = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(ADMISSIONS, functools.partial(
            admit, request, inventory=the.inventory, now=now, outbound_rules=the.settings.outbound)),
            timeout=ADMISSION_SECONDS)
    except TimeoutError:
        raise ApiError(422, f"admission took longer than {ADMISSION_SECONDS:.0f}s (a bundle's git source that does not"
                       " answer?): nothing was started") from None
    except StartRefused as refusal:
        if refusal.environments:  # a token not allowed there hears 403, not why the change cannot be made
            the.permit("start", refusal.environments, verb="start", ticket=body.ticket)
        answer = refused_to_start(refusal)
        if isinstance(request, ClusterUpgradeInput) and answer.message.startswith("node_images."):
            answer.message = f"input.{answer.message}"
        raise answer from None
    operation_id = admission.operation_id
    cluster = admission.holder.name if admission.holder and not entry.fleet_wide else "-"
    the.permit("start", admission.environments, verb="start", operation_id=operation_id, cluster=cluster,
               ticket=body.ticket)

    def started(operation: str, *, replayed: bool) -> StartResponse:
        return StartResponse(operation_id=operation, kind=body.kind, ticket=body.ticket,
                             status_url=f"/v1/operations/{operation}", replayed=replayed, path=list(admission.path))

    request_digest = digest(body.kind, request)
    held = await asyncio.get_running_loop().run_in_executor(STARTS, the.inventory.claim_ticket, ApiTicket(
                                                ticket=body.ticket, kind=body.kind, operation_id=operation_id,
                                                request_digest=request_digest, token=the.token.name,
                                                created_at=datetime.now(UTC)))
    if held is not None:
        if held.request_digest != request_digest:
            raise ApiError(409, f"ticket {body.ticket} already started {held.operation_id} with a different request;"
                           " a different change needs a ticket of its own")
        return JSONResponse(started(held.operation_id, replayed=True).model_dump(), status_code=200)
    try:
        # a bundle starts as admission read it (a git source at its commit)
        await start_run(the.settings, admission.bundle or request, cluster=admission.holder)
    except OperationRefused as error:
        the.inventory.release_ticket(body.ticket)
        the.audit(verb="start", outcome="refused", operation_id=operation_id, cluster=cluster, ticket=body.ticket,
                  detail=str(error))
        raise ApiError(409, str(error)) from None
    except TemporalUnreachable as error:
        the.inventory.release_ticket(body.ticket)
        raise ApiError(503, str(error)) from None
    await asyncio.get_running_loop().run_in_executor(STARTS, functools.partial(
        the.audit, verb="start", outcome="started", operation_id=operation_id, cluster=cluster, ticket=body.ticket,
        detail=f"{workflow} started over the API"))
    return started(operation_id, replayed=False)


@router.get("", responses={401: {}, 403: {}, 422: {}, 503: {}})
async def list_recent(the: Gate = Depends(gate), limit: int = Query(default=20, ge=1, le=1000),
                      running: bool = False) -> list[dict[str, Any]]:
    """Operations newest first, as `regatta op list` shows them (id, type, cluster, environment, status, outcome,
    succeeded, started, closed). A token for some environments sees the operations of one cluster whose every
    environment it covers (a failover's standby, an evacuation's receivers too); a fleet-wide one (a wave, a
    rollout, a sweep) only a token for every environment lists, though `GET /v1/operations/{id}` reads it."""
    the.may("read", verb="read")
    try:
        found = await list_operations(await connect(the.settings), limit=limit, running_only=running,
                                      environments=None if the.sees_every_environment else list(the.token.environments))
    except TemporalUnreachable as error:
        raise ApiError(503, str(error)) from None
    if not the.sees_every_environment:
        scope = set(the.token.environments)

        def visible(operation: dict[str, Any]) -> bool:
            if not operation["environment"] or not operation["cluster"]:
                return False
            return environments_of_running(operation["type"], operation["cluster"], operation["environment"],
                                           inventory=the.inventory) <= scope

        found = await asyncio.to_thread(lambda: [o for o in found if visible(o)])  # inventory reads, off the loop
    answer: list[dict[str, Any]] = json.loads(json.dumps(found, default=str))
    return answer


@router.get("/{operation_id}", responses={401: {}, 403: {}, 404: {}, 503: {}})
async def get_operation(operation_id: str, the: Gate = Depends(gate)) -> dict[str, Any]:
    the.may("read", verb="read")
    found = await described(the, operation_id)
    the.in_scope("read", environments_of(found, the, reading=True), verb="read", what=f"operation {operation_id}",
                 operation_id=operation_id)
    answer: dict[str, Any] = json.loads(json.dumps(found, default=str))
    return answer


@router.post("/{operation_id}/{control}", responses={401: {}, 403: {}, 404: {}, 409: {}, 503: {}})
async def steer(operation_id: str, control: Steer, body: ControlRequest | None = None,
                the: Gate = Depends(gate)) -> dict[str, Any]:
    progress = await send_control(the, operation_id, control, body or ControlRequest())
    return {"operation_id": operation_id, "accepted": control, "progress": progress}


async def send_control(the: Gate, operation_id: str, control: str, body: ControlRequest, *, said_from: str = "") -> dict:
    """One control sent to an operation, for the API and the fleet view alike: the role first; an operation the token
    may not read is answered as if there were none (404), one it reads but may not steer with 403; a control its kind
    does not take, or the workflow's refusal, 409; each accepted or refused control is an audit line (`said_from`
    says where it came from). What the operation answers: its progress."""
    action: access.Action = "approve" if control == "approve" else "control"
    the.may(action, verb=control, operation_id=operation_id)
    found = await described(the, operation_id)
    cluster = found.get("cluster") or "-"
    the.in_scope("read", environments_of(found, the, reading=True), verb=control, what=f"operation {operation_id}",
                 operation_id=operation_id, cluster=cluster)
    the.permit(action, environments_of(found, the), verb=control, operation_id=operation_id, cluster=cluster)
    entry = operation_catalog.by_workflow(found.get("workflow_type"))
    if entry is None or control not in entry.controls:  # said once the token may steer it, not before
        taken = ", ".join(entry.controls) if entry and entry.controls else "none"
        refusal = f"{operation_id} is a {found.get('workflow_type')}, which takes no {control} (it takes: {taken})"
        the.audit(verb=control, outcome="refused", operation_id=operation_id, cluster=cluster, detail=refusal)
        raise ApiError(409, refusal)
    if control == "go_back" and not body.reason.strip():
        raise ApiError(422, "go_back needs a reason: say why the cluster goes back to its old node pools")
    if control in ("skip", "retry") and not body.cluster:
        raise ApiError(422, f"{control} needs a cluster: the one of the wave or rollout to {control}")
    payload: dict[str, Any]
    if control == "approve":
        payload = {"approver": the.token.name, "comment": body.comment}
        if body.stage is not None:
            payload["stage"] = body.stage
    elif control == "resume":
        payload = {"requested_by": the.token.name}
    elif control == "retry":
        payload = {"cluster": body.cluster, "requested_by": the.token.name}
    elif control == "skip":
        payload = {"cluster": body.cluster, "reason": body.reason, "requested_by": the.token.name}
    else:
        payload = {"reason": body.reason, "requested_by": the.token.name}
    try:
        progress = await send_update(the.settings, operation_id, control, payload)
    except OperationRefused as error:
        the.audit(verb=control, outcome="refused", operation_id=operation_id, cluster=cluster, detail=str(error))
        raise ApiError(409, str(error)) from None
    said = body.reason or body.comment
    if body.cluster and control in ("skip", "retry"):  # the line is the operation's; it says which of its clusters
        said = f"{body.cluster}: {said}".rstrip(": ")
    the.audit(verb=control, outcome=CONTROL_OUTCOME[control], operation_id=operation_id, cluster=cluster,
              detail=f"{said_from}: {said}".strip(": ") if said_from else said)
    return progress


@router.get("/{operation_id}/forecast", response_model=WaveForecast,
            responses={401: {}, 403: {}, 404: {}, 409: {}, 503: {}})
async def forecast(operation_id: str, the: Gate = Depends(gate)) -> WaveForecast:
    """A running wave's answer to "when will my cluster be upgraded?"."""
    the.may("read", verb="read")
    found = await described(the, operation_id)
    the.in_scope("read", environments_of(found, the), verb="read", what=f"operation {operation_id}",
                 operation_id=operation_id)
    if found.get("workflow_type") != WorkflowName.PATCH_WAVE:
        raise ApiError(409, f"{operation_id} is a {found.get('workflow_type')}; only a wave has a forecast")
    try:
        return WaveForecast.model_validate(await query(the.settings, operation_id, "forecast"))
    except OperationRefused as error:
        raise ApiError(409, str(error)) from None
    except TemporalUnreachable as error:
        raise ApiError(503, str(error)) from None
