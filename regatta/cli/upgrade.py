"""`regatta upgrade start`: a rolling upgrade of one cluster; `regatta upgrade readiness`: what a target
version would break on each cluster, before any upgrade starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from regatta.cli.arguments import (
    Accept,
    Compress,
    Output,
    OutputOption,
    StrategyChoice,
    TwinFile,
    parse_accepted,
    parse_selector,
)
from regatta.cli.context import api_client, fleet_now, open_inventory
from regatta.cli.exits import run_command
from regatta.cli.op import admit_and_start, start_over_api
from regatta.cli.render import console, print_columns, upgrade_plan
from regatta.rules import selectors
from regatta.settings import Settings
from regatta.temporal.outcomes import OperationRefused as Refused

if TYPE_CHECKING:
    from regatta.temporal.admission import Admission

upgrade_app = typer.Typer(no_args_is_help=True, help="Rolling upgrades of one cluster, and what a target version would break.")


@upgrade_app.command("start")
def upgrade_start(
    cluster: Annotated[str, typer.Argument(help="cluster name, as `regatta clusters list` shows it")],
    to: Annotated[str, typer.Option("--to", help="target Kubernetes version, e.g. 1.31; several minors above the"
                                                 " control plane go through each in turn")],
    strategy: Annotated[StrategyChoice, typer.Option(help="surge (the cloud replaces nodes) or blue_green (new pool, we drain the old)")] = StrategyChoice.surge,
    node_image: Annotated[str | None, typer.Option(help="also roll every node pool onto this node image of --to (EKS AMI"
                                                         " release version, GKE node version, AKS node image version; the exact"
                                                         " release on Cluster API, v1.35.1, or k3s/RKE2, v1.35.1+k3s1)")] = None,
    ticket: Annotated[str | None, typer.Option(help="change ticket this upgrade is done under")] = None,
    wait: Annotated[bool, typer.Option(help="follow progress until the upgrade ends")] = False,
    requested_by: Annotated[str | None, typer.Option(help="who asks (default: $USER)")] = None,
    max_unavailable: Annotated[int | None, typer.Option(help="nodes drained at once (blue_green)")] = None,
    drain_timeout: Annotated[float | None, typer.Option(help="seconds a node's drain may take before the upgrade stops")] = None,
    poll_interval: Annotated[float | None, typer.Option(help="seconds between polls of cloud operations and health")] = None,
    override_hold: Annotated[str | None, typer.Option(help="go ahead although the cluster is under a maintenance hold,"
                                                           " for this reason (audited)")] = None,
    accept_insights: Annotated[str | None, typer.Option(help="EKS: go ahead although upgrade insights report ERROR for"
                                                             " --to, for this reason (audited)")] = None,
    launch_template_version: Annotated[list[str] | None, typer.Option(
        help="EKS node group on an AMI of its own launch template: NODE_GROUP=VERSION, the template version holding the"
             " AMI for --to (repeatable)")] = None,
    accept: Accept = None,
    drain_unmanaged_pods: Annotated[bool, typer.Option(help="let a drain delete pods no controller recreates (kubectl"
                                                            " drain --force)")] = False,
    drain_emptydir_data: Annotated[bool, typer.Option(help="let a drain evict pods with emptyDir data (kubectl drain"
                                                           " --delete-emptydir-data)")] = False,
    soak: Annotated[float | None, typer.Option(help="over several minors: seconds the cluster runs each minor on the"
                                                    " way before the next (default 300)")] = None,
    keep_old_pools: Annotated[float | None, typer.Option(help="blue_green: seconds the old pools stay cordoned and empty"
                                                              " once every pool runs the target, for a way back"
                                                              " (`regatta upgrade rollback`)")] = None,
    plan_only: Annotated[bool, typer.Option(help="print what the upgrade would do, minor by minor, and start nothing")] = False,
    hooks_file: Annotated[str | None, typer.Option(help="a YAML list of hooks (name, at, webhook or smoke_test), each"
                                                        " gating the next step: docs/upgrades.md#hooks")] = None,
    backup: Annotated[bool | None, typer.Option("--backup/--no-backup", help="a Velero backup before each control plane"
                                                " moves (default: as the cluster's label backup-before-upgrade says)")] = None,
):
    """Start a rolling upgrade of one cluster (operation id: cluster-CLUSTER)."""
    import getpass

    from regatta.models import ClusterUpgradeInput

    templates = {}
    for pair in launch_template_version or []:
        group, _, version = pair.partition("=")
        if not group or not version:
            run_command(_refuse(f"--launch-template-version {pair!r}: give NODE_GROUP=VERSION, e.g. hardened=7"))
            return
        templates[group] = version
    try:
        accepted = parse_accepted(accept)
        hooks = read_hooks(hooks_file) if hooks_file else None
    except Refused as refused:
        run_command(_refuse(str(refused)))
        return
    overrides = {k: v for k, v in {"max_unavailable": max_unavailable, "drain_timeout_seconds": drain_timeout,
                                   "poll_interval_seconds": poll_interval, "override_hold": override_hold,
                                   "accept_insights": accept_insights, "launch_template_versions": templates or None,
                                   "accept_findings": accepted or None,
                                   "drain_unmanaged_pods": drain_unmanaged_pods or None,
                                   "drain_emptydir_data": drain_emptydir_data or None, "soak_seconds": soak,
                                   "keep_old_pools_seconds": keep_old_pools,
                                   "hooks": hooks, "backup_before_control_plane": backup}.items()
                 if v is not None}
    async def body():
        from pydantic import ValidationError

        if plan_only:
            return await show_plan(cluster, to, strategy.value, node_image, overrides)
        if (api := api_client()) is not None:  # through the API: it checks, and the token is who asks
            if node_image:
                raise Refused("--node-image: give node_images per cloud over the API (POST /v1/operations), or unset"
                              " REGATTA_API_URL")

            def said(started: dict) -> str:
                through = f" through {' → '.join(started['path'])}" if len(started.get("path") or []) > 1 else ""
                return f"{cluster} to {to}{through}"

            await start_over_api(api, "upgrade", ticket, {"cluster": cluster, "target_version": to,
                                                          "strategy": strategy.value, **overrides},
                                 headline=said, wait=wait)
            return
        inventory = open_inventory()
        record = inventory.get_cluster(cluster)
        try:
            request = ClusterUpgradeInput(cluster=cluster, target_version=to, strategy=strategy.value, ticket=ticket,
                                          requested_by=requested_by or getpass.getuser(),
                                          node_images={record.provider: node_image} if node_image else {}, **overrides)
        except ValidationError as error:
            raise Refused(str(error)) from None
        onto = f" on node image {node_image}" if node_image else ""
        def headline(admission: Admission) -> str:
            through = f" through {' → '.join(admission.path)}" if len(admission.path) > 1 else ""
            return f"{cluster} to {to}{onto} by {strategy.value}{through}"

        await admit_and_start(request, inventory=inventory, now=fleet_now() if record.hold else None,
                              wait=wait, headline=headline,
                              renamed={f"node_images.{record.provider}:": "--node-image:"})

    run_command(body())


@upgrade_app.command("rollback")
def upgrade_rollback(
    cluster: Annotated[str, typer.Argument(help="cluster name, as `regatta clusters list` shows it")],
    reason: Annotated[str, typer.Option(help="why go back (audited)")],
    ticket: Annotated[str | None, typer.Option(help="change ticket this rollback is done under")] = None,
    wait: Annotated[bool, typer.Option(help="follow progress until the rollback ends")] = False,
    requested_by: Annotated[str | None, typer.Option(help="who asks (default: $USER)")] = None,
    override_hold: Annotated[str | None, typer.Option(help="go ahead although the cluster is under a maintenance hold,"
                                                           " for this reason (audited)")] = None,
    poll_interval: Annotated[float | None, typer.Option(help="seconds between polls of cloud operations and health")] = None,
):
    """Take the cluster's last upgrade back, one minor, where its cloud allows it (EKS, within 7 days of the
    upgrade): node groups first, then the control plane (operation id: cluster-CLUSTER). The EKS managed
    add-ons stay where the upgrade moved them."""
    import getpass

    from regatta.models import ClusterRollbackInput

    overrides = {k: v for k, v in {"override_hold": override_hold, "poll_interval_seconds": poll_interval}.items()
                 if v is not None}

    async def body():
        from pydantic import ValidationError

        if await _go_back_if_kept(cluster, reason, requested_by=requested_by or getpass.getuser(), wait=wait):
            return
        if (api := api_client()) is not None:
            await start_over_api(api, "rollback", ticket, {"cluster": cluster, "reason": reason, **overrides},
                                 headline=f"rollback of {cluster}", wait=wait)
            return
        inventory = open_inventory()
        record = inventory.get_cluster(cluster)
        try:
            request = ClusterRollbackInput(cluster=cluster, reason=reason, ticket=ticket,
                                           requested_by=requested_by or getpass.getuser(), **overrides)
        except ValidationError as error:
            raise Refused(str(error)) from None
        await admit_and_start(request, inventory=inventory, now=fleet_now() if record.hold else None,
                              wait=wait, headline=f"rollback of {cluster}'s last upgrade ({record.control_plane_version}"
                                                  " back one minor)")

    run_command(body())


async def _go_back_if_kept(cluster: str, reason: str, *, requested_by: str, wait: bool) -> bool:
    """A blue/green upgrade of the cluster still keeping its old pools: going back is its `go_back` (an uncordon and
    a drain of the new pools), not a rollback of its own. False when no upgrade of it keeps any."""
    from regatta.rules.operation_ids import operation_id
    from regatta.temporal.operations import send_update, status

    operation = operation_id(cluster)
    api = api_client()
    try:
        found = api.status(operation) if api is not None else await status(Settings.from_env(), operation, suggest=True)
    except Refused:
        return False  # no operation of that cluster at all
    if found.get("status") != "RUNNING" or (found.get("progress") or {}).get("phase") != "keeping":
        return False
    if api is not None:
        api.control(operation, "go_back", {"reason": reason})
    else:
        await send_update(Settings.from_env(), operation, "go_back", {"reason": reason, "requested_by": requested_by})
    console.print(f"{operation} keeps the old node pools: going back to them (go_back)")
    if wait:  # the upgrade ends rolled_back: for this command, what was asked
        from regatta.cli.op import follow_over_api
        from regatta.cli.render import follow
        from regatta.temporal.connect import connect
        from regatta.temporal.outcomes import OperationFailed

        try:
            if api is not None:
                await follow_over_api(api, operation)
            else:
                await follow((await connect(Settings.from_env())).get_workflow_handle(operation), console)
        except OperationFailed as ended:
            if "went back to" not in str(ended):
                raise
            console.print(f"[green]{str(ended).removeprefix('rolled_back: ')}[/]")
    return True


async def show_plan(cluster: str, to: str, strategy: str, node_image: str | None, overrides: dict) -> None:
    """`upgrade start --plan-only`: the minors, and what each does, judged as the start would judge them (the
    same admission), from the inventory; nothing starts."""
    from pydantic import ValidationError

    from regatta.models import ClusterUpgradeInput
    from regatta.temporal.admission import StartRefused, admit

    inventory = open_inventory()
    record = inventory.get_cluster(cluster)
    try:
        request = ClusterUpgradeInput(cluster=cluster, target_version=to, strategy=strategy,
                                      node_images={record.provider: node_image} if node_image else {}, **overrides)
        admission = admit(request, inventory=inventory, now=fleet_now() if record.hold else None,
                          outbound_rules=Settings.from_env().outbound)
    except ValidationError as error:
        raise Refused(str(error)) from None
    except StartRefused as refusal:
        raise Refused(str(refusal).replace(f"node_images.{record.provider}:", "--node-image:")) from None
    for line in upgrade_plan(cluster=cluster, control_plane=record.control_plane_version, path=admission.path,
                             pools=[pool.name for pool in record.node_pools], strategy=strategy, provider=record.provider,
                             soak_seconds=request.soak_seconds, node_image=node_image):
        console.print(line, highlight=False)


def read_hooks(path: str) -> list:
    """The hooks a YAML file lists, as they go into the input, each checked: a problem is FILE:LINE: what is wrong."""
    from pathlib import Path

    from regatta.formats.yaml_lines import read_items
    from regatta.models.health import UpgradeHook

    class HooksFileError(ValueError):
        pass

    try:
        return read_items(Path(path), UpgradeHook, what="hooks file", error=HooksFileError,
                          shape="a YAML list of hooks, each with name, at, and webhook or smoke_test")
    except HooksFileError as error:
        raise Refused(f"--hooks-file {path}: {error}") from None


async def _refuse(why: str) -> None:
    raise Refused(why)


@upgrade_app.command("readiness")
def upgrade_readiness(
    to: Annotated[str, typer.Option("--to", help="the Kubernetes version to check the clusters against, e.g. 1.32")],
    selector: Annotated[str | None, typer.Option(help="label selector as kubectl -l takes it, e.g. 'env in (staging,prod),team=payments,!pci'")] = None,
    output: OutputOption = Output.table,
):
    """What --to would break on each cluster, read from the clusters now: APIs it stops serving that
    clients or manifests still use, managed add-ons with no version for it, budgets that never let a
    drain through, the cloud's own insights, node pools too far behind. Blocking findings stop an
    upgrade until fixed or accepted by id; the exit code is 0 either way (`ready` says which)."""

    def body():
        from pydantic_core import to_json

        from regatta.inventory.readiness_check import check_fleet
        from regatta.kube.connect import ClusterConnections

        wanted = parse_selector(selector)
        records = [r for r in open_inventory().list_clusters() if selectors.labels_match(wanted, r.labels)]
        reports = check_fleet(ClusterConnections(sim_url=Settings.from_env().sim_url), records, to)
        if output == "json":
            print(to_json([r.model_dump(mode="json") for r in reports], indent=2).decode())
            return
        rows = []
        for report in reports:
            counts = {s: sum(f.severity == s for f in report.findings) for s in ("blocking", "warning", "info")}
            said = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"
            rows.append((report.cluster, report.current_version, " → ".join(report.path) or "-",
                         "yes" if report.ready else "no", said))
        print_columns(f"readiness for {to}", ("CLUSTER", "VERSION", "PATH", "READY", "FINDINGS"), rows,
                      [{3: "green" if report.ready else "red"} for report in reports])
        for report in reports:
            for finding in report.findings:
                if finding.severity != "info":
                    line = f"{report.cluster} {finding.severity} [{finding.id}] {finding.summary} — {finding.what_to_do}"
                    # the summary quotes the cluster's own words: no escape sequence of its reaches the terminal
                    console.print("".join(ch for ch in line if ch.isprintable()), highlight=False, markup=False)

    run_command(body)


@upgrade_app.command("rehearse")
def upgrade_rehearse(
    cluster: Annotated[str, typer.Argument(help="cluster name, as `regatta clusters list` shows it")],
    to: Annotated[str, typer.Option("--to", help="target Kubernetes version, e.g. 1.31")],
    strategy: Annotated[StrategyChoice, typer.Option(help="surge or blue_green")] = StrategyChoice.surge,
    node_image: Annotated[str | None, typer.Option(help="also roll every node pool onto this node image of --to")] = None,
    drain_timeout: Annotated[float | None, typer.Option(help="seconds a node's drain may take before the upgrade"
                                                             " stops")] = None,
    accept: Accept = None,
    drain_unmanaged_pods: Annotated[bool, typer.Option(help="let a drain delete pods no controller recreates")] = False,
    drain_emptydir_data: Annotated[bool, typer.Option(help="let a drain evict pods with emptyDir data")] = False,
    twin: TwinFile = None,
    compress: Compress = 60.0,
    output: OutputOption = Output.table,
):
    """Run the upgrade on a twin of the cluster, in a private simulator and Temporal of its own, and say what it would
    do on the real one: how long it would take, which drains its budgets would hold (the budgets and pods), where a
    drain policy would escalate, and whether it would fail or wait for a person. Touches nothing real; exit 0 whatever
    it predicts."""

    def body():
        from regatta.cli.rehearse import keep_report, rehearse, render_upgrades, twin_for
        from regatta.models import ClusterUpgradeInput

        fleet = twin_for([cluster], twin)
        provider = next(c.provider for c in fleet.clusters if c.name == cluster)
        overrides = {k: v for k, v in {"drain_timeout_seconds": drain_timeout, "accept_findings": parse_accepted(accept) or None,
                                       "drain_unmanaged_pods": drain_unmanaged_pods or None,
                                       "drain_emptydir_data": drain_emptydir_data or None}.items() if v is not None}
        try:
            request = ClusterUpgradeInput(cluster=cluster, target_version=to, strategy=strategy.value,
                                          node_images={provider: node_image} if node_image else {}, **overrides)
        except ValueError as error:
            raise Refused(str(error)) from None
        rehearsed = rehearse(fleet, {cluster: request}, compress=compress)
        render_upgrades(rehearsed, output=output.value)
        keep_report(list(rehearsed.values()), subject=cluster)

    run_command(body)
