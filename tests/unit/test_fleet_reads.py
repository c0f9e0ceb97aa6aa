"""The fleet view's and `regatta clusters list`'s read of the inventory (regatta/inventory/fleet_reads.py),
which skips validation: what it gives must dump exactly as the validated read, without warnings."""

from __future__ import annotations

import warnings

from regatta.inventory import Inventory, fleet_reads
from regatta.models import ClusterRecord, NodePool
from regatta.models.fleet import LaunchTemplate, NodeTaint


def test_the_trusted_read_dumps_as_the_validated_one_taints_and_launch_templates_included(tmp_path):
    inventory = Inventory(f"sqlite:///{tmp_path / 'inventory.db'}")
    inventory.upsert_cluster(ClusterRecord(
        name="gpu-1", provider="eks", region="us-east-1", environment="prod", control_plane_version="1.30",
        labels={"team": "ml"}, node_pools=[
            NodePool(name="gpu", version="1.30", node_count=2, taints=[NodeTaint(key="gpu", effect="NO_EXECUTE")],
                     launch_template=LaunchTemplate(name="gpu-lt", version="3")),
            NodePool(name="general", version="1.30", node_count=3)]))
    [read] = fleet_reads.fleet(inventory)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydantic warns when a dict stands where a model should
        dumped = read.model_dump(mode="json")
    validated = inventory.get_cluster("gpu-1").model_dump(mode="json")
    assert dumped["node_pools"] == validated["node_pools"]
    assert list(dumped) == list(validated)  # the fields in the model's order, as scripts reading the JSON saw them
    assert dumped["node_pools"][0]["taints"] == [{"key": "gpu", "value": "", "effect": "NO_EXECUTE"}]
