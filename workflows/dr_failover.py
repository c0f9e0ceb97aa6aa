"""DRFailover: move a primary's service to its standby the way the DR runbook says, because the
primary's region is failing, and measure how long it took (RTO) and how much was lost (RPO).

1. Check the standby: healthy, on a compatible version, with room for the primary's workloads
   as the newest backup records them. Refuse before anything changes if it is not.
2. Wait for a second person's approval where the environment requires it (prod always).
3. Fence the primary, so two sites never take writes at once: scale its workloads to zero,
   noting what ran. A primary that cannot be reached is not fenced, and the run says why.
4. Restore the primary's workloads on the standby from the newest backup; scale up the copies
   pre-deployed there.
5. Wait until they answer, shift every service's traffic to the standby, and verify.
6. Record RTO (start to verified) and RPO (age of the backup when writes stopped), the pair's
   new serving side, and every step in the audit trail.

A drill (`drill: true`) restores into `dr-drill-*` namespaces beside the real ones, verifies,
reports the RTO a failover would have had, and removes what it restored: nothing is fenced and
no traffic moves. The steps it shares with DRFailback are workflows/pieces/disaster_recovery.py.
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
        DRFailoverInput,
        DRProgress,
        DRResult,
        ErrorType,
        LatestBackup,
        RemoveRestored,
        SetReplicas,
        WorkloadInventory,
    )
    from regatta.models.operations import WorkflowName
    from regatta.rules import recovery

EXAMPLE = '{"cluster": "eks-prod-use1", "standby": "eks-dr-usw2", "ticket": "INC-42"}'


@workflow.defn(name=WorkflowName.DR_FAILOVER)
class DRFailover:
    @workflow.init
    def __init__(self, input: DRFailoverInput | dict) -> None:
        self.recovery: Recovery[DRFailoverInput] = Recovery(operation="DRFailover", model=DRFailoverInput, raw=input, example=EXAMPLE)
        self.recovery.state.drill = bool(self.recovery.input.drill)

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

    async def _failover(self) -> str:
        dr = self.recovery
        input = dr.input
        if input.standby == input.cluster:
            raise dr.refuse(f"{input.cluster} cannot fail over to itself; name its standby", ErrorType.INVALID_INPUT)
        if input.override_capacity is not None and not input.override_capacity.strip():
            raise dr.refuse("override_capacity needs a reason saying why the standby may run short", ErrorType.INVALID_INPUT)
        pair = await dr.load_pair(moving_to="standby")
        if pair.standby != input.standby:
            raise dr.refuse(f"the standby of {pair.primary} is {pair.standby}, not {input.standby}", ErrorType.NOT_A_DR_PAIR)
        if pair.serving == "standby" and not input.drill:
            raise dr.refuse(f"{pair.standby} already serves {pair.primary}'s workloads (since {pair.last_operation});"
                               f" fail back first: regatta failback {pair.primary}", ErrorType.ALREADY_FAILED_OVER)
        tag(operation=dr.trail.operation, cluster=input.cluster, environment=dr.source.environment, ticket=input.ticket)
        await dr.hold(dr.target.name)
        kind = "drill" if input.drill else "failover"
        await dr.trail.record(kind, "started", f"{dr.source.name} → {dr.target.name}, requested by {input.requested_by}")

        dr.trail.step("checking", f"finding the newest backup of {dr.source.name}")
        backup: BackupInfo = await call(Activity.LATEST_BACKUP, LatestBackup(
            cluster=dr.target.ref, source=dr.source.name), BackupInfo)
        dr.state.backup = backup
        await dr.check_target(wanted=backup.replicas)
        if await dr.approval_gate():
            return dr.aborted()

        if input.drill:
            dr.state.fencing = "not in a drill"
        else:
            await dr.fence(dr.source.ref, only=None, must_reach=False)

        namespaces = {key.split("/", 1)[0] for key in backup.replicas}
        mapping = recovery.drill_namespaces(namespaces) if input.drill else {}
        restored = await dr.restore(dr.target.ref, backup, purpose=kind, mapping=mapping)
        if not input.drill:
            present: WorkloadInventory = await call(Activity.INSPECT_WORKLOADS, dr.target.ref, WorkloadInventory)
            dr.state.scaled = recovery.scale_up_plan(wanted=backup.replicas, present=present.deployments)
            if dr.state.scaled:
                dr.state.step = f"scaling up {len(dr.state.scaled)} pre-deployed workloads"
                await call(Activity.SET_REPLICAS, SetReplicas(cluster=dr.target.ref, replicas=dr.state.scaled),
                                 list[str])
                await dr.trail.record("scale-up", "succeeded", ", ".join(f"{k} → {n}" for k, n in sorted(dr.state.scaled.items())))
        # Traffic goes only to workloads that answer; the check after the shift is the verification.
        serving = sorted(set(restored.deployments) | set(dr.state.scaled))
        await dr.wait_ready(dr.target.ref, serving)
        if not input.drill:
            await dr.shift_traffic()
            await dr.wait_ready(dr.target.ref, serving)
        dr.measure(backup)

        if input.drill:
            dr.trail.step("cleaning_up", f"removing the drill's {len(restored.namespaces)} namespaces from {dr.target.name}")
            await call(Activity.REMOVE_RESTORED, RemoveRestored(cluster=dr.target.ref, namespaces=restored.namespaces),
                             list[str])
            dr.state.message = (f"drill: {dr.target.name} could take over {dr.source.name} with {dr.objectives()}"
                                  f" (backup {backup.name}); nothing was fenced and no traffic moved")
        else:
            await dr.record_serving("standby")
            dr.state.message = (f"{dr.target.name} serves {dr.source.name}'s workloads: {dr.objectives()}"
                                  f" (backup {backup.name}); "
                                  + (dr.state.fencing if dr.state.fenced_at else f"{dr.source.name} not fenced (unreachable)"))
        dr.trail.step("succeeded", "done")
        return "succeeded"

    @workflow.run
    async def run(self, input: DRFailoverInput | dict) -> DRResult:
        return await self.recovery.run(self._failover)
