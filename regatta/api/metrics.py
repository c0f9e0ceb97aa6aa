"""`/metrics`: the fleet for Prometheus, read fresh on every scrape from the inventory and Temporal.
One series per cluster for what it is (info: provider, region, environment, version), its health,
nodes, capacity, requests, estimated cost, end of standard support and skew; operations running
by kind; compliance per bundle and cluster; open drifts; readiness findings for each cluster's next minor; the clusters of running waves and policy
rollouts by stage and state; each placed application's replicas per cluster.

The worker's Temporal SDK metrics stay on the worker's own port (9464). `deploy/grafana/fleet.json`
charts these series (a test checks it names only series that exist here).

A scrape needs a token like any other call (Prometheus sends one: `authorization` with
`credentials_file` in deploy/prometheus/prometheus.yml), and serves the clusters of that token's
environments only; the running waves' stages only to a token for every environment. What Temporal says
is read at most once every OPERATIONS_SECONDS, however many scrapers ask.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, time
from time import monotonic
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from regatta.api.gate import Gate, gate
from regatta.formats import fleet_data
from regatta.inventory import Inventory
from regatta.models import ClusterRecord
from regatta.models.operations import WorkflowName
from regatta.rules import cost, support
from regatta.settings import Settings
from regatta.temporal.connect import TemporalUnreachable, connect

router = APIRouter()
# What a running wave or rollout reports per cluster, counted by stage and state.
STAGED = (WorkflowName.PATCH_WAVE, WorkflowName.POLICY_ROLLOUT)


def gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"regatta_{name}", documentation, labels=labels)


class FleetCollector(Collector):
    """The inventory's series, plus what Temporal said on this scrape (`operations`)."""

    def __init__(self, inventory: Inventory, operations: list[tuple[str, dict | None]] | None,
                 visible: set[str] | None = None):
        self.inventory = inventory
        self.operations = operations
        self.visible = visible  # the clusters the scraping token may see; None: every one

    def _sees(self, cluster: str) -> bool:
        return self.visible is None or cluster in self.visible

    def collect(self) -> Iterable[Metric]:
        clusters = [c for c in self.inventory.list_clusters() if self._sees(c.name)]
        yield from self._clusters(clusters)
        yield from self._governance()
        yield from self._operations()

    def _clusters(self, clusters: list[ClusterRecord]) -> Iterable[Metric]:
        prices, calendar = fleet_data.price_list(), fleet_data.support_calendar()
        info = gauge("cluster_info", "A cluster of the inventory (always 1).",
                     ["cluster", "provider", "region", "environment", "version"])
        healthy = gauge("cluster_healthy", "1 when the last fleet sweep found the cluster healthy.", ["cluster"])
        nodes = gauge("cluster_nodes", "Nodes in its node pools.", ["cluster"])
        pods_capacity = gauge("cluster_pods_capacity", "Pods its Ready nodes take (last sweep).", ["cluster"])
        pods_free = gauge("cluster_pods_free", "Pods that still fit (last sweep).", ["cluster"])
        cpu = gauge("cluster_cpu_millicores", "CPU its Ready nodes offer pods, and what the pods request.",
                    ["cluster", "kind"])
        memory = gauge("cluster_memory_mebibytes", "Memory its Ready nodes offer pods, and what the pods request.",
                       ["cluster", "kind"])
        hourly = gauge("cluster_cost_per_hour", "Estimated cost per hour from the price list.", ["cluster", "currency"])
        monthly = gauge("cluster_cost_per_month", "Estimated cost per month from the price list.", ["cluster", "currency"])
        support_end = gauge("cluster_end_of_support_timestamp_seconds",
                            "When its control plane's minor version leaves standard support.", ["cluster", "source"])
        skew = gauge("cluster_version_skew", "Minor versions its oldest node pool is behind the control plane.", ["cluster"])
        held = gauge("cluster_held", "1 while a maintenance hold keeps waves off it.", ["cluster"])
        now = datetime.now(UTC)
        for c in clusters:
            info.add_metric([c.name, c.provider, c.region, c.environment, c.control_plane_version], 1)
            healthy.add_metric([c.name], 1 if c.health == "healthy" else 0)
            nodes.add_metric([c.name], sum(p.node_count for p in c.node_pools))
            if c.pods_capacity is not None:
                pods_capacity.add_metric([c.name], c.pods_capacity)
            if c.pods_free is not None:
                pods_free.add_metric([c.name], c.pods_free)
            for kind, value in (("allocatable", c.cpu_allocatable_m), ("requested", c.cpu_requested_m)):
                if value is not None:
                    cpu.add_metric([c.name, kind], value)
            for kind, value in (("allocatable", c.memory_allocatable_mi), ("requested", c.memory_requested_mi)):
                if value is not None:
                    memory.add_metric([c.name, kind], value)
            estimate = cost.cluster_cost(c, prices)
            hourly.add_metric([c.name, estimate.currency], estimate.hourly)
            monthly.add_metric([c.name, estimate.currency], estimate.monthly)
            ends, source = support.end_of_support(c, calendar)
            if ends is not None:
                support_end.add_metric([c.name, source], datetime.combine(ends, time(), UTC).timestamp())
            skew.add_metric([c.name], support.skew(c))
            held.add_metric([c.name], 1 if c.held_at(now) else 0)
        yield from (info, healthy, nodes, pods_capacity, pods_free, cpu, memory, hourly, monthly, support_end, skew, held)

    def _governance(self) -> Iterable[Metric]:
        compliance = gauge("compliance", "1 for the state each cluster × bundle is in.", ["cluster", "bundle", "state"])
        violations = gauge("compliance_violations", "Violations the policy engines report.", ["cluster", "bundle"])
        for record in self.inventory.compliance():
            if not self._sees(record.cluster):
                continue
            compliance.add_metric([record.cluster, record.bundle, record.state], 1)
            violations.add_metric([record.cluster, record.bundle], record.violations)
        drifts = gauge("drifts", "Open drifts (not suppressed) found by the last drift sweep.", ["cluster", "bundle"])
        open_drifts = Counter((d.cluster, d.bundle) for d, _ in self.inventory.drifts() if d.suppressed_by is None
                              and not d.remediated)
        for (cluster, bundle), n in sorted(open_drifts.items()):
            if not self._sees(cluster):
                continue
            drifts.add_metric([cluster, bundle], n)
        replicas = gauge("placement_replicas", "A placed application's share of each workload's replicas per cluster.",
                         ["app", "cluster", "workload"])
        for decision in self.inventory.placements():
            for share in decision.chosen:
                if not self._sees(share.cluster):
                    continue
                for workload, n in share.replicas.items():
                    replicas.add_metric([decision.app, share.cluster, workload], n)
        yield from (compliance, violations, drifts, replicas)
        yield from self._readiness()

    def _readiness(self) -> Iterable[Metric]:
        findings = gauge("cluster_upgrade_readiness_findings", "Readiness findings for its next minor version, by"
                         " severity, as the last fleet sweep read them.", ["cluster", "target", "severity"])
        read_at = gauge("cluster_upgrade_readiness_read_timestamp_seconds", "When the fleet sweep last read its readiness.",
                        ["cluster", "target"])
        for report in self.inventory.readiness_reports():
            if not self._sees(report.cluster):
                continue
            counts = Counter(finding.severity for finding in report.findings)
            for severity in ("blocking", "warning", "info"):
                findings.add_metric([report.cluster, report.target_version, severity], counts[severity])
            if report.read_at is not None:
                read_at.add_metric([report.cluster, report.target_version], report.read_at.timestamp())
        yield from (findings, read_at)

    def _operations(self) -> Iterable[Metric]:
        up = gauge("temporal_up", "1 when this scrape could list operations from Temporal.", [])
        up.add_metric([], 0 if self.operations is None else 1)
        yield up
        if self.operations is None:
            return
        running = gauge("operations_running", "Operations running, by workflow type.", ["kind"])
        for kind, n in sorted(Counter(kind for kind, _ in self.operations).items()):
            running.add_metric([kind], n)
        staged = gauge("stage_clusters", "Clusters of running waves and policy rollouts, by stage and state.",
                       ["operation", "stage", "state"])
        for kind, progress in self.operations:
            if kind not in STAGED or not progress or self.visible is not None:
                continue
            operation = progress.get("operation_id", "")
            for stage in progress.get("stages") or []:
                for state, n in sorted(Counter(c.get("status", "unknown") for c in stage.get("clusters") or []).items()):
                    staged.add_metric([operation, stage.get("name", ""), state], n)
        yield from (running, staged)


