"""`regatta`, the command line: run the pieces (dev, sim, worker), look at the fleet, start and
steer operations.

Exit codes are part of the interface scripts rely on: 0 done, 1 the operation failed (or was
aborted), 2 refused as bad input with nothing changed, 3 a server could not be reached.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from regatta import planning
from regatta.operations import OperationFailed
from regatta.operations import OperationRefused as Refused
from regatta.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Regatta: run a fleet of Kubernetes clusters as one.")
clusters_app = typer.Typer(no_args_is_help=True, help="The fleet as the inventory knows it.")
cluster_app = typer.Typer(no_args_is_help=True, help="One cluster: maintenance holds that keep waves and schedules off it.")
upgrade_app = typer.Typer(no_args_is_help=True, help="Rolling upgrades of one cluster.")
op_app = typer.Typer(no_args_is_help=True, help="Steer a running operation by its id (the Temporal workflow id).")
audit_app = typer.Typer(no_args_is_help=True, help="The audit trail of every operation.")
wave_app = typer.Typer(no_args_is_help=True, help="Fleet-wide patch waves: stages, windows, freezes, a failure budget.")
schedule_app = typer.Typer(no_args_is_help=True, help="Scheduled patch windows and fleet sweeps (Temporal Schedules).")
dr_app = typer.Typer(no_args_is_help=True, help="Disaster-recovery pairs: which cluster stands by for which.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens: who may do what over the HTTP API.")
codec_app = typer.Typer(no_args_is_help=True, help="Payload encryption keys (REGATTA_CODEC_KEYS, REGATTA_CODEC_KEY_FILE).")
app.add_typer(clusters_app, name="clusters")
app.add_typer(cluster_app, name="cluster")
app.add_typer(upgrade_app, name="upgrade")
app.add_typer(op_app, name="op")
app.add_typer(audit_app, name="audit")
app.add_typer(dr_app, name="dr")
app.add_typer(wave_app, name="wave")
app.add_typer(schedule_app, name="schedule")
app.add_typer(token_app, name="token")
app.add_typer(codec_app, name="codec")

console = Console()
errors = Console(stderr=True)

EXIT_DONE, EXIT_FAILED, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3


# Choices as enums: typer refuses anything else itself, with a usage error and exit code 2.
class Output(StrEnum):
    table = "table"
    json = "json"


class StrategyChoice(StrEnum):
    surge = "surge"
    blue_green = "blue_green"


class RoleChoice(StrEnum):
    viewer = "viewer"
    operator = "operator"
    approver = "approver"
    admin = "admin"


class Unreachable(Exception):
    """A server did not answer. Exit code 3."""


def _run(coro_or_fn) -> Any:
    """Run a command body, turning our three kinds of trouble into a message and an exit code."""
    from regatta.inventory import UnknownCluster
    from regatta.temporal_client import TemporalUnreachable

    from regatta.api.client import ApiUnreachable
    from regatta.inventory import DrPairError, HoldError, TokenError
    from regatta.payload_codec import CodecKeyError

    try:
        return asyncio.run(coro_or_fn) if asyncio.iscoroutine(coro_or_fn) else coro_or_fn()
    except (Refused, UnknownCluster, DrPairError, HoldError, TokenError, CodecKeyError, planning.PlanningError) as error:
        errors.print(f"[bold red]refused:[/] {error}")
        raise typer.Exit(EXIT_REFUSED) from None
    except (Unreachable, TemporalUnreachable, ApiUnreachable) as error:
        errors.print(f"[bold red]unreachable:[/] {error}")
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except OperationFailed as error:
        errors.print(f"[bold red]failed:[/] {error}")
        raise typer.Exit(EXIT_FAILED) from None


def _inventory():
    from regatta.inventory import Inventory

    settings = Settings.from_env()
    try:
        return Inventory(settings.database_url)
    except Exception as error:  # noqa: BLE001 - any driver error means the same thing to the operator
        raise Unreachable(f"cannot open the inventory at {settings.database_url}: {error}") from error


def _show(items: list, output: Output, *, title: str, columns: tuple[str, ...], row: Callable[[Any], tuple]) -> None:
    """A list as JSON for scripts, or as a table for people."""
    if output == "json":
        print(json.dumps([item.model_dump(mode="json") for item in items], indent=2))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for item in items:
        table.add_row(*row(item))
    console.print(table)


def _selector(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    pairs = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise Refused(f"selector part {part!r} is not key=value; write e.g. --selector env=prod,team=payments")
        pairs[key.strip()] = value.strip()
    return pairs


# --------------------------------------------------------------------------- the pieces


@app.command()
def dev(
    fleet: Annotated[str | None, typer.Option(help="fleet file (YAML); default: the fleet that ships with Regatta")] = None,
    time_scale: Annotated[float, typer.Option(help="simulated seconds are multiplied by this")] = 0.05,
    temporal_port: int = 7233,
    ui_port: int = 8233,
    sim_port: int = 8600,
    api_port: Annotated[int, typer.Option(help="the HTTP API's port")] = 8700,
    metrics_port: Annotated[int, typer.Option(help="the worker's Prometheus metrics port; 0 turns them off")] = 9464,
    keep_history: Annotated[bool, typer.Option(help="keep Temporal's history in REGATTA_HOME across restarts")] = False,
    demo: Annotated[bool, typer.Option(help="also start a rolling upgrade of one cluster and follow it")] = False,
):
    """Start the embedded default: Temporal dev server, fleet simulator, worker, API. Ctrl-C stops all."""
    from regatta.devstack import DevStack

    stack = DevStack(
        settings=Settings.from_env(), fleet=fleet, time_scale=time_scale, temporal_port=temporal_port,
        ui_port=ui_port, sim_port=sim_port, api_port=api_port, metrics_port=metrics_port, keep_history=keep_history,
    )
    raise typer.Exit(stack.run(demo=demo))


@app.command()
def sim(
    fleet: Annotated[str | None, typer.Option(help="fleet file (YAML)")] = None,
    host: str = "127.0.0.1",
    port: int = 8600,
    time_scale: float = 0.05,
):
    """Run the fleet simulator (cloud control planes and cluster APIs) in the foreground."""
    from regatta.sim.fleet import FleetFileError, load_fleet
    from regatta.sim.server import serve
    from regatta.sim.world import World

    try:
        spec = load_fleet(fleet)
    except FleetFileError as error:
        errors.print(f"[bold red]refused:[/] {error}")
        raise typer.Exit(EXIT_REFUSED) from None
    world = World(time_scale=time_scale)
    world.load(spec)
    console.print(f"simulator: {len(spec.clusters)} clusters on http://{host}:{port} (time scale {time_scale})")
    serve(world, host=host, port=port)


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@app.command("sim-clock")
def sim_clock(
    advance: Annotated[str | None, typer.Option(help="move the fleet's calendar forward, e.g. 90m, 2h, 3d")] = None,
    set_to: Annotated[str | None, typer.Option("--set", help="set it, e.g. 2026-12-08T01:00:00Z")] = None,
    wall: Annotated[bool, typer.Option("--wall", help="put it back on the wall clock")] = False,
):
    """Show or move the simulated fleet's calendar clock, which maintenance windows and freezes are
    read against: open a window or end a freeze without waiting for it."""
    import httpx

    def body():
        sim_url = Settings.from_env().sim_url
        if not sim_url:
            raise Refused("no simulator: REGATTA_SIM_URL is not set (a real fleet runs on the wall clock)")
        change: dict[str, Any] = {}
        if sum(x is not None and x is not False for x in (advance, set_to, wall)) > 1:
            raise Refused("give one of --advance, --set or --wall")
        if advance is not None:
            seconds = _duration_seconds(advance)
            if seconds is None:
                raise Refused(f"--advance {advance!r}: give a number and a unit, e.g. 90m, 2h or 3d")
            change = {"advance_seconds": seconds}
        elif set_to is not None:
            change = {"now": set_to}
        elif wall:
            change = {"wall_clock": True}
        try:
            response = (httpx.post(f"{sim_url}/sim/clock", json=change, timeout=10) if change
                        else httpx.get(f"{sim_url}/sim/clock", timeout=10))
        except httpx.HTTPError as error:
            raise Unreachable(f"the simulator at {sim_url} does not answer: {error}") from None
        if response.status_code in (400, 422):
            raise Refused(f"the simulator refused the clock change: {response.text}")
        response.raise_for_status()
        clock = response.json()
        console.print(f"fleet clock: {clock['now']} (wall clock {clock['offset_seconds']:+.0f}s)")

    _run(body)


@app.command()
def api(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8700,
):
    """Serve the HTTP API change-ticket systems call (OpenAPI at /docs); tokens from `regatta token create`."""
    import uvicorn

    from regatta.api.app import create_app

    settings = Settings.from_env()
    console.print(f"Regatta API on http://{host}:{port} (OpenAPI: http://{host}:{port}/docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@app.command()
def worker(metrics_port: Annotated[int, typer.Option(help="Prometheus metrics on 127.0.0.1:PORT; 0 turns them off")] = 9464):
    """Run the worker that hosts every workflow and activity on REGATTA_TASK_QUEUE."""
    from workers.main import run

    _run(run(Settings.from_env(), metrics_port=metrics_port))


# --------------------------------------------------------------------------- clusters


@clusters_app.command("list")
def clusters_list(
    selector: Annotated[str | None, typer.Option(help="label selector, e.g. env=prod,team=payments")] = None,
    output: Output = Output.table,
    refresh: Annotated[bool, typer.Option(help="ask every cluster for its live state first")] = False,
):
    """The fleet: name, provider, region, labels, versions and health."""

    def body():
        inventory = _inventory()
        wanted = _selector(selector)
        if refresh:
            from regatta.fleet_sweep import sweep
            from regatta.kube.connect import ClusterConnections

            sweep(ClusterConnections(sim_url=Settings.from_env().sim_url), inventory,
                  [r.name for r in inventory.list_clusters(wanted)])
        records = inventory.list_clusters(wanted)
        if output == "json":
            print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
            return
        table = Table(title=f"{len(records)} clusters")
        for column in ("NAME", "PROVIDER", "REGION", "LABELS", "CONTROL PLANE", "NODE POOLS", "HEALTH", "PODS FREE/CAP", "SWEPT",
                       "HOLD"):
            table.add_column(column)
        now = _fleet_now() if any(r.hold for r in records) else None
        for r in records:
            pools = ", ".join(f"{p.name}={p.version}×{p.node_count}" for p in r.node_pools)
            labels = ",".join(f"{k}={v}" for k, v in sorted(r.labels.items()))
            colour = "green" if r.health == "healthy" else "yellow" if r.health == "unknown" else "red"
            room = f"{r.pods_free}/{r.pods_capacity}" if r.pods_capacity is not None else "—"
            swept = f"{r.updated_at:%Y-%m-%d %H:%M}" if r.updated_at else "—"
            hold = r.held_at(now) if now else None
            held = f"[yellow]until {_minute(hold.until)}[/]: {hold.reason}" if hold else ""
            table.add_row(r.name, r.provider, r.region, labels, r.control_plane_version, pools, f"[{colour}]{r.health}[/]",
                          room, swept, held)
        console.print(table)

    _run(body)


def _minute(at) -> str:
    """A time as the hold commands print it: UTC, to the minute."""
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M}Z"


def _fleet_now():
    """The fleet's calendar time: the simulator's clock for a simulated fleet, else the wall clock."""
    from regatta.fleet_clock import read_fleet_clock

    try:
        return read_fleet_clock(Settings.from_env().sim_url).now
    except Exception as error:  # noqa: BLE001 - any transport error means the same to the operator
        raise Unreachable(f"cannot read the fleet's clock from the simulator: {error}") from error


def _duration_seconds(text: str) -> float | None:
    """'90m', '2h', '3d' in seconds; None when it is not such a duration."""
    number, unit = text.strip()[:-1], text.strip()[-1:]
    if unit not in DURATION_UNITS or not number.replace(".", "", 1).isdigit():
        return None
    return float(number) * DURATION_UNITS[unit]


def _until(text: str, now):
    """--until as an ISO time with a zone (2026-12-01T08:00:00Z) or a duration from now (90m, 48h, 3d)."""
    from datetime import datetime, timedelta

    if (seconds := _duration_seconds(text)) is not None:
        return now + timedelta(seconds=seconds)
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Refused(f"--until {text!r}: give a time with a zone (2026-12-01T08:00:00Z) or a duration (90m, 48h, 3d)") from None


@cluster_app.command("hold")
def cluster_hold(
    cluster: Annotated[str, typer.Argument(help="cluster name, as `regatta clusters list` shows it")],
    until: Annotated[str, typer.Option(help="until when: 2026-12-01T08:00:00Z, or a duration such as 48h or 3d")],
    reason: Annotated[str, typer.Option(help="why; every wave that waits on it shows this")],
    held_by: Annotated[str | None, typer.Option(help="who holds it (default: $USER)")] = None,
):
    """Keep every wave and schedule off a cluster until a time. A wave that reaches it waits (and
    shows why); a direct upgrade is refused unless started with an override reason."""
    import getpass

    def body():
        now = _fleet_now()
        hold = _inventory().hold_cluster(cluster, until=_until(until, now), reason=reason,
                                         held_by=held_by or getpass.getuser(), now=now)
        console.print(f"{cluster} is held until {_minute(hold.until)} by {hold.held_by}: {hold.reason}")

    _run(body)


@cluster_app.command("release")
def cluster_release(cluster: Annotated[str, typer.Argument(help="the held cluster")],
                    released_by: Annotated[str | None, typer.Option(help="who releases it (default: $USER)")] = None):
    """End a cluster's maintenance hold now."""
    import getpass

    def body():
        hold = _inventory().release_hold(cluster, released_by=released_by or getpass.getuser())
        console.print(f"{cluster} released (it was held until {_minute(hold.until)}: {hold.reason})")

    _run(body)


