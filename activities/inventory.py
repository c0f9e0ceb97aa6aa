"""Activities that read and write the inventory and its audit trail."""

from __future__ import annotations

from temporalio import activity

from activities.failures import translated_failures
from regatta.inventory import Inventory
from regatta.models import Activity, ClusterRecord, OperationRecord, RecordClusterVersions


class InventoryActivities:
    def __init__(self, inventory: Inventory):
        self.inventory = inventory

    @activity.defn(name=Activity.GET_CLUSTER)
    def get_cluster(self, name: str) -> ClusterRecord:
        with translated_failures():
            return self.inventory.get_cluster(name)

    @activity.defn(name=Activity.RECORD_CLUSTER_VERSIONS)
    def record_cluster_versions(self, request: RecordClusterVersions) -> None:
        with translated_failures():
            self.inventory.record_versions(
                request.cluster, control_plane_version=request.control_plane_version, node_pools=request.node_pools
            )

    @activity.defn(name=Activity.RECORD_OPERATION)
    def record_operation(self, record: OperationRecord) -> None:
        self.inventory.append_audit(record)
