"""The hooks of an upgrade (Cluster API's lifecycle hooks, by the same names): at each point of each minor,
before and after the control plane and before and after the node pools, a signed POST to the owner's URL or a
smoke test in the cluster gates the next step; the first that says no stops the upgrade before that step. And,
for a cluster that asks for it, a Velero backup (as the DR runbook takes them) before each control plane moves.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from temporalio import workflow

from workflows.pieces.calls import ClusterCalls, call
from workflows.pieces.patches import BACKUP_BEFORE_UPGRADE, patched
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import (
        Activity,
        BackupInfo,
        ClusterUpgradeInput,
        ClusterUpgradeProgress,
        HealthCheck,
        HookCall,
        VeleroBackup,
    )
    from regatta.models.health import HookPoint

# The label a cluster asks for a Velero backup before each of its control plane upgrades with.
BACKUP_LABEL = "backup-before-upgrade"


def velero_name(run_id: str, minor: str, cluster: str) -> str:
    """A Backup's name (a Kubernetes object name: lowercase letters, digits and dashes, at most 63, alphanumeric at
    both ends), unique to the run and the minor, naming the cluster as far as it fits."""
    slug = re.sub(r"[^a-z0-9-]+", "-", cluster.lower()).strip("-")
    digest = hashlib.sha256(f"{run_id}/{minor}/{cluster}".encode()).hexdigest()[:10]
    return f"regatta-{minor.replace('.', '-')}-{slug[:35]}".rstrip("-") + f"-{digest}"


class UpgradeHooks:
    def __init__(self, *, request: ClusterUpgradeInput, state: ClusterUpgradeProgress, trail: Trail,
                 calls: Callable[[], ClusterCalls], minor: Callable[[], str], from_version: Callable[[], str],
                 labels: Callable[[], dict[str, str]]):
        self.request, self.state, self.trail = request, state, trail
        self.calls, self.minor, self.from_version, self.labels = calls, minor, from_version, labels

    def backs_up(self) -> bool:
        """A Velero backup before each control plane moves: as the input says, else as the cluster's label (a run
        recorded before the label meant anything replays without one)."""
        if self.request.backup_before_control_plane is not None:
            return self.request.backup_before_control_plane
        return self.labels().get(BACKUP_LABEL) == "true" and patched(BACKUP_BEFORE_UPGRADE)

    async def run(self, at: HookPoint) -> bool:
        """The hooks of one point of this minor, in the order given; the first that says no raises, which stops
        the upgrade before the next step. Before the control plane moves, the backup first, where asked. Says
        whether anything ran (it may have taken long: the caller looks for a pause or an abort again)."""
        ran = False
        if at == "before_control_plane" and self.backs_up():
            await self._backup()
            ran = True
        for hook in (hook for hook in self.request.hooks if hook.at == at):
            ran = True
            where = f"hook {hook.name} ({at.replace('_', ' ')}, {self.minor()})"
            self.state.step = where
            if hook.webhook is not None:
                said: str = await call(Activity.CALL_HOOK, HookCall(
                    url=hook.webhook.url, timeout_seconds=hook.webhook.timeout_seconds, hook=hook.name, at=at,
                    operation_id=workflow.info().workflow_id, cluster=self.request.cluster, ticket=self.request.ticket,
                    from_version=self.from_version(), minor=self.minor(), target_version=self.request.target_version),
                    str, timeout=hook.webhook.timeout_seconds + 60, heartbeat=60)
            else:  # numbered with the upgrade's health checks: one list gives each smoke test its own Job
                await self.calls().health_checks([HealthCheck(name=hook.name, smoke_test=hook.smoke_test)], where,
                                                 results=self.state.health_checks,
                                                 on_step=lambda step: setattr(self.state, "step", step))
                said = self.state.health_checks[-1].removeprefix(f"{hook.name} after {where}: ")
            self.state.hooks.append(f"{where}: {said}")
        return ran

    async def _backup(self) -> None:
        minor = self.minor()
        self.state.step = f"taking a Velero backup before the control plane moves to {minor}"
        name = velero_name(workflow.info().run_id, minor, self.request.cluster)
        timeout = self.request.cloud_operation_timeout_seconds
        backup: BackupInfo = await call(Activity.TAKE_BACKUP, VeleroBackup(
            cluster=self.calls().ref, name=name, timeout_seconds=timeout,
            poll_interval_seconds=self.request.poll_interval_seconds), BackupInfo, timeout=timeout + 120, heartbeat=None)
        self.state.backups.append(f"{backup.name} before {minor}, completed {backup.completed_at.isoformat()}")
        await self.trail.record("backup", "succeeded", f"{backup.name} before the control plane moves to {minor}")
