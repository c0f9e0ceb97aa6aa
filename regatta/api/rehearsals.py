"""`/v1/rehearsals`: the rehearsals kept (`regatta wave|upgrade|policy rehearse`), and
`/v1/rehearsals/{id}`: one of them, held against what the real run did since (the comparison is kept with it). A token
sees a rehearsal only when it sees every cluster the rehearsal holds."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path

from regatta.api.errors import ApiError
from regatta.api.gate import Gate, gate
from regatta.inventory import rehearsal_records
from regatta.models.rehearsal import RehearsalRecord

router = APIRouter(prefix="/v1/rehearsals")


def _sees(visible: set[str] | None, record: RehearsalRecord) -> bool:
    """A token that sees every cluster the rehearsal names; one that names none only to a token that sees them all."""
    return visible is None or (bool(record.clusters) and set(record.clusters) <= visible)


@router.get("", response_model=list[RehearsalRecord], responses={401: {}, 403: {}})
async def rehearsals(the: Gate = Depends(gate)) -> list[RehearsalRecord]:
    """Newest first, without their reports (`GET /v1/rehearsals/{id}` has the whole of one)."""
    the.permit("read", set(), verb="read")
    visible = the.visible_clusters()
    return [r.model_copy(update={"wave": None, "upgrades": [], "policy": None}) for r in rehearsal_records.listing(the.inventory)
            if _sees(visible, r)]


@router.get("/{rehearsal_id}", response_model=RehearsalRecord, responses={401: {}, 403: {}, 404: {}})
async def rehearsal(rehearsal_id: str = Path(max_length=40, pattern=r"^rehearsal-[0-9a-f]{12}$"),
                    the: Gate = Depends(gate)) -> RehearsalRecord:
    the.permit("read", set(), verb="read")
    record = rehearsal_records.get(the.inventory, rehearsal_id)
    if record is None or not _sees(the.visible_clusters(), record):  # one not seen is one not there
        raise ApiError(404, f"no rehearsal {rehearsal_id}")
    return rehearsal_records.check(the.inventory, record)
