"""`regatta audit list|verify`: the audit trail and its hash chain.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from regatta.cli.arguments import Output
from regatta.cli.context import open_inventory
from regatta.cli.exits import run_command
from regatta.cli.render import console, show_list
from regatta.temporal.outcomes import OperationFailed

audit_app = typer.Typer(no_args_is_help=True, help="The audit trail of every operation.")


@audit_app.command("list")
def audit_list(
    cluster: Annotated[str | None, typer.Option()] = None,
    operation: Annotated[str | None, typer.Option(help="operation id")] = None,
    output: Output = Output.table,
):
    """Who asked for what, under which ticket, and how it ended."""

    def body():
        records = open_inventory().audit(cluster=cluster, operation_id=operation)
        show_list(records, output, title=f"{len(records)} audit records",
              columns=("AT (UTC)", "OPERATION", "CLUSTER", "BY", "TICKET", "ACTION", "OUTCOME", "DETAIL"),
              row=lambda r: (f"{r.at:%Y-%m-%d %H:%M:%S}" if r.at else "", r.operation_id, r.cluster, r.requested_by,
                             r.ticket or "", r.action, r.outcome, r.detail))

    run_command(body)


@audit_app.command("verify")
def audit_verify(output: Output = Output.table):
    """Walk the audit trail's hash chain: exit 0 when every record holds, 1 naming the first that
    does not (edited, removed or reordered since it was written)."""

    def body():
        verdict = open_inventory().verify_audit()
        if output == "json":
            print(json.dumps(verdict.model_dump(), indent=2))
        elif verdict.ok:
            console.print(f"[green]audit trail intact:[/] {verdict.records} records, each chained to the one before")
        if not verdict.ok:
            where = f"record {verdict.broken_at}" if verdict.broken_at is not None else "the trail"
            raise OperationFailed(f"the audit chain breaks at {where} ({verdict.records} records before it hold):"
                                  f" {verdict.reason}")

    run_command(body)
