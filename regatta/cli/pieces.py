"""`regatta dev|sim|sim-clock|api|worker`: run Regatta's pieces, alone or all together.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from regatta.cli.arguments import duration_seconds
from regatta.cli.exits import EXIT_REFUSED, Unreachable, run_command
from regatta.cli.render import console, counted, errors
from regatta.models.operations import WorkflowName
from regatta.settings import Settings
from regatta.temporal.outcomes import OperationRefused as Refused


def dev(
    fleet: Annotated[str | None, typer.Option(help="fleet file (YAML); default: the fleet that ships with Regatta")] = None,
    time_scale: Annotated[float, typer.Option(help="simulated seconds are multiplied by this")] = 0.05,
    temporal_port: Annotated[int, typer.Option(help="Temporal's gRPC port")] = 7233,
    ui_port: Annotated[int, typer.Option(help="the Temporal UI's port")] = 8233,
    sim_port: Annotated[int, typer.Option(help="the simulated clouds' control planes and /sim/* (plain HTTP)")] = 8600,
    sim_tls_port: Annotated[int, typer.Option(help="the simulated clusters' API servers (HTTPS)")] = 8643,
    api_port: Annotated[int, typer.Option(help="the HTTP API's port")] = 8700,
    metrics_port: Annotated[int, typer.Option(help="the worker's Prometheus metrics port; 0 turns them off")] = 9464,
    persist: Annotated[bool, typer.Option("--persist", "--keep-history", help="keep Temporal's state in a file in"
                                          " REGATTA_HOME: a Temporal that stops is started again on it and its operations"
                                          " carry on (a dev stack started again finds them too; the simulated fleet"
                                          " starts again from its fleet file)")] = False,
    demo: Annotated[bool, typer.Option(help="also start a rolling upgrade of one cluster and follow it")] = False,
):
    """Start the embedded default: Temporal dev server, fleet simulator, worker, API. Ctrl-C stops all."""
    from regatta.devstack import DevStack

    stack = DevStack(
        settings=Settings.from_env(), fleet=fleet, time_scale=time_scale, temporal_port=temporal_port,
        ui_port=ui_port, sim_port=sim_port, sim_tls_port=sim_tls_port, api_port=api_port, metrics_port=metrics_port, persist=persist,
    )
    raise typer.Exit(stack.run(demo=demo))


def sim(
    fleet: Annotated[str | None, typer.Option(help="fleet file (YAML)")] = None,
    host: Annotated[str, typer.Option(help="the address to listen on (loopback unless you mean otherwise)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="the clouds' control planes and /sim/* (plain HTTP)")] = 8600,
    tls_port: Annotated[int, typer.Option(help="the clusters' API servers (HTTPS, a CA made per run); 0: any free port")] = 8643,
    time_scale: Annotated[float, typer.Option(help="simulated seconds are multiplied by this")] = 0.05,
):
    """Run the fleet simulator (cloud control planes and cluster APIs) in the foreground."""
    from regatta.devstack import serve_simulator
    from regatta.formats.fleet_file import FleetFileError, load_fleet

    try:
        spec = load_fleet(fleet)
    except FleetFileError as error:
        errors.print(f"[bold red]refused:[/] {error}")
        raise typer.Exit(EXIT_REFUSED) from None
    console.print(f"simulator: {counted(len(spec.clusters), 'cluster')} on http://{host}:{port}, their API servers on"
                  f" https://{host}:{tls_port} (time scale {time_scale})")
    serve_simulator(spec, host=host, port=port, tls_port=tls_port, time_scale=time_scale)


def sim_clock(
    advance: Annotated[str | None, typer.Option(help="move the fleet's calendar forward, e.g. 90m, 2h, 3d")] = None,
    set_to: Annotated[str | None, typer.Option("--set", help="set it, e.g. 2026-12-08T01:00:00Z")] = None,
    wall: Annotated[bool, typer.Option("--wall", help="put it back on the wall clock")] = False,
    to_next: Annotated[str | None, typer.Option(help="move it to what this running wave or policy rollout waits for"
                                                " next: its stage's soak ending, or a cluster's window opening or"
                                                " hold ending", metavar="OPERATION_ID")] = None,
):
    """Show or move the simulated fleet's calendar clock, which maintenance windows, freezes and soaks are
    read against: open a window, end a freeze or a soak without waiting for it."""
    import httpx

    def body():
        sim_url = Settings.from_env().sim_url
        if not sim_url:
            raise Refused("no simulator: REGATTA_SIM_URL is not set (a real fleet runs on the wall clock)")
        change: dict[str, Any] = {}
        if sum(x is not None and x is not False for x in (advance, set_to, wall, to_next)) > 1:
            raise Refused("give one of --advance, --set, --wall or --to-next")
        moved = ""
        if to_next is not None:
            when, moved = awaited_by(to_next, sim_url)
            change = {"now": when.isoformat()}
            moved = f", {moved}"
        elif advance is not None:
            seconds = duration_seconds(advance)
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
        console.print(f"fleet clock: {clock['now']} (wall clock {clock['offset_seconds']:+.0f}s){moved}")

    run_command(body)


def awaited_by(wave_id: str, sim_url: str) -> tuple[datetime, str]:
    """When a running wave's or policy rollout's next wait on the fleet's clock ends (a second after it), and what
    that is."""
    import asyncio

    import httpx

    from regatta.models import PatchWaveProgress
    from regatta.models.policy import PolicyRolloutProgress
    from regatta.rules import waves
    from regatta.temporal.operations import status

    found = asyncio.run(status(Settings.from_env(), wave_id, suggest=True))
    kinds: dict[str, type[PatchWaveProgress] | type[PolicyRolloutProgress]] = {
        WorkflowName.PATCH_WAVE: PatchWaveProgress, WorkflowName.POLICY_ROLLOUT: PolicyRolloutProgress}
    if found["workflow_type"] not in kinds:
        raise Refused(f"--to-next {wave_id}: a {found['workflow_type']}; --to-next follows a wave or a policy rollout")
    kind = "wave" if found["workflow_type"] == WorkflowName.PATCH_WAVE else "rollout"
    if found["status"] != "RUNNING" or not found.get("progress"):
        raise Refused(f"--to-next {wave_id}: the {kind} is {found['status']}, not running")
    try:
        now = datetime.fromisoformat(httpx.get(f"{sim_url}/sim/clock", timeout=10).json()["now"])
    except httpx.HTTPError as error:
        raise Unreachable(f"the simulator at {sim_url} does not answer: {error}") from None
    progress = kinds[found["workflow_type"]].model_validate(found["progress"])
    awaited = waves.next_awaited(progress, now=now)
    if awaited is None:
        raise Refused(f"--to-next {wave_id}: the {kind} waits for nothing the clock brings; it is {progress.phase}"
                      f" ({progress.step})" + ("; `regatta op approve` lets it go on" if progress.phase == "awaiting_approval"
                                               else ""))
    when, what = awaited
    return when + timedelta(seconds=1), f"moved to {what}"


class LogFormatChoice(StrEnum):
    text = "text"
    json = "json"


LogFormatOption = Annotated[LogFormatChoice, typer.Option(
    envvar="REGATTA_LOG_FORMAT", help="text for people, json (one object a line) for a log pipeline")]


def api(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8700,
    tls_cert: Annotated[str | None, typer.Option(envvar="REGATTA_API_TLS_CERT", help="serve HTTPS with this certificate"
                                                 " (PEM; with --tls-key)")] = None,
    tls_key: Annotated[str | None, typer.Option(envvar="REGATTA_API_TLS_KEY", help="the certificate's key (PEM)")] = None,
    log_format: LogFormatOption = LogFormatChoice.text,
):
    """Serve the HTTP API change-ticket systems call (OpenAPI at /docs); tokens from `regatta token create`.
    With --tls-cert and --tls-key it speaks HTTPS only (the production deployment does)."""
    import uvicorn

    from regatta.api.app import create_app
    from regatta.telemetry import configure_logging, configure_tracing

    if bool(tls_cert) != bool(tls_key):
        errors.print("[bold red]refused:[/] give --tls-cert and --tls-key together (REGATTA_API_TLS_CERT, REGATTA_API_TLS_KEY)")
        raise typer.Exit(EXIT_REFUSED)
    for path in (tls_cert, tls_key):
        if path and not Path(path).is_file():
            errors.print(f"[bold red]refused:[/] cannot read {path}")
            raise typer.Exit(EXIT_REFUSED)
    settings = Settings.from_env()
    configure_logging(log_format.value)
    configure_tracing("regatta-api")
    scheme = "https" if tls_cert else "http"
    console.print(f"Regatta API on {scheme}://{host}:{port} (OpenAPI: {scheme}://{host}:{port}/docs)")
    # uvicorn's own lines (access log included) go through the same handler and format
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", log_config=None,
                ssl_certfile=tls_cert, ssl_keyfile=tls_key)


def worker(metrics_port: Annotated[int, typer.Option(help="Prometheus metrics on METRICS_HOST:PORT; 0 turns them off")] = 9464,
           metrics_host: Annotated[str, typer.Option(help="address the metrics listen on (0.0.0.0 in a container)")] = "127.0.0.1",
           site: Annotated[str | None, typer.Option(envvar="REGATTA_SITE", help="run as the agent of this site: only the"
                                                    " activities that talk to its clusters' APIs, with its credentials")] = None,
           log_format: LogFormatOption = LogFormatChoice.text):
    """Run the worker that hosts every workflow and activity on REGATTA_TASK_QUEUE, or a site's agent."""
    from regatta.rules.sites import SiteNameRefused, check_site_name
    from regatta.telemetry import configure_logging, configure_tracing
    from workers.main import run

    if site is not None:
        try:
            check_site_name(site)
        except SiteNameRefused as error:
            errors.print(f"[bold red]refused:[/] {error}")
            raise typer.Exit(EXIT_REFUSED) from None
    configure_logging(log_format.value)
    configure_tracing(f"regatta-site-agent-{site}" if site else "regatta-worker")
    run_command(run(Settings.from_env(), metrics_port=metrics_port, metrics_host=metrics_host, site=site))


