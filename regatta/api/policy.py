"""`/v1/policy`: where every cluster stands with every bundle, by bundle ("which clusters break
this policy") or by cluster ("what does this cluster break"), and a record's whole history. A
token sees the clusters of its environments only."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from regatta.api.gate import Gate, gate
from regatta.models.policy import ComplianceRecord

router = APIRouter(prefix="/v1/policy")


@router.get("/compliance", response_model=list[ComplianceRecord], responses={401: {}, 403: {}})
async def compliance(the: Gate = Depends(gate),
                     bundle: str | None = Query(default=None, max_length=100),
                     cluster: str | None = Query(default=None, max_length=100),
                     state: str | None = Query(default=None, max_length=20, description="e.g. non_compliant")
                     ) -> list[ComplianceRecord]:
    the.permit("read", set(), verb="read")
    visible = the.visible_clusters()
    return [r for r in the.inventory.compliance(bundle=bundle, cluster=cluster)
            if (visible is None or r.cluster in visible) and (state is None or r.state == state)]


@router.get("/compliance/{cluster}/{bundle}/history", response_model=list[ComplianceRecord],
            responses={401: {}, 403: {}, 404: {}})
async def history(cluster: str, bundle: str, the: Gate = Depends(gate)) -> list[ComplianceRecord]:
    """Every change of the record, oldest first; nothing is ever truncated."""
    the.cluster_for(cluster, "read", verb="read")
    return the.inventory.compliance_history(cluster=cluster, bundle=bundle)