@clusters_app.command("import")
def clusters_import(fleet: Annotated[str | None, typer.Argument(help="fleet file (YAML)")] = None):
    """Register the clusters a fleet file describes in the inventory."""
    from regatta.fleet_sweep import register_fleet
    from regatta.sim.fleet import FleetFileError, load_fleet

    def body():
        try:
            spec = load_fleet(fleet)
        except FleetFileError as error:
            raise Refused(str(error)) from None
        register_fleet(_inventory(), spec)
        console.print(f"registered {len(spec.clusters)} clusters and {len(spec.dr_pairs)} DR pairs")

    _run(body)


@clusters_app.command("sync")
def clusters_sync(selector: Annotated[str | None, typer.Option()] = None):
    """Refresh versions and health of the inventory's clusters from the clusters themselves."""
    from regatta.fleet_sweep import sweep
    from regatta.kube.connect import ClusterConnections

    def body():
        inventory = _inventory()
        names = [r.name for r in inventory.list_clusters(_selector(selector))]
        fresh = sweep(ClusterConnections(sim_url=Settings.from_env().sim_url), inventory, names)
        console.print(f"synced {len(fresh)} clusters; {sum(r.health == 'healthy' for r in fresh)} healthy")

    _run(body)


# --------------------------------------------------------------------------- upgrades


