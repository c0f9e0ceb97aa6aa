"""A PatchWave as the tests start and watch it: a wave's request over tagged clusters, its start, its phases and its
clusters' statuses, and a fleet loaded into the simulator at once (the `fleet` fixture is in conftest.py)."""

from __future__ import annotations

import asyncio

from regatta.models import PatchWaveInput, PatchWaveProgress, PatchWaveResult
from regatta.rules.operation_ids import wave_id
from tests.integration import conftest as integration
from tests.integration.conftest import FAST
from tests.shared_http import http

UPGRADE = {k: v for k, v in FAST.items()}


def wave_request(tag: str, stages: list[dict], **fields) -> PatchWaveInput:
    return PatchWaveInput.model_validate({
        "name": f"w-{tag}", "target_version": "1.31", "selector": {"labels": {"wave": tag}}, "stages": stages,
        "requested_by": "sre-alice", "ticket": "CHG-WAVE", "upgrade_settings": UPGRADE, **fields})


async def start_wave(client, task_queue, request: PatchWaveInput):
    return await client.start_workflow("PatchWave", request, id=wave_id(request.name), task_queue=task_queue,
                                       result_type=PatchWaveResult)


async def wait_phase(handle, phase: str, timeout: float = 60) -> PatchWaveProgress:
    return await integration.wait_phase(handle, phase, PatchWaveProgress, timeout=timeout)


async def wave_entries(handle) -> dict[str, object]:
    progress = await handle.query("progress", result_type=PatchWaveProgress)
    return {c.name: c for stage in progress.stages for c in stage.clusters}


async def wait_for_status(handle, cluster: str, status: str, timeout: float = 60):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        entry = (await wave_entries(handle)).get(cluster)
        if entry is not None and entry.status == status:
            return entry
        assert asyncio.get_running_loop().time() < deadline, f"{cluster} is {entry and entry.status}, not {status}"
        await asyncio.sleep(0.1)


def load_fleet(simulator, inventory, tag: str, count: int, *, env: str = "dev") -> list[str]:
    """`count` small clusters in one go (one pool of one node, no workloads)."""

    from regatta.formats.fleet_file import FleetSpec
    from regatta.inventory.sweep import records_from_fleet

    names = [f"wb{tag}-{i:04d}" for i in range(count)]
    fleet = FleetSpec.model_validate({"clusters": [
        {"name": name, "provider": "eks", "region": "us-east-1", "version": "1.30", "labels": {"env": env, "wave": tag},
         "node_pools": [{"name": "general", "nodes": 1}]} for name in names]})
    http.post(f"{simulator.url}/sim/clusters", json=fleet.model_dump(), timeout=60).raise_for_status()
    for record in records_from_fleet(fleet):
        inventory.upsert_cluster(record)
    return names
