"""DriftSweep: on a schedule or when asked, compare every applied bundle object with what is live
in its cluster, batch by batch: what changed (the fields Regatta set, before and after), who
changed it (the field manager in managedFields) and when; a deleted object is drift too. Where a
bundle says `remediate`, the bundle is applied again. Each new drift, and each remediation, is in
the audit trail; the compliance records say `drifted` until it is gone. A cluster that cannot be
read is named in the result; it does not stop the sweep.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.pieces.calls import call
from workflows.pieces.inputs import check_start, parse_input, tag
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import Activity
    from regatta.models.operations import WorkflowName
    from regatta.models.policy import (
        DriftReport,
        DriftSweepInput,
        DriftSweepProgress,
        DriftSweepResult,
        DriftTarget,
        SweepDrift,
    )
    from regatta.rules import bundle_targets, operation_ids

EXAMPLE = '{"bundle": "baseline"}'


@workflow.defn(name=WorkflowName.DRIFT_SWEEP)
class DriftSweep:
    @workflow.init
    def __init__(self, input: DriftSweepInput | dict) -> None:
        self.input, self.input_error = parse_input(DriftSweepInput, input, EXAMPLE)
        self.state = DriftSweepProgress()
        self.trail = Trail(operation=WorkflowName.DRIFT_SWEEP, cluster=lambda: operation_ids.drift_id(self.input.bundle),
                           state=lambda: self.state, asking=self.input)

    @workflow.query
    def progress(self) -> DriftSweepProgress:
        return self.state

    @workflow.run
    async def run(self, input: DriftSweepInput | dict) -> DriftSweepResult:
        check_start(trail=self.trail, state=self.state, input_error=self.input_error, cluster=None)
        tag(operation=WorkflowName.DRIFT_SWEEP, ticket=self.input.ticket)
        targets: list[DriftTarget] = await call(Activity.LIST_DRIFT_TARGETS, self.input, list[DriftTarget])
        self.state.targets, self.state.phase = len(targets), "sweeping"
        unreachable: dict[str, str] = {}
        suppressed = 0
        done = 0
        for site, batch in bundle_targets.drift_batches(targets, self.input.batch_size):  # a site's agent reads its own
            self.state.step = f"comparing clusters × bundles {done + 1}–{done + len(batch)} of {len(targets)}"
            done += len(batch)
            report: DriftReport = await call(Activity.SWEEP_DRIFT, SweepDrift(
                targets=batch, site=site, operation_id=self.state.operation_id), DriftReport,
                timeout=120 + 5 * len(batch), heartbeat=60)
            self.state.swept += len(batch)
            self.state.checked_objects += report.checked_objects
            unreachable.update(report.unreachable)
            for drift in report.drifts:
                if drift.suppressed_by:
                    suppressed += 1
                    continue
                self.state.drifted += 1
                self.state.remediated += int(drift.remediated)
                paths = ", ".join(f"{f.path}: {f.before!r} → {f.after!r}" for f in drift.fields[:5])
                who = f" by {drift.changed_by}" + (f" at {drift.changed_at}" if drift.changed_at else "") if drift.changed_by else ""
                await self.trail.record("drift", "remediated" if drift.remediated else "found",
                                        f"{drift.bundle} {drift.revision}: {drift.key.words()} {drift.kind}{who}"
                                        + (f": {paths}" if paths else ""), cluster=drift.cluster)
        self.state.unreachable = len(unreachable)
        message = (f"compared {self.state.checked_objects} objects in {len(targets)} clusters × bundles:"
                   f" {self.state.drifted} new drifts ({self.state.remediated} remediated, {suppressed} suppressed)"
                   + (f"; {len(unreachable)} could not be read: {', '.join(sorted(unreachable)[:10])}" if unreachable else ""))
        self.trail.step("succeeded", "done")
        await self.trail.record("drift_sweep", "succeeded", message)
        return DriftSweepResult(operation_id=self.state.operation_id, targets=len(targets),
                                checked_objects=self.state.checked_objects, drifts=self.state.drifted,
                                remediated=self.state.remediated, suppressed=suppressed, unreachable=unreachable,
                                message=message)
