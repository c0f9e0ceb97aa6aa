"""`/v1/webhooks/ticket-events`: a ticket system's approval or cancellation, signed with the shared
secret (regatta/rules/signing.py), approves or aborts the operation its ticket started. Four eyes
still hold; a request outside the timestamp window, badly signed, or seen before is refused."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from regatta.api.errors import ApiError, readable
from regatta.api.gate import inventory_of, settings_of
from regatta.api.operations import CONTROL_OUTCOME
from regatta.clouds.secret_stores import SecretStoreError, stored
from regatta.models import OperationRecord
from regatta.rules import signing
from regatta.temporal.connect import TemporalUnreachable
from regatta.temporal.operations import OperationRefused, send_update

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/webhooks")


class TicketEvent(BaseModel):
    """What a ticket system tells Regatta about a change it approved or cancelled (signed)."""

    model_config = ConfigDict(extra="forbid")

    event: Literal["approved", "cancelled"]
    ticket: str = Field(min_length=1, max_length=100)
    by: str = Field(min_length=1, max_length=200, description="the person who approved or cancelled it there")
    comment: str = Field(default="", max_length=500)
    operation_id: str | None = Field(default=None, max_length=200, description="the operation the ticket system"
                                     " means (the start's answer): when given, an event for a ticket that started"
                                     " another operation is refused rather than steering it")


@router.post("/ticket-events", responses={401: {}, 404: {}, 409: {}, 422: {}, 503: {}},
             openapi_extra={"parameters": [
                 {"name": signing.SIGNATURE_HEADER, "in": "header", "required": True, "schema": {"type": "string"}},
                 {"name": signing.TIMESTAMP_HEADER, "in": "header", "required": True, "schema": {"type": "string"}}]})
async def ticket_event(request: Request) -> dict[str, Any]:
    """A ticket system's approval or cancellation, signed with the shared secret: approve or
    abort the operation its ticket started. A replayed request is refused."""
    settings, inventory = settings_of(request), inventory_of(request)
    if not settings.webhook_secret:
        raise ApiError(503, "inbound webhooks are off: set REGATTA_WEBHOOK_SECRET for the API")
    raw = await request.body()
    signature = request.headers.get(signing.SIGNATURE_HEADER)
    timestamp = request.headers.get(signing.TIMESTAMP_HEADER)
    # What needs no secret is checked first: a request that could never pass costs no read of a secrets store.
    if (problem := signing.envelope_problem(signature=signature, timestamp=timestamp, now=time.time())) is not None:
        raise ApiError(401, problem)
    try:  # the secret itself, or read (off the event loop) from the store REGATTA_WEBHOOK_SECRET names
        secret = await asyncio.to_thread(stored(settings.webhook_secret, name="REGATTA_WEBHOOK_SECRET").value)
    except SecretStoreError as error:
        log.error("ticket webhook refused: %s", error)  # the details for the operator, not for the caller
        raise ApiError(503, "inbound webhooks cannot be checked now: the webhook secret could not be read from its"
                            " store (the API's log says why)") from None
    problem = signing.verification_problem(secret.encode(), signature=signature,
                                           timestamp=request.headers.get(signing.TIMESTAMP_HEADER), body=raw,
                                           now=time.time())
    if problem is not None:
        raise ApiError(401, problem)
    assert signature is not None  # verification refuses a missing one
    if not inventory.first_delivery(signature, keep_seconds=signing.WINDOW_SECONDS):
        raise ApiError(409, "this request was delivered before (same signature): a replay is not acted on twice")
    try:
        event = TicketEvent.model_validate_json(raw)
    except ValidationError as error:
        raise ApiError(422, f"the event does not fit: {readable(error)}") from None
    held = inventory.ticket(event.ticket)
    if held is None:
        raise ApiError(404, f"no operation was started over the API under ticket {event.ticket}")
    if event.operation_id is not None and event.operation_id != held.operation_id:
        inventory.append_audit(OperationRecord(
            operation_id=held.operation_id, operation="api", cluster="-", requested_by=event.by, ticket=event.ticket,
            action=f"webhook {event.event}", outcome="refused",
            detail=f"the event names {event.operation_id}; ticket {event.ticket} started {held.operation_id}"))
        raise ApiError(409, f"ticket {event.ticket} started {held.operation_id}, not {event.operation_id}: the event is"
                       " not acted on (was the ticket number taken by another change?)")
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
