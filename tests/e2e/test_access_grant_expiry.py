"""Time-bound access that ends on time although every worker was dead at the moment of expiry: production waits
for a second person, the granted kubeconfig works with the real kubectl, the worker is SIGKILLed before the grant's
end, the grant shows `overdue` until a worker returns, and then the access is taken back. (Its own file: it waits
for a grant to run out, and shares no process with the other grant tests.)"""

from __future__ import annotations

import asyncio
import time

from tests.conftest import WorkerProcess
from tests.e2e.access_grant_runs import grant_id_of, grants, kubectl, regatta


async def test_production_waits_for_a_second_person_and_a_grant_ends_when_its_time_is_up_even_across_a_dead_worker(
        queue_settings, add_cluster, tmp_path, client, simulator):
    cluster = add_cluster("prodgrant", env="prod")
    config = tmp_path / "prod.yaml"
    with WorkerProcess(queue_settings) as doomed:
        await doomed.polling(client, queue_settings.task_queue)  # the request waits ten seconds for it, no longer
        asked = await asyncio.to_thread(regatta, queue_settings, "access", "request", cluster, "--role", "edit", "--for",
                                        "45s", "--reason", "INC-9", "--requested-by", "ana", "--wait", "10")
        assert asked.returncode == 0 and "waits for a second person" in asked.stdout, asked.stdout + asked.stderr
        grant_id = grant_id_of(asked.stdout)
        early = await asyncio.to_thread(regatta, queue_settings, "access", "kubeconfig", grant_id, "--output", str(config),
                                        "--requested-by", "ana")
        assert early.returncode == 2 and "awaiting_approval" in early.stderr
        own = await asyncio.to_thread(regatta, queue_settings, "access", "approve", grant_id, "--approver", "Ana")
        assert own.returncode == 2 and "cannot approve it" in own.stderr
        approved = await asyncio.to_thread(regatta, queue_settings, "access", "approve", grant_id, "--approver", "bo")
        assert approved.returncode == 0, approved.stderr
        handle = client.get_workflow_handle(grant_id)
        deadline = time.monotonic() + 30
        while (await handle.query("progress", result_type=dict))["phase"] != "granted":
            assert time.monotonic() < deadline, await handle.query("progress", result_type=dict)
            await asyncio.sleep(0.1)
        handed = await asyncio.to_thread(regatta, queue_settings, "access", "kubeconfig", grant_id, "--output", str(config),
                                         "--requested-by", "ana")
        assert handed.returncode == 0, handed.stderr
        assert kubectl(config, "get", "pods", "-n", "shop").returncode == 0
        progress = await handle.query("progress", result_type=dict)
        assert progress["approved_by"] == "bo" and progress["needs_approval"] is True
        doomed.sigkill()  # every worker gone before the grant's time is up

    expires = grants(queue_settings, grant_id)["expires_at"]
    from datetime import datetime

    while datetime.fromisoformat(expires) > datetime.now(datetime.fromisoformat(expires).tzinfo):
        await asyncio.sleep(0.5)
    await asyncio.sleep(1)
    # time is up, nobody took it back: the list says so, and the access is still there (its token lives 10 minutes)
    assert grants(queue_settings, grant_id)["phase"] == "overdue"
    assert kubectl(config, "get", "pods", "-n", "shop").returncode == 0
    with WorkerProcess(queue_settings):  # a worker returns, and the timer that fired while it was away is served
        deadline = time.monotonic() + 60
        while grants(queue_settings, grant_id)["phase"] != "expired":
            assert time.monotonic() < deadline, grants(queue_settings, grant_id)
            await asyncio.sleep(0.5)
        # the run still writes its audit record after the list says expired: wait for its end while a worker lives
        result = await asyncio.wait_for(handle.result(), timeout=60)
    refused = kubectl(config, "get", "pods", "-n", "shop")
    assert refused.returncode == 1 and "Unauthorized" in refused.stderr
    assert result["outcome"] == "expired" if isinstance(result, dict) else result.outcome == "expired"
