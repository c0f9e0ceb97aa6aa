"""The fleet table: which clusters a query keeps (labels, provider, region, environment, compliance),
in which order (any column, derived ones included), which page; and one row of what an SRE looks
for (versions and skew, end of support, node image age, health, capacity used, cost, compliance,
drift, hold, the operation in flight, readiness for the next minor).

Pure. The sort key is worked out for every kept cluster, the full row only for the page's, so a
page of a 10,000-cluster fleet costs what its rows cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from regatta.models import ClusterRecord, PatchWaveInput
from regatta.models.cost import PriceList, SupportCalendar
from regatta.models.fleet_view import SORTABLE, FleetQuery, FleetRow
from regatta.rules import cost, support, versions, waves, windows


class FleetViewFacts:
    """What rows need beyond a cluster's record: compliance and drifts per cluster, operations in flight."""

    def __init__(self, *, prices: PriceList, calendar: SupportCalendar, today: date, now: datetime,
                 compliance: dict[str, dict[str, int]] | None = None, violations: dict[str, int] | None = None,
                 drifts: dict[str, int] | None = None, operations: dict[str, tuple[str, str]] | None = None,
                 scheduled: Sequence[tuple[str, PatchWaveInput]] = (),
                 readiness: dict[str, tuple[str, int]] | None = None):
        self.prices, self.calendar, self.today, self.now = prices, calendar, today, now
        self.scheduled = list(scheduled)  # (schedule id, the wave it starts)
        self.compliance = compliance or {}
        self.violations = violations or {}
        self.drifts = drifts or {}
        self.operations = operations or {}  # cluster → (operation id, workflow type)
        self.readiness = readiness or {}  # cluster → (target, blocking findings) of its last readiness read


def next_window(cluster: ClusterRecord, facts: FleetViewFacts) -> tuple[datetime | None, str]:
    """When the next maintenance window opens for the cluster, among the scheduled waves that would upgrade
    it (selected by the wave and one of its stages, not already at its target: `waves.takes`), their windows
    that apply to it outside their freezes and after its hold, as the wave's plan would start it; and which
    schedule. (None, "") when no scheduled wave would."""
    best: tuple[datetime | None, str] = (None, "")
    for schedule, wave in facts.scheduled:
        if not waves.takes(wave, cluster):
            continue
        mine = [wave.maintenance_windows[i] for i in windows.applicable_windows(wave.maintenance_windows, cluster)]
        hold = cluster.held_at(facts.now)
        opens = windows.next_start(windows=mine, freezes=wave.freezes, after=hold.until if hold else facts.now)
        if opens is not None and (best[0] is None or opens < best[0]):
            best = (opens, schedule)
    return best


def keeps(query: FleetQuery, cluster: ClusterRecord, facts: FleetViewFacts) -> bool:
    if query.provider and cluster.provider != query.provider:
        return False
    if query.region and cluster.region != query.region:
        return False
    if query.environment and cluster.environment != query.environment:
        return False
    if any(cluster.labels.get(k) != v for k, v in query.labels.items()):
        return False
    if query.compliance:
        states = facts.compliance.get(cluster.name, {})
        return not states if query.compliance == "none" else states.get(query.compliance, 0) > 0
    return True


def sort_key(column: str, facts: FleetViewFacts) -> Callable[[ClusterRecord], Any]:
    """The key one column sorts by; unknown values (never swept, no calendar entry) sort last."""
    if column not in SORTABLE:
        raise ValueError(f"sort by one of {', '.join(SORTABLE)}, not {column!r}")
    last = float("inf")

    def value(c: ClusterRecord) -> Any:
        if column in ("name", "provider", "region", "environment", "health"):
            return getattr(c, column)
        if column == "version":
            return versions.minor_version(c.control_plane_version)
        if column == "skew":
            return support.skew(c)
        if column == "end_of_support":
            ends, _ = support.end_of_support(c, facts.calendar)
            return ends.toordinal() if ends else last
        if column == "image_age":
            age = support.oldest_image_age_days(c, today=facts.today)
            return age if age is not None else -1
        if column == "nodes":
            return sum(p.node_count for p in c.node_pools)
        if column in ("cpu", "memory"):
            used = cost.utilization(c)[0 if column == "cpu" else 1]
            return used if used is not None else -1.0
        if column == "cost":
            return cost.cluster_cost(c, facts.prices).monthly
        if column == "violations":
            return facts.violations.get(c.name, 0)
        if column == "pods":
            return c.pods_free if c.pods_free is not None else -1
        if column == "hold":
            hold = c.held_at(facts.now)
            return hold.until.timestamp() if hold else last
        if column == "operation":
            return facts.operations.get(c.name, ("~",))[0]
        if column == "compliance":
            states = facts.compliance.get(c.name, {})
            return (-sum(n for s, n in states.items() if s != "compliant"), -states.get("compliant", 0))
        if column == "labels":
            return ",".join(f"{k}={v}" for k, v in sorted(c.labels.items()))
        if column == "next_window":
            opens, _ = next_window(c, facts)
            return opens.timestamp() if opens else last
        if column == "readiness":  # the most blocking first when descending; never read last either way
            read = facts.readiness.get(c.name)
            return read[1] if read is not None else -1
        return facts.drifts.get(c.name, 0)

    return lambda c: (value(c), c.name)


def readiness_words(read: tuple[str, int] | None) -> str:
    """A cluster's readiness in a few words: for which target, and how many blocking findings stand."""
    if read is None:
        return ""
    target, blocking = read
    return f"{target}: " + (f"{blocking} blocking" if blocking else "ready")


def page_of(clusters: Sequence[ClusterRecord], query: FleetQuery, facts: FleetViewFacts) -> tuple[list[FleetRow], int]:
    """The page's rows, and how many clusters the filters keep."""
    kept = [c for c in clusters if keeps(query, c, facts)]
    kept.sort(key=sort_key(query.sort, facts), reverse=query.descending)
    start = (query.page - 1) * query.per_page
    return [row(c, facts) for c in kept[start:start + query.per_page]], len(kept)


def row(c: ClusterRecord, facts: FleetViewFacts) -> FleetRow:
    ends, _ = support.end_of_support(c, facts.calendar)
    cpu, memory = cost.utilization(c)
    estimate = cost.cluster_cost(c, facts.prices)
    hold = c.held_at(facts.now)
    operation, kind = facts.operations.get(c.name, ("", ""))
    opens, schedule = next_window(c, facts)
    read = facts.readiness.get(c.name)
    return FleetRow(
        name=c.name, provider=c.provider, region=c.region, environment=c.environment, labels=c.labels,
        control_plane=c.control_plane_version, node_versions=sorted({p.version for p in c.node_pools}),
        skew=support.skew(c), end_of_support=ends, support=support.support_words(c, facts.calendar, today=facts.today),
        image_age_days=support.oldest_image_age_days(c, today=facts.today), health=c.health,
        nodes=sum(p.node_count for p in c.node_pools),
        pods=f"{c.pods_free}/{c.pods_capacity}" if c.pods_capacity is not None else "—",
        cpu_used=cpu, memory_used=memory, monthly_cost=estimate.monthly, currency=estimate.currency,
        compliance=facts.compliance.get(c.name, {}), violations=facts.violations.get(c.name, 0),
        drifts=facts.drifts.get(c.name, 0), hold=f"until {hold.until:%Y-%m-%d %H:%M}: {hold.reason}" if hold else "",
        operation=operation, operation_type=kind, next_window=opens, next_window_schedule=schedule,
        readiness=readiness_words(read), readiness_blocking=read[1] if read else 0)