async def running_operations(settings: Settings) -> list[tuple[str, dict | None]] | None:
    """Each running operation's type, and the progress of running waves and rollouts; None when
    Temporal does not answer (the scrape still serves the inventory's series). On the process's
    one client (regatta/temporal/connect.py), which reconnects by itself."""
    try:
        client = await connect(settings)
        found: list[tuple[str, dict | None]] = []
        async for execution in client.list_workflows('ExecutionStatus="Running"'):
            progress = None
            if execution.workflow_type in STAGED:
                try:
                    progress = await asyncio.wait_for(
                        client.get_workflow_handle(execution.id, run_id=execution.run_id).query("progress", result_type=dict),
                        timeout=5)
                except Exception:  # noqa: BLE001 - one operation that cannot answer leaves out only its own stages
                    progress = None
            found.append((execution.workflow_type, progress))
        return found
    except (TemporalUnreachable, RuntimeError):
        return None


OPERATIONS_SECONDS = 15.0


async def recent_operations(state: Any) -> list[tuple[str, dict | None]] | None:
    """running_operations, read again only once the last reading is OPERATIONS_SECONDS old: a scrape
    (or many scrapers) cannot make the API query every running wave on the workers at will."""
    lock = state.__dict__.setdefault("operations_lock", asyncio.Lock())
    async with lock:
        read_at, found = getattr(state, "operations_read", (0.0, None))
        if monotonic() - read_at >= OPERATIONS_SECONDS:
            found = await running_operations(state.settings)
            state.operations_read = (monotonic(), found)
        return found


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, the: Gate = Depends(gate)) -> Response:
    the.may("read", verb="read")
    operations = await recent_operations(request.app.state)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(the.inventory, operations, visible=the.visible_clusters()))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
