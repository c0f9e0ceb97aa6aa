"""`regatta op status|pause|resume|abort|approve`: steer a running operation by its id; and how every
command that starts an operation starts it and follows it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import BaseModel

from regatta.cli.arguments import ListOutput, ListOutputOption, OperationId, Output, OutputOption
from regatta.cli.context import api_client, ui_url
from regatta.cli.exits import run_command
from regatta.cli.render import console
from regatta.settings import Settings
from regatta.temporal.outcomes import OperationFailed
from regatta.temporal.outcomes import OperationRefused as Refused

if TYPE_CHECKING:  # the inventory (SQLAlchemy) is imported by the commands that start something, not by `op status`
    from regatta.inventory import Inventory
    from regatta.temporal.admission import Admission

op_app = typer.Typer(no_args_is_help=True, help="Steer a running operation by its id (the Temporal workflow id).")


async def start_over_api(api, kind: str, ticket: str | None, request: dict, *, headline: str | Callable[[dict], str],
                         wait: bool) -> dict:
    """Start through the HTTP API (it checks, and the token is who asks), say so, and follow if asked."""
    if not ticket:
        raise Refused("--ticket: the API starts operations under a change ticket (its idempotency key)")
    started = api.start(kind, ticket, request)
    again = " (this ticket had already started it)" if started["replayed"] else ""
    said = headline(started) if callable(headline) else headline
    found = None if wait else await settled_over_api(api, started["operation_id"])
    if found is not None:
        report_ended_at_once(found, f"started [bold]{started['operation_id']}[/] over the API{again}: {said}")
        return started
    console.print(f"started [bold]{started['operation_id']}[/] over the API{again}: {said}")
    if wait:
        await follow_over_api(api, started["operation_id"])
    return started


# How long a start without --wait watches the operation before it says "started": long enough for the checks a
# run makes first (a decommission's workloads: 80 ms on the dev stack) to refuse it, short enough not to keep a
# script that starts many waiting.
SETTLE_SECONDS = 1.0


async def settled_over_api(api, operation_id: str, *, seconds: float = SETTLE_SECONDS) -> dict | None:
    """The operation's status if it ended within `seconds`, else None: also when a read is slower than that (a
    status read asks a worker, which may be busy or down) or fails. It started; that is said either way."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            found = await asyncio.wait_for(asyncio.to_thread(api.status, operation_id), timeout=left)
        except Exception:  # noqa: BLE001 - a slow or failed read leaves it as started
            return None
        if found["status"] != "RUNNING":
            return found
        await asyncio.sleep(min(0.25, max(0.0, deadline - loop.time())))
    return None


async def ended_within(handle, seconds: float) -> bool:
    """Whether the operation ended (well or not) within `seconds`."""
    try:
        await asyncio.wait_for(handle.result(), timeout=seconds)
    except TimeoutError:
        return False
    except Exception:  # noqa: BLE001 - it failed; status() says why
        return True
    return True


def report_ended_at_once(found: dict, started_line: str) -> None:
    """A start whose operation ended while it watched: one a check refused says so (exit 1), not what it would have
    done; one that succeeded says it started and how it ended."""
    operation = found["operation_id"]
    if found["succeeded"] is not True:
        judge(found, f"{operation} started and ended at once")
    console.print(started_line)
    judge(found, f"{operation} ended already")


def judge(found: dict, what: str, *, say_success: bool = True) -> None:
    """Say how an ended operation came out; raise (exit 1, or 3 when nothing says) unless it succeeded."""
    from regatta.cli.exits import Unreachable
    from regatta.rules import outcomes

    progress = found.get("progress") or {}
    why = found.get("failure") or progress.get("message") or progress.get("halted_reason") or ""
    verdict = outcomes.verdict(found["status"], found.get("outcome"))
    if verdict == "unsuccessful":
        raise OperationFailed(f"{what}: {found.get('outcome')}" + (f": {why}" if why else ""))
    if verdict == "unknown":
        raise Unreachable(f"{what} ({found['status']}), but how it came out cannot be read"
                          + (f": {found['progress_error']}" if found.get("progress_error") else "")
                          + f"; `regatta op status {found['operation_id']}` asks again")
    if verdict == "succeeded" and say_success:
        console.print(f"[green]{what}: {found.get('outcome')}[/]" + (f" {why}" if why else ""))


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
    judge(found, operation_id)


