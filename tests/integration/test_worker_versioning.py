"""Regatta upgrading itself with Temporal's Worker Versioning (issue 32): workers of two builds of one worker
deployment; `regatta deploy promote` runs the replay gate and makes the new build current; an upgrade that started on
the old build stays pinned to it and finishes there, one started after the promotion runs on the new build, and
`regatta deploy status` shows the old build with no open pinned runs (its workers may stop)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from dataclasses import replace

from tests.conftest import REGATTA
from tests.integration.conftest import start_upgrade
from workers.main import build_worker


def regatta(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([REGATTA, *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, **settings.as_env()})


async def build_of(handle) -> tuple[str, str]:
    info = (await handle.describe()).raw_description.workflow_execution_info.versioning_info
    from temporalio.api.enums.v1 import VersioningBehavior

    return info.deployment_version.build_id, VersioningBehavior.Name(info.behavior)


async def test_a_promoted_build_takes_new_runs_while_pinned_ones_finish_on_the_build_they_began(
        client, queue_settings, add_cluster, task_queue):
    deployment = f"regatta-{uuid.uuid4().hex[:6]}"
    old, new = (replace(queue_settings, deployment=deployment, build_id=build) for build in ("1.0.0", "1.1.0"))
    early = add_cluster("pinned", time_scale=0.01)  # slow enough to be running when the new build takes over
    late = add_cluster("fresh")
    async with build_worker(client, old):
        first = await asyncio.to_thread(regatta, old, "deploy", "promote", "1.0.0", "--skip-check")
        assert first.returncode == 0, first.stdout + first.stderr
        before = await start_upgrade(client, task_queue, early)
        for _ in range(100):
            if (await build_of(before))[0]:
                break
            await asyncio.sleep(0.1)
        assert await build_of(before) == ("1.0.0", "VERSIONING_BEHAVIOR_PINNED")
        async with build_worker(client, new):
            promoted = await asyncio.to_thread(regatta, new, "deploy", "promote", "1.1.0", "--scope",
                                               f"WorkflowId = '{before.id}'")
            assert promoted.returncode == 0 and "1 open runs replay on this build" in promoted.stdout, \
                promoted.stdout + promoted.stderr
            after = await start_upgrade(client, task_queue, late)
            assert (await after.result()).outcome == "succeeded"
            assert (await build_of(after))[0] == "1.1.0"
            assert (await before.result()).outcome == "succeeded"
            assert (await build_of(before))[0] == "1.0.0"  # pinned: it never moved
            status = await asyncio.to_thread(regatta, new, "deploy", "status", "--output", "json")
    assert status.returncode == 0, status.stderr
    versions = {v["build_id"]: v for v in json.loads(status.stdout)}
    assert versions["1.1.0"]["current"] is True and versions["1.0.0"]["current"] is False
    assert versions["1.0.0"]["open_pinned"] == 0  # nothing pinned to the old build runs: its workers may stop
