"""`regatta op status|pause|resume|abort|approve`: steer a running operation by its id; and how every
command that starts an operation starts it and follows it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import typer
from pydantic import BaseModel

from regatta.cli.arguments import Output
from regatta.cli.context import api_client, ui_url
from regatta.cli.exits import run_command
from regatta.cli.render import console
from regatta.inventory import Inventory
from regatta.settings import Settings
from regatta.temporal.admission import Admission
from regatta.temporal.outcomes import OperationFailed
from regatta.temporal.outcomes import OperationRefused as Refused

op_app = typer.Typer(no_args_is_help=True, help="Steer a running operation by its id (the Temporal workflow id).")


async def start_over_api(api, kind: str, ticket: str | None, request: dict, *, headline: str | Callable[[dict], str],
                         wait: bool) -> dict:
    """Start through the HTTP API (it checks, and the token is who asks), say so, and follow if asked."""
    if not ticket:
        raise Refused("--ticket: the API starts operations under a change ticket (its idempotency key)")
    started = api.start(kind, ticket, request)
    again = " (this ticket had already started it)" if started["replayed"] else ""
    said = headline(started) if callable(headline) else headline
    console.print(f"started [bold]{started['operation_id']}[/] over the API{again}: {said}")
    if wait:
        await follow_over_api(api, started["operation_id"])
    return started


async def follow_over_api(api, operation_id: str, *, interval: float = 1.0) -> None:
    """Print each change of phase until the operation ends; exit 1 unless it succeeded."""
    last = None
    while True:
        found = api.status(operation_id)
        progress = found.get("progress") or {}
        if (progress.get("phase"), progress.get("step")) != last:
            last = (progress.get("phase"), progress.get("step"))
            console.print(f"  {last[0]}: {last[1]}")
        if found["status"] != "RUNNING":
            break
        await asyncio.sleep(interval)
    if progress.get("phase") != "succeeded":
        raise OperationFailed(found.get("failure") or progress.get("message") or found["status"])
    console.print(f"[green]{progress.get('message')}[/]")


async def announce(handle, headline: str | None, *, wait: bool) -> None:
    """What every start prints: the operation started, where to watch it; then follow it if asked."""
    from regatta.cli.render import follow

    console.print(f"started [bold]{handle.id}[/]" + (f": {headline}" if headline else ""))
    console.print(f"watch: {ui_url(handle.id)}")
    if wait:
        await follow(handle, console)


async def start_and_watch(*, workflow: str, cluster, request, ticket: str | None, wait: bool, headline: str) -> None:
    """Start an operation on a cluster, say where to watch it, and follow it if asked."""
    from regatta.temporal.operations import start_operation

    handle = await start_operation(Settings.from_env(), workflow=workflow, cluster=cluster, request=request, ticket=ticket)
    await announce(handle, headline, wait=wait)


async def admit_and_start(request: BaseModel, *, inventory: Inventory, ticket: str | None, wait: bool,
                          headline: str | Callable[[Admission], str], now: datetime | None = None,
                          renamed: dict[str, str] | None = None) -> None:
    """The checks every start makes (regatta/temporal/admission.py, the same the API makes), then
    the start. `renamed` rewrites a refusal's field names into the flags the operator typed."""
    from regatta.temporal.admission import StartRefused, admit

    try:
        admission = admit(request, inventory=inventory, now=now, outbound_rules=Settings.from_env().outbound)
    except StartRefused as refusal:
        message = str(refusal)
        for field_name, flag in (renamed or {}).items():
            message = message.replace(field_name, flag)
        raise Refused(message) from None
    assert admission.holder is not None, "waves start through start_wave"
    await start_and_watch(workflow=admission.workflow, cluster=admission.holder, request=request, ticket=ticket,
                          wait=wait, headline=headline(admission) if callable(headline) else headline)


def control(operation_id: str, update: str, payload: dict) -> None:
    from regatta.temporal.operations import send_update

    async def body():
        api = api_client()
        if api is not None and update in ("skip", "retry"):
            raise Refused(f"the HTTP API does not take {update} yet; unset REGATTA_API_URL to {update} through Temporal")
        if api is not None:  # the token is who asks: the API ignores names given here
            said = {k: v for k, v in payload.items() if k in ("reason", "comment", "stage") and v}
            progress = api.control(operation_id, update, said)["progress"]
        else:
            progress = await send_update(Settings.from_env(), operation_id, update, payload)
        console.print(f"{update}: accepted. {operation_id} is at: {progress.get('step')}")

    run_command(body())


@op_app.command("status")
def op_status(operation_id: str, output: Output = Output.table):
    """Where an operation stands and why it stopped, if it did."""
    from regatta.temporal.operations import status

    async def body():
        api = api_client()
        described = api.status(operation_id) if api is not None else await status(Settings.from_env(), operation_id)
        if output == "json":
            print(json.dumps(described, indent=2, default=str))
            return
        from regatta.cli.render import render_status

        render_status(described, console)

    run_command(body())


@op_app.command("approve")
def op_approve(operation_id: str, comment: Annotated[str, typer.Option(help="why")] = "",
               approver: Annotated[str | None, typer.Option(help="who approves (default: $USER)")] = None,
               stage: Annotated[str | None, typer.Option(help="a wave's or a policy rollout's stage: refused unless it"
                                                         " is the one waiting")] = None):
    """Approve an operation waiting for a second person (a decommission, a wave's or a rollout's stage)."""
    import getpass

    control(operation_id, "approve", {"approver": approver or getpass.getuser(), "comment": comment,
                                      **({"stage": stage} if stage else {})})


@op_app.command("pause")
def op_pause(operation_id: str, reason: Annotated[str, typer.Option(help="why")] = ""):
    """Hold the operation at the next safe point (between batches)."""
    import getpass

    control(operation_id, "pause", {"reason": reason, "requested_by": getpass.getuser()})


@op_app.command("resume")
def op_resume(operation_id: str):
    """Continue a paused operation."""
    import getpass

    control(operation_id, "resume", {"requested_by": getpass.getuser()})


@op_app.command("abort")
def op_abort(operation_id: str, reason: Annotated[str, typer.Option(help="why")] = ""):
    """Stop after the step in flight, leaving the cluster consistent and serving."""
    import getpass

    control(operation_id, "abort", {"reason": reason, "requested_by": getpass.getuser()})


@op_app.command("skip")
def op_skip(operation_id: str, cluster: Annotated[str, typer.Argument(help="the cluster to leave out")],
            reason: Annotated[str, typer.Option(help="why (the audit trail keeps it)")] = ""):
    """Leave a cluster that has not started out of a wave or a policy rollout."""
    import getpass

    control(operation_id, "skip", {"cluster": cluster, "reason": reason, "requested_by": getpass.getuser()})


@op_app.command("retry")
def op_retry(operation_id: str, cluster: Annotated[str, typer.Argument(help="the failed cluster")]):
    """Try a failed cluster of the running stage of a wave or a policy rollout again."""
    import getpass

    control(operation_id, "retry", {"cluster": cluster, "requested_by": getpass.getuser()})