@upgrade_app.command("start")
def upgrade_start(
    cluster: Annotated[str, typer.Argument(help="cluster name, as `regatta clusters list` shows it")],
    to: Annotated[str, typer.Option("--to", help="target Kubernetes version, one minor above the control plane, e.g. 1.31")],
    strategy: Annotated[StrategyChoice, typer.Option(help="surge (the cloud replaces nodes) or blue_green (new pool, we drain the old)")] = StrategyChoice.surge,
    node_image: Annotated[str | None, typer.Option(help="also roll every node pool onto this node image of --to (EKS AMI"
                                                         " release version, GKE node version, AKS node image version)")] = None,
    ticket: Annotated[str | None, typer.Option(help="change ticket this upgrade is done under")] = None,
    wait: Annotated[bool, typer.Option(help="follow progress until the upgrade ends")] = False,
    requested_by: Annotated[str | None, typer.Option(help="who asks (default: $USER)")] = None,
    max_unavailable: Annotated[int | None, typer.Option(help="nodes drained at once (blue_green)")] = None,
    drain_timeout: Annotated[float | None, typer.Option(help="seconds a node's drain may take before the upgrade stops")] = None,
    poll_interval: Annotated[float | None, typer.Option(help="seconds between polls of cloud operations and health")] = None,
    override_hold: Annotated[str | None, typer.Option(help="go ahead although the cluster is under a maintenance hold,"
                                                           " for this reason (audited)")] = None,
):
    """Start a rolling upgrade of one cluster (operation id: cluster-CLUSTER)."""
    import getpass

    from regatta.models import ClusterUpgradeInput

    overrides = {k: v for k, v in {"max_unavailable": max_unavailable, "drain_timeout_seconds": drain_timeout,
                                   "poll_interval_seconds": poll_interval, "override_hold": override_hold}.items()
                 if v is not None}
    if override_hold is not None and not override_hold.strip():
        errors.print("[bold red]refused:[/] --override-hold needs a reason")
        raise typer.Exit(EXIT_REFUSED)

    async def body():
        from pydantic import ValidationError

        if (api := _api()) is not None:  # through the API: it checks, and the token is who asks
            if not ticket:
                raise Refused("--ticket: the API starts operations under a change ticket (its idempotency key)")
            if node_image:
                raise Refused("--node-image: give node_images per cloud over the API (POST /v1/operations), or unset"
                              " REGATTA_API_URL")
            started = api.start("upgrade", ticket, {"cluster": cluster, "target_version": to, "strategy": strategy.value,
                                                     **overrides})
            again = " (this ticket had already started it)" if started["replayed"] else ""
            console.print(f"started [bold]{started['operation_id']}[/] over the API{again}: {cluster} to {to}")
            if wait:
                await _follow_over_api(api, started["operation_id"])
            return
        record = _inventory().get_cluster(cluster)
        if record.hold is not None and not override_hold and (hold := record.held_at(_fleet_now())) is not None:
            raise Refused(f"{cluster} is held until {_minute(hold.until)} by {hold.held_by}:"
                          f" {hold.reason}. Wait, release it (regatta cluster release {cluster}), or give"
                          " --override-hold REASON")
        # The worker re-checks against the live cluster; this catches the obvious at once.
        try:
            planning.plan_upgrade(provider=record.provider, control_plane=record.control_plane_version,
                                  node_pools=record.node_pools, target=to, node_image=node_image)
        except planning.InvalidNodeImage as problem:
            raise Refused(f"--node-image: {problem}") from None
        try:
            request = ClusterUpgradeInput(cluster=cluster, target_version=to, strategy=strategy.value, ticket=ticket,
                                          requested_by=requested_by or getpass.getuser(),
                                          node_images={record.provider: node_image} if node_image else {}, **overrides)
        except ValidationError as error:
            raise Refused(str(error)) from None
        onto = f" on node image {node_image}" if node_image else ""
        await _start(workflow="ClusterUpgrade", cluster=record, request=request, ticket=ticket, wait=wait,
                     headline=f"{cluster} to {to}{onto} by {strategy.value}")

    _run(body())


