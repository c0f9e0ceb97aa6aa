"""Where a bundle goes: every cluster of the fleet with why it is in or out, which stage takes each
one (a stage may pick a few spread over a field: one canary per region), and the passes a rollout
runs (policy-engine objects reach every stage in audit first, then are enforced stage by stage).

Pure: the PolicyRollout plan, `regatta policy rollout --plan-only` and the unit tests call it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from regatta.models import ClusterRecord
from regatta.models.placement import PlacementDecision
from regatta.models.policy import (
    BundleSpec,
    DriftTarget,
    PolicyClusterState,
    PolicyMode,
    PolicyPlan,
    PolicyStage,
    PolicyStageState,
    TargetDecision,
)
from regatta.rules import bundles, placement, versions, waves
from regatta.rules.selectors import misses, selects

# Never the whole fleet at once by default: one canary, then the rest a few at a time.
DEFAULT_STAGES = (PolicyStage(name="canary", pick={"count": 1, "spread_over": "region"}),
                  PolicyStage(name="rest", concurrency=5))


def pick_spread(clusters: Sequence[ClusterRecord], count: int, field: str) -> list[ClusterRecord]:
    """`count` clusters, one per value of the field first (values and clusters by name), then round again."""
    groups: dict[str, list[ClusterRecord]] = {}
    for cluster in sorted(clusters, key=lambda c: c.name):
        groups.setdefault(placement.spread_value(cluster, field), []).append(cluster)
    picked: list[ClusterRecord] = []
    queues = [groups[value] for value in sorted(groups)]
    while len(picked) < count and any(queues):
        for queue in queues:
            if queue and len(picked) < count:
                picked.append(queue.pop(0))
    return picked


def left_out_because(spec: BundleSpec, cluster: ClusterRecord) -> str | None:
    """Why the bundle's targets leave a cluster out; None: they take it."""
    targets = spec.targets
    if cluster.name in targets.exclude:
        return "excluded by the bundle's targets"
    if not selects(targets.selector, cluster):
        return "the targets need " + ", ".join(misses(targets.selector, cluster))
    if targets.versions:
        minor = ".".join(str(p) for p in versions.minor_version(cluster.control_plane_version))
        if minor not in targets.versions:
            return f"runs {minor}; the targets take {', '.join(targets.versions)}"
    if targets.min_pods_free is not None:
        if cluster.pods_free is None:
            return f"never swept: its free capacity is unknown (the targets need {targets.min_pods_free} free pod slots)"
        if cluster.pods_free < targets.min_pods_free:
            return f"{cluster.pods_free} free pod slots at the last sweep, below the floor of {targets.min_pods_free}"
    return None


def passes(spec: BundleSpec) -> list[tuple[PolicyStage, PolicyMode | None, str, bool]]:
    """The stages in the order they run, each with its mode, the name it runs under and whether it
    waits for an approval. Audit first: the audit pass needs no approval (it blocks nothing); each
    stage's approval guards its enforcement."""
    stages = list(spec.stages) or list(DEFAULT_STAGES)
    if not bundles.has_policy_engine_objects(spec):
        return [(stage, None, stage.name, stage.approval_required) for stage in stages]
    if any(stage.mode is not None for stage in stages) or spec.policy_mode != "audit_then_enforce":
        fallback: PolicyMode = "audit" if spec.policy_mode == "audit" else "enforce"
        return [(stage, stage.mode or fallback, stage.name, stage.approval_required) for stage in stages]
    audit: PolicyMode | None = "audit"
    enforce: PolicyMode | None = "enforce"
    return ([(stage, audit, f"{stage.name}-audit", False) for stage in stages]
            + [(stage, enforce, f"{stage.name}-enforce", stage.approval_required) for stage in stages])


