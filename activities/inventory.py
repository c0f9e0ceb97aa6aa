"""Activities that read and write the inventory and its audit trail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from temporalio import activity

from activities.failures import refuse, translated_failures
from regatta.inventory import Inventory, rehearsal_records
from regatta.models import (
    AccessGrantRecord,
    Activity,
    ClusterRecord,
    ClusterSelector,
    DrPair,
    OperationRecord,
    PlanWave,
    RecordClusterVersions,
    RecordDrServing,
    WavePlan,
)
from regatta.models.errors import ErrorType
from regatta.models.rehearsal import AttachedRehearsal, AttachRehearsal, HoldAgainstRehearsal
from regatta.rules import selectors, waves


class InventoryActivities:
    def __init__(self, inventory: Inventory, *, fleet_now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.inventory = inventory
        self.fleet_now = fleet_now  # the fleet's calendar clock (regatta/fleet_clock.py), that holds are read against

    @activity.defn(name=Activity.GET_CLUSTER)
    def get_cluster(self, name: str) -> ClusterRecord:
        """The cluster's record, with its maintenance hold only while the hold is in force."""
        with translated_failures():
            record = self.inventory.get_cluster(name)
        if record.hold is not None and record.held_at(self.fleet_now()) is None:
            record = record.model_copy(update={"hold": None})
        return record

    @activity.defn(name=Activity.RECORD_CLUSTER_VERSIONS)
    def record_cluster_versions(self, request: RecordClusterVersions) -> None:
        with translated_failures():
            self.inventory.record_versions(
                request.cluster, control_plane_version=request.control_plane_version, node_pools=request.node_pools
            )

    @activity.defn(name=Activity.RECORD_OPERATION)
    def record_operation(self, record: OperationRecord) -> None:
        self.inventory.append_audit(record)

    @activity.defn(name=Activity.RECORD_ACCESS_GRANT)
    def record_access_grant(self, grant: AccessGrantRecord) -> None:
        self.inventory.record_access_grant(grant)

    @activity.defn(name=Activity.CHECK_NAME_FREE)
    def check_name_free(self, name: str) -> bool:
        """True when no cluster of that name is registered."""
        return not any(r.name == name for r in self.inventory.list_clusters())

    def _registered(self, name: str) -> ClusterRecord | None:
        return {r.name: r for r in self.inventory.list_clusters()}.get(name)

    @staticmethod
    def _same(a: ClusterRecord, b: ClusterRecord) -> bool:
        volatile = {"updated_at", "health", "control_plane_version", "node_pools", "pods_capacity", "pods_free"}
        return a.model_dump(exclude=volatile) == b.model_dump(exclude=volatile)

    @activity.defn(name=Activity.REGISTER_CLUSTER)
    def register_cluster(self, record: ClusterRecord) -> None:
        existing = self._registered(record.name)
        if existing is not None and not self._same(existing, record):
            raise refuse(f"a different cluster named {record.name} was registered meanwhile ({existing.provider},"
                         f" {existing.region}); not overwriting it", error_type=ErrorType.CLUSTER_EXISTS)
        self.inventory.upsert_cluster(record)

    @activity.defn(name=Activity.DEREGISTER_CLUSTER)
    def deregister_cluster(self, name: str) -> None:
        self.inventory.remove_cluster(name)

    @activity.defn(name=Activity.DEREGISTER_OWN_REGISTRATION)
    def deregister_own_registration(self, record: ClusterRecord) -> bool:
        """Compensation: remove the registration only if it is the one this operation wrote, never
        a record someone else made under the same name. True when something was removed."""
        existing = self._registered(record.name)
        if existing is None or not self._same(existing, record):
            return False
        self.inventory.remove_cluster(record.name)
        return True

    @activity.defn(name=Activity.GET_DR_PAIR)
    def get_dr_pair(self, primary: str) -> DrPair:
        with translated_failures():
            return self.inventory.dr_pair(primary)

    @activity.defn(name=Activity.RECORD_DR_SERVING)
    def record_dr_serving(self, request: RecordDrServing) -> None:
        with translated_failures():
            self.inventory.record_dr_serving(request.primary, serving=request.serving, operation_id=request.operation_id)

    @activity.defn(name=Activity.PLAN_WAVE)
    def plan_wave(self, request: PlanWave) -> WavePlan:
        """The wave's plan over the inventory as it is now (the pure planner, fed from the database)."""
        with translated_failures():
            return waves.plan_wave(request.wave, self.inventory.list_clusters(), now=request.now)

    @activity.defn(name=Activity.LIST_CLUSTER_NAMES)
    def list_cluster_names(self, selector: ClusterSelector) -> list[str]:
        return [r.name for r in self.inventory.list_clusters() if selectors.selects(selector, r)]

    @activity.defn(name=Activity.LIST_CLUSTER_SITES)
    def list_cluster_sites(self, names: list[str]) -> dict[str, list[str]]:
        """Which of these clusters sit in a private network's site, by site: their agents sweep them."""
        wanted = set(names)
        by_site: dict[str, list[str]] = {}
        for record in self.inventory.list_clusters():
            if record.site and record.name in wanted:
                by_site.setdefault(record.site, []).append(record.name)
        return by_site

    @activity.defn(name=Activity.ATTACH_REHEARSAL)
    def attach_rehearsal(self, request: AttachRehearsal) -> AttachedRehearsal | None:
        """A starting wave's rehearsal, attached to it (regatta/inventory/rehearsal_records.py); None: it has none."""
        return rehearsal_records.attach(self.inventory, request)

    @activity.defn(name=Activity.HOLD_AGAINST_REHEARSAL)
    def hold_against_rehearsal(self, request: HoldAgainstRehearsal) -> str:
        """An ending wave held against its rehearsal, the comparison kept with the rehearsal; in a line."""
        return rehearsal_records.hold_against(self.inventory, request)
