"""A blue/green upgrade's way back on every cloud: with `keep_old_pools_seconds`, each replaced pool stays,
cordoned and empty, once every pool runs the target. Until then, `go_back` returns the cluster to them the
way it left them, in reverse: the old pools' nodes back into service, the new pools cordoned and drained
batch by batch under every PodDisruptionBudget, then deleted. If nobody goes back, the old pools are deleted
when the time is up. Composed by ClusterUpgrade.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.pieces.calls import ClusterCalls, call
from workflows.pieces.fleet_clock import FleetClock
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import (
        Activity,
        ClusterInspection,
        ClusterUpgradeInput,
        ClusterUpgradeProgress,
        CordonNodes,
        DeleteNodePool,
        ErrorType,
        GoBackInput,
    )
    from regatta.rules import disruption


class KeptPools:
    def __init__(self, *, request: ClusterUpgradeInput, state: ClusterUpgradeProgress, trail: Trail, clock: FleetClock,
                 calls: Callable[[], ClusterCalls], token: Callable[[str], str],
                 drain: Callable[[list[str], str, list[str]], Awaitable[bool]],
                 health_gate: Callable[[str], Awaitable[None]]):
        self.request, self.state, self.trail, self.clock = request, state, trail, clock
        self.calls, self.token, self.drain, self.health_gate = calls, token, drain, health_gate
        self.going_back: GoBackInput | None = None
        # From the start of the keep until it ends, one way or the other: no pause, no abort (a blocked drain's
        # escalation may change the phase meanwhile); `deleting` once the time is up and the old pools go.
        self.active = False
        self.deleting = False

    def keeps(self) -> bool:
        return self.request.strategy == "blue_green" and self.request.keep_old_pools_seconds > 0

    def validate_go_back(self) -> None:
        if not self.active or self.deleting or self.going_back is not None:
            raise ApplicationError(
                "nothing to go back to: only a blue_green upgrade started with keep_old_pools_seconds keeps its old pools,"
                f" and only once every pool runs the target (this one is {self.state.phase}); an EKS control plane goes"
                " back with `regatta upgrade rollback` once the upgrade has ended", type=ErrorType.NOT_KEEPING_OLD_POOLS)

    async def go_back(self, request: GoBackInput) -> None:
        self.going_back = request
        await self.trail.record("go_back", "started", f"by {request.requested_by}: {request.reason}")

    def refuse_while_active(self, verb: str) -> None:
        if self.active:
            raise ApplicationError(f"cannot {verb}: every pool runs the target and the old ones are kept for a way back;"
                                   " send go_back (`regatta upgrade rollback`) to return to them, or let the time run"
                                   " out", type=ErrorType.NOT_KEEPING_OLD_POOLS)

    async def keep_or_go_back(self) -> bool:
        """Keep the old pools for their time; True when an operator went back to them meanwhile."""
        kept = list(self.state.kept_pools)
        self.active = True
        ends = self.clock.time() + timedelta(seconds=self.request.keep_old_pools_seconds)
        self.state.keep_ends = ends
        self.trail.step("keeping", f"keeping {', '.join(kept)} cordoned and empty until {ends.isoformat()}: `regatta"
                                   f" upgrade rollback {self.request.cluster}` (go_back) returns to them")
        try:
            await workflow.wait_condition(lambda: self.going_back is not None,
                                          timeout=timedelta(seconds=self.request.keep_old_pools_seconds))
        except TimeoutError:
            pass
        self.state.keep_ends = None
        if self.going_back is None:
            self.deleting = True
            for pool in kept:
                self.state.step = f"deleting the kept node pool {pool}: nobody went back to it"
                await self._delete(pool)
            self.state.kept_pools = []
            return False
        await self._return_to(kept)
        return True

    async def _return_to(self, kept: list[str]) -> None:
        replacements = {p.replacement_pool: p.name for p in self.state.pools if p.name in kept and p.replacement_pool}
        self.trail.step("going_back", f"going back to {', '.join(kept)}: their nodes back into service first")
        inspection: ClusterInspection = await call(Activity.INSPECT_CLUSTER, self.calls().ref, ClusterInspection)
        await call(Activity.CORDON_NODES, CordonNodes(cluster=self.calls().ref, unschedulable=False, nodes=[
            node.name for node in inspection.nodes if node.pool in kept]), list[str])
        for new_pool, old_pool in replacements.items():
            nodes = [node for node in inspection.nodes if node.pool == new_pool]
            self.state.step = f"cordoning the {len(nodes)} nodes of {new_pool}"
            await call(Activity.CORDON_NODES, CordonNodes(cluster=self.calls().ref, nodes=[n.name for n in nodes]),
                       list[str])
            self.state.cordoned_in_service = [n.name for n in nodes]  # what a failure from here hands back to service
            first = True
            for batch in disruption.plan_drain_batches(nodes, max_unavailable=self.request.max_unavailable):
                if not await self.drain(batch, new_pool, [n.name for n in nodes] if first else []):
                    raise ApplicationError(f"the drain of {', '.join(batch)} stopped while going back to {old_pool}",
                                           type=ErrorType.UPGRADE_FAILED, non_retryable=True)
                first = False
                self.state.cordoned_in_service = [n for n in self.state.cordoned_in_service if n not in batch]
                await self.health_gate(f"draining {', '.join(batch)} back onto {old_pool}")
            self.state.step = f"deleting {new_pool}, drained back onto {old_pool}"
            await self._delete(new_pool)
        self.state.kept_pools = []

    def left_behind(self) -> str:
        """What a run that stops with old pools kept leaves, for its message: nothing deletes them now."""
        if not self.state.kept_pools:
            return ""
        return (f"; the old pools {', '.join(self.state.kept_pools)} are kept, cordoned: uncordon them and drain the new"
                " ones to go back by hand, or delete them")

    async def _delete(self, pool: str) -> None:
        await self.calls().cloud_operation(Activity.DELETE_NODE_POOL, DeleteNodePool(
            cluster=self.calls().ref, node_pool=pool, request_token=self.token(f"delete-{pool}")))
