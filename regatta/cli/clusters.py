"""`regatta clusters ...` (the fleet as the inventory knows it), `regatta cluster hold|release`
(maintenance holds that keep waves and schedules off one cluster) and `regatta cluster evacuate`
(every placed application moved to other clusters).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from regatta.cli.arguments import ListOutput, ListOutputOption, Output, OutputOption, parse_selector, parse_until
from regatta.cli.context import fleet_now, open_inventory
from regatta.cli.exits import Unreachable, run_command
from regatta.cli.render import console, counted, errors, minute, print_columns, render_clusters
from regatta.formats import fleet_data
from regatta.rules import cost, selectors
from regatta.settings import Settings
from regatta.temporal.outcomes import OperationRefused as Refused

# One group under two names (`regatta clusters list`, `regatta cluster hold`; each command answers to both), so nobody
# has to remember which of the two a command was filed under.
clusters_app = typer.Typer(no_args_is_help=True, help="The fleet as the inventory knows it, and one cluster: list, cost,"
                           " import, sync, kubeconfig; maintenance holds that keep waves and schedules off it;"
                           " evacuating its placed applications. `cluster` and `clusters` are the same group.")
cluster_app = clusters_app


@clusters_app.command("list")
def clusters_list(
    selector: Annotated[str | None, typer.Option(help="label selector as kubectl -l takes it, e.g. 'env in (staging,prod),team=payments,!pci'")] = None,
    output: ListOutputOption = ListOutput.table,
    refresh: Annotated[bool, typer.Option(help="ask every cluster for its live state first")] = False,
):
    """The fleet: name, provider, region, labels, versions, health, room, how much CPU the pods
    request and the estimated monthly cost (list prices, or REGATTA_PRICE_FILE's; * marks a
    cluster with a node size the price list lacks)."""

    def body():
        inventory = open_inventory()
        wanted = parse_selector(selector)
        if refresh:
            from regatta.inventory.sweep import sweep
            from regatta.kube.connect import ClusterConnections

            sweep(ClusterConnections(sim_url=Settings.from_env().sim_url), inventory,
                  [r.name for r in inventory.list_clusters() if selectors.labels_match(wanted, r.labels)])
        from regatta.inventory import fleet_reads

        # The fleet view's read (validated when written, not again): 10,000 clusters in a fraction of a second.
        records = [r for r in fleet_reads.fleet(inventory) if selectors.labels_match(wanted, r.labels)]
        try:
            prices = fleet_data.price_list()
        except fleet_data.FleetDataError as error:
            raise Refused(f"REGATTA_PRICE_FILE: {error}") from None
        with fleet_reads.collector_paused():
            costs = {r.name: cost.cluster_cost(r, prices) for r in records}
            if output == "json":
                from pydantic_core import to_json

                # pydantic's encoder (Rust): json.dumps with an indent is pure Python, 3 s for 10,000 clusters
                print(to_json([{**r.model_dump(mode="json"), "estimated_cost": costs[r.name].model_dump(
                    mode="json", exclude={"cluster"})} for r in records], indent=2).decode())
                return
            if output in ("yaml", "name"):
                from regatta.cli.render import show_list

                show_list(records, output, title="", columns=(), row=lambda r: (), name=lambda r: r.name,
                          data=lambda r: {**r.model_dump(mode="json"), "estimated_cost": costs[r.name].model_dump(
                              mode="json", exclude={"cluster"})})
                return
            render_clusters(records, now=fleet_now() if any(r.hold for r in records) else None, costs=costs,
                            fit=output == "table")

    run_command(body)


@clusters_app.command("cost")
def clusters_cost(
    by: Annotated[str, typer.Option(help="environment, provider, region or label:<key>")] = "environment",
    output: OutputOption = Output.table,
):
    """The fleet's estimated cost per month, summed per environment, provider, region or label
    value (list prices, or REGATTA_PRICE_FILE's), the dearest first."""

    def body():
        records = open_inventory().list_clusters()
        try:
            prices = fleet_data.price_list()
            totals = cost.cost_by(records, prices, by)
        except fleet_data.FleetDataError as error:
            raise Refused(f"REGATTA_PRICE_FILE: {error}") from None
        except ValueError as error:
            raise Refused(f"--by: {error}") from None
        if output == "json":
            print(json.dumps({"by": by, "currency": prices.currency, "as_of": prices.as_of.isoformat(),
                              "monthly": totals}, indent=2))
            return
        amounts = [f"{monthly:,.2f}" for monthly in [*totals.values(), sum(totals.values())]]
        width = max(len(a) for a in amounts)
        print_columns(f"estimated {prices.currency} a month by {by} (prices of {prices.as_of.isoformat()})",
                      (by.upper(), "PER MONTH"), [(key, amount.rjust(width)) for key, amount in
                                                  zip([*totals, "all"], amounts, strict=True)])

    run_command(body)


@clusters_app.command("hold")
def cluster_hold(
    cluster: Annotated[str, typer.Argument(help="cluster name, as `regatta clusters list` shows it")],
    until: Annotated[str, typer.Option(help="until when: 2026-12-01T08:00:00Z, or a duration such as 48h or 3d")],
    reason: Annotated[str, typer.Option(help="why; every wave that waits on it shows this")],
    held_by: Annotated[str | None, typer.Option(help="who holds it (default: $USER)")] = None,
    evacuate: Annotated[bool, typer.Option(help="also move its placed applications to other clusters while the hold"
                                           " lasts (before a blue/green replacement of the cluster)")] = False,
):
    """Keep every wave and schedule off a cluster until a time. A wave that reaches it waits (and
    shows why); a direct upgrade is refused unless started with an override reason. With
    --evacuate, its placed applications move elsewhere now (an EvacuateCluster), and the fleet
    sweep moves any that land there later."""
    import getpass

    from regatta.rules import placement

    async def body():
        now = fleet_now()
        inventory = open_inventory()
        who = held_by or getpass.getuser()
        hold = inventory.hold_cluster(cluster, until=parse_until(until, now), reason=reason, held_by=who, now=now,
                                      evacuate=evacuate)
        console.print(f"{cluster} is held until {minute(hold.until)} by {hold.held_by}: {hold.reason}")
        if evacuate and placement.placed_on(inventory.placements(), cluster):
            await _start_evacuation(cluster, reason=f"held by {who}: {reason}", requested_by=who, ticket=None, wait=False)
        elif evacuate:
            console.print(f"no placed application runs on {cluster}: nothing to move")

    run_command(body())


async def _start_evacuation(cluster: str, *, reason: str, requested_by: str, ticket: str | None, wait: bool,
                            unreachable_ok: bool = False) -> None:
    from regatta.cli.op import announce
    from regatta.models.placement import EvacuateClusterInput
    from regatta.temporal.admission import StartRefused, admit
    from regatta.temporal.operations import start

    request = EvacuateClusterInput(cluster=cluster, reason=reason, requested_by=requested_by, ticket=ticket,
                                   unreachable_ok=unreachable_ok)
    try:
        admission = admit(request, inventory=open_inventory(), outbound_rules=Settings.from_env().outbound)
    except StartRefused as refusal:
        raise Refused(str(refusal)) from None
    assert admission.holder is not None
    handle = await start(Settings.from_env(), request, cluster=admission.holder)
    await announce(handle, f"evacuation of {cluster}: every placed application moves, new replicas up elsewhere before"
                   " any go", wait=wait)


@clusters_app.command("evacuate")
def cluster_evacuate(
    cluster: Annotated[str, typer.Argument(help="the cluster to empty of placed applications")],
    reason: Annotated[str, typer.Option(help="why; the audit trail and each move keep it")],
    ticket: Annotated[str | None, typer.Option(help="change ticket")] = None,
    unreachable_ok: Annotated[bool, typer.Option(help="the cluster is lost: move its share without reaching it (what"
                                                 " it ran stays there)")] = False,
    wait: Annotated[bool, typer.Option(help="follow it until it ends")] = False,
    requested_by: Annotated[str | None, typer.Option(help="who asks (default: $USER)")] = None,
):
    """Move every placed application off a cluster: for each, new replicas up and available on other
    clusters before any go here, in steps its PodDisruptionBudget allows; traffic follows."""
    import getpass

    run_command(_start_evacuation(cluster, reason=reason, requested_by=requested_by or getpass.getuser(), ticket=ticket,
                                  wait=wait, unreachable_ok=unreachable_ok))


@clusters_app.command("release")
def cluster_release(cluster: Annotated[str, typer.Argument(help="the held cluster")],
                    released_by: Annotated[str | None, typer.Option(help="who releases it (default: $USER)")] = None):
    """End a cluster's maintenance hold now."""
    import getpass

    def body():
        hold = open_inventory().release_hold(cluster, released_by=released_by or getpass.getuser())
        console.print(f"{cluster} released (it was held until {minute(hold.until)}: {hold.reason})")

    run_command(body)


@clusters_app.command("import")
def clusters_import(fleet: Annotated[str | None, typer.Argument(help="fleet file (YAML)")] = None):
    """Register the clusters a fleet file describes in the inventory."""
    from regatta.formats.fleet_file import FleetFileError, load_fleet
    from regatta.inventory.sweep import register_fleet

    def body():
        try:
            spec = load_fleet(fleet)
        except FleetFileError as error:
            raise Refused(str(error)) from None
        register_fleet(open_inventory(), spec)
        console.print(f"registered {counted(len(spec.clusters), 'cluster')} and {counted(len(spec.dr_pairs), 'DR pair')}")

    run_command(body)


@clusters_app.command("sync")
def clusters_sync(selector: Annotated[str | None, typer.Option(help="only clusters this label selector takes (as kubectl -l: env=prod,tier!=3,!pci)")] = None):
    """Refresh versions and health of the inventory's clusters from the clusters themselves."""
    from regatta.inventory.sweep import sweep
    from regatta.kube.connect import ClusterConnections

    def body():
        inventory = open_inventory()
        wanted = parse_selector(selector)
        names = [r.name for r in inventory.list_clusters() if selectors.labels_match(wanted, r.labels)]
        fresh = sweep(ClusterConnections(sim_url=Settings.from_env().sim_url), inventory, names)
        console.print(f"synced {counted(len(fresh), 'cluster')}; {sum(r.health == 'healthy' for r in fresh)} healthy")

    run_command(body)


@clusters_app.command("kubeconfig")
def clusters_kubeconfig(
    cluster: Annotated[str, typer.Argument(help="cluster name, as `regatta clusters list` shows it")],
    output: Annotated[str | None, typer.Option("--output", help="write it to this file (mode 0600) instead of stdout")] = None,
):
    """A kubeconfig for kubectl: for a simulated cluster its HTTPS server, CA and token; for EKS,
    GKE and AKS the exec-plugin form their own CLIs write (no credential stored); for a kubeconfig
    cluster its own context."""
    import getpass

    import yaml

    from regatta.clouds import CloudError
    from regatta.formats.kubeconfig import write_private
    from regatta.kube.connect import ClusterConnections
    from regatta.models import OperationRecord

    def body():
        inventory = open_inventory()
        record = inventory.get_cluster(cluster)
        try:
            config = ClusterConnections(sim_url=Settings.from_env().sim_url).provider(record.ref).kubeconfig(record.ref)
        except CloudError as error:
            if error.retryable:
                raise Unreachable(str(error)) from None
            raise Refused(str(error)) from None
        text = yaml.safe_dump(config, sort_keys=False)
        inventory.append_audit(OperationRecord(
            operation_id="-", operation="kubeconfig", cluster=record.name, requested_by=getpass.getuser(),
            action="kubeconfig", outcome="handed_out", detail=f"to {output or 'stdout'}"))  # an access decision
        if output is None:
            print(text, end="")
            return
        write_private(output, text)
        errors.print(f"wrote {output}: kubectl --kubeconfig {output} get nodes")

    run_command(body)
