"""Scheduled patch windows and fleet sweeps as Temporal Schedules: visible, pausable and
triggerable in the Temporal UI, listed and removed from the CLI.

A patch schedule starts a PatchWave at calendar times in a time zone (e.g. the second Tuesday
of each month, 02:00 Europe/Berlin). It never starts one while the previous wave still runs
(overlap policy SKIP), and a wave it starts during a fleet freeze ends at once, saying so
(`start_only_outside_freezes`). A sweep schedule runs FleetSweep every N minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError, RPCStatusCode

from regatta.models import FleetSweepInput, PatchWaveInput
from regatta.models.operations import WorkflowName
from regatta.models.policy import DriftSweepInput
from regatta.rules import operation_ids
from regatta.settings import Settings
from regatta.temporal.connect import connect
from regatta.temporal.operations import OperationRefused

DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


@dataclass(frozen=True)
class PatchWindow:
    """When a patch schedule fires: days of the week, optionally only the Nth week of the month, at HH:MM local time."""

    days: tuple[str, ...]
    at: str
    timezone: str
    week_of_month: int | None = None

    def calendar(self) -> ScheduleCalendarSpec:
        unknown = [d for d in self.days if d not in DAYS]
        if unknown or not self.days:
            raise OperationRefused(f"days must be among {', '.join(DAYS)}; got {', '.join(self.days) or 'none'}")
        try:
            hour, minute = (int(part) for part in self.at.split(":"))
            assert 0 <= hour < 24 and 0 <= minute < 60
        except (ValueError, AssertionError):
            raise OperationRefused(f"--at {self.at!r} is not a time of day; write HH:MM, e.g. 02:00") from None
        if self.week_of_month is not None and not 1 <= self.week_of_month <= 5:
            raise OperationRefused("--week-of-month must be 1 to 5 (the 2nd Tuesday: --days tue --week-of-month 2)")
        # All fields of a calendar must match: "Tuesday" and "day 8 to 14" is the second Tuesday.
        month_days = ([ScheduleRange(7 * (self.week_of_month - 1) + 1, min(31, 7 * self.week_of_month))]
                      if self.week_of_month else [ScheduleRange(1, 31)])
        return ScheduleCalendarSpec(second=[ScheduleRange(0)], minute=[ScheduleRange(minute)], hour=[ScheduleRange(hour)],
                                    day_of_month=month_days, day_of_week=[ScheduleRange(DAYS[d]) for d in self.days],
                                    comment=f"{'week ' + str(self.week_of_month) + ' ' if self.week_of_month else ''}"
                                            f"{','.join(self.days)} {self.at} {self.timezone}")


async def _create(settings: Settings, schedule_id: str, schedule: Schedule) -> str:
    client = await connect(settings)
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        raise OperationRefused(f"schedule {schedule_id} exists already; delete it first (regatta schedule delete"
                               f" {schedule_id})") from None
    except RPCError as error:
        if error.status == RPCStatusCode.INVALID_ARGUMENT:
            raise OperationRefused(f"Temporal refused the schedule: {error.message}") from None
        raise
    return schedule_id


async def create_patch_schedule(settings: Settings, *, name: str, wave: PatchWaveInput, window: PatchWindow,
                                paused: bool = False) -> str:
    wave = wave.model_copy(update={"start_only_outside_freezes": True})
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(WorkflowName.PATCH_WAVE, wave, id=operation_ids.wave_id(wave.name), task_queue=settings.task_queue),
        spec=ScheduleSpec(calendars=[window.calendar()], time_zone_name=window.timezone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(paused=paused, note=f"patch wave {wave.name} to {wave.target_version}"),
    )
    return await _create(settings, f"patch-{name}", schedule)


async def create_sweep_schedule(settings: Settings, *, every_minutes: int, request: FleetSweepInput) -> str:
    if every_minutes < 1:
        raise OperationRefused("--every-minutes must be at least 1")
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(WorkflowName.FLEET_SWEEP, request, id="fleet-sweep", task_queue=settings.task_queue),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=every_minutes))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=f"fleet sweep every {every_minutes} minutes"),
    )
    return await _create(settings, "fleet-sweep", schedule)


async def create_drift_schedule(settings: Settings, *, every_minutes: int, request: DriftSweepInput) -> str:
    if every_minutes < 1:
        raise OperationRefused("--every-minutes must be at least 1")
    operation_id = operation_ids.drift_id(request.bundle)
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(WorkflowName.DRIFT_SWEEP, request, id=operation_id, task_queue=settings.task_queue),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=every_minutes))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=f"drift sweep of {request.bundle or 'every bundle'} every {every_minutes} minutes"),
    )
    return await _create(settings, operation_id, schedule)


async def list_schedules(settings: Settings) -> list[dict]:
    client = await connect(settings)
    found = []
    async for entry in await client.list_schedules():
        state = entry.schedule.state if entry.schedule else None
        found.append({"id": entry.id, "paused": bool(state and state.paused), "note": (state.note if state else "") or "",
                      "next": [t.isoformat() for t in (entry.info.next_action_times[:2] if entry.info else [])]})
    return sorted(found, key=lambda s: s["id"])


async def control_schedule(settings: Settings, schedule_id: str, action: str) -> None:
    handle = (await connect(settings)).get_schedule_handle(schedule_id)
    try:
        if action == "pause":
            await handle.pause(note="paused from the regatta CLI")
        elif action == "unpause":
            await handle.unpause(note="unpaused from the regatta CLI")
        elif action == "trigger":
            await handle.trigger()
        elif action == "delete":
            await handle.delete()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise OperationRefused(f"no schedule {schedule_id}; `regatta schedule list` shows them") from None
        raise
