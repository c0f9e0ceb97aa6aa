"""An upgrade over several minors (1.29 to 1.32 goes through 1.30 and 1.31): its path in the progress, which
minor comes next, and where the cluster stands when the run stops. Composed by ClusterUpgrade."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.pieces.calls import look_up_cluster
from workflows.pieces.fleet_clock import FleetClock
from workflows.pieces.patches import SEVERAL_MINORS, patched
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import ClusterUpgradeInput, ClusterUpgradeProgress, ErrorType, PathStep
    from regatta.rules import versions


class MinorPath:
    def __init__(self, *, request: ClusterUpgradeInput, state: ClusterUpgradeProgress, trail: Trail, clock: FleetClock,
                 record_versions: Callable[[], Awaitable[Any]], hold_or_stop: Callable[[], Awaitable[bool]]):
        self.request, self.state, self.trail, self.clock = request, state, trail, clock
        self.record_versions, self.hold_or_stop = record_versions, hold_or_stop

    def next(self, control_plane: str) -> PathStep | None:
        """The minor to move to now, marked upgrading (None for an upgrade of one minor). The path is laid out at
        the first preflight of a target several minors above the control plane: runs begun before this refused
        such a target, and still do when replayed. A later minor's progress starts afresh."""
        if not self.state.path and versions.moves_control_plane(control_plane, self.request.target_version):
            path = versions.upgrade_path(control_plane, self.request.target_version)
            if len(path) > 1 and patched(SEVERAL_MINORS):
                if self.request.launch_template_versions:
                    raise versions.SeveralMinorsRefused(versions.SEVERAL_MINORS_WITH_TEMPLATES)
                self.state.path = [PathStep(version=version) for version in path]
        following = next((step for step in self.state.path if step.status != "done"), None)
        if following is not None:
            if following is not self.state.path[0]:
                self.state.control_plane, self.state.pools, self.state.addons = "pending", [], []
            following.status = "upgrading"
            self.state.step_version = following.version
        return following

    async def between(self, minor: str) -> bool:
        """After `minor`, when it is not the last: the minor reached is recorded in the inventory, the cluster soaks
        on it (an abort cuts the soak short), and the next starts unless paused, aborted or put on hold meanwhile.
        False when there is no next one to start."""
        reached = next((step for step in self.state.path if step.version == minor), None)
        if reached is None or self.last(reached):
            return False
        following = self.state.path[self.state.path.index(reached) + 1].version
        reached.pools_done = [progress.name for progress in self.state.pools if progress.status == "done"]
        await self.record_versions()
        await self.trail.record("minor", "reached", f"{self.request.cluster} runs {minor} on the control plane and"
                                f" every node pool; {following} next, on the way to {self.request.target_version}")
        if soak := self.request.soak_seconds:
            reached.soak_ends = await self.clock.soak_end(soak)
            reached.status = "soaking"
            self.trail.step("soaking", f"soaking on {minor} for {soak:g}s before {following}")
            await self.clock.soak_until(reached.soak_ends, seconds=soak, wake=lambda: self.state.abort_requested)
            reached.soak_ends = None
        reached.status = "done"
        if await self.hold_or_stop():
            return False
        record = await look_up_cluster(self.request.cluster, trail=self.trail, state=self.state)
        if record.hold is not None and not self.request.override_hold:  # a hold set during the soak: stop here
            raise ApplicationError(
                f"{self.request.cluster} was put on hold until {record.hold.until.isoformat()} by {record.hold.held_by}"
                f" ({record.hold.reason}) while it soaked on {minor}; it stays there. Start the upgrade again once the"
                " hold ends", type=ErrorType.CLUSTER_HELD, non_retryable=True)
        return True

    def last(self, step: PathStep) -> bool:
        return step is self.state.path[-1]

    def where(self, from_version: str) -> str:
        """The last minor reached whole, for the message that says where the cluster stands."""
        if not self.state.path:
            return ""
        reached = [step.version for step in self.state.path if step.status == "done"]
        return (f"; on the way {from_version} → {' → '.join(step.version for step in self.state.path)} it reached"
                f" {reached[-1] if reached else 'no minor'}")

    def end(self, outcome: str, minor: str) -> None:
        """Each minor's last status as the run ends (`outcome`: succeeded, aborted, failed); one reached whole
        (its soak cut short, or its last pool done as an abort came) is done."""
        whole = self.state.control_plane in ("done", "skipped") and all(p.status == "done" for p in self.state.pools)
        for step in self.state.path:
            if step.status == "soaking" or (step.status == "upgrading" and whole and step.version == minor):
                step.status, step.soak_ends = "done", None
            if step.status in ("upgrading", "soaking"):
                step.status = "done" if outcome == "succeeded" else outcome  # type: ignore[assignment]
                step.soak_ends = None
        if outcome == "succeeded" and self.state.path:
            self.state.path[-1].pools_done = [progress.name for progress in self.state.pools if progress.status == "done"]
