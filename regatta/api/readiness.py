"""`/v1/readiness`: each cluster's readiness for its next minor version, as the last fleet sweep read it
(the API reaches no cluster; the workers do). For another target, `regatta upgrade readiness --to X.Y`
reads the clusters now. A token sees the clusters of its environments only."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from regatta.api.errors import ApiError
from regatta.api.gate import Gate, gate
from regatta.models.readiness import ReadinessReport
from regatta.rules import versions

router = APIRouter(prefix="/v1/readiness")


@router.get("", response_model=list[ReadinessReport], responses={401: {}, 403: {}, 422: {}})
async def readiness(the: Gate = Depends(gate),
                    to: str | None = Query(default=None, max_length=10, description="only the reports for this target,"
                                           " e.g. 1.32 (each cluster's is its next minor)"),
                    blocking: bool = Query(default=False, description="only the clusters with a blocking finding"),
                    ) -> list[ReadinessReport]:
    the.permit("read", set(), verb="read")
    if to is not None:
        try:
            versions.parse_target_version(to)
        except versions.InvalidVersion as error:
            raise ApiError(422, f"to: {error}") from None
    visible = the.visible_clusters()
    return [report for report in the.inventory.readiness_reports()
            if (visible is None or report.cluster in visible) and (to is None or report.target_version == to)
            and (not blocking or not report.ready)]