def backup(output: Annotated[str, typer.Option("--output", help="the file to write (mode 0600)")]):
    """Write the inventory and its audit trail (REGATTA_DATABASE_URL) to a file, with the trail's head signed when
    there is an audit key: what `regatta restore` reads into a new database after the loss of this one."""
    from regatta.cli.context import open_inventory
    from regatta.inventory import backup as backups

    def body():
        header = backups.write(open_inventory(), output)
        rows = sum(header["tables"].values())
        console.print(f"wrote {output}: {rows} rows of {len(header['tables'])} tables at revision {header['revision']}"
                      + (f", the trail's head signed at record {header['audit_head']['last_id']}" if header["audit_head"]
                         else " (no audit key: the trail's head is not signed)"))

    run_command(body)


def restore(input: Annotated[str, typer.Option("--input", help="a file `regatta backup` wrote")]):
    """Read a backup into the inventory of REGATTA_DATABASE_URL, which must be empty (a new database), then walk the
    audit trail's chain against the head the backup signed: exit 0 when every record holds, 1 naming the first that
    does not, 2 when the backup cannot be restored here."""
    from regatta.cli.context import open_inventory
    from regatta.cli.exits import EXIT_FAILED, Refused
    from regatta.inventory import backup as backups

    def body():
        inventory = open_inventory()
        try:
            header = backups.restore(inventory, input)
        except backups.BackupError as error:
            raise Refused(str(error)) from None
        verdict = backups.verify(inventory, header)
        rows = sum(header["tables"].values())
        console.print(f"restored {rows} rows taken {header['taken_at']} into {inventory.url.split('@')[-1]}")
        if not verdict.ok:
            errors.print(f"[bold red]the restored audit trail does not hold[/] at record {verdict.broken_at}: {verdict.reason}")
            raise typer.Exit(EXIT_FAILED)
        console.print(f"audit trail verified: {verdict.records} records hold ({verdict.keyed} keyed,"
                      f" {verdict.checkpoints} signed head matched)")

    run_command(body)


def migrate():
    """Bring the inventory's schema (REGATTA_DATABASE_URL) to the newest revision, then exit: the
    one-shot step before the API and workers start (docker-compose.yml's regatta-migrate)."""
    from regatta.inventory import Inventory

    def body():
        inventory = Inventory(Settings.from_env().database_url, migrate=False)
        before = inventory.revision()
        inventory.migrate()
        after = inventory.revision()
        console.print(f"inventory schema at revision {after}" + (f" (was {before or 'empty'})" if before != after else
                                                                  " (already current)"))

    run_command(body)