# How long a start whose operation checks first and then waits for a second person (a decommission, a gated
# failover) watches for the checks to end: "it waits for approval" is said only once it does. The checks take
# well under a second on the dev stack; a loaded machine or a slow cloud can take many.
CHECKS_SECONDS = 30.0


async def checked_within(handle, seconds: float) -> dict | None:
    """The operation's status once it waits for its approval, went past it, or ended; None while its checks still run
    (or a refusal is being recorded: phase "failed" while it runs) after `seconds`."""
    from regatta.temporal.connect import TemporalUnreachable
    from regatta.temporal.operations import status

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        await ended_within(handle, min(0.25, max(0.0, deadline - loop.time())))
        try:
            found = await status(Settings.from_env(), handle.id)
        except TemporalUnreachable:
            raise
        except Exception:  # noqa: BLE001 - a read that fails (no worker has taken it yet) is read again
            await asyncio.sleep(0.25)
            continue
        if found["status"] != "RUNNING" or (found.get("progress") or {}).get("phase") not in (None, "checking", "failed"):
            return found
    return None


async def announce(handle, headline: str | None, *, wait: bool, approval: str | None = None) -> None:
    """What every start prints: the operation started, where to watch it; then follow it if asked. With
    `approval` (the command a second person runs), the operation checks first and then waits for that person:
    the start watches the checks and says it waits only when it does."""
    from regatta.cli.render import follow

    started = f"started [bold]{handle.id}[/]" + (f": {headline}" if headline else "")
    if approval is not None and not wait:
        found = await checked_within(handle, CHECKS_SECONDS)
        if found is not None and found["status"] != "RUNNING":
            report_ended_at_once(found, started)
            return
        if found is None:
            started += (f"; its checks still run after {CHECKS_SECONDS:.0f} s (`regatta op status {handle.id}`);"
                        f" once they pass, it waits for approval by someone else:\n  {approval}")
        elif (found.get("progress") or {}).get("phase") == "awaiting_approval":
            started += f"; it waits for approval by someone else:\n  {approval}"
    elif not wait and await ended_within(handle, SETTLE_SECONDS):
        from regatta.temporal.operations import status

        report_ended_at_once(await status(Settings.from_env(), handle.id), started)
        return
    elif approval is not None:
        started += f"; once its checks pass it waits for approval by someone else:\n  {approval}"
    console.print(started)
    console.print(f"watch: {ui_url(handle.id)}")
    if wait:
        await follow(handle, console)


async def start_and_watch(*, cluster, request, wait: bool, headline: str, approval: str | None = None) -> None:
    """Start an operation on a cluster, say where to watch it, and follow it if asked."""
    from regatta.temporal.operations import start

    handle = await start(Settings.from_env(), request, cluster=cluster)
    await announce(handle, headline, wait=wait, approval=approval)


async def admit_and_start(request: BaseModel, *, inventory: Inventory, wait: bool,
                          headline: str | Callable[[Admission], str], now: datetime | None = None,
                          renamed: dict[str, str] | None = None,
                          approval: Callable[[Admission], str | None] | None = None) -> None:
    """The checks every start makes (regatta/temporal/admission.py, the same the API makes), then
    the start. `renamed` rewrites a refusal's field names into the flags the operator typed; `approval` gives
    the command a second person runs when the operation will wait for one (see `announce`)."""
    from regatta.temporal.admission import StartRefused, admit

    try:
        admission = admit(request, inventory=inventory, now=now, outbound_rules=Settings.from_env().outbound)
    except StartRefused as refusal:
        message = str(refusal)
        for field_name, flag in (renamed or {}).items():
            message = message.replace(field_name, flag)
        raise Refused(message) from None
    assert admission.holder is not None, "an operation on one cluster holds it"
    await start_and_watch(cluster=admission.holder, request=request, wait=wait, headline=headline(admission) if callable(headline) else headline,
                          approval=approval(admission) if approval else None)


def control(operation_id: str, update: str, payload: dict) -> None:
    from regatta.temporal.operations import send_update

    async def body():
        api = api_client()
        if api is not None:  # the token is who asks: the API ignores names given here
            said = {k: v for k, v in payload.items() if k in ("reason", "comment", "stage", "cluster") and v}
            progress = api.control(operation_id, update, said)["progress"]
        else:
            progress = await send_update(Settings.from_env(), operation_id, update, payload, suggest=True)
        console.print(f"{update}: accepted. {operation_id} is at: {progress.get('step')}")

    run_command(body())


