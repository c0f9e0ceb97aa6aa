"""Activities of the policy plane: plan a rollout over the inventory (keeping the bundle's content at
its revision), give one cluster a bundle, and count the violations the policy engines report.

Every outcome for a cluster, a refusal included, is written to its compliance record before the
activity returns or fails, so nothing half-applied is left unrecorded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from temporalio import activity

from activities.failures import refuse, translated_failures
from regatta.formats.bundle_file import BundleFileError, resolve
from regatta.inventory import Inventory
from regatta.kube import bundles as kube_bundles
from regatta.kube import health
from regatta.kube.connect import ClusterConnections
from regatta.models import Activity, BootstrapCluster, ClusterRecord, OperationRecord
from regatta.models.errors import ErrorType
from regatta.models.policy import (
    BundleSpec,
    ComplianceRecord,
    CountViolations,
    Drift,
    DriftReport,
    DriftSweepInput,
    DriftTarget,
    GiveBundle,
    GiveRenderedBundle,
    GiveReport,
    PlanPolicy,
    PolicyPlan,
    SweepDrift,
)
from regatta.rules import baseline, bundle_targets, bundles, drift
from regatta.rules.outbound import OutboundRules


def compliance_of(report: GiveReport, *, bundle: str, mode: str | None, at: datetime) -> ComplianceRecord:
    state = "non_compliant" if report.violations else "compliant"
    return ComplianceRecord(cluster=report.cluster, bundle=bundle, state=state, revision=report.revision, mode=mode,
                            violations=report.violations, detail="; ".join(report.violation_detail), evaluated_at=at)


class PolicyActivities:
    def __init__(self, connections: ClusterConnections, inventory: Inventory, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC), outbound: OutboundRules | None = None):
        self.connections = connections
        self.inventory = inventory
        self.now = now
        # A bundle's git source came from whoever started the rollout: read under the same rules as the API's.
        self.outbound = outbound or OutboundRules()

    def record_compliance(self, record: ComplianceRecord, *, operation_id: str = "") -> None:
        """Set a cluster × bundle's compliance; a change is also a line of the audit trail. (A
        retried write finds the record unchanged, so a change is told once.)"""
        changed, before = self.inventory.record_compliance(record)
        if not changed:
            return
        was = f"{before.state} at {before.revision}" if before else "no record"
        self.inventory.append_audit(OperationRecord(
            operation_id=operation_id or f"compliance-{record.bundle}", operation="Compliance", cluster=record.cluster,
            requested_by="regatta", action="compliance", outcome="changed",
            detail=f"{record.bundle}: {was} → {record.state} at {record.revision}"
                   + (f" ({record.mode})" if record.mode else "") + f", {record.violations} violations"
                   + (f": {record.detail}" if record.detail else "")))

    def resolved(self, spec: BundleSpec) -> BundleSpec:
        """The bundle with its manifests inline (a git source is read here) and its revision, worked
        out from the content whatever the input said (a revision typed in by hand is not trusted)."""
        try:
            return resolve(spec, base=None, outbound=self.outbound)[0]
        except BundleFileError as error:
            raise refuse(str(error), error_type=ErrorType.BUNDLE_SOURCE_UNREADABLE) from None

    @activity.defn(name=Activity.BOOTSTRAP_CLUSTER)
    def bootstrap_cluster(self, request: BootstrapCluster) -> list[str]:
        """A new cluster's baseline, given as a bundle with the rollout's own code: it is in
        `policy status` from its first minute. Returns what was created or changed."""
        spec = baseline.baseline_bundle(namespaces=request.namespaces, admin_group=request.admin_group)
        assert spec.revision is not None
        self.inventory.save_bundle_revision(spec, at=self.now())
        record = ClusterRecord(name=request.cluster.name, provider=request.cluster.provider, region=request.cluster.region,
                               environment=request.environment, labels=request.labels,
                               control_plane_version=request.version, credential_ref=request.cluster.credential_ref)
        with translated_failures():
            rendering = bundles.render(spec, record, mode=None)
            report = kube_bundles.give_rendered_bundle(self.connections.api_client(request.cluster), GiveRenderedBundle(
                cluster=request.cluster, bundle=spec.name, rendering=rendering, prune=False,
                rollout=activity.info().workflow_id), on_poll=lambda note: activity.heartbeat(note))
        self.record_compliance(compliance_of(report, bundle=spec.name, mode=None, at=self.now()),
                               operation_id=activity.info().workflow_id or "")
        return [f"{c.key.kind.lower()}/{c.key.namespace + '/' if c.key.namespace else ''}{c.key.name}"
                for c in report.changes if c.action != "unchanged"]

    @activity.defn(name=Activity.PLAN_POLICY)
    def plan_policy(self, request: PlanPolicy) -> PolicyPlan:
        """The plan over the inventory; an application bundle's placement is recorded as where it runs."""
        spec = self.resolved(request.bundle)
        with translated_failures():
            previous = self.inventory.placement(spec.name) if spec.placement is not None else None
            plan = bundle_targets.plan_policy(spec, self.inventory.list_clusters(), now=request.now, previous=previous)
        self.inventory.save_bundle_revision(spec, at=self.now())
        if plan.placement is not None:
            rollout = activity.info().workflow_id or ""
            plan.placement.operation_id, plan.placement.note = rollout, f"placed by rollout {rollout}"
            self.inventory.save_placement(plan.placement)
        return plan

    def rendering_request(self, request: GiveBundle) -> tuple[BundleSpec, GiveRenderedBundle]:
        spec = self.inventory.bundle_revision(request.bundle, request.revision)
        cluster = self.inventory.get_cluster(request.cluster)
        rendering = bundles.render(spec, cluster, mode=request.mode, bundle_revision=request.revision,
                                   replicas=request.replicas if spec.placement is not None else None)
        return spec, GiveRenderedBundle(cluster=cluster.ref, bundle=spec.name, rendering=rendering, force=request.force,
                                 prune=request.prune, rollout=request.rollout, timeout_seconds=request.timeout_seconds,
                                 poll_interval_seconds=request.poll_interval_seconds, dry_run=request.dry_run)

    @activity.defn(name=Activity.GIVE_BUNDLE)
    def give_bundle(self, request: GiveBundle) -> GiveReport:
        """Apply, prune, wait until observed, record in the cluster; then count its violations and
        record its compliance. A refusal is recorded as `error` with the API server's words."""
        with translated_failures():
            spec, apply = self.rendering_request(request)
            # A cluster that does not answer for the whole timeout counts as failed (a lost cluster:
            # a placed application's share moves elsewhere), not retried as a transient error is.
            waited = request.answer_timeout_seconds or request.timeout_seconds
            api, why = health.answering_client(lambda: self.connections.api_client(apply.cluster), timeout_seconds=waited,
                                               poll_interval_seconds=request.poll_interval_seconds,
                                               on_poll=activity.heartbeat)
            if api is None:
                raise refuse(f"{request.cluster} did not answer for {waited:g}s ({why}); counted as failed",
                             error_type=ErrorType.CLUSTER_UNREACHABLE)
            try:
                report = kube_bundles.give_rendered_bundle(api, apply, on_poll=lambda note: activity.heartbeat(note))
            except Exception as refusal:
                status = getattr(refusal, "status", None)
                final = isinstance(refusal, kube_bundles.BundleRefused) or status in (400, 401, 403, 404, 409, 422)
                if final and not request.dry_run:
                    self.record_compliance(ComplianceRecord(
                        cluster=request.cluster, bundle=request.bundle, state="error", revision=request.revision,
                        mode=request.mode, detail=str(refusal), evaluated_at=self.now()), operation_id=request.rollout)
                raise
            report.ref = apply.cluster
            if request.dry_run:
                return report
            # Done only when healthy too: the bundle may have broken what runs there.
            problems = health.wait_until_healthy(api, timeout_seconds=request.timeout_seconds,
                                                 poll_interval_seconds=request.poll_interval_seconds,
                                                 on_poll=activity.heartbeat)
            if problems:
                message = (f"{request.cluster} is not healthy {request.timeout_seconds:g}s after bundle {spec.name}"
                           f" {request.revision}: " + "; ".join(problems[:10]))
                self.record_compliance(ComplianceRecord(
                    cluster=request.cluster, bundle=request.bundle, state="error", revision=request.revision,
                    mode=request.mode, detail=message, evaluated_at=self.now()), operation_id=request.rollout)
                raise refuse(message, error_type=ErrorType.HEALTH_GATE_FAILED)
            policies = [o.key for o in apply.rendering.objects if bundles.policy_engine(o.key)]
            report.violations, report.violation_detail = kube_bundles.count_violations(api, policies)
            self.record_compliance(compliance_of(report, bundle=spec.name, mode=request.mode, at=self.now()),
                                   operation_id=request.rollout)
            if request.audit is not None:
                self.inventory.append_audit(request.audit.model_copy(update={"detail": f"{request.audit.detail}: {bundles.describe(report)}"}))
            return report

    @activity.defn(name=Activity.COUNT_VIOLATIONS)
    def count_violations(self, request: CountViolations) -> dict[str, int]:
        """The violations each cluster's engines report now (read fresh, never a cached status),
        written to the clusters' compliance records."""
        spec = self.inventory.bundle_revision(request.bundle, request.revision)
        policies = [bundles.key_of(m) for m in spec.manifests if bundles.policy_engine(bundles.key_of(m))]
        counts = {}
        with translated_failures():
            for name in request.clusters:
                cluster = self.inventory.get_cluster(name)
                count, detail = kube_bundles.count_violations(self.connections.api_client(cluster.ref), policies)
                counts[name] = count
                current = next(iter(self.inventory.compliance(bundle=request.bundle, cluster=name)), None)
                if current is not None and current.state in ("compliant", "non_compliant"):
                    self.record_compliance(current.model_copy(update={
                        "state": "non_compliant" if count else "compliant", "violations": count,
                        "detail": "; ".join(detail), "evaluated_at": self.now()}), operation_id=request.operation_id)
                activity.heartbeat(name)
        return counts

    # ------------------------------------------------------------------ drift

    @activity.defn(name=Activity.LIST_DRIFT_TARGETS)
    def list_drift_targets(self, request: DriftSweepInput) -> list[DriftTarget]:
        """Every cluster × bundle that has been given a revision (what a drift sweep compares)."""
        sites = {c.name: c.site for c in self.inventory.list_clusters() if c.site}  # their agents sweep them
        return [DriftTarget(cluster=r.cluster, bundle=r.bundle, revision=r.revision, mode=r.mode, site=sites.get(r.cluster))
                for r in self.inventory.compliance(bundle=request.bundle) if r.state != "error"]  # error: never fully applied

    @activity.defn(name=Activity.SWEEP_DRIFT)
    def sweep_drift(self, request: SweepDrift) -> DriftReport:
        """Compare each target's applied objects with what is live, several clusters at once;
        remediate where the bundle says so; record drifts and compliance. A cluster that cannot be
        read is reported, not a reason to stop the sweep."""
        now = self.now()
        clusters = {c.name: c for c in self.inventory.list_clusters()}
        suppressions = self.inventory.drift_suppressions(at=now)
        specs: dict[tuple[str, str], BundleSpec] = {}
        placed = {d.app: d for d in self.inventory.placements()}
        shared: dict = {}  # discovery, shared between clusters
        lock = threading.Lock()
        report = DriftReport()

        def spec_of(target: DriftTarget) -> BundleSpec:
            with lock:
                if (target.bundle, target.revision) not in specs:
                    specs[(target.bundle, target.revision)] = self.inventory.bundle_revision(target.bundle, target.revision)
                return specs[(target.bundle, target.revision)]

        def sweep(target: DriftTarget) -> tuple[list[Drift], int]:
            record = clusters.get(target.cluster)
            if record is None:
                return [], 0
            spec = spec_of(target)
            share = None
            if spec.placement is not None:
                share = placed[spec.name].share(record.name) if spec.name in placed else {}
                if not share:
                    return [], 0  # a placed application holds no share here: nothing of it to compare
            rendering = bundles.render(spec, record, mode=target.mode, bundle_revision=target.revision, replicas=share)
            api = self.connections.api_client(record.ref)
            live, keys = kube_bundles.live_objects(api, [o.key for o in rendering.objects], spec.name,
                                                   kube_bundles.Resolver(api, shared))
            found = []
            for obj, key in zip(rendering.objects, keys, strict=True):
                body = live.get(kube_bundles.identity(key))
                if body is None:
                    found.append(Drift(cluster=record.name, bundle=spec.name, revision=target.revision, key=key,
                                       kind="deleted"))
                    continue
                fields = [f for f in drift.differences(obj.body, body) if not drift.ignored(f.path, key, spec.drift.ignore)]
                if fields:
                    by, at = drift.who_changed((body.get("metadata") or {}).get("managedFields") or [], fields[0].path)
                    found.append(Drift(cluster=record.name, bundle=spec.name, revision=target.revision, key=key,
                                       kind="changed", fields=fields, changed_by=by, changed_at=at))
            for item in found:
                covering = drift.suppression_for(suppressions, cluster=item.cluster, bundle=item.bundle, key=item.key,
                                                 paths=[f.path for f in item.fields], at=now)
                if covering is not None:
                    item.suppressed_by = f"{covering.reason} ({covering.ticket}, until {covering.until.isoformat()})"
            open_drifts = [d for d in found if d.suppressed_by is None]
            if open_drifts and spec.drift.mode == "remediate":
                kube_bundles.give_rendered_bundle(api, GiveRenderedBundle(cluster=record.ref, bundle=spec.name, rendering=rendering,
                                                           force=True, prune=False, rollout=request.operation_id,
                                                           timeout_seconds=spec.timeout_seconds,
                                                           poll_interval_seconds=spec.poll_interval_seconds))
                for item in open_drifts:
                    item.remediated = True
            new = self.inventory.replace_drifts(cluster=record.name, bundle=spec.name, drifts=found, at=now)
            self._compliance_after_sweep(target, drifted=[d for d in open_drifts if not d.remediated], at=now,
                                         operation_id=request.operation_id)
            return new, len(rendering.objects)

        def guarded(target: DriftTarget) -> tuple[DriftTarget, list[Drift], int, str | None]:
            try:
                new, checked = sweep(target)
                return target, new, checked, None
            except Exception as error:  # noqa: BLE001 - one cluster's trouble is reported, the sweep goes on
                return target, [], 0, f"{type(error).__name__}: {str(error)[:300]}"

        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="drift") as pool:
            for target, new, checked, problem in pool.map(guarded, request.targets):
                report.checked_objects += checked
                report.drifts += new
                if problem is not None:
                    report.unreachable[target.cluster] = problem
                activity.heartbeat(target.cluster)
        return report

    def _compliance_after_sweep(self, target: DriftTarget, *, drifted: list[Drift], at: datetime, operation_id: str) -> None:
        current = next(iter(self.inventory.compliance(bundle=target.bundle, cluster=target.cluster)), None)
        if current is None:
            return
        if drifted:
            words = "; ".join(f"{d.key.words()} {d.kind}" + (f" by {d.changed_by}" if d.changed_by else "") for d in drifted[:5])
            self.record_compliance(current.model_copy(update={
                "state": "drifted", "detail": f"{len(drifted)} drifted: {words}", "evaluated_at": at}), operation_id=operation_id)
        elif current.state == "drifted":
            self.record_compliance(current.model_copy(update={
                "state": "non_compliant" if current.violations else "compliant", "detail": "", "evaluated_at": at}),
                operation_id=operation_id)
