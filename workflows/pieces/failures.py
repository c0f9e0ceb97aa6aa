"""The one way an operation that stops says why: the innermost cause of what went wrong (an
activity's own refusal, or the workflow's), whether it was refused before anything changed or
stopped on the way, and the message both the audit trail and the failed run carry."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.exceptions import ActivityError, ApplicationError, FailureError


@dataclass(frozen=True)
class Stop:
    reason: str
    error_type: str
    where: str
    refused: bool

    @property
    def message(self) -> str:
        return f"{'refused' if self.refused else 'stopped'} during {self.where}: {self.reason}"

    def error(self, message: str) -> ApplicationError:
        return ApplicationError(message, type=self.error_type, non_retryable=True)


def stop_of(failure: BaseException, *, where: str, refused: bool, default_type: str) -> Stop:
    """What stopped the run: an ActivityError's cause speaks for it."""
    cause: BaseException = failure.cause if isinstance(failure, ActivityError) and failure.cause else failure
    reason = cause.message if isinstance(cause, FailureError) else str(cause)
    error_type = cause.type if isinstance(cause, ApplicationError) and cause.type else default_type
    return Stop(reason=str(reason), error_type=error_type, where=where, refused=refused)

