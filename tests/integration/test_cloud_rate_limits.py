"""A cloud account's request-rate limit, held by every worker together: with
REGATTA_CLOUD_RATE_LIMITS set, a wave's cloud calls wait for their account's turns on a schedule
the workers share through the inventory, and the cloud never answers 429; without it, the same
wave meets the cloud's throttling and still completes (429 is retried). The 200-cluster version
is benchmarks/cloud_rate_limits.py's."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from regatta.rules.operation_ids import wave_id
from regatta.temporal.connect import connect
from tests.integration.waves import load_fleet, wave_request
from tests.shared_http import http
from workers.main import build_worker

LIMIT = 30  # requests in any one second, as the simulated EKS account allows them


@pytest.fixture
def eks_limited(simulator):
    """The simulated EKS account throttles: LIMIT a second; `eks_limited(burst=...)` sets how many it
    takes at once (default one second's worth, as AWS's buckets do)."""

    def limit(*, burst: float | None = None) -> None:
        http.post(f"{simulator.url}/sim/cloud-rate-limits", json={"provider": "eks", "requests_per_second": LIMIT,
                                                                   "burst": burst}, timeout=10).raise_for_status()

    yield limit
    http.post(f"{simulator.url}/sim/cloud-rate-limits", json={"provider": "eks"}, timeout=10).raise_for_status()


def throttled(simulator) -> int:
    return http.get(f"{simulator.url}/sim/report", params={"cluster": "-"}, timeout=30).json()["throttled_requests"].get("eks", 0)


async def run_wave(client, settings, simulator, inventory, task_queue: str, *, workers: int, clusters: int = 12) -> None:
    tag = uuid.uuid4().hex[:5]
    names = load_fleet(simulator, inventory, tag, clusters)
    request = wave_request(tag, [{"name": "all", "concurrency": clusters}])
    # each worker on a connection of its own, as two worker processes would be
    running = [build_worker(client if i == 0 else await connect(settings), settings) for i in range(workers)]
    for worker in running:
        await worker.__aenter__()
    try:
        result = await client.execute_workflow("PatchWave", request, id=wave_id(request.name), task_queue=task_queue,
                                               result_type=dict)
    finally:
        for worker in running:
            await worker.__aexit__(None, None, None)
    assert result["outcome"] == "succeeded" and result["counts"] == {"succeeded": len(names)}, result


async def test_two_workers_with_the_accounts_limit_configured_never_meet_a_429(
        client, queue_settings, simulator, inventory, task_queue, eks_limited):
    eks_limited()
    limited = replace(queue_settings, cloud_rate_limits=f"eks/default={LIMIT}")
    await run_wave(client, limited, simulator, inventory, task_queue, workers=2)
    assert throttled(simulator) == 0


async def test_without_the_limit_the_same_wave_meets_the_clouds_throttling_and_still_completes(
        client, queue_settings, simulator, inventory, task_queue, eks_limited):
    # An account that takes no burst at all: however loaded the machine, six clusters' calls
    # without a schedule of their own come closer together than it allows.
    eks_limited(burst=1)
    await run_wave(client, queue_settings, simulator, inventory, task_queue, workers=1, clusters=6)
    assert throttled(simulator) > 0
