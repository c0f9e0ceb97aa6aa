"""The simulated traffic manager under `/traffic/v1/`: one record per service holding the share
of its requests each cluster receives (weighted DNS, a global load balancer's backends).

This JSON is also the contract `regatta.traffic.HttpTrafficManager` speaks, so a small
adapter in front of Route 53, Cloud DNS or Azure Traffic Manager can stand where this stands.
Every change carries a change id; a change id seen before is answered with the record as that
change left it, which is what makes a retried traffic shift harmless.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from regatta.sim.world import SimError, World

router = APIRouter(prefix="/traffic/v1")


class TrafficChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weights: dict[str, int]
    change_id: str


def _world(request: Request) -> World:
    return request.app.state.world


def _record_json(service: str, record: dict) -> dict:
    return {"service": service, "weights": record["weights"], "changes": record["changes"]}


@router.get("/records")
async def list_records(request: Request, cluster: str | None = None):
    return {"records": [_record_json(s, r) for s, r in _world(request).traffic_records(cluster).items()]}


@router.get("/records/{service}")
async def read_record(request: Request, service: str):
    record = _world(request).traffic.get(service)
    if record is None:
        raise SimError(404, "NotFound", f"no traffic record for service {service!r}")
    return _record_json(service, record)


@router.put("/records/{service}")
async def change_record(request: Request, service: str, change: TrafficChange):
    return _record_json(service, _world(request).set_traffic(service, change.weights, change.change_id))
