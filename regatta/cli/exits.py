"""Exit codes, a promise to scripts: 0 done, 1 the operation failed (or was aborted), 2 refused as bad
input with nothing changed, 3 a server could not be reached. `run_command` runs a command's body and
turns each kind of trouble into its message and code; every command goes through it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import typer
from rich.markup import escape

from regatta.cli.render import UNPRINTABLE, errors
from regatta.rules import refusals
from regatta.temporal.outcomes import OperationFailed
from regatta.temporal.outcomes import OperationRefused as Refused

EXIT_DONE, EXIT_FAILED, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3


class Unreachable(Exception):
    """A server did not answer. Exit code 3."""


def run_command(coro_or_fn) -> Any:
    """Run a command body, turning our three kinds of trouble into a message and an exit code."""
    try:
        return asyncio.run(coro_or_fn) if asyncio.iscoroutine(coro_or_fn) else coro_or_fn()
    except Exception as error:
        kind = _trouble(error)
        if kind is None:
            raise
        # Printed as written: a refusal may quote what a cloud, a hook or an operator said (no markup read into it,
        # no escape sequence sent to the terminal; its own lines kept).
        said = str(error).translate({c: v for c, v in UNPRINTABLE.items() if chr(c) not in "\n\t"})
        errors.print(f"[bold red]{kind}:[/] {escape(said)}")
        raise typer.Exit({"refused": EXIT_REFUSED, "unreachable": EXIT_UNREACHABLE, "failed": EXIT_FAILED}[kind]) from None


def _trouble(error: Exception) -> str | None:
    """Which of the three kinds of trouble an error is, or None for one we did not foresee. The
    error types are imported only once one is raised: the API client's brings in the Temporal SDK,
    half a second a command that succeeds need not wait for."""
    from regatta.api.client import ApiUnreachable
    from regatta.inventory import DrPairError, HoldError, TokenError, UnknownCluster
    from regatta.inventory.audit_files import AuditKeyError
    from regatta.temporal.codec import CodecKeyError
    from regatta.temporal.outcomes import TemporalUnreachable

    if isinstance(error, (Refused, UnknownCluster, DrPairError, HoldError, TokenError, CodecKeyError, AuditKeyError,
                          refusals.Refusal)):
        return "refused"
    if isinstance(error, (Unreachable, TemporalUnreachable, ApiUnreachable)):
        return "unreachable"
    if isinstance(error, OperationFailed):
        return "failed"
    return None
