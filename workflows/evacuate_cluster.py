"""EvacuateCluster: move every placed application off a cluster, one after another, each as its own
MoveWorkloads (new replicas up and available elsewhere before any go here), so the cluster can
be replaced blue/green, decommissioned or worked on. `regatta cluster evacuate CLUSTER` starts
it; DecommissionCluster runs it as a child when asked to evacuate; a hold with `--evacuate`
starts it.

An application whose move is already running (the fleet sweep's, say) is waited for, then moved
if it still holds replicas here. One application failing to move does not stop the others; the
run fails at the end naming each failure, and the cluster still runs what could not move.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError, WorkflowAlreadyStartedError

from workflows.pieces.calls import call
from workflows.pieces.inputs import check_start, parse_input, tag
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import Activity
    from regatta.models.errors import ErrorType
    from regatta.models.operations import WorkflowName
    from regatta.models.placement import (
        EvacuateClusterInput,
        EvacuateClusterProgress,
        EvacuateClusterResult,
        MoveWorkloadsInput,
        MoveWorkloadsResult,
    )
    from regatta.rules import operation_ids

EXAMPLE = '{"cluster": "eks-prod-use1", "reason": "replaced blue/green by eks-prod-use1-b"}'
BUSY_RETRY = timedelta(seconds=10)  # how often to look again when the application's move is already running


@workflow.defn(name=WorkflowName.EVACUATE_CLUSTER)
class EvacuateCluster:
    @workflow.init
    def __init__(self, input: EvacuateClusterInput | dict) -> None:
        self.input, self.input_error = parse_input(EvacuateClusterInput, input, EXAMPLE)
        self.state = EvacuateClusterProgress(cluster=str(self.input.cluster))
        self.trail = Trail(operation=WorkflowName.EVACUATE_CLUSTER, cluster=lambda: self.input.cluster, state=lambda: self.state,
                           asking=self.input)

    @workflow.query
    def progress(self) -> EvacuateClusterProgress:
        return self.state

    async def _move(self, app: str) -> MoveWorkloadsResult:
        """The application's move off this cluster, waiting its turn when another move of it runs."""
        request = MoveWorkloadsInput(app=app, leaving=[self.input.cluster], reason=f"evacuating {self.input.cluster}:"
                                     f" {self.input.reason}", unreachable_ok=self.input.unreachable_ok,
                                     requested_by=self.input.requested_by, ticket=self.input.ticket,
                                     timeout_seconds=self.input.timeout_seconds,
                                     poll_interval_seconds=self.input.poll_interval_seconds)
        while True:
            try:
                return await workflow.execute_child_workflow(WorkflowName.MOVE_WORKLOADS, request, id=operation_ids.move_id(app),
                                                             result_type=MoveWorkloadsResult)
            except WorkflowAlreadyStartedError:
                self.state.apps[app] = f"waiting: another move of {app} is running"
                await workflow.sleep(BUSY_RETRY)

    @workflow.run
    async def run(self, input: EvacuateClusterInput | dict) -> EvacuateClusterResult:
        check_start(trail=self.trail, state=self.state, input_error=self.input_error, cluster=None)
        tag(operation=WorkflowName.EVACUATE_CLUSTER, cluster=self.input.cluster, ticket=self.input.ticket)
        self.trail.step("listing", f"listing the applications placed on {self.input.cluster}")
        placed: dict[str, list[str]] = await call(Activity.LIST_PLACED, self.input.cluster, dict[str, list[str]])
        apps = sorted(placed)
        self.state.apps = {app: "pending" for app in apps}
        await self.trail.record("evacuate", "started", f"placed applications to move: {', '.join(apps) or 'none'};"
                                f" {self.input.reason}")
        moved, failed = [], {}
        for app in apps:
            self.trail.step("moving", f"moving {app} off {self.input.cluster}")
            self.state.apps[app] = "moving"
            try:
                result = await self._move(app)
            except ChildWorkflowError as failure:
                cause = failure.cause or failure
                failed[app] = str(getattr(cause, "message", cause))
                self.state.apps[app] = f"failed: {failed[app]}"
                continue
            self.state.apps[app] = "moved" if result.outcome == "succeeded" else "nothing to move"
            moved.append(app)
        if failed:
            message = (f"{len(failed)} of {len(apps)} applications could not move off {self.input.cluster}: "
                       + "; ".join(f"{app}: {why}" for app, why in failed.items()))
            self.trail.step("failed", message)
            await self.trail.record("evacuate", "failed", message)
            raise ApplicationError(message, type=ErrorType.WORKLOADS_NOT_READY, non_retryable=True)
        message = (f"{self.input.cluster} runs no placed application now (moved {', '.join(moved)})" if moved
                   else f"no placed application runs on {self.input.cluster}: nothing to move")
        self.trail.step("succeeded", "done")
        await self.trail.record("evacuate", "succeeded", message)
        return EvacuateClusterResult(operation_id=self.state.operation_id, cluster=self.input.cluster, moved=moved,
                                     message=message)