async def _follow_over_api(api, operation_id: str, *, interval: float = 1.0) -> None:
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


async def _start(*, workflow: str, cluster, request, ticket: str | None, wait: bool, headline: str) -> None:
    """Start an operation on a cluster, say where to watch it, and follow it if asked."""
    from regatta.operations import follow, start_operation

    handle = await start_operation(Settings.from_env(), workflow=workflow, cluster=cluster, request=request, ticket=ticket)
    console.print(f"started [bold]{handle.id}[/]: {headline}")
    console.print(f"watch: {_ui_url(handle.id)}")
    if wait:
        await follow(handle, console)


@app.command()
def provision(
    file: Annotated[str, typer.Option("--file", help="the cluster to build, as YAML (see README)")],
    wait: Annotated[bool, typer.Option(help="follow progress until it ends")] = False,
    ticket: Annotated[str | None, typer.Option(help="change ticket (overrides the file's)")] = None,
    poll_interval: Annotated[float | None, typer.Option(help="seconds between polls of cloud operations")] = None,
):
    """Build a new cluster: control plane, node pools, bootstrap, inventory (all undone on failure)."""
    import getpass
    from pathlib import Path

    import yaml
    from pydantic import ValidationError

    from regatta.models import ProvisionClusterInput
    from regatta.operations import provision_holder

    async def body():
        try:
            raw = yaml.safe_load(Path(file).read_text())
        except (OSError, yaml.YAMLError) as error:
            raise Refused(f"cannot read {file}: {error}") from None
        if not isinstance(raw, dict):
            raise Refused(f"{file} must hold one mapping describing the cluster")
        raw.setdefault("requested_by", getpass.getuser())
        if ticket:
            raw["ticket"] = ticket
        if poll_interval:
            raw["poll_interval_seconds"] = poll_interval
        try:
            request = ProvisionClusterInput.model_validate(raw)
        except ValidationError as error:
            raise Refused(f"{file}: {error}") from None
        holder = provision_holder(_inventory(), request)
        await _start(workflow="ProvisionCluster", cluster=holder, request=request, ticket=request.ticket, wait=wait,
                     headline=f"{request.provider} cluster {request.name} in {request.region}")

    _run(body())


