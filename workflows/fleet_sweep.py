"""FleetSweep: on a schedule, read every cluster's health, versions and pod capacity from the
cluster and its cloud into the inventory, batch by batch, so `regatta clusters list` and every
planner work from what the fleet is, not what it was. One unreachable cluster is recorded as
unreachable; it does not stop the sweep.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.runbook import QUICK_CALL, parse_input

with workflow.unsafe.imports_passed_through():
    from regatta.models import Activity, FleetSweepInput, FleetSweepProgress, FleetSweepResult
    from regatta.models.search_attributes import OPERATION

EXAMPLE = '{"selector": {"environment": "prod"}, "batch_size": 100}'


@workflow.defn(name="FleetSweep")
class FleetSweep:
    @workflow.init
    def __init__(self, input: FleetSweepInput | dict) -> None:
        self.input, self.input_error = parse_input(FleetSweepInput, input, EXAMPLE)
        self.state = FleetSweepProgress()

    @workflow.query
    def progress(self) -> FleetSweepProgress:
        return self.state

    @workflow.run
    async def run(self, input: FleetSweepInput | dict) -> FleetSweepResult:
        self.state.operation_id = workflow.info().workflow_id
        if self.input_error:
            raise ApplicationError(self.input_error, type="InvalidInput", non_retryable=True)
        workflow.upsert_search_attributes([OPERATION.value_set("FleetSweep")])
        names: list[str] = await workflow.execute_activity(
            Activity.LIST_CLUSTER_NAMES, self.input.selector, result_type=list[str],
            start_to_close_timeout=timedelta(seconds=60), retry_policy=QUICK_CALL)
        self.state.total, self.state.phase = len(names), "sweeping"
        for start in range(0, len(names), self.input.batch_size):
            batch = names[start:start + self.input.batch_size]
            self.state.step = f"sweeping clusters {start + 1}–{start + len(batch)} of {len(names)}"
            counts: dict[str, int] = await workflow.execute_activity(
                Activity.SWEEP_CLUSTERS, batch, result_type=dict[str, int],
                start_to_close_timeout=timedelta(seconds=60 + 10 * len(batch)), retry_policy=QUICK_CALL)
            for kind, n in counts.items():
                self.state.health[kind] = self.state.health.get(kind, 0) + n
            self.state.swept += len(batch)
        self.state.phase, self.state.step = "succeeded", "done"
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(self.state.health.items())) or "no clusters"
        return FleetSweepResult(operation_id=self.state.operation_id, total=self.state.total, health=self.state.health,
                                message=f"swept {self.state.total} clusters: {summary}")
