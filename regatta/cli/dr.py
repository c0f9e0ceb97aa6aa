"""`regatta failover`, `regatta failback` and `regatta dr pair|unpair|list`: disaster recovery.
"""

from __future__ import annotations

from typing import Annotated

import typer

from regatta.cli.arguments import ListOutput, ListOutputOption
from regatta.cli.context import open_inventory
from regatta.cli.exits import run_command
from regatta.cli.op import admit_and_start
from regatta.cli.render import console, counted, show_list
from regatta.rules import recovery
from regatta.temporal.admission import Admission
from regatta.temporal.outcomes import OperationRefused as Refused

dr_app = typer.Typer(no_args_is_help=True, help="Disaster-recovery pairs: which cluster stands by for which.")


def failover(
    cluster: Annotated[str, typer.Argument(help="the primary whose service moves")],
    to: Annotated[str, typer.Option("--to", help="its standby, as `regatta dr list` shows it")],
    ticket: Annotated[str | None, typer.Option(help="incident or change ticket")] = None,
    drill: Annotated[bool, typer.Option(help="restore beside the real workloads and measure RTO; fence nothing, move no traffic")] = False,
    override_capacity: Annotated[str | None, typer.Option(help="go ahead although the standby looks too small, for this reason")] = None,
    require_approval: Annotated[bool, typer.Option(help="wait for a second person before fencing (prod always does)")] = False,
    fence_timeout: Annotated[float | None, typer.Option(help="seconds to keep trying to reach the primary to fence it")] = None,
    wait: Annotated[bool, typer.Option(help="follow it until it ends")] = False,
    requested_by: Annotated[str | None, typer.Option(help="who asks (default: $USER)")] = None,
    poll_interval: Annotated[float | None, typer.Option(help="seconds between polls")] = None,
):
    """Move a primary's service to its standby: check, fence, restore, shift traffic, verify; report RTO and RPO."""
    import getpass

    from pydantic import ValidationError

    from regatta.models import DRFailoverInput

    async def body():
        extra = {k: v for k, v in {"poll_interval_seconds": poll_interval, "fence_timeout_seconds": fence_timeout}.items()
                 if v is not None}
        try:
            request = DRFailoverInput(cluster=cluster, standby=to, ticket=ticket, requested_by=requested_by or getpass.getuser(),
                                      drill=drill, override_capacity=override_capacity, require_approval=require_approval,
                                      **extra)
        except ValidationError as error:
            raise Refused(str(error)) from None

        def approval(admission: Admission) -> str | None:
            assert admission.holder is not None
            gate = recovery.dr_needs_approval(admission.holder.environment, requested=require_approval, drill=drill)
            return f"regatta op approve {admission.operation_id}" if gate else None

        await admit_and_start(request, inventory=open_inventory(), wait=wait,
                              headline=f"{'drill of a ' if drill else ''}failover of {cluster} to {to}", approval=approval)

    run_command(body())


def failback(
    cluster: Annotated[str, typer.Argument(help="the original primary, healthy again")],
    ticket: Annotated[str | None, typer.Option(help="change ticket")] = None,
    override_capacity: Annotated[str | None, typer.Option(help="go ahead although the primary looks too small, for this reason")] = None,
    require_approval: Annotated[bool, typer.Option(help="wait for a second person before fencing (prod always does)")] = False,
    wait: Annotated[bool, typer.Option(help="follow it until it ends")] = False,
    requested_by: Annotated[str | None, typer.Option(help="who asks (default: $USER)")] = None,
    poll_interval: Annotated[float | None, typer.Option(help="seconds between polls")] = None,
):
    """Return service from the standby to its primary, bringing back what was created on the standby."""
    import getpass

    from pydantic import ValidationError

    from regatta.models import DRFailbackInput

    async def body():
        inventory = open_inventory()
        extra = {"poll_interval_seconds": poll_interval} if poll_interval is not None else {}
        try:
            request = DRFailbackInput(cluster=cluster, ticket=ticket, requested_by=requested_by or getpass.getuser(),
                                      override_capacity=override_capacity, require_approval=require_approval, **extra)
        except ValidationError as error:
            raise Refused(str(error)) from None
        def approval(admission: Admission) -> str | None:  # a failback fences the standby and returns to the primary
            assert admission.holder is not None
            gate = recovery.dr_needs_approval(admission.holder.environment, requested=require_approval)
            return f"regatta op approve {admission.operation_id}" if gate else None

        await admit_and_start(request, inventory=inventory, wait=wait,
                              headline=f"failback of {cluster} from {inventory.dr_pair(cluster).standby}", approval=approval)

    run_command(body())


@dr_app.command("pair")
def dr_pair(primary: Annotated[str, typer.Argument(help="the cluster that serves")],
            standby: Annotated[str, typer.Argument(help="the cluster in another region or cloud that takes over")]):
    """Declare STANDBY the standby of PRIMARY (both get the dr-role label)."""
    run_command(lambda: console.print(f"{open_inventory().declare_dr_pair(primary, standby).standby} stands by for {primary}"))


@dr_app.command("unpair")
def dr_unpair(primary: Annotated[str, typer.Argument(help="the primary of the pair")]):
    """Undeclare a pair (refused while the standby serves)."""
    def body() -> None:
        open_inventory().undeclare_dr_pair(primary)
        console.print(f"{primary} has no standby now")

    run_command(body)


@dr_app.command("list")
def dr_list(output: ListOutputOption = ListOutput.table):
    """Every pair and which side serves."""

    def body():
        pairs = open_inventory().dr_pairs()
        show_list(pairs, output, title=counted(len(pairs), "DR pair"), columns=("PRIMARY", "STANDBY", "SERVING", "LAST OPERATION", "SINCE"),
              row=lambda p: (p.primary, p.standby, p.primary if p.serving == "primary" else p.standby,
                             p.last_operation or "", f"{p.updated_at:%Y-%m-%d %H:%M}" if p.updated_at else ""),
              name=lambda p: p.primary, colours=lambda p: {} if p.serving == "primary" else {2: "yellow"})

    run_command(body)