@app.command()
def decommission(
    cluster: Annotated[str, typer.Argument(help="cluster name")],
    ticket: Annotated[str | None, typer.Option(help="change ticket")] = None,
    force_empty: Annotated[bool, typer.Option(help="delete even though non-system workloads still run")] = False,
    reason: Annotated[str | None, typer.Option(help="why the workloads may go (required with --force-empty)")] = None,
    wait: Annotated[bool, typer.Option(help="follow it until it ends (it waits for a second person's approval)")] = False,
    requested_by: Annotated[str | None, typer.Option(help="who asks (default: $USER)")] = None,
    poll_interval: Annotated[float | None, typer.Option(help="seconds between polls of cloud operations")] = None,
):
    """Delete a cluster nothing needs any more, after a second person approves (`regatta op approve`)."""
    import getpass

    from regatta.models import DecommissionClusterInput

    if force_empty and not (reason or "").strip():
        errors.print("[bold red]refused:[/] --force-empty needs --reason saying why the workloads may go")
        raise typer.Exit(EXIT_REFUSED)

    async def body():
        record = _inventory().get_cluster(cluster)
        blockers = planning.decommission_blockers(record.labels)
        if blockers:
            raise Refused(f"{cluster} cannot be decommissioned: " + "; ".join(blockers))
        extra = {"poll_interval_seconds": poll_interval} if poll_interval else {}
        request = DecommissionClusterInput(cluster=cluster, ticket=ticket, requested_by=requested_by or getpass.getuser(),
                                           force_empty=force_empty, force_reason=reason, **extra)
        await _start(workflow="DecommissionCluster", cluster=record, request=request, ticket=ticket, wait=wait,
                     headline=f"decommission of {cluster}; it waits for approval by someone else:\n"
                              f"  regatta op approve {planning.operation_id(cluster)}")

    _run(body())


# --------------------------------------------------------------------------- patch waves


WaveFile = Annotated[str | None, typer.Option("--file", help="the wave as YAML (see examples/wave.yaml)")]
WaveSelector = Annotated[str | None, typer.Option(help="without --file: the clusters, e.g. env=staging,team=payments")]
WaveTarget = Annotated[str | None, typer.Option("--to", help="without --file: the target version, e.g. 1.31")]
WaveName = Annotated[str | None, typer.Option(help="without --file: the wave's name (default patch-<to>-<date>)")]
WaveConcurrency = Annotated[int, typer.Option(help="without --file: clusters upgraded at once")]
WaveBudget = Annotated[str, typer.Option(help="without --file: failures tolerated, a count or a share like 10%")]


def _wave_request(*, file: str | None, selector: str | None, to: str | None, name: str | None, concurrency: int,
                  failure_budget: str, ticket: str | None, requested_by: str | None):
    """The wave a command means: its file, or one stage over a selector."""
    import getpass
    from datetime import datetime

    from pydantic import ValidationError

    from regatta.models import PatchWaveInput
    from regatta.wave_file import WaveFileError, load_wave_file

    if file and (selector or to):
        raise Refused("give either --file or --selector/--to, not both")
    if file:
        try:
            wave = load_wave_file(file)
        except WaveFileError as error:
            raise Refused(str(error)) from None
    elif to:
        budget: int | str = int(failure_budget) if failure_budget.isdigit() else failure_budget
        try:
            wave = PatchWaveInput(name=name or f"patch-{to}-{datetime.now(UTC):%Y%m%d}", target_version=to,
                                  selector={"labels": _selector(selector)}, failure_budget=budget,
                                  stages=[{"name": "all", "concurrency": concurrency}])
        except ValidationError as error:
            raise Refused(str(error)) from None
    else:
        raise Refused("say what to upgrade: --file wave.yaml, or --selector k=v,... --to X.Y")
    updates = {"requested_by": requested_by or getpass.getuser(), **({"ticket": ticket} if ticket else {})}
    return wave.model_copy(update=updates)


@wave_app.command("start")
def wave_start(
    file: WaveFile = None,
    selector: WaveSelector = None,
    to: WaveTarget = None,
    name: WaveName = None,
    concurrency: WaveConcurrency = 1,
    failure_budget: WaveBudget = "0",
    plan_only: Annotated[bool, typer.Option(help="print which clusters go in which stage and when; start nothing")] = False,
    ticket: Annotated[str | None, typer.Option(help="change ticket (overrides the file's)")] = None,
    wait: Annotated[bool, typer.Option(help="follow it until it ends")] = False,
    requested_by: Annotated[str | None, typer.Option(help="who asks (default: $USER)")] = None,
):
    """Bring every cluster a wave selects to a version, stage by stage (operation id: wave-NAME)."""
    from regatta import wave_plan
    from regatta.operations import follow, render_plan, start_wave

    async def body():
        wave = _wave_request(file=file, selector=selector, to=to, name=name, concurrency=concurrency,
                             failure_budget=failure_budget, ticket=ticket, requested_by=requested_by)
        # The same clock the wave will read: the simulator's for a simulated fleet.
        plan = wave_plan.plan_wave(wave, _inventory().list_clusters(), now=_fleet_now())
        if plan_only:
            render_plan(plan, console)
            return
        handle = await start_wave(Settings.from_env(), request=wave)
        total = sum(len(stage.clusters) for stage in plan.stages)
        console.print(f"started [bold]{handle.id}[/]: {total} clusters in {len(plan.stages)} stages to {wave.target_version}")
        console.print(f"watch: {_ui_url(handle.id)}")
        if wait:
            await follow(handle, console)

    _run(body())


