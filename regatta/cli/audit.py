"""`regatta audit list|verify`: the audit trail and its hash chain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from regatta.cli.arguments import ListOutput, ListOutputOption, Output, OutputOption
from regatta.cli.context import open_inventory
from regatta.cli.exits import Refused, run_command
from regatta.cli.render import console, counted, show_list
from regatta.inventory.audit_files import append_checkpoint, make_key_file, read_checkpoints
from regatta.settings import Settings
from regatta.temporal.outcomes import OperationFailed

audit_app = typer.Typer(no_args_is_help=True, help="The audit trail of every operation.")


@audit_app.command("list")
def audit_list(
    cluster: Annotated[str | None, typer.Option(help="only this cluster's lines")] = None,
    operation: Annotated[str | None, typer.Option(help="operation id")] = None,
    kind: Annotated[str | None, typer.Option(help="one kind of record: access (sign-ins and refusals), api, or a"
                                                  " workflow type such as ClusterUpgrade")] = None,
    output: ListOutputOption = ListOutput.table,
):
    """Who asked for what, under which ticket, and how it ended."""

    def body():
        records = open_inventory().audit(cluster=cluster, operation_id=operation, kind=kind)
        show_list(records, output, title=counted(len(records), "audit record"),
              columns=("AT (UTC)", "OPERATION", "CLUSTER", "BY", "TICKET", "ACTION", "OUTCOME", "DETAIL"),
              row=lambda r: (f"{r.at:%Y-%m-%d %H:%M:%S}" if r.at else "", r.operation_id, r.cluster, r.requested_by,
                             r.ticket or "", r.action, r.outcome, r.detail),
              name=lambda r: r.operation_id)

    run_command(body)


@audit_app.command("verify")
def audit_verify(output: OutputOption = Output.table):
    """Walk the audit trail's chain: exit 0 when every record holds, 1 naming the first that does not
    (edited, removed or reordered since it was written; rewritten by someone without the audit key; not
    what a checkpoint in REGATTA_AUDIT_CHECKPOINTS saw)."""

    def body():
        inventory = open_inventory()
        settings = Settings.from_env()
        checkpoints, untrusted = (read_checkpoints(settings.audit_checkpoints, inventory.audit_keys)
                                  if settings.audit_checkpoints else ([], []))
        verdict = inventory.verify_audit(checkpoints)
        warnings = list(untrusted)
        if inventory.audit_keys.current is None:
            warnings.append("no audit key (REGATTA_AUDIT_KEY_FILE): anyone who can write the database could rewrite"
                            " the trail and its hashes without this showing")
        if not settings.audit_checkpoints:
            warnings.append("no checkpoint file (REGATTA_AUDIT_CHECKPOINTS): records removed at the end, with the"
                            " head moved back, would not show")
        verdict = verdict.model_copy(update={"warnings": warnings})
        if settings.audit_checkpoints and not Path(settings.audit_checkpoints).exists() and verdict.keyed and verdict.ok:
            verdict = verdict.model_copy(update={"ok": False, "reason": (
                f"the checkpoint file {settings.audit_checkpoints} is missing while the trail is keyed: it was removed"
                " (restore it from its append-only store), or this is not where the API keeps it")})
        if untrusted and verdict.ok:
            verdict = verdict.model_copy(update={"ok": False, "reason": "checkpoint lines that cannot be trusted: "
                                                 + "; ".join(untrusted)})
        if output == "json":
            print(json.dumps(verdict.model_dump(), indent=2))
        elif verdict.ok:
            console.print(f"[green]audit trail intact:[/] {verdict.records} records, each chained to the one before"
                          f" ({verdict.keyed} keyed), matching {verdict.checkpoints} checkpoints")
            for warning in warnings:
                console.print(f"[yellow]warning:[/] {warning}")
        if not verdict.ok:
            where = f"record {verdict.broken_at}" if verdict.broken_at is not None else "the trail"
            raise OperationFailed(f"the audit chain breaks at {where} ({verdict.records} records before it hold):"
                                  f" {verdict.reason}")

    run_command(body)


@audit_app.command("checkpoint")
def audit_checkpoint():
    """Append the trail's head, signed with the audit key, to REGATTA_AUDIT_CHECKPOINTS (the API does it
    every minute by itself; this is for a cron job or before a backup)."""

    def body():
        settings = Settings.from_env()
        if not settings.audit_checkpoints:
            raise Refused("set REGATTA_AUDIT_CHECKPOINTS to the file checkpoints are appended to")
        point = open_inventory().audit_checkpoint()
        if point is None:
            raise Refused("nothing to checkpoint: set REGATTA_AUDIT_KEY_FILE (checkpoints are signed), or the trail"
                          " is empty")
        append_checkpoint(settings.audit_checkpoints, point)
        console.print(f"checkpoint: record {point.last_id} at {point.at}, signed with key {point.key_id}")

    run_command(body)


@audit_app.command("init-key")
def audit_init_key(path: Annotated[str, typer.Argument(help="where the key file goes (mode 0600)")]):
    """Make an audit key file, unless one is there: the set-up step of a production installation (give
    its path to the API and the workers as REGATTA_AUDIT_KEY_FILE; never to the database)."""

    def body():
        made = make_key_file(path)
        console.print(f"{'made' if made else 'kept the existing'} audit key file {path}")

    run_command(body)
