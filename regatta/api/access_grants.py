"""`/v1/access`: time-bound access to a cluster over the API (workflows/access_grant.py, docs/access.md).

- `POST /v1/access` asks for a role on a cluster for a while: the token's name is who asks, and it must be
  allowed to start operations in the cluster's environment (an operator).
- `GET /v1/access` lists grants (live and past) of the clusters the token may see, with their state (`overdue`
  when the time is up and the access not yet taken back).
- `POST /v1/access/{id}/approve` (an approver in the cluster's environment, never the requester: the workflow
  refuses that), `POST /v1/access/{id}/revoke` (the requester, or a token that may steer operations there).
- `POST /v1/access/{id}/kubeconfig` hands the requester the kubeconfig, once: sealed by the worker to a key this
  API makes for the one request, opened here and answered with `Cache-Control: no-store`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from regatta.api.errors import ApiError
from regatta.api.gate import Gate, gate
from regatta.formats.sealed_box import SealError, new_recipient, open_sealed
from regatta.models import AccessGrantInput, AccessGrantRecord, SealedKubeconfig
from regatta.rules import access, access_grants
from regatta.temporal.connect import TemporalUnreachable
from regatta.temporal.operations import OperationRefused, send_update, start

router = APIRouter(prefix="/v1/access")


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cluster: str = Field(min_length=1, max_length=100)
    role: Literal["view", "edit", "admin"] = "view"
    duration: str = Field(default="1h", max_length=20, description="2h, 90m, 1h30m; 30 s to 24 h")
    reason: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$")
    ticket: str | None = Field(default=None, max_length=200)


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)


class ApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=500)


def _shown(grant: AccessGrantRecord) -> dict[str, Any]:
    state = access_grants.shown_state(phase=grant.phase, expires_at=grant.expires_at, now=datetime.now(UTC))
    return {**grant.model_dump(mode="json"), "state": state}


def _grant(the: Gate, grant_id: str, action: access.Action, verb: str) -> AccessGrantRecord:
    """The grant, when the token may `action` in its cluster's environment; the same 404 as an unknown one when it
    may not even read there."""
    the.may("read", verb=verb, operation_id=grant_id)
    found = the.inventory.access_grants(grant_id=grant_id)
    if not found:
        raise the.unseen(f"access grant {grant_id!r}")
    grant = found[0]
    the.in_scope("read", {grant.environment}, verb=verb, what=f"access grant {grant_id!r}", operation_id=grant_id,
                 cluster=grant.cluster)
    if action != "read":
        the.permit(action, {grant.environment}, verb=verb, operation_id=grant_id, cluster=grant.cluster)
    return grant


async def _update(the: Gate, grant: AccessGrantRecord, update: str, payload: dict[str, Any], verb: str) -> Any:
    try:
        return await send_update(the.settings, grant.grant_id, update, payload)
    except OperationRefused as error:
        the.audit(verb=verb, outcome="refused", operation_id=grant.grant_id, cluster=grant.cluster, detail=str(error))
        raise ApiError(409, str(error)) from None
    except TemporalUnreachable as error:
        raise ApiError(503, str(error)) from None


@router.post("", status_code=201, responses={401: {}, 403: {}, 404: {}, 422: {}, 503: {}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": GrantRequest.model_json_schema()}}}})
async def request_access(raw: Annotated[dict[str, Any], Body()], the: Gate = Depends(gate)) -> dict[str, Any]:
    """Ask for a role on a cluster for a while, as the token's name. The role is asked before the request is judged:
    a token that may not start anything learns nothing from how its body would be read."""
    the.may("start", verb="access request")
    try:
        body = GrantRequest.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors())
        raise ApiError(422, f"the access request does not fit: {problems}") from None
    record = the.cluster_for(body.cluster, "start", verb="access request", ticket=body.ticket)
    try:
        seconds = access_grants.duration_seconds(body.duration)
    except ValueError as error:
        raise ApiError(422, f"duration: {error}") from None
    request = AccessGrantInput(cluster=record.name, role=body.role, duration_seconds=seconds, reason=body.reason,
                               ticket=body.ticket, requested_by=the.token.name)
    try:
        handle = await start(the.settings, request, cluster=record)
    except TemporalUnreachable as error:
        raise ApiError(503, str(error)) from None
    the.audit(verb="access request", outcome="started", operation_id=handle.id, cluster=record.name, ticket=body.ticket,
              detail=f"{body.role} for {access_grants.human(seconds)}: {body.reason}")
    return {"grant_id": handle.id, "cluster": record.name, "role": body.role, "duration_seconds": seconds,
            "needs_approval": access_grants.needs_approval(record.environment, body.role)}


@router.get("", responses={401: {}, 403: {}})
async def list_access(the: Gate = Depends(gate), cluster: str | None = Query(default=None, max_length=100),
                      person: str | None = Query(default=None, max_length=100)) -> list[dict[str, Any]]:
    """Grants of the clusters the token may see, newest first."""
    the.permit("read", set(), verb="read")
    visible = the.visible_clusters()
    return [_shown(g) for g in the.inventory.access_grants(cluster=cluster, person=person)
            if visible is None or g.cluster in visible]


@router.post("/{grant_id}/approve", responses={401: {}, 403: {}, 404: {}, 409: {}, 503: {}})
async def approve_access(grant_id: str, body: ApproveRequest | None = None, the: Gate = Depends(gate)) -> dict[str, Any]:
    grant = _grant(the, grant_id, "approve", "approve")
    progress = await _update(the, grant, "approve", {"approver": the.token.name, "comment": (body or ApproveRequest()).comment},
                             "approve")
    the.audit(verb="approve", outcome="approved", operation_id=grant_id, cluster=grant.cluster)
    return {"grant_id": grant_id, "accepted": "approve", "progress": progress}


@router.post("/{grant_id}/revoke", responses={401: {}, 403: {}, 404: {}, 409: {}, 503: {}})
async def revoke_access(grant_id: str, body: RevokeRequest | None = None, the: Gate = Depends(gate)) -> dict[str, Any]:
    """The requester ends their own grant; anyone else needs to be allowed to steer operations in its environment."""
    grant = _grant(the, grant_id, "read", "revoke")
    if not access.same_person(the.token.name, grant.person):
        the.permit("control", {grant.environment}, verb="revoke", operation_id=grant_id, cluster=grant.cluster)
    progress = await _update(the, grant, "revoke", {"requested_by": the.token.name,
                                                    "reason": (body or RevokeRequest()).reason}, "revoke")
    the.audit(verb="revoke", outcome="revoke_requested", operation_id=grant_id, cluster=grant.cluster)
    return {"grant_id": grant_id, "accepted": "revoke", "progress": progress}


@router.post("/{grant_id}/kubeconfig", responses={401: {}, 403: {}, 404: {}, 409: {}, 503: {}})
async def hand_out(grant_id: str, response: Response, the: Gate = Depends(gate)) -> dict[str, Any]:
    """The grant's kubeconfig, once, to the person who asked for it."""
    grant = _grant(the, grant_id, "read", "kubeconfig")
    if not access.same_person(the.token.name, grant.person):
        the.audit(verb="kubeconfig", outcome="refused", operation_id=grant_id, cluster=grant.cluster,
                  detail=f"{the.token.name} is not {grant.person}, who asked for it")
        raise ApiError(403, f"the grant is {grant.person}'s: only they receive its kubeconfig")
    private, public = new_recipient()
    answer = await _update(the, grant, "hand_out", {"requested_by": the.token.name, "recipient_key": public}, "kubeconfig")
    sealed = SealedKubeconfig.model_validate(answer)
    try:
        config = json.loads(open_sealed(private, sealed.ephemeral_key, sealed.nonce, sealed.ciphertext))
    except SealError as error:
        raise ApiError(502, str(error)) from None
    response.headers["Cache-Control"] = "no-store"
    return {"grant_id": grant_id, "expires_at": sealed.expires_at.isoformat(),
            "kubeconfig": yaml.safe_dump(config, sort_keys=False)}
