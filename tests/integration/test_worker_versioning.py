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

from tests.integration.conftest import start_upgrade
from tests.warm_cli import WARM
from workers.main import build_worker


def regatta(settings, *args: str) -> subprocess.CompletedProcess:
    return WARM.run_now(list(args), {**os.environ, **settings.as_env()}, timeout=180)


async def promote(settings, build: str, *flags: str):
    """`regatta deploy promote BUILD` once the server knows the build: a worker just started registers its version
    with its first poll, and a promotion before that is refused, saying so ("does your Worker Deployment have
    pollers?" for a deployment not yet seen, "build ID … not found in Worker Deployment …" for a new build of one), as
    it would be for an operator who promoted too soon."""
    for _ in range(100):
        done = await asyncio.to_thread(regatta, settings, "deploy", "promote", build, *flags)
        not_yet = "pollers" in done.stderr or "not found in Worker Deployment" in done.stderr  # a new deployment, a new build
        if not (done.returncode == 2 and not_yet):
            return done
        await asyncio.sleep(0.2)
    return done


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
        first = await promote(old, "1.0.0", "--skip-check")
        assert first.returncode == 0, first.stdout + first.stderr
        before = await start_upgrade(client, task_queue, early)
        for _ in range(100):
            if (await build_of(before))[0]:
                break
            await asyncio.sleep(0.1)
        assert await build_of(before) == ("1.0.0", "VERSIONING_BEHAVIOR_PINNED")
        async with build_worker(client, new):
            promoted = await promote(new, "1.1.0", "--scope", f"WorkflowId = '{before.id}'")
            # the gate replays the runs that would move: the pinned upgrade never will, so there is none here
            assert promoted.returncode == 0 and "0 open runs that would move replay on this build" in promoted.stdout, \
                promoted.stdout + promoted.stderr
            wrong = await asyncio.to_thread(regatta, old, "deploy", "promote", "1.1.0")  # run from the other build
            assert wrong.returncode == 2 and "this is build 1.0.0" in wrong.stderr
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


async def test_a_wave_waiting_on_its_window_across_a_promotion_finishes_on_the_new_build(
        client, queue_settings, add_cluster, task_queue, sim_clock, request):
    """A wave begun on the old build and waiting for Monday's window; the new build promoted (the gate replays the
    waiting wave on it); the window opens: the wave moves to the new build (it is long-lived), its upgrades start
    there, and it finishes. The window wait that once parted from its own history on another worker (the fleet clock
    read by `workflow.now()` differences, patch `fleet-clock-each-look`) replays on both builds."""
    from regatta.models import PatchWaveProgress
    from tests.integration.waves import start_wave, wave_request
    from tests.replaying import replays

    deployment = f"regatta-{uuid.uuid4().hex[:6]}"
    old, new = (replace(queue_settings, deployment=deployment, build_id=build) for build in ("2.0.0", "2.1.0"))
    tag = uuid.uuid4().hex[:6]
    names = [add_cluster("wvver", labels={"wave": tag}, pools=1, nodes=2) for _ in range(2)]
    sim_clock(now="2026-12-09T12:00:00+00:00")  # a Wednesday: the window is Monday 01:00 UTC
    wave_input = wave_request(tag, [{"name": "all"}], maintenance_windows=[
        {"days": ["mon"], "start": "01:00", "duration_minutes": 120, "timezone": "UTC"}])
    async with build_worker(client, old):
        assert (await promote(old, "2.0.0", "--skip-check")).returncode == 0
        wave = await start_wave(client, task_queue, wave_input)
        for _ in range(300):
            progress = await wave.query("progress", result_type=PatchWaveProgress)
            if progress.stages and all(c.status == "waiting_window" for c in progress.stages[0].clusters):
                break
            await asyncio.sleep(0.1)
        assert all(c.status == "waiting_window" for c in progress.stages[0].clusters), progress
        assert await build_of(wave) == ("2.0.0", "VERSIONING_BEHAVIOR_AUTO_UPGRADE")
        async with build_worker(client, new):
            promoted = await promote(new, "2.1.0", "--scope", f"WorkflowId = '{wave.id}'")
            assert promoted.returncode == 0 and "1 open runs that would move replay" in promoted.stdout, \
                promoted.stdout + promoted.stderr
            sim_clock(now="2026-12-14T01:05:00+00:00")  # Monday, inside the window
            result = await wave.result()
    assert result.outcome == "succeeded" and result.counts == {"succeeded": 2}, result
    assert (await build_of(wave))[0] == "2.1.0"  # it moved to the new build
    for name in names:
        assert (await build_of(client.get_workflow_handle(f"cluster-{name}")))[0] == "2.1.0"  # begun after the promotion
    await replays(wave, request, "patch_wave_window_across_a_promotion")
