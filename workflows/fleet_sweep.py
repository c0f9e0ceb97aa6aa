"""FleetSweep: on a schedule, read every cluster's health, versions, pod capacity, CPU and memory
from the cluster and its cloud into the inventory, batch by batch, so `regatta clusters list` and
every planner work from what the fleet is, not what it was. One unreachable cluster is recorded as
unreachable; it does not stop the sweep.

Then re-placement: each placed application with a share on a cluster that left the fleet, is
held for evacuation, or has been unhealthy for longer than its placement's damping period gets a
MoveWorkloads of its own (left running when the sweep ends). A cluster that flaps within the
damping period moves nothing, and nothing moves back on its own.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError

from workflows.pieces.calls import call, call_at_site
from workflows.pieces.inputs import parse_input, refuse_a_bad_input, tag
from workflows.pieces.patches import SWEEP_BATCH_TARGETED, patched

with workflow.unsafe.imports_passed_through():
    from regatta.models import Activity, FleetSweepInput, FleetSweepProgress, FleetSweepResult, SweepClusters
    from regatta.models.operations import WorkflowName
    from regatta.models.placement import Displaced, MoveWorkloadsInput
    from regatta.rules import operation_ids

EXAMPLE = '{"selector": {"environment": "prod"}, "batch_size": 100}'


@workflow.defn(name=WorkflowName.FLEET_SWEEP)
class FleetSweep:
    @workflow.init
    def __init__(self, input: FleetSweepInput | dict) -> None:
        self.input, self.input_error = parse_input(FleetSweepInput, input, EXAMPLE)
        self.state = FleetSweepProgress()

    @workflow.query
    def progress(self) -> FleetSweepProgress:
        return self.state

    async def _sweep(self, names: list[str], *, site: str | None) -> None:
        where = f" at site {site}" if site else ""
        for start in range(0, len(names), self.input.batch_size):
            batch = names[start:start + self.input.batch_size]
            self.state.step = f"sweeping clusters {self.state.swept + 1}–{self.state.swept + len(batch)} of {self.state.total}{where}"
            timeout = 60 + 10 * len(batch)
            counts: dict[str, int]
            if patched(SWEEP_BATCH_TARGETED):
                counts = await call(Activity.SWEEP_CLUSTERS, SweepClusters(names=batch, site=site), dict[str, int],
                                    timeout=timeout)
            elif site is not None:  # a run begun before: the batch as a bare list, sent to the site by hand
                counts = await call_at_site(site, Activity.SWEEP_CLUSTERS, batch, dict[str, int], timeout=timeout,
                                            heartbeat=None)
            else:
                counts = await call(Activity.SWEEP_CLUSTERS, batch, dict[str, int], timeout=timeout)
            for kind, n in counts.items():
                self.state.health[kind] = self.state.health.get(kind, 0) + n
            self.state.swept += len(batch)

    @workflow.run
    async def run(self, input: FleetSweepInput | dict) -> FleetSweepResult:
        self.state.operation_id = workflow.info().workflow_id
        refuse_a_bad_input(self.input_error)
        tag(operation=WorkflowName.FLEET_SWEEP)
        names: list[str] = await call(Activity.LIST_CLUSTER_NAMES, self.input.selector, list[str])
        self.state.total, self.state.phase = len(names), "sweeping"
        # Clusters in a private network's site are swept by that site's agent, which alone reaches them.
        at_sites: dict[str, list[str]] = {}
        if patched("sweep-at-sites"):
            at_sites = await call(Activity.LIST_CLUSTER_SITES, names, dict[str, list[str]])
        elsewhere = {name for site_names in at_sites.values() for name in site_names}
        await self._sweep([name for name in names if name not in elsewhere], site=None)
        for site, site_names in sorted(at_sites.items()):
            await self._sweep(site_names, site=site)
        if self.input.move_displaced and patched("move-displaced-placements"):
            await self._move_displaced()
        self.state.phase, self.state.step = "succeeded", "done"
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(self.state.health.items())) or "no clusters"
        moves = f"; moving {', '.join(sorted(self.state.moves))}" if self.state.moves else ""
        return FleetSweepResult(operation_id=self.state.operation_id, total=self.state.total, health=self.state.health,
                                moves=self.state.moves, message=f"swept {self.state.total} clusters: {summary}{moves}")

    async def _move_displaced(self) -> None:
        """A MoveWorkloads for each application the sweep found displaced, left running on its own."""
        self.state.step = "looking for placed applications on clusters that cannot keep them"
        found: list[Displaced] = await call(Activity.FIND_DISPLACED, workflow.now(), list[Displaced])
        by_app: dict[str, list[Displaced]] = {}
        for item in found:
            by_app.setdefault(item.app, []).append(item)
        for app, items in sorted(by_app.items()):
            why = "; ".join(f"{d.cluster}: {d.because}" for d in items)
            request = MoveWorkloadsInput(app=app, leaving=sorted({d.cluster for d in items}), reason=f"fleet sweep: {why}",
                                         unreachable_ok=True, lost_after_seconds=self.input.lost_after_seconds,
                                         requested_by=f"fleet sweep {self.state.operation_id}")
            try:
                await workflow.start_child_workflow(WorkflowName.MOVE_WORKLOADS, request, id=operation_ids.move_id(app),
                                                    parent_close_policy=workflow.ParentClosePolicy.ABANDON)
                self.state.moves[app] = f"{operation_ids.move_id(app)} started: {why}"
            except WorkflowAlreadyStartedError:
                self.state.moves[app] = f"{operation_ids.move_id(app)} is already running: {why}"