@op_app.command("status")
def op_status(operation_id: OperationId, output: OutputOption = Output.table):
    """Where an operation stands and why it stopped, if it did."""
    from regatta.temporal.operations import status

    async def body():
        api = api_client()
        described = api.status(operation_id) if api is not None else await status(Settings.from_env(), operation_id, suggest=True)
        if output == "json":
            print(json.dumps(described, indent=2, default=str))
        else:
            from regatta.cli.render import render_status

            render_status(described, console)
        if described["status"] != "RUNNING":  # an ended one that did not succeed exits 1, as its start would have
            judge(described, f"{operation_id} ended", say_success=False)

    run_command(body())


@op_app.command("list")
def op_list(running: Annotated[bool, typer.Option("--running", help="only the ones still running")] = False,
            limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many, newest first")] = 20,
            output: ListOutputOption = ListOutput.table):
    """Operations, newest first: id, type, cluster, status, what each came to, when it started and ended."""
    from regatta.temporal.connect import connect
    from regatta.temporal.operations import list_operations

    async def body():
        api = api_client()
        found = (api.operations(limit=limit, running=running) if api is not None  # what the token may see
                 else await list_operations(await connect(Settings.from_env()), limit=limit, running_only=running))
        from regatta.cli.render import show_list

        if not found and output in ("table", "wide"):
            console.print("no operations" + (" running" if running else ""))
            return
        colour = {True: "green", False: "red"}
        show_list(found, output, title=f"{len(found)} operations, newest first",
                  columns=("OPERATION", "TYPE", "CLUSTER", "STATUS", "OUTCOME", "STARTED", "CLOSED"),
                  row=lambda o: (o["id"], o["type"], o["cluster"] or "—", o["status"], o["outcome"] or "",
                                 f"{o['started']:%Y-%m-%d %H:%M:%S}" if o["started"] else "",
                                 f"{o['closed']:%Y-%m-%d %H:%M:%S}" if o["closed"] else ""),
                  name=lambda o: o["id"], data=lambda o: o,
                  colours=lambda o: {4: colour[o["succeeded"]]} if o["succeeded"] is not None else {})

    run_command(body())


@op_app.command("approve")
def op_approve(operation_id: OperationId, comment: Annotated[str, typer.Option(help="why")] = "",
               approver: Annotated[str | None, typer.Option(help="who approves (default: $USER)")] = None,
               stage: Annotated[str | None, typer.Option(help="a wave's or a policy rollout's stage: refused unless it"
                                                         " is the one waiting")] = None):
    """Approve an operation waiting for a second person (a decommission, a wave's or a rollout's stage)."""
    import getpass

    control(operation_id, "approve", {"approver": approver or getpass.getuser(), "comment": comment,
                                      **({"stage": stage} if stage else {})})


@op_app.command("pause")
def op_pause(operation_id: OperationId, reason: Annotated[str, typer.Option(help="why")] = ""):
    """Hold the operation at the next safe point (between batches)."""
    import getpass

    control(operation_id, "pause", {"reason": reason, "requested_by": getpass.getuser()})


@op_app.command("resume")
def op_resume(operation_id: OperationId):
    """Continue a paused operation."""
    import getpass

    control(operation_id, "resume", {"requested_by": getpass.getuser()})


@op_app.command("abort")
def op_abort(operation_id: OperationId, reason: Annotated[str, typer.Option(help="why")] = ""):
    """Stop after the step in flight, leaving the cluster consistent and serving."""
    import getpass

    control(operation_id, "abort", {"reason": reason, "requested_by": getpass.getuser()})


@op_app.command("skip")
def op_skip(operation_id: OperationId, cluster: Annotated[str, typer.Argument(help="the cluster to leave out")],
            reason: Annotated[str, typer.Option(help="why (the audit trail keeps it)")] = ""):
    """Leave a cluster that has not started out of a wave or a policy rollout."""
    import getpass

    control(operation_id, "skip", {"cluster": cluster, "reason": reason, "requested_by": getpass.getuser()})


@op_app.command("retry")
def op_retry(operation_id: OperationId, cluster: Annotated[str, typer.Argument(help="the failed cluster")]):
    """Try a failed cluster of the running stage of a wave or a policy rollout again."""
    import getpass

    control(operation_id, "retry", {"cluster": cluster, "requested_by": getpass.getuser()})
