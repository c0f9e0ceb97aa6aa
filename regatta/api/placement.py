"""`/v1/placements`: where each placed application runs, each cluster's share of its replicas, and
why: the score and its terms for each chosen cluster, a reason for each one left out ("why did my
app land there?"). A token sees the clusters of its environments only."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from regatta.api.errors import ApiError
from regatta.api.gate import Gate, gate
from regatta.models.placement import PlacementDecision

router = APIRouter(prefix="/v1/placements")


def _seen(decision: PlacementDecision, visible: set[str] | None) -> PlacementDecision | None:
    """The decision with only the clusters the token may see; None when it sees none of its chosen."""
    if visible is None:
        return decision
    chosen = [s for s in decision.chosen if s.cluster in visible]
    if not chosen:
        return None
    return decision.model_copy(update={"chosen": chosen, "not_chosen": {
        name: why for name, why in decision.not_chosen.items() if name in visible}})


@router.get("", response_model=list[PlacementDecision], responses={401: {}, 403: {}})
async def placements(the: Gate = Depends(gate)) -> list[PlacementDecision]:
    the.permit("read", set(), verb="read")
    visible = the.visible_clusters()
    return [seen for d in the.inventory.placements() if (seen := _seen(d, visible)) is not None]


@router.get("/{app}", response_model=PlacementDecision, responses={401: {}, 403: {}, 404: {}})
async def placement(app: str, the: Gate = Depends(gate)) -> PlacementDecision:
    the.permit("read", set(), verb="read")
    decision = the.inventory.placement(app)
    seen = _seen(decision, the.visible_clusters()) if decision is not None else None
    if seen is None:
        raise ApiError(404, f"{app} is not placed on any cluster this token may see; `GET /v1/placements` lists"
                       " what is placed")
    return seen