@wave_app.command("plan")
def wave_plan_command(
    file: WaveFile = None,
    selector: WaveSelector = None,
    to: WaveTarget = None,
    name: WaveName = None,
    concurrency: WaveConcurrency = 1,
    failure_budget: WaveBudget = "0",
    cluster: Annotated[str | None, typer.Option(help="only this cluster: when will it be upgraded?")] = None,
    output: Output = Output.table,
):
    """When the wave would first touch each cluster, given stages, soak, concurrency, windows,
    freezes and holds. Starts nothing."""
    from regatta import wave_plan
    from regatta.operations import render_forecast

    def body():
        wave = _wave_request(file=file, selector=selector, to=to, name=name, concurrency=concurrency,
                             failure_budget=failure_budget, ticket=None, requested_by=None)
        now = _fleet_now()
        plan = wave_plan.plan_wave(wave, _inventory().list_clusters(), now=now)
        forecast = wave_plan.forecast(wave=wave, stages=plan.stages, now=now,
                                      upgrade_seconds=wave.estimated_upgrade_minutes * 60, unstaged=plan.unstaged_reasons)
        render_forecast(forecast, console, cluster=cluster, output=output.value)

    _run(body)


@wave_app.command("forecast")
def wave_forecast(
    operation_id: Annotated[str, typer.Argument(help="the running wave's operation id, wave-NAME")],
    cluster: Annotated[str | None, typer.Option(help="only this cluster: when will it be upgraded?")] = None,
    output: Output = Output.table,
):
    """Ask a running wave when it will first touch each cluster, from where it stands now."""
    from regatta.operations import query, render_forecast
    from regatta.models import WaveForecast

    async def body():
        forecast = WaveForecast.model_validate(await query(Settings.from_env(), operation_id, "forecast"))
        render_forecast(forecast, console, cluster=cluster, output=output.value)

    _run(body())


# --------------------------------------------------------------------------- schedules


@schedule_app.command("create")
def schedule_create(
    name: Annotated[str, typer.Argument(help="the schedule's name (its id is patch-NAME)")],
    file: Annotated[str, typer.Option("--file", help="the wave each run starts (see examples/wave.yaml)")],
    days: Annotated[str, typer.Option(help="days of the week, e.g. tue or tue,thu")],
    at: Annotated[str, typer.Option(help="local time HH:MM")] = "02:00",
    timezone: Annotated[str, typer.Option(help="IANA time zone of --at")] = "UTC",
    week_of_month: Annotated[int | None, typer.Option(help="only the Nth such day of the month (2: the second Tuesday)")] = None,
    paused: Annotated[bool, typer.Option(help="create it paused")] = False,
):
    """A patch window: start the wave at these times; never while the last one runs or a freeze is in force."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from regatta.schedules import PatchWindow, create_patch_schedule
    from regatta.wave_file import WaveFileError, load_wave_file

    async def body():
        try:
            wave = load_wave_file(file)
            ZoneInfo(timezone)
        except WaveFileError as error:
            raise Refused(str(error)) from None
        except (ZoneInfoNotFoundError, ValueError):
            raise Refused(f"unknown time zone {timezone!r}; use an IANA name such as Europe/Berlin") from None
        window = PatchWindow(days=tuple(d.strip().lower() for d in days.split(",") if d.strip()), at=at,
                             timezone=timezone, week_of_month=week_of_month)
        schedule_id = await create_patch_schedule(Settings.from_env(), name=name, wave=wave, window=window, paused=paused)
        console.print(f"created schedule [bold]{schedule_id}[/]: wave {wave.name} on {window.calendar().comment}"
                      f"{' (paused)' if paused else ''}")

    _run(body())


@schedule_app.command("sweep")
def schedule_sweep(every_minutes: Annotated[int, typer.Option(help="minutes between sweeps")] = 60,
                   selector: Annotated[str | None, typer.Option(help="only clusters with these labels, e.g. env=prod")] = None):
    """Run FleetSweep (health, versions, capacity into the inventory) every N minutes."""
    from regatta.models import FleetSweepInput
    from regatta.schedules import create_sweep_schedule

    async def body():
        request = FleetSweepInput(selector={"labels": _selector(selector)})
        schedule_id = await create_sweep_schedule(Settings.from_env(), every_minutes=every_minutes, request=request)
        console.print(f"created schedule [bold]{schedule_id}[/]: FleetSweep every {every_minutes} minutes")

    _run(body())


@schedule_app.command("list")
def schedule_list(output: Output = Output.table):
    """Every schedule, whether it is paused, and when it fires next."""
    from regatta.schedules import list_schedules

    async def body():
        found = await list_schedules(Settings.from_env())
        if output == "json":
            print(json.dumps(found, indent=2))
            return
        table = Table(title=f"{len(found)} schedules")
        for column in ("ID", "PAUSED", "NEXT", "NOTE"):
            table.add_column(column)
        for entry in found:
            table.add_row(entry["id"], "yes" if entry["paused"] else "", ", ".join(entry["next"]), entry["note"])
        console.print(table)

    _run(body())


def _schedule_control(schedule_id: str, action: str) -> None:
    from regatta.schedules import control_schedule

    async def body():
        await control_schedule(Settings.from_env(), schedule_id, action)
        console.print(f"{schedule_id}: {'triggered' if action == 'trigger' else action + 'd'}")

    _run(body())


@schedule_app.command("pause")
def schedule_pause(schedule_id: str):
    """Pause a schedule (it starts nothing until unpaused)."""
    _schedule_control(schedule_id, "pause")


@schedule_app.command("unpause")
def schedule_unpause(schedule_id: str):
    _schedule_control(schedule_id, "unpause")


@schedule_app.command("trigger")
def schedule_trigger(schedule_id: str):
    """Run a schedule's action now (overlap and freeze rules still apply)."""
    _schedule_control(schedule_id, "trigger")


@schedule_app.command("delete")
def schedule_delete(schedule_id: str):
    _schedule_control(schedule_id, "delete")


# --------------------------------------------------------------------------- disaster recovery


