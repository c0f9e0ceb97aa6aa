"""The checks before a start are one set (regatta/temporal/admission.py): the HTTP API now refuses
what the CLI always refused (a decommission a DR role blocks, a failover to the wrong standby, a
held cluster) at once, with nothing started and the refusal in the audit trail's words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from regatta.models import ClusterUpgradeInput, DecommissionClusterInput, DRFailbackInput, DRFailoverInput
from regatta.temporal.admission import StartRefused, admit
from tests.api_calls import ticket, upgrade
from tests.integration.dr_pairs import Pair


async def test_the_api_refuses_what_the_cli_refuses_before_anything_starts(api, simulator, inventory, client, add_cluster):
    pair = Pair(simulator, inventory)
    operator = api.token("operator", "staging")

    def start(kind: str, body: dict):
        return api.post("/v1/operations", headers=operator, json={"kind": kind, "ticket": ticket(), "input": body})

    wrong = await start("failover", {"cluster": pair.primary, "standby": "eks-elsewhere"})
    assert wrong.status_code == 409 and f"the standby of {pair.primary} is {pair.standby}" in wrong.json()["error"]
    blocked = await start("decommission", {"cluster": pair.standby})
    assert blocked.status_code == 409 and "cannot be decommissioned" in blocked.json()["error"]
    assert "holds the DR role" in blocked.json()["error"]
    unknown = await start("decommission", {"cluster": "no-such-cluster"})
    assert unknown.status_code == 404 and "no cluster 'no-such-cluster' that token" in unknown.json()["error"]

    held = add_cluster("admhold", env="staging", pools=1, nodes=1, workloads=[])
    inventory.hold_cluster(held, until=datetime.now(UTC) + timedelta(hours=2), reason="launch", held_by="sre-maria",
                           now=datetime.now(UTC))
    refused = await start("upgrade", upgrade(held))
    assert refused.status_code == 409 and "is held until" in refused.json()["error"] and "sre-maria" in refused.json()["error"]
    blank = await start("upgrade", upgrade(held, override_hold=" "))
    assert blank.status_code == 422 and "override_hold needs a reason" in blank.json()["error"]

    # A token for another environment hears that there is no such cluster, not why the change could not be made.
    prod_operator = api.token("operator", "prod")
    hidden = await api.post("/v1/operations", headers=prod_operator,
                            json={"kind": "upgrade", "ticket": ticket(), "input": upgrade(held)})
    assert hidden.status_code == 404 and "is held" not in hidden.text

    for name in (pair.primary, pair.standby, held):  # nothing started anywhere
        with pytest.raises(Exception, match="not found"):
            await client.get_workflow_handle(f"cluster-{name}").describe()


def test_admission_names_the_operation_and_where_it_acts(simulator, inventory, add_cluster):
    pair = Pair(simulator, inventory, env="staging")
    failover = admit(DRFailoverInput(cluster=pair.primary, standby=pair.standby), inventory=inventory)
    assert (failover.workflow, failover.operation_id) == ("DRFailover", f"cluster-{pair.primary}")
    assert failover.environments == {"staging"} and failover.holder is not None and failover.holder.name == pair.primary
    with pytest.raises(StartRefused, match="nothing to fail back") as early:
        admit(DRFailbackInput(cluster=pair.primary), inventory=inventory)
    assert early.value.kind == "conflict"
    with pytest.raises(StartRefused, match="needs --reason") as reason:
        admit(DecommissionClusterInput(cluster=add_cluster("admdec"), force_empty=True), inventory=inventory)
    assert reason.value.kind == "invalid"
    name = add_cluster("admjump")
    with pytest.raises(StartRefused, match="cannot be downgraded") as jump:
        admit(ClusterUpgradeInput(cluster=name, target_version="1.29"), inventory=inventory)
    assert jump.value.kind == "invalid" and jump.value.environments == {"staging"}
    # several minors at once are a path of upgrades, one minor at a time: admitted
    assert admit(ClusterUpgradeInput(cluster=name, target_version="1.32"), inventory=inventory).workflow == "ClusterUpgrade"


async def test_a_url_at_the_cloud_metadata_service_is_refused_at_the_start_and_by_the_worker(
        api, client, worker, task_queue, add_cluster, simulator):
    from tests.integration.conftest import start_upgrade

    name = add_cluster("admurl", env="staging", pools=1, nodes=1, workloads=[])
    operator = api.token("operator", "staging")
    policy = {"owner_webhook": "http://169.254.169.254/latest/meta-data/"}
    refused = await api.post("/v1/operations", headers=operator, json={
        "kind": "upgrade", "ticket": ticket(), "input": upgrade(name, drain_policies=[policy])})
    assert refused.status_code == 422 and "drain_policies[0].owner_webhook" in refused.json()["error"]
    assert "metadata" in refused.json()["error"]

    # Started straight on Temporal, past every check before a start: the worker refuses to post there.
    handle = await start_upgrade(client, task_queue, name, callback_url="http://169.254.169.254/latest/meta-data/")
    assert (await handle.result()).outcome == "succeeded"  # an observer's refusal never stops the operation
    failures = [event.activity_task_failed_event_attributes.failure
                async for event in handle.fetch_history_events()
                if event.HasField("activity_task_failed_event_attributes")]
    assert failures and all(f.application_failure_info.type == "OutboundRefused" for f in failures)
    assert "cloud metadata address" in failures[0].message
