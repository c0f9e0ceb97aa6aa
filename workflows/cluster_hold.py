"""ClusterHold: the lock on a second cluster. One workflow id per cluster (`cluster-<name>`) is
what keeps two operations off a cluster (DESIGN rule 5); an operation that changes two clusters,
like a failover (the primary and its standby), holds the second one by running this as a child
under that cluster's id. While it runs, an upgrade or decommission of the standby is refused
with the id of the hold, whose `progress` names the operation behind it.

The parent sends `release` before it ends; if the parent dies instead, Temporal terminates the
hold with it (parent close policy TERMINATE), so a lock never outlives its operation. `release`
is a signal, not an update: a workflow can only signal another workflow.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.pieces.inputs import parse_input, tag

with workflow.unsafe.imports_passed_through():
    from regatta.models import ClusterHoldInput, ClusterHoldProgress, ClusterHoldResult
    from regatta.models.operations import WorkflowName

EXAMPLE = '{"cluster": "eks-dr-usw2", "held_by": "cluster-eks-prod-use1", "operation": "DRFailover"}'


@workflow.defn(name=WorkflowName.CLUSTER_HOLD)
class ClusterHold:
    @workflow.init
    def __init__(self, input: ClusterHoldInput | dict) -> None:
        self.input, self.input_error = parse_input(ClusterHoldInput, input, EXAMPLE)
        self.state = ClusterHoldProgress(cluster=self.input.cluster, held_by=self.input.held_by,
                                         operation=self.input.operation,
                                         step=f"held for {self.input.operation} {self.input.held_by}")

    @workflow.query
    def progress(self) -> ClusterHoldProgress:
        return self.state

    @workflow.signal
    def release(self) -> None:
        self.state.phase = "released"
        self.state.step = f"released by {self.input.held_by}"

    @workflow.run
    async def run(self, input: ClusterHoldInput | dict) -> ClusterHoldResult:
        self.state.operation_id = workflow.info().workflow_id
        tag(operation=WorkflowName.CLUSTER_HOLD, cluster=self.input.cluster, ticket=self.input.ticket)
        await workflow.wait_condition(lambda: self.state.phase == "released")
        return ClusterHoldResult(cluster=self.input.cluster, held_by=self.input.held_by)
