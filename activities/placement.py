"""Activities of application placement: plan a move off clusters over the inventory, record where
an application runs, list what is placed on a cluster, find the shares the fleet sweep says must
move, and take a bundle off a cluster it leaves.

Giving a cluster its (new) share is the policy plane's GIVE_BUNDLE with `replicas`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from temporalio import activity

from activities.failures import refuse, translated_failures
from regatta.inventory import Inventory
from regatta.kube import bundles as kube_bundles
from regatta.kube.connect import ClusterConnections
from regatta.models import Activity, OperationRecord
from regatta.models.errors import ErrorType
from regatta.models.placement import Displaced, MovePlan, PlacementDecision, PlanMove
from regatta.models.policy import BundleSpec, WithdrawBundle
from regatta.rules import bundle_targets, placement


class PlacementActivities:
    def __init__(self, connections: ClusterConnections, inventory: Inventory, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.connections = connections
        self.inventory = inventory
        self.now = now

    def _placed(self, app: str) -> tuple[PlacementDecision, BundleSpec]:
        decision = self.inventory.placement(app)
        if decision is None:
            known = ", ".join(d.app for d in self.inventory.placements()) or "none yet"
            raise refuse(f"{app} is not placed anywhere (placed applications: {known}); roll out a bundle with a"
                         " placement first", error_type=ErrorType.NOT_PLACED)
        spec = self.inventory.bundle_revision(app, decision.revision)
        assert spec.placement is not None, "a placement is only recorded for a bundle that has one"
        return decision, spec

    @activity.defn(name=Activity.PLAN_MOVE)
    def plan_move(self, request: PlanMove) -> MovePlan:
        """The move of an application's share off the leaving clusters, on the inventory as it is now."""
        with translated_failures():
            decision, spec = self._placed(request.app)
            assert spec.placement is not None
            rule = spec.placement
            holding = {s.cluster for s in decision.chosen if any(s.replicas.values())}
            if not holding & set(request.leaving):
                return MovePlan(app=request.app, revision=decision.revision, leaving=request.leaving,
                                decision=decision, steps=[], before={s.cluster: s.replicas for s in decision.chosen})
            given = {r.cluster for r in self.inventory.compliance(bundle=request.app) if r.state != "error"}
            # Only clusters the bundle's targets take may receive it (and those that run it now).
            running = {s.cluster for s in decision.chosen}
            clusters = [c for c in self.inventory.list_clusters()
                        if c.name in running or bundle_targets.left_out_because(spec, c) is None]
            plan = placement.plan_move(rule, decision, leaving=request.leaving, clusters=clusters, now=request.now,
                                       given=given)
        plan.decision.operation_id = request.operation_id
        plan.decision.note = f"moved off {', '.join(request.leaving)}: {request.reason}"
        plan.service = rule.service or request.app
        plan.traffic = placement.traffic_weights(plan.decision)
        touched = {*plan.leaving, *plan.before, *plan.withdraw, *(s.cluster for s in plan.decision.chosen)}
        plan.sites = {c.name: c.site for c in self.inventory.list_clusters() if c.site and c.name in touched}
        return plan

    @activity.defn(name=Activity.RECORD_PLACEMENT)
    def record_placement(self, decision: PlacementDecision) -> None:
        self.inventory.save_placement(decision)

    @activity.defn(name=Activity.LIST_PLACED)
    def list_placed(self, cluster: str) -> dict[str, list[str]]:
        """The applications holding replicas on the cluster → their workloads there (namespace/name)."""
        return {d.app: [key.split("/", 1)[1] for key, n in d.share(cluster).items() if n]
                for d in placement.placed_on(self.inventory.placements(), cluster)}

    @activity.defn(name=Activity.FIND_DISPLACED)
    def find_displaced(self, now: datetime) -> list[Displaced]:
        """The shares that should move now (gone, held for evacuation, unhealthy past the damping)."""
        placed = []
        for decision in self.inventory.placements():
            rule = self.inventory.bundle_revision(decision.app, decision.revision).placement
            if rule is not None:
                placed.append((decision, rule))
        return placement.displaced(placed, self.inventory.list_clusters(), now=now)

    @activity.defn(name=Activity.WITHDRAW_BUNDLE)
    def withdraw_bundle(self, request: WithdrawBundle) -> list[str]:
        """Take the bundle off the cluster (its objects carrying its label, then its record); the
        cluster's compliance record and drifts for the bundle go with it."""
        with translated_failures():
            cluster = self.inventory.get_cluster(request.cluster)
            deleted, kept = kube_bundles.withdraw_bundle(self.connections.api_client(cluster.ref), request.bundle)
        self.inventory.forget_bundle_on(cluster=request.cluster, bundle=request.bundle)
        words = [k.words() for k in deleted]
        if request.audit is not None:
            detail = f"{request.audit.detail}: deleted {len(deleted)} objects" + (
                f"; kept {', '.join(k.words() for k in kept)}" if kept else "")
            self.inventory.append_audit(OperationRecord.model_validate({**request.audit.model_dump(), "detail": detail}))
        return words
