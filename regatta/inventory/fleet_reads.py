"""The fleet view's reads of the inventory: every cluster at once without validating again what was
validated when it was written, what changed since a read, and the counts a fleet table shows per
cluster. Called by regatta/web/fleet_cache.py, the fleet view's pages and `regatta clusters list`
(and their benchmarks)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic_core import from_json
from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from regatta.inventory.store import Inventory
from regatta.inventory.tables import ClusterRow, ComplianceRow, DriftRow, MaintenanceHoldRow, ReadinessRow
from regatta.inventory.tables import utc as _utc
from regatta.models import ClusterRecord, NodePool
from regatta.models.fleet import LaunchTemplate, NodeTaint

M = TypeVar("M", bound=BaseModel)
_DEFAULTS: dict[type, dict[str, Any]] = {}
_FIELDS: dict[type, tuple[str, ...]] = {}  # pydantic's model_fields is a property worked out on each look


def _trusted(model: type[M], values: dict[str, Any]) -> M:
    """A model from values the inventory wrote after validating them: pydantic's model_construct
    without its per-field work (the defaults are worked out once per model), about ten times
    faster, which is what lets a page of a 10,000-cluster fleet answer in time. Fields the values
    lack take their defaults; nested models must be built by the caller."""
    defaults = _DEFAULTS.get(model)
    if defaults is None:
        defaults = _DEFAULTS[model] = {name: field.get_default(call_default_factory=True)
                                       for name, field in model.model_fields.items() if not field.is_required()}
        _FIELDS[model] = tuple(model.model_fields)
    made = model.__new__(model)
    fields = {name: values[name] if name in values else defaults[name] for name in _FIELDS[model]
              if name in values or name in defaults}  # in the model's order, as a validated one holds them
    object.__setattr__(made, "__dict__", fields)
    object.__setattr__(made, "__pydantic_fields_set__", set(values))
    object.__setattr__(made, "__pydantic_extra__", None)
    object.__setattr__(made, "__pydantic_private__", None)
    return made


def _pool(values: dict[str, Any]) -> NodePool:
    """A node pool as written, its taints and launch template models too (a dict in their place
    would be shown alike but warned about by pydantic on every dump)."""
    if values.get("taints") or values.get("launch_template"):
        values = {**values, "taints": [_trusted(NodeTaint, t) for t in values.get("taints") or []],
                  "launch_template": _trusted(LaunchTemplate, values["launch_template"]) if values.get("launch_template")
                  else None}
    return _trusted(NodePool, values)


def _document(value: Any) -> Any:
    """A JSON column's value: SQLite hands over the text (decoded here by pydantic's parser, in Rust,
    twice as fast as the json module SQLAlchemy would use); a driver that decodes JSON itself hands
    over the value."""
    return from_json(value) if isinstance(value, (str, bytes)) else value


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector held off while a read builds tens of thousands of objects that hold
    no cycles: each allocation past a threshold would otherwise walk every object built so far, half
    the time of reading 10,000 clusters (and of costing and printing them, for `regatta clusters
    list`). Whatever is left is collected once it is on again."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def fleet_stamp(inventory: Inventory) -> tuple[Any, ...]:
    """What changes whenever the cluster list a page shows changes: clusters and holds, counted
    and last written. Two equal stamps mean the same fleet (every write sets updated_at/since)."""
    with Session(inventory.engine) as session:
        clusters = session.execute(select(func.count(), func.max(ClusterRow.updated_at))).one()
        holds = session.execute(select(func.count(), func.max(MaintenanceHoldRow.since))).one()
        return (*clusters, *holds)


def cluster_names(inventory: Inventory) -> set[str]:
    with Session(inventory.engine) as session:
        return set(session.scalars(select(ClusterRow.name)))

def changed_since(inventory: Inventory, at: datetime) -> int:
    """How many clusters were written after `at`."""
    with Session(inventory.engine) as session:
        return session.scalar(select(func.count()).where(ClusterRow.updated_at > at)) or 0

def fleet(inventory: Inventory, *, changed_since: datetime | None = None) -> list[ClusterRecord]:
    """Every cluster (or those written after `changed_since`), read for the fleet view: straight
    from the columns, without validating again what was validated when it was written."""
    holds = inventory.holds()
    with Session(inventory.engine) as session:
        columns = [getattr(ClusterRow, c) for c in (
            "name", "provider", "region", "environment", "labels", "control_plane_version", "node_pools", "health",
            "credential_ref", "updated_at", "pods_capacity", "pods_free", "cpu_allocatable_m", "cpu_requested_m",
            "memory_allocatable_mi", "memory_requested_mi", "unhealthy_since", "site")]
        columns = [type_coerce(c, String) if c.key in ("labels", "node_pools") else c for c in columns]
        query = select(*columns).order_by(ClusterRow.name)
        if changed_since is not None:
            query = query.where(ClusterRow.updated_at > changed_since)
        with collector_paused():
            rows = session.execute(query).all()
    found = []
    with collector_paused():
        for (name, provider, region, environment, labels, version, pools, health, credential_ref, updated_at,
             pods_capacity, pods_free, cpu_allocatable, cpu_requested, memory_allocatable, memory_requested,
             unhealthy_since, site) in rows:
            found.append(_trusted(ClusterRecord, {
                "name": name, "provider": provider, "region": region, "environment": environment,
                "labels": _document(labels) or {}, "control_plane_version": version,
                "node_pools": [_pool(p) for p in _document(pools) or []],
                "health": health, "credential_ref": credential_ref, "updated_at": _utc(updated_at),
                "pods_capacity": pods_capacity, "pods_free": pods_free, "hold": holds.get(name),
                "cpu_allocatable_m": cpu_allocatable, "cpu_requested_m": cpu_requested,
                "memory_allocatable_mi": memory_allocatable, "memory_requested_mi": memory_requested,
                "unhealthy_since": _utc(unhealthy_since), "site": site}))
    return found


def fleet_facts(inventory: Inventory) -> tuple[dict[str, dict[str, int]], dict[str, int], dict[str, int]]:
    """What the fleet table counts per cluster, in three queries: compliance states (state →
    bundles), violations, and open drifts."""
    states: dict[str, dict[str, int]] = {}
    violations: dict[str, int] = {}
    drifts: dict[str, int] = {}
    with Session(inventory.engine) as session:
        for cluster, state, n, broken in session.execute(
                select(ComplianceRow.cluster, ComplianceRow.state, func.count(), func.sum(ComplianceRow.violations))
                .group_by(ComplianceRow.cluster, ComplianceRow.state)):
            states.setdefault(cluster, {})[state] = n
            violations[cluster] = violations.get(cluster, 0) + int(broken or 0)
        for row in session.scalars(select(DriftRow)):
            drift = row.drift or {}
            if not drift.get("suppressed_by") and not drift.get("remediated"):
                drifts[row.cluster] = drifts.get(row.cluster, 0) + 1
    return states, violations, drifts


def readiness_counts(inventory: Inventory) -> dict[str, tuple[str, int]]:
    """Each cluster's last readiness read, as the fleet table shows it: its target and its blocking findings
    (one query of two columns, not the reports)."""
    with Session(inventory.engine) as session:
        return {cluster: (target, blocking) for cluster, target, blocking in session.execute(
            select(ReadinessRow.cluster, ReadinessRow.target_version, ReadinessRow.blocking))}