def plan_policy(spec: BundleSpec, clusters: Sequence[ClusterRecord], *, now: datetime,
                previous: PlacementDecision | None = None) -> PolicyPlan:
    """Every cluster with why it is in or out and which stage takes it; the passes to run. An
    application bundle is placed first: only the clusters its placement chooses are in, each
    with its share of the replicas (`previous`, the placement now recorded, keeps it steady)."""
    bundles.check(spec)
    fleet = sorted(clusters, key=lambda c: c.name)
    rev = spec.revision or bundles.revision(spec)
    decisions: dict[str, TargetDecision] = {}
    candidates = []
    for cluster in fleet:
        because = left_out_because(spec, cluster)
        if because is None:
            candidates.append(cluster)
        else:
            decisions[cluster.name] = TargetDecision(cluster=cluster.name, included=False, because=because)
    placed: PlacementDecision | None = None
    shares: dict[str, dict[str, int]] = {}
    why_chosen: dict[str, str] = {}
    if spec.placement is not None:
        placed = placement.place(spec.placement, app=spec.name, revision=rev, manifests=spec.manifests,
                                 candidates=candidates, left_out={}, now=now, previous=previous)
        shares = {s.cluster: s.replicas for s in placed.chosen}
        why_chosen = {s.cluster: placement.because(s) for s in placed.chosen}
        for name, because in placed.not_chosen.items():
            decisions[name] = TargetDecision(cluster=name, included=False, because=f"not placed: {because}")
        candidates = [c for c in candidates if c.name in shares]
    stages = list(spec.stages) or list(DEFAULT_STAGES)
    members: dict[str, list[str]] = {}
    remaining = list(candidates)
    for stage in stages:
        taken = [c for c in remaining if selects(stage.selector, c)]
        if stage.pick is not None:
            taken = pick_spread(taken, stage.pick.count, stage.pick.spread_over)
        names = {c.name for c in taken}
        members[stage.name] = sorted(names)
        remaining = [c for c in remaining if c.name not in names]
        for cluster in taken:
            how = f" (picked spread over {stage.pick.spread_over})" if stage.pick else ""
            chosen = f"; {why_chosen[cluster.name]}" if cluster.name in why_chosen else ""
            decisions[cluster.name] = TargetDecision(cluster=cluster.name, included=True, stage=stage.name,
                                                     because=f"stage {stage.name} takes it{how}{chosen}")
    for cluster in remaining:
        decisions[cluster.name] = TargetDecision(
            cluster=cluster.name, included=False,
            because="no stage takes it: " + "; ".join(f"{s.name} needs {', '.join(misses(s.selector, cluster)) or 'fewer clusters (its pick is full)'}"
                                                      for s in stages))
    site_of = {c.name: c.site for c in fleet if c.site}  # reached through its site's agent alone
    states = [PolicyStageState(name=name, mode=mode, concurrency=stage.concurrency, soak_seconds=stage.soak_seconds,
                               approval_required=approval,
                               max_violations=stage.max_violations,
                               clusters=[PolicyClusterState(name=n, replicas=shares.get(n, {}), site=site_of.get(n))
                                         for n in members[stage.name]])
              for stage, mode, name, approval in passes(spec)]
    # Render every cluster now, so a substitution one of them cannot fill refuses the rollout
    # before anything changes anywhere.
    modes = {mode for _, mode, _, _ in passes(spec)}
    failures = []
    for cluster in fleet:
        if decisions[cluster.name].included:
            for mode in modes:
                try:
                    bundles.render(spec, cluster, mode=mode, replicas=shares.get(cluster.name))
                except bundles.InvalidBundle as error:
                    failures.append(str(error))
                    break
    if failures:
        raise bundles.InvalidBundle(f"{len(failures)} clusters cannot be given the bundle: " + "; ".join(failures[:10])
                                    + (f"; and {len(failures) - 10} more" if len(failures) > 10 else ""))
    total = sum(1 for d in decisions.values() if d.included)
    return PolicyPlan(bundle=spec.name, revision=rev, planned_at=now,
                      failure_budget=waves.failure_budget(spec.failure_budget, total), stages=states,
                      decisions=[decisions[c.name] for c in fleet], placement=placed)


def gates_before(stages: Sequence[PolicyStageState], index: int) -> list[tuple[list[str], int, str]]:
    """The violation gates before stage `index` runs: (clusters, most violations allowed, why).
    An enforcing stage's clusters gate the next stage; a stage about to enforce what its clusters
    ran in audit is gated on their audit violations. Audit stages block nothing, so gate nothing."""
    gates = []
    stage = stages[index]
    if index > 0 and stages[index - 1].mode == "enforce":
        before = stages[index - 1]
        gates.append(([c.name for c in before.clusters if c.status == "applied"], before.max_violations,
                      f"promotion past stage {before.name}"))
    if stage.mode == "enforce":
        members = {c.name for c in stage.clusters}
        audited = {c.name for s in stages[:index] if s.mode == "audit" for c in s.clusters if c.status == "applied"}
        if members & audited:
            gates.append((sorted(members & audited), stage.max_violations, f"enforcing stage {stage.name}"))
    return gates


T = TypeVar("T")


def _grouped_by_site(items: Sequence[T], site_of: Callable[[T], str | None]) -> list[tuple[str | None, list[T]]]:
    """Items in groups that one worker reaches: those reached centrally first (None), then each site's, each in the
    order given."""
    groups: dict[str | None, list[T]] = {}
    for item in items:
        groups.setdefault(site_of(item), []).append(item)
    return sorted(groups.items(), key=lambda group: (group[0] is not None, group[0] or ""))


def by_site(clusters: Sequence[str], sites: Mapping[str, str]) -> list[tuple[str | None, list[str]]]:
    """The clusters in groups that one worker reaches (`_grouped_by_site`). A fleet without sites is one group, as it
    always was."""
    return _grouped_by_site(clusters, sites.get)


def drift_batches(targets: Sequence[DriftTarget], size: int) -> list[tuple[str | None, list[DriftTarget]]]:
    """A drift sweep's batches of at most `size`, each of targets one worker reaches (`by_site`'s order): a fleet
    without sites is batched as it always was."""
    return [(site, members[start:start + size])
            for site, members in _grouped_by_site(targets, lambda target: target.site)
            for start in range(0, len(members), size)]
