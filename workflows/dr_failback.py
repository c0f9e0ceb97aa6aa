"""DRFailback: return service from the standby to its primary, healthy again, the way the DR
runbook says: a fresh backup of the standby (the resync point, so state created there is not lost),
fence the standby's copies, restore what is new onto the primary and give the primary's fenced
workloads their replicas back, verify, shift traffic home, and return the standby to waiting.
The steps it shares with DRFailover are workflows/pieces/disaster_recovery.py.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.pieces.calls import call
from workflows.pieces.disaster_recovery import Recovery
from workflows.pieces.inputs import tag

with workflow.unsafe.imports_passed_through():
    from regatta.models import (
        AbortInput,
        Activity,
        ApproveInput,
        BackupInfo,
        DRFailbackInput,
        DRProgress,
        DRResult,
        ErrorType,
        RemoveRestored,
        RestoreReport,
        SetReplicas,
        VeleroBackup,
        WorkloadInventory,
    )
    from regatta.models.operations import WorkflowName
    from regatta.rules import recovery

EXAMPLE = '{"cluster": "eks-prod-use1", "ticket": "CHG-43"}'


@workflow.defn(name=WorkflowName.DR_FAILBACK)
class DRFailback:
    @workflow.init
    def __init__(self, input: DRFailbackInput | dict) -> None:
        self.recovery: Recovery[DRFailbackInput] = Recovery(operation="DRFailback", model=DRFailbackInput, raw=input, example=EXAMPLE)

    @workflow.query
    def progress(self) -> DRProgress:
        return self.recovery.state

    @workflow.update
    async def approve(self, request: ApproveInput) -> DRProgress:
        await self.recovery.approve(request)
        return self.recovery.state

    @approve.validator
    def validate_approve(self, request: ApproveInput) -> None:
        self.recovery.validate_approve(request)

    @workflow.update
    async def abort(self, request: AbortInput) -> DRProgress:
        await self.recovery.abort(request)
        return self.recovery.state

    @abort.validator
    def validate_abort(self, request: AbortInput) -> None:
        self.recovery.validate_abort(request)

    async def _failback(self) -> str:
        dr = self.recovery
        input = dr.input
        if input.override_capacity is not None and not input.override_capacity.strip():
            raise dr.refuse("override_capacity needs a reason saying why the primary may run short", ErrorType.INVALID_INPUT)
        pair = await dr.load_pair(moving_to="primary")
        if pair.serving != "standby":
            raise dr.refuse(f"{pair.primary} serves its own workloads already; there is nothing to fail back",
                               ErrorType.NOT_FAILED_OVER)
        tag(operation=dr.trail.operation, cluster=input.cluster, environment=dr.target.environment, ticket=input.ticket)
        await dr.hold(dr.source.name)
        await dr.trail.record("failback", "started", f"{dr.source.name} → {dr.target.name}, requested by {input.requested_by}")

        dr.trail.step("checking", f"reading what runs on {dr.source.name}")
        on_standby: WorkloadInventory = await call(Activity.INSPECT_WORKLOADS, dr.source.ref, WorkloadInventory)
        # What the failover put to work on the standby, and nothing the standby runs for itself.
        moved = {key: state.replicas for key, state in on_standby.deployments.items()
                 if state.restored_by or state.dr_replicas is not None}
        await dr.check_target(wanted=moved)
        if await dr.approval_gate():
            return dr.aborted()

        dr.trail.step("backing_up", f"taking a backup of {dr.source.name}: the state it created while it served")
        backup: BackupInfo = await call(Activity.TAKE_BACKUP, VeleroBackup(
            cluster=dr.source.ref, name=dr.velero_name("resync"),
            timeout_seconds=input.restore_timeout_seconds, poll_interval_seconds=input.poll_interval_seconds),
            BackupInfo, timeout=input.restore_timeout_seconds + 120, heartbeat=None)
        dr.state.backup = backup
        await dr.trail.record("backup", "succeeded", f"resync point {backup.name} of {dr.source.name}")
        await dr.fence(dr.source.ref, only=sorted(moved), must_reach=True)

        namespaces = sorted({key.split("/", 1)[0] for key in moved})
        # Only the namespaces the failover put to work: never what the standby runs for itself.
        restored = (await dr.restore(dr.target.ref, backup, purpose="failback", mapping={}, included=namespaces)
                    if namespaces else RestoreReport(restore="", deployments=[], namespaces=[]))
        dr.state.step = f"giving {dr.target.name}'s fenced workloads their replicas back"
        dr.state.scaled = await call(Activity.UNFENCE_WORKLOADS, dr.target.ref, dict[str, int])
        await dr.trail.record("unfence", "succeeded", ", ".join(f"{k} → {n}" for k, n in sorted(dr.state.scaled.items()))
                          or "nothing was fenced")
        serving = sorted(set(restored.deployments) | {k for k, n in dr.state.scaled.items() if n})
        await dr.wait_ready(dr.target.ref, serving)
        await dr.shift_traffic()
        await dr.wait_ready(dr.target.ref, serving)
        dr.measure(backup)

        dr.trail.step("returning_standby", f"returning {dr.source.name} to standby")
        after: WorkloadInventory = await call(Activity.INSPECT_WORKLOADS, dr.source.ref, WorkloadInventory)
        to_zero, restored_namespaces, restored_deployments = recovery.warm_standby_plan(after)
        await call(Activity.SET_REPLICAS, SetReplicas(cluster=dr.source.ref, replicas=to_zero, clear_fence=True),
                         list[str])
        removed = await call(Activity.REMOVE_RESTORED, RemoveRestored(
            cluster=dr.source.ref, namespaces=restored_namespaces, deployments=restored_deployments), list[str])
        await dr.trail.record("standby", "succeeded", f"{len(to_zero)} pre-deployed copies at 0; removed {', '.join(removed) or 'nothing'}")
        await dr.record_serving("primary")
        dr.state.message = (f"{dr.target.name} serves its own workloads again: {dr.objectives()}"
                              f" (resync backup {backup.name}); {dr.source.name} is back on standby")
        dr.trail.step("succeeded", "done")
        return "succeeded"

    @workflow.run
    async def run(self, input: DRFailbackInput | dict) -> DRResult:
        return await self.recovery.run(self._failback)
