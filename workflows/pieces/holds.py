"""A maintenance hold met at the start of an operation on one cluster: the cluster is left alone (a wave that
meets the refusal waits for the hold to end), unless whoever started the operation said why it must go ahead."""

from __future__ import annotations

from typing import Protocol

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.pieces.final_progress import keep_final_progress
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import ClusterRollbackProgress, ClusterUpgradeProgress, ErrorType, MaintenanceHold


class Overriding(Protocol):
    cluster: str
    requested_by: str
    override_hold: str | None


async def refuse_or_override_hold(hold: MaintenanceHold, *, request: Overriding,
                                  state: ClusterUpgradeProgress | ClusterRollbackProgress, trail: Trail,
                                  action: str) -> None:
    """Go on past the hold, audited with the override's reason; or refuse the operation (ClusterHeld), saying
    until when and who holds it, with its progress kept."""
    if request.override_hold:
        await trail.record("hold", "skipped", f"maintenance hold until {hold.until.isoformat()} ({hold.reason}, by"
                           f" {hold.held_by}) overridden by {request.requested_by}: {request.override_hold}")
        return
    state.message = (f"refused: {request.cluster} is held until {hold.until.isoformat()} by {hold.held_by}:"
                     f" {hold.reason}. Wait, release it (regatta cluster release {request.cluster}), or"
                     " start with override_hold and a reason")
    trail.step("failed", "checking for a maintenance hold")
    await trail.record(action, "refused", state.message)
    await workflow.wait_condition(workflow.all_handlers_finished)
    keep_final_progress(state)
    raise ApplicationError(state.message, hold.model_dump(mode="json"), type=ErrorType.CLUSTER_HELD, non_retryable=True)
