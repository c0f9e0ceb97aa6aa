"""DecommissionCluster: delete a cluster only when nothing needs it, the way the runbook says:

1. Refuse while it serves traffic or holds a DR role, or while non-system workloads still run
   on it (unless `force_empty` with a reason), or while it runs placed applications (unless
   `evacuate`: they move elsewhere, new replicas up before any go).
2. Wait for an `approve` Update from someone other than the requester.
3. Evacuate the placed applications, when asked (an EvacuateCluster child).
4. Cordon every node, so nothing new lands on it.
5. Take the final backup (Velero, to storage outside the cluster).
6. Delete the node pools, then the cluster.
7. Deregister it from the inventory and drop the credentials Regatta held.

Every step is in the audit trail. Until deletion begins an `abort` stops it and returns the
cordoned nodes to service; from then on it finishes, because half a cluster helps nobody.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from workflows.pieces.calls import ClusterCalls, call, request_token
from workflows.pieces.controls import refuse_a_second_abort, refuse_own_approval, take_abort
from workflows.pieces.inputs import check_start, parse_input, tag
from workflows.pieces.patches import FIRST_POOL_WITH_CLUSTER, patched
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import (
        AbortInput,
        Activity,
        ApproveInput,
        ClusterInspection,
        ClusterRecord,
        ClusterState,
        CordonNodes,
        DecommissionClusterInput,
        DecommissionClusterProgress,
        DecommissionClusterResult,
        DeleteCluster,
        DeleteNodePool,
        VeleroBackup,
    )
    from regatta.models.errors import ErrorType
    from regatta.models.operations import WorkflowName
    from regatta.models.placement import EvacuateClusterInput, EvacuateClusterResult
    from regatta.rules import decommissioning, operation_ids, provisioning

EXAMPLE = '{"cluster": "eks-dev-use1", "ticket": "CHG-7"}'
DESTRUCTIVE = ("deleting", "deregistering", "succeeded", "aborted", "failed")


@workflow.defn(name=WorkflowName.DECOMMISSION_CLUSTER)
class DecommissionCluster:
    @workflow.init
    def __init__(self, input: DecommissionClusterInput | dict) -> None:
        self.input, self.input_error = parse_input(DecommissionClusterInput, input, EXAMPLE)
        self.state = DecommissionClusterProgress(cluster=self.input.cluster)
        self.trail = Trail(operation=WorkflowName.DECOMMISSION_CLUSTER, cluster=lambda: self.input.cluster, state=lambda: self.state,
                           asking=self.input)
        self.calls: ClusterCalls  # once the cluster is found in the inventory

    @workflow.query
    def progress(self) -> DecommissionClusterProgress:
        return self.state

    @workflow.update
    async def approve(self, request: ApproveInput) -> DecommissionClusterProgress:
        self.state.approved_by = request.approver
        await self.trail.record("approve", "approved", f"by {request.approver}: {request.comment}".rstrip(": "))
        return self.state

    @approve.validator
    def validate_approve(self, request: ApproveInput) -> None:
        refuse_own_approval(phase=self.state.phase, approver=request.approver, requested_by=self.input.requested_by,
                            what="decommission", approved_by=self.state.approved_by)

    @workflow.update
    async def abort(self, request: AbortInput) -> DecommissionClusterProgress:
        await take_abort(self.state, self.trail, request)
        return self.state

    @abort.validator
    def validate_abort(self, request: AbortInput) -> None:
        if self.state.phase in DESTRUCTIVE:
            raise ApplicationError(f"cannot abort: the decommission is {self.state.phase}"
                                   + (" and will finish" if self.state.phase in ("deleting", "deregistering") else ""),
                                   type=ErrorType.TOO_LATE_TO_ABORT)
        refuse_a_second_abort(self.state.abort_requested)

    # ------------------------------------------------------------------ steps


    async def _check(self, record: ClusterRecord) -> None:
        self.trail.step("checking", "checking that nothing needs the cluster")
        blockers = decommissioning.decommission_blockers(record.labels)
        if blockers:
            raise ApplicationError(f"{record.name} cannot be decommissioned: " + "; ".join(blockers),
                                   type=ErrorType.CLUSTER_IN_USE, non_retryable=True)
        if patched("placed-workloads"):
            self.state.placed = await call(Activity.LIST_PLACED, record.name, dict[str, list[str]])
        if self.state.placed and not self.input.evacuate:
            raise ApplicationError(
                f"{record.name} runs placed applications: " + ", ".join(
                    f"{app} ({', '.join(names)})" for app, names in sorted(self.state.placed.items()))
                + f". Pass evacuate (CLI: --evacuate) to move them to other clusters first, or run `regatta cluster"
                f" evacuate {record.name}`", type=ErrorType.PLACED_WORKLOADS, non_retryable=True)
        moving = {name for names in self.state.placed.values() for name in names}
        self.state.workloads = [w for w in await call(Activity.LIST_WORKLOADS, self.calls.ref, list[str]) if w not in moving]
        if self.state.workloads and not self.input.force_empty:
            raise ApplicationError(
                f"{record.name} still runs workloads: {', '.join(self.state.workloads)}. Move them off, or pass"
                " force_empty with a force_reason (CLI: --force-empty --reason ...) to delete them with the cluster",
                type=ErrorType.CLUSTER_NOT_EMPTY, non_retryable=True)
        if self.state.workloads:
            await self.trail.record("force-empty", "approved", f"{self.input.force_reason}: {', '.join(self.state.workloads)}")

    async def _evacuate(self) -> None:
        """The placed applications move to other clusters before anything here is touched."""
        self.trail.step("evacuating", f"moving {', '.join(sorted(self.state.placed))} to other clusters")
        try:
            result: EvacuateClusterResult = await workflow.execute_child_workflow(
                WorkflowName.EVACUATE_CLUSTER, EvacuateClusterInput(
                    cluster=self.input.cluster, reason=f"decommission {self.state.operation_id}",
                    requested_by=self.input.requested_by, ticket=self.input.ticket),
                id=operation_ids.evacuate_id(self.input.cluster), result_type=EvacuateClusterResult)
        except ChildWorkflowError as failure:
            cause = failure.cause or failure
            raise ApplicationError(f"the evacuation failed, so nothing was deleted: {getattr(cause, 'message', cause)}",
                                   type=getattr(cause, "type", None) or ErrorType.WORKLOADS_NOT_READY,
                                   non_retryable=True) from None
        await self.trail.record("evacuate", "succeeded", result.message)

    async def _stop_if_aborted(self) -> bool:
        if not self.state.abort_requested:
            return False
        if self.state.cordoned:
            self.state.step = f"uncordoning {len(self.state.cordoned)} nodes"
            await call(Activity.CORDON_NODES, CordonNodes(cluster=self.calls.ref, nodes=self.state.cordoned, unschedulable=False),
                             list[str])
            self.state.cordoned = []
        return True

    async def _delete(self) -> None:
        self.trail.step("deleting", "deleting node pools")
        state: ClusterState = await call(Activity.DESCRIBE_CLUSTER, self.calls.ref, ClusterState)
        first = [(pool.name, pool.mode) for pool in state.node_pools]
        # AKS deletes no last System pool: those go with the cluster itself.
        one_by_one = set(provisioning.pools_deleted_before_the_cluster(self.calls.ref.provider, first)) \
            if self.calls.ref.provider == "aks" and patched(FIRST_POOL_WITH_CLUSTER) else {name for name, _ in first}
        for pool in state.node_pools:
            if pool.name not in one_by_one:
                continue
            self.state.step = f"deleting node pool {pool.name}"
            await self.calls.cloud_operation(Activity.DELETE_NODE_POOL, DeleteNodePool(
                cluster=self.calls.ref, node_pool=pool.name, request_token=request_token(f"delete-{pool.name}")))
            self.state.deleted.append(f"node_pool:{pool.name}")
        self.state.step = f"deleting cluster {self.input.cluster}"
        await self.calls.cloud_operation(Activity.DELETE_CLUSTER, DeleteCluster(
            cluster=self.calls.ref, request_token=request_token("delete-cluster")))
        self.state.deleted.append("cluster")
        self.state.deleted += [f"node_pool:{name} (with the cluster)" for name, _ in first if name not in one_by_one]
        await self.trail.record("delete", "succeeded", f"deleted {', '.join(self.state.deleted)}")

    async def _finish_aborted(self) -> DecommissionClusterResult:
        self.state.message = f"aborted ({self.state.abort_reason or 'no reason given'}); the cluster is untouched and serving"
        self.trail.step("aborted", "aborted")
        await self.trail.record("decommission", "aborted", self.state.message)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result("aborted")

    def _result(self, outcome: str) -> DecommissionClusterResult:
        return DecommissionClusterResult(operation_id=self.state.operation_id, cluster=self.input.cluster,
                                         outcome=outcome, approved_by=self.state.approved_by,
                                         backup=self.state.backup, deleted=self.state.deleted, message=self.state.message)

    # ------------------------------------------------------------------ the runbook

    @workflow.run
    async def run(self, input: DecommissionClusterInput | dict) -> DecommissionClusterResult:
        input = self.input
        check_start(trail=self.trail, state=self.state, input_error=self.input_error, cluster=input.cluster)
        if input.force_empty and not (input.force_reason or "").strip():
            self.trail.step("failed", "reading the input")
            raise ApplicationError("force_empty needs a force_reason saying why the workloads may go",
                                   type=ErrorType.INVALID_INPUT, non_retryable=True)
        try:
            record: ClusterRecord = await call(Activity.GET_CLUSTER, input.cluster, ClusterRecord)
        except ActivityError as failure:
            self.trail.step("failed", "looking the cluster up in the inventory")
            raise ApplicationError(str(getattr(failure.cause, "message", failure)), type=ErrorType.UNKNOWN_CLUSTER,
                                   non_retryable=True) from None
        self.calls = ClusterCalls(record.ref, input)
        tag(operation=WorkflowName.DECOMMISSION_CLUSTER, cluster=input.cluster, environment=record.environment, ticket=input.ticket)
        await self.trail.record("decommission", "started", f"requested by {input.requested_by}")
        try:
            await self._check(record)

            self.trail.step("awaiting_approval", f"waiting for someone other than {input.requested_by} to approve")
            try:
                await workflow.wait_condition(lambda: bool(self.state.approved_by) or self.state.abort_requested,
                                              timeout=timedelta(seconds=input.approval_timeout_seconds))
            except TimeoutError:
                raise ApplicationError(f"no approval within {input.approval_timeout_seconds:g}s; start again when"
                                       " someone can approve", type=ErrorType.APPROVAL_TIMEOUT, non_retryable=True) from None
            if await self._stop_if_aborted():
                return await self._finish_aborted()
            if self.state.placed:
                await self._evacuate()

            self.trail.step("cordoning", "cordoning every node")
            inspection: ClusterInspection = await call(Activity.INSPECT_CLUSTER, self.calls.ref, ClusterInspection)
            nodes = [n.name for n in inspection.nodes]
            self.state.cordoned = nodes
            await call(Activity.CORDON_NODES, CordonNodes(cluster=self.calls.ref, nodes=nodes), list[str])
            await self.trail.record("cordon", "succeeded", f"{len(nodes)} nodes")
            if await self._stop_if_aborted():
                return await self._finish_aborted()

            self.trail.step("backing_up", "taking the final backup")
            self.state.backup = await call(
                Activity.FINAL_BACKUP,
                VeleroBackup(cluster=self.calls.ref, name=f"final-{input.cluster}"[:63], timeout_seconds=input.cloud_operation_timeout_seconds,
                            poll_interval_seconds=input.poll_interval_seconds),
                str, timeout=input.cloud_operation_timeout_seconds + 120, heartbeat=None)
            await self.trail.record("backup", "succeeded", f"Velero backup {self.state.backup}")
            if await self._stop_if_aborted():
                return await self._finish_aborted()

            await self._delete()
            self.trail.step("deregistering", "removing it from the inventory and dropping credentials")
            await call(Activity.DEREGISTER_CLUSTER, input.cluster, None)
            revoked = await call(Activity.REVOKE_CREDENTIALS, self.calls.ref, list[str])
            await self.trail.record("deregister", "succeeded", f"removed from the inventory; revoked {', '.join(revoked)}")
        except (ActivityError, ApplicationError) as failure:
            cause = failure.cause if isinstance(failure, ActivityError) and failure.cause else failure
            refused = self.state.phase == "checking"
            self.state.message = f"{'refused' if refused else 'stopped'} during {self.state.step}: {getattr(cause, 'message', cause)}"
            self.trail.step("failed", self.state.step)
            await self.trail.record("decommission", "refused" if refused else "failed", self.state.message)
            raise ApplicationError(self.state.message, type=getattr(cause, "type", None) or "DecommissionFailed",
                                   non_retryable=True) from None

        self.state.message = (f"{input.cluster} is gone: backup {self.state.backup}, approved by {self.state.approved_by},"
                              f" deleted {', '.join(self.state.deleted)}")
        self.trail.step("succeeded", "done")
        await self.trail.record("decommission", "succeeded", self.state.message)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result("succeeded")
