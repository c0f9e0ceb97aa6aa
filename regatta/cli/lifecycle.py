"""`regatta provision` and `regatta decommission`: building a cluster and deleting one nothing needs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from regatta.cli.context import open_inventory
from regatta.cli.exits import run_command
from regatta.cli.op import admit_and_start
from regatta.temporal.outcomes import OperationRefused as Refused


def provision(
    file: Annotated[str, typer.Option("--file", help="the cluster to build, as YAML (see README)")],
    wait: Annotated[bool, typer.Option(help="follow progress until it ends")] = False,
    ticket: Annotated[str | None, typer.Option(help="change ticket (overrides the file's)")] = None,
    poll_interval: Annotated[float | None, typer.Option(help="seconds between polls of cloud operations")] = None,
):
    """Build a new cluster: control plane, node pools, bootstrap, inventory (all undone on failure)."""
    import getpass

    from regatta.formats.cluster_file import ClusterFileError, load_cluster_file

    async def body():
        overrides = {k: v for k, v in (("ticket", ticket), ("poll_interval_seconds", poll_interval)) if v}
        try:
            request = load_cluster_file(file, defaults={"requested_by": getpass.getuser()}, overrides=overrides)
        except ClusterFileError as error:
            raise Refused(str(error)) from None
        await admit_and_start(request, inventory=open_inventory(), wait=wait,
                              headline=f"{request.provider} cluster {request.name} in {request.region}")

    run_command(body())


def decommission(
    cluster: Annotated[str, typer.Argument(help="cluster name")],
    ticket: Annotated[str | None, typer.Option(help="change ticket")] = None,
    force_empty: Annotated[bool, typer.Option(help="delete even though non-system workloads still run")] = False,
    reason: Annotated[str | None, typer.Option(help="why the workloads may go (required with --force-empty)")] = None,
    evacuate: Annotated[bool, typer.Option(help="move its placed applications to other clusters first (once approved)"
                                           " instead of refusing")] = False,
    wait: Annotated[bool, typer.Option(help="follow it until it ends (it waits for a second person's approval)")] = False,
    requested_by: Annotated[str | None, typer.Option(help="who asks (default: $USER)")] = None,
    poll_interval: Annotated[float | None, typer.Option(help="seconds between polls of cloud operations")] = None,
):
    """Delete a cluster nothing needs any more, after a second person approves (`regatta op approve`)."""
    import getpass

    from regatta.models import DecommissionClusterInput

    async def body():
        extra = {"poll_interval_seconds": poll_interval} if poll_interval else {}
        request = DecommissionClusterInput(cluster=cluster, ticket=ticket, requested_by=requested_by or getpass.getuser(),
                                           force_empty=force_empty, force_reason=reason, evacuate=evacuate, **extra)
        await admit_and_start(request, inventory=open_inventory(), wait=wait,
                              headline=f"decommission of {cluster}",
                              approval=lambda admission: f"regatta op approve {admission.operation_id}")

    run_command(body())
