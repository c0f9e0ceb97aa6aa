"""Exit codes, a promise to scripts: 0 done, 1 the operation failed (or was aborted), 2 refused as bad
input with nothing changed, 3 a server could not be reached. `run_command` runs a command's body and
turns each kind of trouble into its message and code; every command goes through it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from regatta.cli.render import errors
from regatta.rules import refusals
from regatta.temporal.outcomes import OperationFailed
from regatta.temporal.outcomes import OperationRefused as Refused

EXIT_DONE, EXIT_FAILED, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3


class Unreachable(Exception):
    """A server did not answer. Exit code 3."""


def run_command(coro_or_fn) -> Any:
    """Run a command body, turning our three kinds of trouble into a message and an exit code."""
    from regatta.api.client import ApiUnreachable
    from regatta.inventory import DrPairError, HoldError, TokenError, UnknownCluster
    from regatta.inventory.audit_files import AuditKeyError
    from regatta.temporal.codec import CodecKeyError
    from regatta.temporal.outcomes import TemporalUnreachable

    try:
        return asyncio.run(coro_or_fn) if asyncio.iscoroutine(coro_or_fn) else coro_or_fn()
    except (Refused, UnknownCluster, DrPairError, HoldError, TokenError, CodecKeyError, AuditKeyError,
            refusals.Refusal) as error:
        errors.print(f"[bold red]refused:[/] {error}")
        raise typer.Exit(EXIT_REFUSED) from None
    except (Unreachable, TemporalUnreachable, ApiUnreachable) as error:
        errors.print(f"[bold red]unreachable:[/] {error}")
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except OperationFailed as error:
        errors.print(f"[bold red]failed:[/] {error}")
        raise typer.Exit(EXIT_FAILED) from None
