"""The refusals every control's validator shares. Validators raise to refuse, so the caller of an
Update learns at once, and nothing in the workflow changes."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from regatta.models import ErrorType
    from regatta.models.operations import ended
    from regatta.rules import access


def refuse_when_ended(phase: str, *, verb: str, what: str, error_type: str = ErrorType.OPERATION_ENDED,
                      words: str | None = None) -> None:
    if ended(phase):
        raise ApplicationError(words or f"cannot {verb}: the {what} already ended ({phase})", type=error_type)


def refuse_a_second_abort(abort_requested: bool) -> None:
    if abort_requested:
        raise ApplicationError("an abort is already under way", type=ErrorType.ABORT_REQUESTED)


def refuse_own_approval(*, phase: str, approver: str, requested_by: str, what: str,
                        approved_by: str | None = None) -> None:
    """Refuse an approval when nothing waits for one, when one was given already (the phase moves on
    only once its audit line is written: a second yes meanwhile would be written again), or when it
    comes from the requester: four eyes means a second person."""
    if phase != "awaiting_approval":
        raise ApplicationError(f"nothing to approve: the {what} is {phase}", type=ErrorType.NOT_AWAITING_APPROVAL)
    if approved_by:
        raise ApplicationError(f"already approved by {approved_by}", type=ErrorType.NOT_AWAITING_APPROVAL)
    refuse_self_approval(approver=approver, requested_by=requested_by, what=what)


def refuse_self_approval(*, approver: str, requested_by: str, what: str) -> None:
    if access.same_person(approver, requested_by):
        raise ApplicationError(f"{approver} asked for this {what} and cannot approve it; a second person must",
                               type=ErrorType.SELF_APPROVAL)