@app.command()
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

    if override_capacity is not None and not override_capacity.strip():
        errors.print("[bold red]refused:[/] --override-capacity needs a reason")
        raise typer.Exit(EXIT_REFUSED)

    async def body():
        inventory = _inventory()
        pair = inventory.dr_pair(cluster)
        if pair.standby != to:
            raise Refused(f"the standby of {cluster} is {pair.standby}, not {to}")
        if pair.serving == "standby" and not drill:
            raise Refused(f"{to} already serves {cluster}'s workloads; fail back first: regatta failback {cluster}")
        extra = {k: v for k, v in {"poll_interval_seconds": poll_interval, "fence_timeout_seconds": fence_timeout}.items()
                 if v is not None}
        try:
            request = DRFailoverInput(cluster=cluster, standby=to, ticket=ticket, requested_by=requested_by or getpass.getuser(),
                                      drill=drill, override_capacity=override_capacity, require_approval=require_approval,
                                      **extra)
        except ValidationError as error:
            raise Refused(str(error)) from None
        record = inventory.get_cluster(cluster)
        gate = planning.dr_needs_approval(record.environment, requested=require_approval, drill=drill)
        await _start(workflow="DRFailover", cluster=record, request=request, ticket=ticket, wait=wait,
                     headline=f"{'drill of a ' if drill else ''}failover of {cluster} to {to}"
                              + (f"; it waits for approval by someone else before fencing:\n"
                                 f"  regatta op approve {planning.operation_id(cluster)}" if gate else ""))

    _run(body())


@app.command()
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
        inventory = _inventory()
        pair = inventory.dr_pair(cluster)
        if pair.serving != "standby":
            raise Refused(f"{cluster} serves its own workloads already; there is nothing to fail back")
        extra = {"poll_interval_seconds": poll_interval} if poll_interval is not None else {}
        try:
            request = DRFailbackInput(cluster=cluster, ticket=ticket, requested_by=requested_by or getpass.getuser(),
                                      override_capacity=override_capacity, require_approval=require_approval, **extra)
        except ValidationError as error:
            raise Refused(str(error)) from None
        await _start(workflow="DRFailback", cluster=inventory.get_cluster(cluster), request=request, ticket=ticket,
                     wait=wait, headline=f"failback of {cluster} from {pair.standby}")

    _run(body())


@dr_app.command("pair")
def dr_pair(primary: Annotated[str, typer.Argument(help="the cluster that serves")],
            standby: Annotated[str, typer.Argument(help="the cluster in another region or cloud that takes over")]):
    """Declare STANDBY the standby of PRIMARY (both get the dr-role label)."""
    _run(lambda: console.print(f"{_inventory().declare_dr_pair(primary, standby).standby} stands by for {primary}"))


@dr_app.command("unpair")
def dr_unpair(primary: Annotated[str, typer.Argument(help="the primary of the pair")]):
    """Undeclare a pair (refused while the standby serves)."""
    _run(lambda: (_inventory().undeclare_dr_pair(primary), console.print(f"{primary} has no standby now")))


@dr_app.command("list")
def dr_list(output: Output = Output.table):
    """Every pair and which side serves."""

    def body():
        pairs = _inventory().dr_pairs()
        _show(pairs, output, title=f"{len(pairs)} DR pairs", columns=("PRIMARY", "STANDBY", "SERVING", "LAST OPERATION", "SINCE"),
              row=lambda p: (p.primary, p.standby, p.primary if p.serving == "primary" else f"[yellow]{p.standby}[/]",
                             p.last_operation or "", f"{p.updated_at:%Y-%m-%d %H:%M}" if p.updated_at else ""))
        console.print(table)

    _run(body)


def _ui_url(operation_id: str) -> str:
    settings = Settings.from_env()
    host = settings.temporal_address.rsplit(":", 1)[0]
    return f"http://{host}:8233/namespaces/{settings.namespace}/workflows/{operation_id}"


# --------------------------------------------------------------------------- operations


def _api() -> Any:
    """The HTTP API client when REGATTA_API_URL is set (the CLI then acts as REGATTA_TOKEN), else None."""
    settings = Settings.from_env()
    if not settings.api_url:
        return None
    from regatta.api.client import ApiClient

    return ApiClient(settings.api_url, settings.api_token)


def _control(operation_id: str, update: str, payload: dict) -> None:
    from regatta.operations import send_update

    async def body():
        if (api := _api()) is not None:  # the token is who asks: the API ignores names given here
            said = {k: v for k, v in payload.items() if k in ("reason", "comment", "stage") and v}
            progress = api.control(operation_id, update, said)["progress"]
        else:
            progress = await send_update(Settings.from_env(), operation_id, update, payload)
        console.print(f"{update}: accepted. {operation_id} is at: {progress.get('step')}")

    _run(body())


@op_app.command("status")
def op_status(operation_id: str, output: Output = Output.table):
    """Where an operation stands and why it stopped, if it did."""
    from regatta.operations import status

    async def body():
        api = _api()
        described = api.status(operation_id) if api is not None else await status(Settings.from_env(), operation_id)
        if output == "json":
            print(json.dumps(described, indent=2, default=str))
            return
        from regatta.operations import render_status

        render_status(described, console)

    _run(body())


@op_app.command("approve")
def op_approve(operation_id: str, comment: Annotated[str, typer.Option(help="why")] = "",
               approver: Annotated[str | None, typer.Option(help="who approves (default: $USER)")] = None):
    """Approve an operation waiting for a second person (e.g. a decommission)."""
    import getpass

    _control(operation_id, "approve", {"approver": approver or getpass.getuser(), "comment": comment})


