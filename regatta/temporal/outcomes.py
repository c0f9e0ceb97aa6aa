"""How an operation's start or run ends for its caller, as exceptions that need no Temporal SDK to
name: refused (nothing changed; CLI exit 2), failed or aborted (exit 1), Temporal not reachable
(exit 3), and the innermost message of a wrapped error. Kept apart from the modules that talk to
Temporal so the CLI can name them without importing the SDK on every command's start."""

from __future__ import annotations


class OperationRefused(Exception):
    """The request was refused and nothing changed (CLI exit code 2)."""


class OperationFailed(Exception):
    """The operation ran and failed, or was aborted (CLI exit code 1)."""


class TemporalUnreachable(ConnectionError):
    pass


def cause_of(error: BaseException) -> str:
    """The innermost message: what the operator needs, without the SDK's wrapping."""
    message = str(error)
    while (cause := getattr(error, "cause", None)) is not None:
        error = cause
        message = getattr(error, "message", None) or str(error)
    return message
