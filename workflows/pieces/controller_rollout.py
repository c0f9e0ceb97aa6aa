"""The step a controller carries out on your own hardware (Cluster API rolls a KubeadmControlPlane or a
MachineDeployment, the system-upgrade-controller runs a Plan), and what a pause, a resume or an abort tells it while
it does: the cloud's operations elsewhere run to their end and an upgrade holds between steps, but these controllers
offer a way to hold where they stand, so Regatta uses it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.pieces.calls import call

with workflow.unsafe.imports_passed_through():
    from regatta.models import Activity, ClusterRef, HoldRollout
    from regatta.models.errors import ErrorType
    from regatta.rules import own_hardware


class ControllerRollout:
    def __init__(self, *, ref: Callable[[], ClusterRef | None], state: Any, trail: Any):
        self._ref, self._state, self._trail = ref, state, trail
        self.rolling: str | None = None  # "": the control plane's rollout; a pool's name: that pool's; None: none
        self.held = False

    async def hold(self, *, hold: bool, stop: bool = False) -> None:
        """Pause (hold), resume or stop the rollout in flight, if a controller carries it out."""
        ref = self._ref()
        if self.rolling is None or ref is None or ref.provider not in own_hardware.CONTROLLER_DRIVEN:
            return
        if not hold and not self.held:
            return
        said: str = await call(Activity.HOLD_ROLLOUT, HoldRollout(cluster=ref, node_pool=self.rolling or None, hold=hold,
                                                                  stop=stop), str)
        self.held = hold
        self._state.rollout = said
        await self._trail.record("rollout", "held" if stop else "paused" if hold else "resumed", said)

    async def step(self, node_pool: str | None, run: Callable[[], Awaitable[None]]) -> bool:
        """Run one step (the control plane's, or a pool's); False when an abort held the controller's rollout where
        it stood and the step did not finish."""
        self.rolling = node_pool or ""
        try:
            await run()
        except ActivityError as failure:
            if not (self._state.abort_requested and getattr(failure.cause, "type", None) == ErrorType.ROLLOUT_STOPPED):
                raise
            if node_pool is None:
                self._state.control_plane = "stopped"
            return False
        finally:
            self.rolling = None
        return True
