"""`regatta wave start|plan|forecast`: fleet-wide patch waves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from regatta.cli.arguments import Accept, Compress, Output, OutputOption, TwinFile, parse_accepted, parse_selector
from regatta.cli.context import fleet_now, open_inventory
from regatta.cli.exits import run_command
from regatta.cli.render import console, counted
from regatta.rules import forecasts, waves
from regatta.settings import Settings
from regatta.temporal.outcomes import OperationRefused as Refused

wave_app = typer.Typer(no_args_is_help=True, help="Fleet-wide patch waves: stages, windows, freezes, a failure budget.")


WaveFile = Annotated[str | None, typer.Option("--file", help="the wave as YAML (see examples/wave.yaml)")]


WaveSelector = Annotated[str | None, typer.Option(help="without --file: the clusters, a label selector as kubectl -l takes it, e.g. 'env in (staging),team=payments'")]


WaveTarget = Annotated[str | None, typer.Option("--to", help="without --file: the target version, e.g. 1.31")]


WaveName = Annotated[str | None, typer.Option(help="without --file: the wave's name (default patch-<to>-<date>)")]


WaveConcurrency = Annotated[int, typer.Option(help="without --file: clusters upgraded at once")]


WaveBudget = Annotated[str, typer.Option(help="without --file: failures tolerated, a count or a share like 10%")]


def _wave_request(*, file: str | None, selector: str | None, to: str | None, name: str | None, concurrency: int,
                  failure_budget: str, ticket: str | None, requested_by: str | None, accept: list[str] | None = None):
    """The wave a command means: its file, or one stage over a selector."""
    import getpass

    from pydantic import ValidationError

    from regatta.formats.wave_file import WaveFileError, load_wave_file
    from regatta.models import PatchWaveInput

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
                                  selector=parse_selector(selector), failure_budget=budget,
                                  stages=[{"name": "all", "concurrency": concurrency}])
        except ValidationError as error:
            raise Refused(str(error)) from None
    else:
        raise Refused("say what to upgrade: --file wave.yaml, or --selector k=v,... --to X.Y")
    updates: dict[str, object] = {"requested_by": requested_by or getpass.getuser(), **({"ticket": ticket} if ticket else {})}
    if accept:  # on top of the file's accept_findings
        updates["accept_findings"] = {**wave.accept_findings, **parse_accepted(accept)}
    return wave.model_copy(update=updates)


@wave_app.command("start")
def wave_start(
    file: WaveFile = None,
    selector: WaveSelector = None,
    to: WaveTarget = None,
    name: WaveName = None,
    concurrency: WaveConcurrency = 1,
    failure_budget: WaveBudget = "0",
    plan_only: Annotated[bool, typer.Option(help="print which clusters go in which stage and when, and whether each is"
                                                " ready for the target (read from the clusters now); start nothing")] = False,
    accept: Accept = None,
    ticket: Annotated[str | None, typer.Option(help="change ticket (overrides the file's)")] = None,
    wait: Annotated[bool, typer.Option(help="follow it until it ends")] = False,
    requested_by: Annotated[str | None, typer.Option(help="who asks (default: $USER)")] = None,
):
    """Bring every cluster a wave selects to a version, stage by stage (operation id: wave-NAME)."""
    from regatta.cli.op import announce
    from regatta.cli.render import render_plan
    from regatta.temporal.admission import admit
    from regatta.temporal.operations import start

    async def body():
        wave = _wave_request(file=file, selector=selector, to=to, name=name, concurrency=concurrency,
                             failure_budget=failure_budget, ticket=ticket, requested_by=requested_by, accept=accept)
        # The same clock the wave will read: the simulator's for a simulated fleet.
        admission = admit(wave, inventory=open_inventory(), now=fleet_now(),  # exit 2 if refused
                          outbound_rules=Settings.from_env().outbound)
        plan = admission.plan
        assert plan is not None  # a wave's admission carries its plan
        if plan_only:
            from regatta.inventory.readiness_check import check_fleet
            from regatta.kube.connect import ClusterConnections

            planned = {entry.name for stage in plan.stages for entry in stage.clusters if entry.status != "at_target"}
            records = [r for r in open_inventory().list_clusters() if r.name in planned]
            reports = check_fleet(ClusterConnections(sim_url=Settings.from_env().sim_url), records, wave.target_version)
            render_plan(plan, console, readiness={r.cluster: r for r in reports}, accepted=wave.accept_findings)
            return
        handle = await start(Settings.from_env(), wave)
        from regatta.inventory.rehearsal_records import attachable_for

        rehearsed = attachable_for(open_inventory(), wave=wave.name, target_version=wave.target_version,
                                   started=datetime.now(UTC))
        if rehearsed is not None:  # what the wave attaches as it starts
            console.print(f"rehearsed as {rehearsed.rehearsal_id} ({rehearsed.rehearsed_at.astimezone(UTC):%Y-%m-%d %H:%M}"
                          " UTC): the wave attaches it and holds itself against it when it ends (`regatta rehearsal"
                          f" show {rehearsed.rehearsal_id}`)", highlight=False)
        total = sum(len(stage.clusters) for stage in plan.stages)
        await announce(handle, f"{counted(total, 'cluster')} in {counted(len(plan.stages), 'stage')} to {wave.target_version}", wait=wait)

    run_command(body())


@wave_app.command("plan")
def wave_plan_command(
    file: WaveFile = None,
    selector: WaveSelector = None,
    to: WaveTarget = None,
    name: WaveName = None,
    concurrency: WaveConcurrency = 1,
    failure_budget: WaveBudget = "0",
    cluster: Annotated[str | None, typer.Option(help="only this cluster: when will it be upgraded?")] = None,
    output: OutputOption = Output.table,
):
    """When the wave would first touch each cluster, given stages, soak, concurrency, windows,
    freezes and holds. Starts nothing."""
    from regatta.cli.render import render_forecast

    def body():
        wave = _wave_request(file=file, selector=selector, to=to, name=name, concurrency=concurrency,
                             failure_budget=failure_budget, ticket=None, requested_by=None)
        now = fleet_now()
        plan = waves.plan_wave(wave, open_inventory().list_clusters(), now=now)
        forecast = forecasts.forecast(wave=wave, stages=plan.stages, now=now,
                                      upgrade_seconds=wave.estimated_upgrade_minutes * 60, unstaged=plan.unstaged_reasons)
        render_forecast(forecast, console, cluster=cluster, output=output.value)

    run_command(body)


@wave_app.command("forecast")
def wave_forecast(
    operation_id: Annotated[str, typer.Argument(help="the running wave's operation id, wave-NAME")],
    cluster: Annotated[str | None, typer.Option(help="only this cluster: when will it be upgraded?")] = None,
    output: OutputOption = Output.table,
):
    """Ask a running wave when it will first touch each cluster, from where it stands now."""
    from regatta.cli.render import render_forecast
    from regatta.models import WaveForecast
    from regatta.temporal.operations import query

    async def body():
        forecast = WaveForecast.model_validate(await query(Settings.from_env(), operation_id, "forecast", suggest=True))
        render_forecast(forecast, console, cluster=cluster, output=output.value)

    run_command(body())


@wave_app.command("rehearse")
def wave_rehearse_command(
    file: WaveFile = None,
    selector: WaveSelector = None,
    to: WaveTarget = None,
    name: WaveName = None,
    concurrency: WaveConcurrency = 1,
    failure_budget: WaveBudget = "0",
    twin: TwinFile = None,
    compress: Compress = 60.0,
    output: OutputOption = Output.table,
):
    """Run the wave's upgrades on a twin of its clusters (one run for each shape of cluster, in a private simulator and
    Temporal of its own) and say what the wave would do: when each cluster would start and end, which drains budgets
    would hold, the windows that would close mid-cluster, the stages the failure budget would halt, and its total.
    Touches nothing real; exit 0 whatever it predicts."""

    def body():
        from regatta.cli.rehearse import corrections_said, keep_report, rehearse, render_wave, twin_for
        from regatta.rules import rehearsals

        wave = _wave_request(file=file, selector=selector, to=to, name=name, concurrency=concurrency,
                             failure_budget=failure_budget, ticket=None, requested_by=None)
        now = fleet_now()
        plan = waves.plan_wave(wave, open_inventory().list_clusters(), now=now)
        entries = {entry.name: (stage.name, entry) for stage in plan.stages for entry in stage.clusters
                   if entry.status in ("pending", "waiting_window", "held")}
        if not entries:
            raise Refused(f"wave {wave.name} has nothing to upgrade: every cluster it selects is at {wave.target_version}"
                          " or in no stage")
        fleet = twin_for(sorted(entries), twin)
        requests = {name: waves.upgrade_request(wave, entry, stage=stage) for name, (stage, entry) in entries.items()}
        rehearsed = rehearse(fleet, requests, compress=compress)
        left_out = sorted({line for r in rehearsed.values() for line in r.left_out})

        report = rehearsals.rehearse_wave(wave=wave, plan=plan, now=now, rehearsed=rehearsed, compress=compress,
                                          rehearsed_at=datetime.now(UTC), left_out=left_out,
                                          corrections=corrections_said(rehearsed, fleet))
        render_wave(report, output=output.value)
        keep_report(report, subject=wave.name)

    run_command(body)
