"""The HTTP API: what a change-ticket system calls to start and steer operations.

- `POST /v1/operations` starts an upgrade, wave, provision, decommission or failover from the
  same input models the workflows take. The change ticket is the idempotency key: the same
  ticket and request again answer with the operation already started (200), never a second
  one; the same ticket with another request is refused (409).
- `GET /v1/operations/{id}` says where it stands; `POST /v1/operations/{id}/pause|resume|abort|
  approve` are the workflow's Updates, and a validator's refusal comes back as a 409 with its
  message.
- `GET /v1/clusters` lists the inventory the token may see.

Every call carries `Authorization: Bearer <token>`; the token's role and environments decide
(regatta/access.py). Callers cannot say who they are: the token's name is who asked, in the
workflow and in the audit trail, which records every call that changes something or is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.api.common.v1 import Payloads

from regatta.api.tokens import authenticate
from regatta.fleet_clock import read_fleet_clock
from regatta.inventory import HoldError, Inventory, UnknownCluster
from regatta.models import (
    ApiTicket,
    ApiToken,
    ClusterRecord,
    ClusterUpgradeInput,
    DecommissionClusterInput,
    DRFailoverInput,
    MaintenanceHold,
    OperationRecord,
    PatchWaveInput,
    ProvisionClusterInput,
    WaveForecast,
)
from regatta.rules import access, operation_ids, refusals, signing, versions, waves
from regatta.settings import Settings
from regatta.temporal.codec import CodecKeyError, EncryptionCodec, keys_from_env
from regatta.temporal.connect import TemporalUnreachable
from regatta.temporal.operations import (
    OperationRefused,
    provision_holder,
    query,
    send_update,
    start_operation,
    start_wave,
    status,
)

Kind = Literal["upgrade", "wave", "provision", "decommission", "failover"]
KINDS: dict[str, tuple[str, type[BaseModel]]] = {
    "upgrade": ("ClusterUpgrade", ClusterUpgradeInput),
    "wave": ("PatchWave", PatchWaveInput),
    "provision": ("ProvisionCluster", ProvisionClusterInput),
    "decommission": ("DecommissionCluster", DecommissionClusterInput),
    "failover": ("DRFailover", DRFailoverInput),
}
Control = Literal["pause", "resume", "abort", "approve"]
# What the audit trail calls an accepted control.
CONTROL_OUTCOME = {"pause": "paused", "resume": "resumed", "abort": "abort_requested", "approve": "approved"}


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


class ControlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500, description="why (pause, abort)")
    comment: str = Field(default="", max_length=500, description="what the approver says (approve)")
    stage: str | None = Field(default=None, max_length=100, description="the wave stage being approved (approve)")


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: datetime = Field(description="with a time zone, e.g. 2026-12-01T08:00:00Z")
    reason: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$", description="shown to every wave that waits")


class TicketEvent(BaseModel):
    """What a ticket system tells Regatta about a change it approved or cancelled (signed)."""

    model_config = ConfigDict(extra="forbid")

    event: Literal["approved", "cancelled"]
    ticket: str = Field(min_length=1, max_length=100)
    by: str = Field(min_length=1, max_length=200, description="the person who approved or cancelled it there")
    comment: str = Field(default="", max_length=500)


class ApiError(Exception):
    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code, self.message = status_code, message


def _digest(kind: str, request: BaseModel) -> str:
    body = {"kind": kind, "input": request.model_dump(mode="json", exclude={"requested_by"})}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _readable(error: ValidationError | RequestValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in error.errors())


def create_app(settings: Settings, inventory: Inventory | None = None) -> FastAPI:
    inventory = inventory or Inventory(settings.database_url)
    app = FastAPI(title="Regatta", version="1", description=__doc__)
    origins = os.environ.get("REGATTA_CODEC_CORS_ORIGINS", "http://127.0.0.1:8233,http://localhost:8233")
    app.add_middleware(CORSMiddleware, allow_origins=[o.strip() for o in origins.split(",") if o.strip()],
                       allow_methods=["POST"], allow_headers=["Authorization", "Content-Type", "X-Namespace"],
                       allow_credentials=True)
    bearer = HTTPBearer(auto_error=False, description="an API token from `regatta token create`")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        return JSONResponse({"error": error.message}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        return JSONResponse({"error": f"the request does not fit: {_readable(error)}"}, status_code=422)

    def caller(credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> ApiToken:
        if credentials is None:
            raise ApiError(401, "send Authorization: Bearer <token>; `regatta token create` makes one")
        token = authenticate(inventory, credentials.credentials)
        if token is None:
            raise ApiError(401, "the token is unknown or revoked; ask an admin for a new one")
        return token

    def audit(token: ApiToken, *, verb: str, outcome: str, operation_id: str = "-", cluster: str = "-",
              ticket: str | None = None, detail: str = "") -> None:
        inventory.append_audit(OperationRecord(
            operation_id=operation_id, operation="api", cluster=cluster, requested_by=token.name, ticket=ticket,
            action=f"api {verb}", outcome=outcome, detail=detail))

    def permit(token: ApiToken, action: access.Action, environments: set[str], *, verb: str, operation_id: str = "-",
               cluster: str = "-", ticket: str | None = None) -> None:
        refusal = access.refusal(token=token.name, role=token.role, scope=token.environments, action=action,
                                 environments=environments)
        if refusal is not None:
            if action != "read":  # a refused change is part of the trail; a refused read is not a change
                audit(token, verb=verb, outcome="refused", operation_id=operation_id, cluster=cluster, ticket=ticket,
                      detail=refusal)
            raise ApiError(403, refusal)

    def record_of(name: str) -> ClusterRecord:
        try:
            return inventory.get_cluster(name)
        except UnknownCluster as error:
            raise ApiError(404, str(error)) from None

    async def targets(kind: str, request: Any) -> tuple[str, ClusterRecord | None, set[str]]:
        """The operation id a request would run under, the cluster that holds its lock, and the
        environments it touches (what the token must be allowed); refuse what cannot start."""
        try:
            if kind == "wave":
                clusters = {c.name: c for c in inventory.list_clusters()}
                plan = waves.plan_wave(request, list(clusters.values()), now=read_fleet_clock(settings.sim_url).now)
                touched = {clusters[c.name].environment for s in plan.stages for c in s.clusters}
                return operation_ids.wave_id(request.name), None, touched
            if kind == "provision":
                try:
                    holder = provision_holder(inventory, request)
                except OperationRefused as error:
                    raise ApiError(422, str(error)) from None
                return operation_ids.operation_id(request.name), holder, {request.environment}
            record = record_of(request.cluster)
            touched = {record.environment}
            if kind == "failover":
                touched.add(record_of(request.standby).environment)
            return operation_ids.operation_id(record.name), record, touched
        except refusals.Refusal as error:
            raise ApiError(422, str(error)) from None

    def refuse_what_the_worker_would(kind: str, request: Any, record: ClusterRecord | None) -> None:
        """The upgrade refusals the inventory already shows (the worker checks again, live)."""
        if kind != "upgrade":
            return
        try:
            versions.plan_upgrade(provider=record.provider, control_plane=record.control_plane_version,
                                  node_pools=record.node_pools, target=request.target_version,
                                  node_image=request.node_images.get(record.provider))
        except versions.InvalidNodeImage as problem:
            raise ApiError(422, f"input.node_images.{record.provider}: {problem}") from None
        except versions.AlreadyAtVersion as error:
            raise ApiError(409, str(error)) from None
        except refusals.Refusal as error:
            raise ApiError(422, str(error)) from None

    async def described(operation_id: str) -> dict[str, Any]:
        try:
            return await status(settings, operation_id)
        except OperationRefused as error:
            raise ApiError(404, str(error)) from None
        except TemporalUnreachable as error:
            raise ApiError(503, str(error)) from None

    def environments_of(found: dict[str, Any]) -> set[str]:
        """Where an operation acts: its Environment search attribute, or a wave's clusters'."""
        if found.get("environment"):
            return {found["environment"]}
        names = {c["name"] for s in (found.get("progress") or {}).get("stages", []) for c in s["clusters"]}
        if names:
            return {r.environment for r in inventory.list_clusters() if r.name in names}
        return {"(unknown: only a token for every environment may act on it)"}

    # ------------------------------------------------------------------ routes

    @app.get("/healthz", include_in_schema=False)
    async def healthz():
        return {"ok": True}

    # Temporal's codec-server protocol, so the Temporal UI can show decrypted payloads to people
    # holding a token (any role may read; a payload does not say which environment it is about).
    codec = EncryptionCodec(keys) if (keys := keys_from_env()) else None

    @app.post("/codec/{direction}", include_in_schema=False)
    async def codec_endpoint(direction: Literal["encode", "decode"], request: Request, token: ApiToken = Depends(caller)):
        return await run_codec(direction, request, token)

    # The Temporal UI cannot send our bearer token (it passes its own SSO token or cookies), but a
    # codec endpoint may sit at any depth of a URL: each person sets theirs, in the UI, to
    # http://127.0.0.1:8700/codec/t/<their token>. Access logs are off, so the URL is not written down.
    @app.post("/codec/t/{secret}/{direction}", include_in_schema=False)
    async def codec_for_the_ui(secret: str, direction: Literal["encode", "decode"], request: Request):
        token = authenticate(inventory, secret)
        if token is None:
            raise ApiError(401, "the token in the codec URL is unknown or revoked")
        return await run_codec(direction, request, token)

    async def run_codec(direction: str, request: Request, token: ApiToken) -> JSONResponse:
        permit(token, "read", set(), verb="read")
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise ValueError('expected an object like {"payloads": [...]}')
            payloads = json_format.ParseDict(body, Payloads())
        except (ValueError, json_format.ParseError) as error:
            raise ApiError(422, f"the body is not Temporal Payloads JSON: {error}") from None
        if codec is not None:
            try:
                done = await (codec.encode if direction == "encode" else codec.decode)(payloads.payloads)
            except CodecKeyError as error:
                raise ApiError(422, str(error)) from None
            payloads = Payloads(payloads=done)
        return JSONResponse(json.loads(json_format.MessageToJson(payloads)))

    @app.post("/v1/operations", response_model=StartResponse, status_code=201,
              responses={200: {"model": StartResponse, "description": "this ticket already started this operation"},
                         401: {}, 403: {}, 404: {}, 409: {}, 422: {}, 503: {}})
    async def start(body: StartRequest, token: ApiToken = Depends(caller)):
        workflow, model = KINDS[body.kind]
        try:
            request = model.model_validate({**body.input, "ticket": body.ticket, "requested_by": token.name})
        except ValidationError as error:
            raise ApiError(422, f"input does not fit a {workflow}: {_readable(error)}") from None
        if getattr(request, "callback_url", None) and not settings.webhook_secret:
            raise ApiError(422, "input.callback_url: callbacks are sent signed, and no REGATTA_WEBHOOK_SECRET is set;"
                           " set the same secret for the API and the worker, or leave callback_url out")
        operation_id, record, touched = await targets(body.kind, request)
        cluster = record.name if record else "-"  # a wave holds no one cluster
        permit(token, "start", touched, verb="start", operation_id=operation_id, cluster=cluster, ticket=body.ticket)
        refuse_what_the_worker_would(body.kind, request, record)

        def started(operation: str, *, replayed: bool) -> StartResponse:
            return StartResponse(operation_id=operation, kind=body.kind, ticket=body.ticket,
                                 status_url=f"/v1/operations/{operation}", replayed=replayed)

        digest = _digest(body.kind, request)
        held = inventory.claim_ticket(ApiTicket(ticket=body.ticket, kind=body.kind, operation_id=operation_id,
                                                request_digest=digest, token=token.name, created_at=datetime.now(UTC)))
        if held is not None:
            if held.request_digest != digest:
                raise ApiError(409, f"ticket {body.ticket} already started {held.operation_id} with a different request;"
                               " a different change needs a ticket of its own")
            return JSONResponse(started(held.operation_id, replayed=True).model_dump(), status_code=200)
        try:
            if body.kind == "wave":
                await start_wave(settings, request=request)
            else:
                await start_operation(settings, workflow=workflow, cluster=record, request=request, ticket=body.ticket)
        except OperationRefused as error:
            inventory.release_ticket(body.ticket)
            audit(token, verb="start", outcome="refused", operation_id=operation_id, cluster=cluster, ticket=body.ticket,
                  detail=str(error))
            raise ApiError(409, str(error)) from None
        except TemporalUnreachable as error:
            inventory.release_ticket(body.ticket)
            raise ApiError(503, str(error)) from None
        audit(token, verb="start", outcome="started", operation_id=operation_id, cluster=cluster, ticket=body.ticket,
              detail=f"{workflow} started over the API")
        return started(operation_id, replayed=False)

    @app.get("/v1/operations/{operation_id}", responses={401: {}, 403: {}, 404: {}, 503: {}})
    async def get_operation(operation_id: str, token: ApiToken = Depends(caller)) -> dict[str, Any]:
        found = await described(operation_id)
        permit(token, "read", environments_of(found), verb="read")
        return json.loads(json.dumps(found, default=str))

    @app.post("/v1/operations/{operation_id}/{control}", responses={401: {}, 403: {}, 404: {}, 409: {}, 503: {}})
    async def steer(operation_id: str, control: Control, body: ControlRequest | None = None,
                    token: ApiToken = Depends(caller)) -> dict[str, Any]:
        body = body or ControlRequest()
        found = await described(operation_id)
        cluster = found.get("cluster") or "-"
        permit(token, "approve" if control == "approve" else "control", environments_of(found), verb=control,
               operation_id=operation_id, cluster=cluster)
        if control == "approve":
            payload: dict[str, Any] = {"approver": token.name, "comment": body.comment}
            if body.stage is not None:
                payload["stage"] = body.stage
        elif control == "resume":
            payload = {"requested_by": token.name}
        else:
            payload = {"reason": body.reason, "requested_by": token.name}
        try:
            progress = await send_update(settings, operation_id, control, payload)
        except OperationRefused as error:
            audit(token, verb=control, outcome="refused", operation_id=operation_id, cluster=cluster, detail=str(error))
            raise ApiError(409, str(error)) from None
        audit(token, verb=control, outcome=CONTROL_OUTCOME[control], operation_id=operation_id, cluster=cluster,
              detail=body.reason or body.comment)
        return {"operation_id": operation_id, "accepted": control, "progress": progress}

    @app.get("/v1/operations/{operation_id}/forecast", response_model=WaveForecast,
             responses={401: {}, 403: {}, 404: {}, 409: {}, 503: {}})
    async def forecast(operation_id: str, token: ApiToken = Depends(caller)) -> WaveForecast:
        """A running wave's answer to "when will my cluster be upgraded?"."""
        found = await described(operation_id)
        permit(token, "read", environments_of(found), verb="read")
        if found.get("workflow_type") != "PatchWave":
            raise ApiError(409, f"{operation_id} is a {found.get('workflow_type')}; only a wave has a forecast")
        try:
            return WaveForecast.model_validate(await query(settings, operation_id, "forecast"))
        except OperationRefused as error:
            raise ApiError(409, str(error)) from None
        except TemporalUnreachable as error:
            raise ApiError(503, str(error)) from None

    def fleet_now() -> datetime:
        try:
            return read_fleet_clock(settings.sim_url).now
        except Exception as error:  # noqa: BLE001 - the simulator not answering means the same to the caller
            raise ApiError(503, f"cannot read the fleet's clock: {error}") from None

    @app.post("/v1/clusters/{name}/hold", response_model=MaintenanceHold, status_code=201,
              responses={401: {}, 403: {}, 404: {}, 422: {}, 503: {}})
    async def hold(name: str, body: HoldRequest, token: ApiToken = Depends(caller)) -> MaintenanceHold:
        """Keep every wave and schedule off a cluster until `until` (the token's name is who holds it)."""
        record = record_of(name)
        permit(token, "control", {record.environment}, verb="hold", cluster=name)
        try:
            return inventory.hold_cluster(name, until=body.until, reason=body.reason, held_by=token.name, now=fleet_now())
        except HoldError as error:
            raise ApiError(422, str(error)) from None

    @app.post("/v1/clusters/{name}/release", response_model=MaintenanceHold,
              responses={401: {}, 403: {}, 404: {}, 409: {}})
    async def release(name: str, token: ApiToken = Depends(caller)) -> MaintenanceHold:
        record = record_of(name)
        permit(token, "control", {record.environment}, verb="release", cluster=name)
        try:
            return inventory.release_hold(name, released_by=token.name)
        except HoldError as error:
            raise ApiError(409, str(error)) from None

    @app.post("/v1/webhooks/ticket-events", responses={401: {}, 404: {}, 409: {}, 422: {}, 503: {}},
              openapi_extra={"parameters": [
                  {"name": signing.SIGNATURE_HEADER, "in": "header", "required": True, "schema": {"type": "string"}},
                  {"name": signing.TIMESTAMP_HEADER, "in": "header", "required": True, "schema": {"type": "string"}}]})
    async def ticket_event(request: Request) -> dict[str, Any]:
        """A ticket system's approval or cancellation, signed with the shared secret: approve or
        abort the operation its ticket started. A replayed request is refused."""
        if not settings.webhook_secret:
            raise ApiError(503, "inbound webhooks are off: set REGATTA_WEBHOOK_SECRET for the API")
        raw = await request.body()
        signature = request.headers.get(signing.SIGNATURE_HEADER)
        problem = signing.verification_problem(settings.webhook_secret.encode(), signature=signature,
                                               timestamp=request.headers.get(signing.TIMESTAMP_HEADER), body=raw,
                                               now=time.time())
        if problem is not None:
            raise ApiError(401, problem)
        if not inventory.first_delivery(signature, keep_seconds=signing.WINDOW_SECONDS):
            raise ApiError(409, "this request was delivered before (same signature): a replay is not acted on twice")
        try:
            event = TicketEvent.model_validate_json(raw)
        except ValidationError as error:
            raise ApiError(422, f"the event does not fit: {_readable(error)}") from None
        held = inventory.ticket(event.ticket)
        if held is None:
            raise ApiError(404, f"no operation was started over the API under ticket {event.ticket}")
        control = "approve" if event.event == "approved" else "abort"
        payload = ({"approver": event.by, "comment": event.comment} if control == "approve" else
                   {"reason": f"ticket {event.ticket} cancelled by {event.by}: {event.comment}".rstrip(": "),
                    "requested_by": event.by})
        record = OperationRecord(operation_id=held.operation_id, operation="api", cluster="-", requested_by=event.by,
                                 ticket=event.ticket, action=f"webhook {event.event}", outcome="refused")
        try:
            progress = await send_update(settings, held.operation_id, control, payload)
        except OperationRefused as error:
            inventory.append_audit(record.model_copy(update={"detail": str(error)}))
            raise ApiError(409, str(error)) from None
        except TemporalUnreachable as error:
            raise ApiError(503, str(error)) from None
        inventory.append_audit(record.model_copy(update={"outcome": CONTROL_OUTCOME[control], "detail": event.comment}))
        return {"operation_id": held.operation_id, "accepted": control, "progress": progress}

    @app.get("/v1/clusters", response_model=list[ClusterRecord], responses={401: {}, 403: {}})
    async def clusters(token: ApiToken = Depends(caller),
                       environment: str | None = Query(default=None, max_length=100),
                       provider: str | None = Query(default=None, max_length=20),
                       region: str | None = Query(default=None, max_length=100),
                       label: list[str] = Query(default=[], description="key=value; repeat for several")):
        permit(token, "read", set(), verb="read")
        labels = {}
        for pair in label:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise ApiError(422, f"label {pair!r}: give key=value, e.g. label=team=payments")
            labels[key] = value
        scope = set(token.environments)
        return [r for r in inventory.list_clusters(labels or None)
                if (access.ALL_ENVIRONMENTS in scope or r.environment in scope)
                and (environment is None or r.environment == environment)
                and (provider is None or r.provider == provider) and (region is None or r.region == region)]

    return app
