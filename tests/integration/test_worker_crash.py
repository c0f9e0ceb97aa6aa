"""The worker process is SIGKILLed in the middle of a drain and a new worker takes over: the
upgrade completes, no node is drained twice, no PodDisruptionBudget is broken."""

from __future__ import annotations

import asyncio

from regatta.models import ClusterUpgradeProgress
from tests.conftest import WorkerProcess, set_faults, sim_report
from tests.integration.conftest import start_upgrade
from tests.shared_http import http
from workers.main import build_worker


async def test_upgrade_survives_a_worker_killed_mid_drain(client, task_queue, queue_settings, add_cluster, simulator):
    # Control plane already at 1.31, so the upgrade goes straight to the node pool.
    cluster = add_cluster("chaos", version="1.31", pool_version="1.30", pools=1)
    # Hold the drain in place: the checkout budget refuses every eviction until we lift it.
    set_faults(simulator, cluster, blocking_pdbs=["shop/checkout-pdb"])
    with WorkerProcess(queue_settings) as doomed:
        handle = await start_upgrade(client, task_queue, cluster, strategy="blue_green", drain_timeout_seconds=60,
                                     activity_heartbeat_timeout_seconds=2, eviction_retry_seconds=0.1)
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            progress = await handle.query("progress", result_type=ClusterUpgradeProgress)
            nodes = sim_report(simulator, cluster)["clusters"][cluster]["nodes"]
            stuck = [n for n, v in nodes.items() if v["unschedulable"] and 0 < v["pods"] < 5]
            if progress.step.startswith("draining") and stuck:
                break
            assert asyncio.get_running_loop().time() < deadline, f"the drain never started: {progress}"
            await asyncio.sleep(0.1)
        doomed.sigkill()

    # The cluster stays exactly as the dead worker left it: a cordoned, half-drained node.
    assert any(v["unschedulable"] and v["pods"] > 0 for v in sim_report(simulator, cluster)["clusters"][cluster]["nodes"].values())
    http.delete(f"{simulator.url}/sim/faults", params={"cluster": cluster}).raise_for_status()

    async with build_worker(client, queue_settings):
        result = await handle.result()

    assert result.outcome == "succeeded"
    report = sim_report(simulator, cluster)
    assert report["double_drains"] == []
    assert report["pdb_violations"] == []
    assert all(v["version"].startswith("v1.31.") for v in report["clusters"][cluster]["nodes"].values())
    history = await handle.fetch_history()
    drain_attempts = [
        e.activity_task_started_event_attributes.attempt for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert max(drain_attempts) >= 2, "no activity was retried: the kill did not land mid-activity"
