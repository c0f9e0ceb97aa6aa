"""What one upgrade costs in Temporal work (issue 19): a surge upgrade of a 3-pool cluster runs at
most 10 activities and writes at most 70 history events; each step is one heartbeating activity
that a worker killed in the middle of it resumes without starting the cloud's operation twice."""

from __future__ import annotations

import asyncio
from collections import Counter

from regatta.models import ClusterUpgradeProgress
from tests.conftest import WorkerProcess, sim_report
from tests.integration.conftest import start_upgrade
from tests.shared_http import http
from workers.main import build_worker


def work_of(history) -> Counter[str]:
    """The history's events by kind, and its activities by name."""
    counts: Counter[str] = Counter()
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            counts["activities"] += 1
            counts[event.activity_task_scheduled_event_attributes.activity_type.name] += 1
        elif event.HasField("marker_recorded_event_attributes"):
            counts["markers"] += 1
        elif event.HasField("timer_started_event_attributes"):
            counts["timers"] += 1
    counts["events"] = len(history.events)
    return counts


async def test_a_surge_upgrade_of_three_pools_takes_at_most_ten_activities_and_seventy_events(
        client, worker, task_queue, add_cluster, inventory, simulator):
    cluster = add_cluster("work", pools=3)
    handle = await start_upgrade(client, task_queue, cluster, strategy="surge")
    result = await handle.result()
    assert result.outcome == "succeeded" and [p.status for p in result.pools] == ["done"] * 3

    work = work_of(await handle.fetch_history())
    assert work["activities"] <= 10, work
    assert work["events"] <= 70, work
    assert work["cloud.upgrade"] == 4 and work["cloud.read_for_upgrade"] == 1, work  # control plane + 3 pools
    # The inventory's reads and writes are local activities: still done, and done once.
    record = inventory.get_cluster(cluster)
    assert record.control_plane_version == "1.31" and {p.version for p in record.node_pools} == {"1.31"}
    trail = [(r.action, r.outcome) for r in inventory.audit(operation_id=handle.id)]
    # EKS leaves its managed add-ons behind a control plane upgrade: kube-proxy is moved to the new minor's default.
    assert trail == [("upgrade", "started"), ("addons", "changed"), ("upgrade", "succeeded")]
    assert work["cloud.update_addons"] == 1 and [a.name for a in result.pools] == ["pool0", "pool1", "pool2"]
    assert sim_report(simulator, cluster)["pdb_violations"] == []


def written_search_attributes(history) -> list[dict[str, str]]:
    """Each upsert of search attributes in the history, by name (TemporalChangeVersion, the patches, aside)."""
    written = []
    for event in history.events:
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            named = {name: payload.data.decode() for name, payload in fields.items() if name != "TemporalChangeVersion"}
            if named:
                written.append(named)
    return written


async def test_an_operation_writes_only_the_search_attributes_its_starter_did_not_set(client, worker, task_queue, add_cluster,
                                                                                     inventory):
    """Each upsert is an event and a visibility write: an upgrade started as the API starts it (cluster,
    environment, operation) writes none; started from the Temporal UI with none set, it writes them all;
    with one set wrong, it writes that one."""
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    from regatta.models import ClusterUpgradeInput, ClusterUpgradeResult
    from regatta.models.search_attributes import CLUSTER, ENVIRONMENT, OPERATION
    from regatta.rules.operation_ids import operation_id
    from tests.integration.conftest import FAST

    async def upgrade(cluster: str, attributes: list) -> list[dict[str, str]]:
        handle = await client.start_workflow(
            "ClusterUpgrade", ClusterUpgradeInput(cluster=cluster, target_version="1.31", **FAST), id=operation_id(cluster),
            task_queue=task_queue, result_type=ClusterUpgradeResult, search_attributes=TypedSearchAttributes(attributes))
        assert (await handle.result()).outcome == "succeeded"
        return written_search_attributes(await handle.fetch_history())

    as_the_api = add_cluster("tags-api", pools=1)
    environment = inventory.get_cluster(as_the_api).environment
    assert await upgrade(as_the_api, [SearchAttributePair(CLUSTER, as_the_api), SearchAttributePair(ENVIRONMENT, environment),
                                      SearchAttributePair(OPERATION, "ClusterUpgrade")]) == []

    from_the_ui = add_cluster("tags-ui", pools=1)
    assert await upgrade(from_the_ui, []) == [{"Cluster": f'"{from_the_ui}"', "Environment": f'"{environment}"',
                                               "Operation": '"ClusterUpgrade"'}]

    one_wrong = add_cluster("tags-wrong", pools=1)
    assert await upgrade(one_wrong, [SearchAttributePair(CLUSTER, one_wrong), SearchAttributePair(ENVIRONMENT, "elsewhere"),
                                     SearchAttributePair(OPERATION, "ClusterUpgrade")]) == [{"Environment": f'"{environment}"'}]


async def test_a_worker_killed_inside_an_upgrade_step_leaves_one_cloud_operation_per_step(
        client, task_queue, queue_settings, add_cluster, simulator):
    cluster = add_cluster("stepkill", pools=2, time_scale=0.01)
    with WorkerProcess(queue_settings) as doomed:
        handle = await start_upgrade(client, task_queue, cluster, strategy="surge", activity_heartbeat_timeout_seconds=2)
        deadline = asyncio.get_running_loop().time() + 60
        while True:  # kill it while the cloud replaces the nodes of the first pool
            progress = await handle.query("progress", result_type=ClusterUpgradeProgress)
            if progress.step.startswith("surge upgrade of node pool pool0"):
                break
            assert progress.phase not in ("failed", "succeeded"), progress
            assert asyncio.get_running_loop().time() < deadline, f"never reached the first pool: {progress}"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        doomed.sigkill()

    async with build_worker(client, queue_settings):
        result = await handle.result()

    assert result.outcome == "succeeded"
    operations = http.get(f"{simulator.url}/sim/operations", timeout=10).json()["operations"]
    mine = Counter((o["type"], o["node_pool"]) for o in operations if o["cluster"] == cluster)
    # the control plane, kube-proxy's add-on update and two pools, each once
    assert set(mine.values()) == {1} and len(mine) == 4 and ("AddonUpdate", None) in mine, mine
    history = await handle.fetch_history()
    retried = [e.activity_task_started_event_attributes.attempt for e in history.events
               if e.HasField("activity_task_started_event_attributes")]
    assert max(retried) >= 2, "no step was retried: the kill did not land inside one"
    report = sim_report(simulator, cluster)
    assert report["pdb_violations"] == [] and report["skew_violations"] == []
