"""`regatta schedule ...`: patch windows and fleet sweeps as Temporal Schedules.
"""

from __future__ import annotations

from typing import Annotated

import typer

from regatta.cli.arguments import ListOutput, ListOutputOption, ScheduleId, parse_selector
from regatta.cli.exits import run_command
from regatta.cli.render import console, show_list
from regatta.settings import Settings
from regatta.temporal.outcomes import OperationRefused as Refused

schedule_app = typer.Typer(no_args_is_help=True, help="Scheduled patch windows and fleet sweeps (Temporal Schedules).")


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

    from regatta.formats.wave_file import WaveFileError, load_wave_file
    from regatta.temporal.schedules import PatchWindow, create_patch_schedule

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

    run_command(body())


@schedule_app.command("sweep")
def schedule_sweep(every_minutes: Annotated[int, typer.Option(help="minutes between sweeps")] = 60,
                   selector: Annotated[str | None, typer.Option(help="only clusters this label selector takes (as kubectl -l: env=prod,tier!=3,!pci)")] = None):
    """Run FleetSweep (health, versions, capacity into the inventory) every N minutes."""
    from regatta.models import FleetSweepInput
    from regatta.temporal.schedules import create_sweep_schedule

    async def body():
        request = FleetSweepInput(selector=parse_selector(selector))
        schedule_id = await create_sweep_schedule(Settings.from_env(), every_minutes=every_minutes, request=request)
        console.print(f"created schedule [bold]{schedule_id}[/]: FleetSweep every {every_minutes} minutes")

    run_command(body())


@schedule_app.command("drift")
def schedule_drift(every_minutes: Annotated[int, typer.Option(help="minutes between sweeps")] = 60,
                   bundle: Annotated[str | None, typer.Option(help="only this bundle (default: every bundle)")] = None):
    """Run DriftSweep (applied bundle objects against what is live) every N minutes."""
    from pydantic import ValidationError

    from regatta.models.policy import DriftSweepInput
    from regatta.temporal.schedules import create_drift_schedule

    async def body():
        try:
            request = DriftSweepInput(bundle=bundle)
        except ValidationError as error:
            raise Refused(f"--bundle {bundle!r} is not a bundle name (lowercase letters, digits and -)") from error
        schedule_id = await create_drift_schedule(Settings.from_env(), every_minutes=every_minutes, request=request)
        console.print(f"created schedule [bold]{schedule_id}[/]: DriftSweep every {every_minutes} minutes")

    run_command(body())


@schedule_app.command("list")
def schedule_list(output: ListOutputOption = ListOutput.table):
    """Every schedule, whether it is paused, and when it fires next."""
    from regatta.temporal.schedules import list_schedules

    async def body():
        found = await list_schedules(Settings.from_env())
        show_list(found, output, title=f"{len(found)} schedules", columns=("ID", "PAUSED", "NEXT", "NOTE"),
                  row=lambda entry: (entry["id"], "yes" if entry["paused"] else "", ", ".join(entry["next"]), entry["note"]),
                  name=lambda entry: entry["id"], data=lambda entry: entry)

    run_command(body())


def _schedule_control(schedule_id: str, action: str) -> None:
    from regatta.temporal.schedules import control_schedule

    async def body():
        await control_schedule(Settings.from_env(), schedule_id, action)
        console.print(f"{schedule_id}: {'triggered' if action == 'trigger' else action + 'd'}")

    run_command(body())


@schedule_app.command("pause")
def schedule_pause(schedule_id: ScheduleId):
    """Pause a schedule (it starts nothing until unpaused)."""
    _schedule_control(schedule_id, "pause")


@schedule_app.command("unpause")
def schedule_unpause(schedule_id: ScheduleId):
    """Let a paused schedule start its action again at its next time."""
    _schedule_control(schedule_id, "unpause")


@schedule_app.command("trigger")
def schedule_trigger(schedule_id: ScheduleId):
    """Run a schedule's action now (overlap and freeze rules still apply)."""
    _schedule_control(schedule_id, "trigger")


@schedule_app.command("delete")
def schedule_delete(schedule_id: ScheduleId):
    """Delete a schedule: it starts nothing again (what it started runs on)."""
    _schedule_control(schedule_id, "delete")