@op_app.command("pause")
def op_pause(operation_id: str, reason: Annotated[str, typer.Option(help="why")] = ""):
    """Hold the operation at the next safe point (between batches)."""
    import getpass

    _control(operation_id, "pause", {"reason": reason, "requested_by": getpass.getuser()})


@op_app.command("resume")
def op_resume(operation_id: str):
    """Continue a paused operation."""
    import getpass

    _control(operation_id, "resume", {"requested_by": getpass.getuser()})


@op_app.command("abort")
def op_abort(operation_id: str, reason: Annotated[str, typer.Option(help="why")] = ""):
    """Stop after the step in flight, leaving the cluster consistent and serving."""
    import getpass

    _control(operation_id, "abort", {"reason": reason, "requested_by": getpass.getuser()})


# --------------------------------------------------------------------------- audit


@audit_app.command("list")
def audit_list(
    cluster: Annotated[str | None, typer.Option()] = None,
    operation: Annotated[str | None, typer.Option(help="operation id")] = None,
    output: Output = Output.table,
):
    """Who asked for what, under which ticket, and how it ended."""

    def body():
        records = _inventory().audit(cluster=cluster, operation_id=operation)
        _show(records, output, title=f"{len(records)} audit records",
              columns=("AT (UTC)", "OPERATION", "CLUSTER", "BY", "TICKET", "ACTION", "OUTCOME", "DETAIL"),
              row=lambda r: (f"{r.at:%Y-%m-%d %H:%M:%S}" if r.at else "", r.operation_id, r.cluster, r.requested_by,
                             r.ticket or "", r.action, r.outcome, r.detail))

    _run(body)


@audit_app.command("verify")
def audit_verify(output: Output = Output.table):
    """Walk the audit trail's hash chain: exit 0 when every record holds, 1 naming the first that
    does not (edited, removed or reordered since it was written)."""

    def body():
        verdict = _inventory().verify_audit()
        if output == "json":
            print(json.dumps(verdict.model_dump(), indent=2))
        elif verdict.ok:
            console.print(f"[green]audit trail intact:[/] {verdict.records} records, each chained to the one before")
        if not verdict.ok:
            where = f"record {verdict.broken_at}" if verdict.broken_at is not None else "the trail"
            raise OperationFailed(f"the audit chain breaks at {where} ({verdict.records} records before it hold):"
                                  f" {verdict.reason}")

    _run(body)


# --------------------------------------------------------------------------- tokens


def _token_audit(verb: str, name: str, detail: str) -> None:
    import getpass

    from regatta.models import OperationRecord

    _inventory().append_audit(OperationRecord(operation_id=f"token-{name}", operation="ApiToken", cluster="-",
                                              requested_by=getpass.getuser(), action=f"token {verb}",
                                              outcome="succeeded", detail=detail))


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="who or what uses it, e.g. servicenow")],
    role: Annotated[RoleChoice, typer.Option(help="viewer, operator, approver or admin")],
    env: Annotated[list[str], typer.Option(help="an environment it may act on; repeat, or '*' for every one")],
):
    """Make an API token and print it once: only its hash is kept."""
    from regatta.api.tokens import create_token

    def body():
        environments = sorted({e.strip() for value in env for e in value.split(",")})
        token, secret = create_token(_inventory(), name=name, role=role.value, environments=environments)
        _token_audit("create", token.name, f"role {token.role}, environments {', '.join(token.environments)}")
        errors.print(f"token {token.name}: {token.role} in {', '.join(token.environments)}. It is shown once; keep it:")
        print(secret)

    _run(body)


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="the token's name")]):
    """Revoke a token: every call with it is refused from now on."""

    def body():
        token = _inventory().revoke_token(name)
        _token_audit("revoke", token.name, f"revoked at {token.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
        console.print(f"token {token.name} revoked")

    _run(body)


@token_app.command("list")
def token_list(output: Output = Output.table):
    """Every token: its role, environments and whether it is revoked (never the token itself)."""

    def body():
        tokens = _inventory().list_tokens()
        _show(tokens, output, title=f"{len(tokens)} API tokens",
              columns=("NAME", "ROLE", "ENVIRONMENTS", "CREATED (UTC)", "REVOKED (UTC)"),
              row=lambda t: (t.name, t.role, ", ".join(t.environments), f"{t.created_at:%Y-%m-%d %H:%M}",
                             f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else ""))

    _run(body)


@codec_app.command("new-key")
def codec_new_key(key_id: Annotated[str, typer.Option("--id", help="the key's id, e.g. 2026-12")]):
    """Print a new AES-256 key line (`ID BASE64KEY`) for REGATTA_CODEC_KEY_FILE; put it first to
    encrypt with it, and keep the old lines so older histories still decrypt."""
    from regatta.payload_codec import new_key_line

    if not key_id.strip() or any(c.isspace() or c in ",:" for c in key_id):
        errors.print("[bold red]refused:[/] --id: give a key id without spaces, commas or colons, e.g. 2026-12")
        raise typer.Exit(EXIT_REFUSED)
    print(new_key_line(key_id))


def main() -> None:  # pragma: no cover - console entry point
    """Run the command, then leave without interpreter teardown: the Temporal client's Rust
    threads can abort it (SIGABRT instead of our exit code; temporalio/sdk-python#300), and the
    exit code is a promise to scripts. Everything the command wrote is flushed first."""
    import os

    code: int = 0
    try:
        app()
    except SystemExit as done:
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
            code = 1
        else:
            code = done.code or 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
