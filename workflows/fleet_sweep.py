"""FleetSweep: on a schedule, read every cluster's health, versions and pod capacity from the
cluster and its cloud into the inventory, batch by batch, so `regatta clusters list` and every
planner work from what the fleet is, not what it was. One unreachable cluster is recorded as
unreachable; it does not stop the sweep.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.pieces.calls import call
from workflows.pieces.inputs import parse_input, refuse_a_bad_input, tag

with workflow.unsafe.imports_passed_through():
    from regatta.models import Activity, FleetSweepInput, FleetSweepProgress, FleetSweepResult

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
        refuse_a_bad_input(self.input_error)
        tag(operation="FleetSweep")
        names: list[str] = await call(Activity.LIST_CLUSTER_NAMES, self.input.selector, list[str])
        self.state.total, self.state.phase = len(names), "sweeping"
        for start in range(0, len(names), self.input.batch_size):
            batch = names[start:start + self.input.batch_size]
            self.state.step = f"sweeping clusters {start + 1}–{start + len(batch)} of {len(names)}"
            counts: dict[str, int] = await call(Activity.SWEEP_CLUSTERS, batch, dict[str, int], timeout=60 + 10 * len(batch))
            for kind, n in counts.items():
                self.state.health[kind] = self.state.health.get(kind, 0) + n
            self.state.swept += len(batch)
        self.state.phase, self.state.step = "succeeded", "done"
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(self.state.health.items())) or "no clusters"
        return FleetSweepResult(operation_id=self.state.operation_id, total=self.state.total, health=self.state.health,
                                message=f"swept {self.state.total} clusters: {summary}")
