"""The node pool step a controller carries out on your own hardware (Cluster API rolls a MachineDeployment, the
system-upgrade-controller runs a pool's Plan), and what a pause, a resume or an abort tells it while it does: the
clouds' operations run to their end and an upgrade holds between steps, but these controllers offer a way to hold
where they stand, so Regatta uses it. The control plane's step runs to its end everywhere (a KubeadmControlPlane
paused while a Machine is being deleted keeps that Machine, and its etcd member, for ever).

Holds are taken and let go one at a time (a resume that arrives while a pause is being applied waits for it); a hold
that cannot be applied is said in the progress and the audit trail, never a failure of the upgrade."""

from __future__ import annotations

import asyncio
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
        self.rolling: str | None = None  # the pool whose rollout a controller is carrying out now
        self.held: str | None = None  # the pool whose rollout Regatta holds
        self._one_at_a_time = asyncio.Lock()

    def _controller_driven(self) -> ClusterRef | None:
        ref = self._ref()
        return ref if ref is not None and ref.provider in own_hardware.CONTROLLER_DRIVEN else None

    async def hold(self, *, hold: bool, stop: bool = False) -> None:
        """Hold (pause; with `stop`, an abort) the pool's rollout in flight, or let the held one go on."""
        ref = self._controller_driven()
        if ref is None:
            return
        async with self._one_at_a_time:
            pool = self.rolling if hold else self.held
            if pool is None:
                return
            try:
                said: str = await call(Activity.HOLD_ROLLOUT, HoldRollout(cluster=ref, node_pool=pool, hold=hold, stop=stop),
                                       str)
            except ActivityError as failure:
                said = (f"could not {'hold' if hold else 'let go'} the rollout of {pool}:"
                        f" {getattr(failure.cause, 'message', failure)}")
                self._state.rollout = said
                await self._trail.record("rollout", "failed", said)
                return
            self.held = pool if hold else None
            self._state.rollout = said
            await self._trail.record("rollout", "held" if stop else "paused" if hold else "resumed", said)

    async def step(self, node_pool: str | None, run: Callable[[], Awaitable[None]]) -> bool:
        """Run one step (the control plane's, or a pool's); False when an abort held the controller's rollout where
        it stood (or came before it began) and the step did not finish. A pause that came just before the pool's step
        holds its rollout from the start; a hold left on a rollout that finished anyway is let go."""
        if node_pool is None or self._controller_driven() is None:
            await run()
            return True
        if self._state.abort_requested:
            return False
        self.rolling = node_pool
        try:
            if self._state.paused:
                await self.hold(hold=True)
            await run()
        except ActivityError as failure:
            if not (self._state.abort_requested and getattr(failure.cause, "type", None) == ErrorType.ROLLOUT_STOPPED):
                raise
            return False
        finally:
            self.rolling = None
        if self.held == node_pool and not self._state.abort_requested:
            await self.hold(hold=False)
        return True
