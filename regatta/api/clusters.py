"""`/v1/clusters`: the inventory a token may see, and maintenance holds (operator, in the cluster's
environment; the token's name is who holds it)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from regatta.api.errors import ApiError
from regatta.api.gate import Gate, gate
from regatta.inventory import HoldError
from regatta.models import ClusterRecord, MaintenanceHold
from regatta.models.placement import EvacuateClusterInput
from regatta.rules import access, placement, selectors
from regatta.rules.operation_ids import evacuate_id
from regatta.temporal.admission import admit
from regatta.temporal.connect import TemporalUnreachable
from regatta.temporal.operations import OperationRefused, start

router = APIRouter(prefix="/v1/clusters")


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: datetime = Field(description="with a time zone, e.g. 2026-12-01T08:00:00Z")
    reason: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$", description="shown to every wave that waits")
    evacuate: bool = Field(default=False, description="also move its placed applications to other clusters now (an"
                           " EvacuateCluster, evacuate-<name>) and while the hold lasts")


@router.get("", response_model=list[ClusterRecord], responses={401: {}, 403: {}})
async def clusters(the: Gate = Depends(gate),
                   environment: str | None = Query(default=None, max_length=100),
                   provider: str | None = Query(default=None, max_length=20),
                   region: str | None = Query(default=None, max_length=100),
                   label: list[str] = Query(default=[], description="key=value; repeat for several"),
                   selector: str | None = Query(default=None, max_length=2000, description=(
                       "a label selector as kubectl -l takes it: env in (staging,prod),team=payments,!pci"))
                   ) -> list[ClusterRecord]:
    the.permit("read", set(), verb="read")
    labels = {}
    for pair in label:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ApiError(422, f"label {pair!r}: give key=value, e.g. label=team=payments")
        labels[key] = value
    try:
        wanted = selectors.parse_label_selector(selector) if selector else None
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    scope = set(the.token.environments)
    return [r for r in the.inventory.list_clusters(labels or None)
            if (wanted is None or selectors.labels_match(wanted, r.labels))
            and (access.ALL_ENVIRONMENTS in scope or r.environment in scope)
            and (environment is None or r.environment == environment)
            and (provider is None or r.provider == provider) and (region is None or r.region == region)]


@router.post("/{name}/hold", response_model=MaintenanceHold, status_code=201,
             responses={401: {}, 403: {}, 404: {}, 422: {}, 503: {}})
async def hold(name: str, body: HoldRequest, the: Gate = Depends(gate)) -> MaintenanceHold:
    """Keep every wave and schedule off a cluster until `until` (the token's name is who holds it)."""
    record = the.cluster_for(name, "control", verb="hold")
    evacuation = None
    if body.evacuate and placement.placed_on(the.inventory.placements(), name):
        evacuation = EvacuateClusterInput(cluster=name, reason=f"held by {the.token.name}: {body.reason}",
                                          requested_by=the.token.name)
        admission = admit(evacuation, inventory=the.inventory)
        the.permit("start", admission.environments, verb="start", operation_id=admission.operation_id, cluster=name)
    try:
        hold = the.inventory.hold_cluster(name, until=body.until, reason=body.reason, held_by=the.token.name,
                                          now=the.fleet_now(), evacuate=body.evacuate)
    except HoldError as error:
        raise ApiError(422, str(error)) from None
    if evacuation is not None:
        try:
            await start(the.settings, evacuation, cluster=record)
        except OperationRefused:
            pass  # one is running already: it moves what is placed there
        except TemporalUnreachable as error:
            raise ApiError(503, f"the hold is set, but the evacuation could not start: {error}; the next fleet sweep"
                           " moves what is placed there") from None
        the.audit(verb="start", outcome="started", operation_id=evacuate_id(name), cluster=name,
                  detail="EvacuateCluster started by a hold with evacuate")
    return hold


@router.post("/{name}/release", response_model=MaintenanceHold, responses={401: {}, 403: {}, 404: {}, 409: {}})
async def release(name: str, the: Gate = Depends(gate)) -> MaintenanceHold:
    the.cluster_for(name, "control", verb="release")
    try:
        return the.inventory.release_hold(name, released_by=the.token.name)
    except HoldError as error:
        raise ApiError(409, str(error)) from None
