"""Where an application runs and how its replicas are divided, with reasons a person can read.

- Filters, in order, each with its reason: the bundle's targets (the caller), health, a hold, the
  placement's affinity and anti-affinity, the free capacity it asks for, and room for one replica
  of every workload (the fleet sweep's CPU and memory).
- A score per cluster from named terms (free CPU, free memory, preferred labels, and `steady`
  for the clusters already running it, so a fresh rollout does not move what runs well); pick all,
  the best N (spread over a field within a maximum skew) or a fixed list.
- Replicas of each Deployment and StatefulSet divided by weight or by the room each cluster has,
  largest remainder first; an absolute `minAvailable` of a budget is scaled to the cluster's share.
- A move off clusters keeps every other cluster's share and adds the leaving share to the others
  (or to a replacement, for pick N), in steps no larger than the workload's budget lets go, each
  raising the receivers before lowering the cluster that leaves.
- Which placed applications are displaced: a cluster unhealthy for longer than the damping
  period, held for evacuation, or gone from the inventory. Nothing moves back on its own.

Pure: called by the PolicyRollout plan, the MoveWorkloads plan, the fleet sweep's re-placement,
the decommission check, the renderer of bundles and the unit tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from regatta.models import ClusterRecord, ClusterSelector
from regatta.models.errors import ErrorType
from regatta.models.placement import (
    WORKLOAD_KINDS,
    ClusterShare,
    Displaced,
    MovePlan,
    MoveStep,
    Placement,
    PlacementDecision,
    Workload,
)
from regatta.rules.quantities import mebibytes, millicores, quantity
from regatta.rules.refusals import Refusal
from regatta.rules.selectors import misses, selects

STEADY_POINTS = 50.0  # what already running there is worth: more than any capacity difference
CAPACITY_POINTS = 40.0  # free CPU and free memory, each, for the roomiest eligible cluster


class PlacementUnsatisfiable(Refusal):
    """The placement cannot be met: too few clusters pass its filters, or too little room."""

    error_type = ErrorType.PLACEMENT_UNSATISFIABLE


# ------------------------------------------------------------------ the bundle's workloads


def workload_key(manifest: dict[str, Any]) -> str:
    meta = manifest.get("metadata") or {}
    return f"{manifest.get('kind')}/{meta.get('namespace') or 'default'}/{meta.get('name')}"


def is_workload(manifest: dict[str, Any]) -> bool:
    return manifest.get("kind") in WORKLOAD_KINDS and str(manifest.get("apiVersion", "")).startswith("apps/")


def _pod_labels(manifest: dict[str, Any]) -> dict[str, str]:
    return (((manifest.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}


def _covers(budget: dict[str, Any], workload: dict[str, Any]) -> bool:
    """A PodDisruptionBudget in the workload's namespace whose selector takes its pods."""
    if budget.get("kind") != "PodDisruptionBudget":
        return False
    if ((budget.get("metadata") or {}).get("namespace") or "default") != (
            (workload.get("metadata") or {}).get("namespace") or "default"):
        return False
    wanted = ((budget.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    labels = _pod_labels(workload)
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def _scaled(value: int | str, total: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        share = total * int(value[:-1]) / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value)


def disruptions_allowed(budget: dict[str, Any], replicas: int) -> int:
    """What a budget lets go at once out of `replicas`, as the disruption controller counts it."""
    spec = budget.get("spec") or {}
    if "maxUnavailable" in spec:
        return max(0, _scaled(spec["maxUnavailable"], replicas, round_up=False))
    if "minAvailable" in spec:
        return max(0, replicas - _scaled(spec["minAvailable"], replicas, round_up=True))
    return replicas


def workloads_of(manifests: Sequence[dict[str, Any]]) -> list[Workload]:
    """Every Deployment and StatefulSet of the bundle, with one replica's requests and what its budget lets go."""
    found = []
    for manifest in manifests:
        if not is_workload(manifest):
            continue
        spec = manifest.get("spec") or {}
        replicas = spec.get("replicas", 1)
        cpu = memory = 0
        for container in ((spec.get("template") or {}).get("spec") or {}).get("containers") or []:
            requests = ((container or {}).get("resources") or {}).get("requests") or {}
            cpu += millicores(requests.get("cpu", 0))
            memory += mebibytes(requests.get("memory", 0))
        budget = next((m for m in manifests if _covers(m, manifest)), None)
        found.append(Workload(key=workload_key(manifest), replicas=int(replicas), cpu_m=cpu, memory_mi=memory,
                              disruptions_allowed=None if budget is None else disruptions_allowed(budget, int(replicas))))
    return found


def placement_problems(placement: Placement, manifests: Sequence[dict[str, Any]], overrides: Iterable[Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """What is wrong with a placement that its model cannot see: (where, what to fix)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    workloads = [m for m in manifests if is_workload(m)]
    if not workloads:
        problems.append((("placement",), "placement divides the replicas of Deployments and StatefulSets; the bundle has"
                         " none (a bundle of policies or configuration needs no placement)"))
    for manifest in workloads:
        replicas = (manifest.get("spec") or {}).get("replicas", 1)
        if not isinstance(replicas, int) or replicas < 0:
            problems.append((("placement",), f"{workload_key(manifest)}: spec.replicas must be a whole number (the total"
                             f" the placement divides), not {replicas!r}"))
        try:
            workloads_of([manifest])
        except ValueError as error:
            problems.append((("placement",), f"{workload_key(manifest)}: {error}"))
    for i, override in enumerate(overrides):
        if any(str(op.get("path", "")).startswith("/spec/replicas") for op in override.patch):
            problems.append((("overrides", i, "patch"), f"overrides[{i}] sets /spec/replicas, which the placement divides;"
                             " use placement.weights to give a cluster more"))
    if placement.spread is not None:
        over = placement.spread.over
        if over not in SPREAD_FIELDS and not (over.startswith("label:") and len(over) > 6):
            problems.append((("placement", "spread", "over"), f"placement.spread.over: {over!r}; use region, provider,"
                             " environment, version or label:<key>"))
    for field in ("cpu", "memory"):
        try:
            quantity(getattr(placement.min_free, field))
        except ValueError as error:
            problems.append((("placement", "min_free", field), f"placement.min_free.{field}: {error}"))
    return problems


# ------------------------------------------------------------------ filters and scores


def words(selector: ClusterSelector) -> str:
    parts = [f"{k}={v}" for k, v in sorted(selector.labels.items())]
    parts += [f"{f} {getattr(selector, f)}" for f in ("environment", "provider", "region") if getattr(selector, f)]
    if selector.clusters is not None:
        parts.append("clusters " + ", ".join(selector.clusters))
    return ", ".join(parts) or "every cluster"


def room_for(cluster: ClusterRecord, workload: Workload) -> int | None:
    """How many replicas of the workload fit in what the cluster has free; None: unknown."""
    limits = []
    if workload.cpu_m:
        if cluster.cpu_free_m is None:
            return None
        limits.append(cluster.cpu_free_m // workload.cpu_m)
    if workload.memory_mi:
        if cluster.memory_free_mi is None:
            return None
        limits.append(cluster.memory_free_mi // workload.memory_mi)
    if cluster.pods_free is not None:
        limits.append(cluster.pods_free)
    return min(limits) if limits else None


def unfit_because(placement: Placement, cluster: ClusterRecord, workloads: Sequence[Workload], *, now: datetime,
                  running_here: bool = False) -> str | None:
    """Why the placement may not put (more of) the application on this cluster; None: it may."""
    if cluster.health != "healthy":
        if cluster.health == "unknown":
            return "never swept: its health and free capacity are unknown (a fleet sweep reads them)"
        return f"not healthy: {cluster.health}"
    hold = cluster.held_at(now)
    if hold is not None and (hold.evacuate or not running_here):
        return f"held until {hold.until:%Y-%m-%d %H:%M} UTC by {hold.held_by}: {hold.reason}"
    missing = misses(placement.affinity, cluster)
    if missing:
        return "affinity needs " + ", ".join(missing)
    for selector in placement.anti_affinity:
        if selects(selector, cluster):
            return f"anti-affinity: {words(selector)}"
    want_cpu, want_memory = millicores(placement.min_free.cpu), mebibytes(placement.min_free.memory)
    if want_cpu and (cluster.cpu_free_m or 0) < want_cpu:
        return f"{cluster.cpu_free_m or 0}m CPU free, below the {placement.min_free.cpu} the placement asks"
    if want_memory and (cluster.memory_free_mi or 0) < want_memory:
        return f"{cluster.memory_free_mi or 0}Mi memory free, below the {placement.min_free.memory} the placement asks"
    if not running_here:
        for workload in workloads:
            room = room_for(cluster, workload)
            if room is not None and room < 1 and workload.replicas:
                return (f"no room for one replica of {workload.key} (needs {workload.cpu_m}m CPU, {workload.memory_mi}Mi;"
                        f" {cluster.cpu_free_m}m, {cluster.memory_free_mi}Mi, {cluster.pods_free} pod slots free)")
    return None


def score(placement: Placement, cluster: ClusterRecord, eligible: Sequence[ClusterRecord], *,
          current: set[str]) -> dict[str, float]:
    """The terms of a cluster's score, each named as an operator reads it."""
    terms: dict[str, float] = {}
    most_cpu = max((c.cpu_free_m or 0 for c in eligible), default=0)
    most_memory = max((c.memory_free_mi or 0 for c in eligible), default=0)
    if most_cpu and cluster.cpu_free_m is not None:
        terms["free CPU"] = round(CAPACITY_POINTS * cluster.cpu_free_m / most_cpu, 1)
    if most_memory and cluster.memory_free_mi is not None:
        terms["free memory"] = round(CAPACITY_POINTS * cluster.memory_free_mi / most_memory, 1)
    for preferred in placement.prefer:
        if selects(preferred.selector, cluster):
            terms[f"prefers {words(preferred.selector)}"] = float(preferred.weight)
    if cluster.name in current:
        terms["steady: runs it now"] = STEADY_POINTS
    return terms


# What a spread (a placement's, a rollout stage's pick) may be over, beside `label:KEY`.
SPREAD_FIELDS = ("region", "provider", "environment", "version")


def spread_value(cluster: ClusterRecord, over: str) -> str:
    """The value of the field a spread is over: `label:KEY` (none: ""), `version` (the control plane's), or a
    cluster's own field (region, provider, environment). The one reading of it, for a placement's spread and a
    rollout stage's pick."""
    if over.startswith("label:"):
        return cluster.labels.get(over[6:], "")
    if over == "version":
        return cluster.control_plane_version
    return str(getattr(cluster, over))


def _pick_count(placement: Placement, ranked: list[tuple[ClusterRecord, float]], *, count: int,
                already: Sequence[ClusterRecord] = ()) -> tuple[list[ClusterRecord], dict[str, str]]:
    """The best `count` (after those `already` kept), spread within the maximum skew; why each other was passed over."""
    picked = list(already)
    passed: dict[str, str] = {}
    spread = placement.spread
    remaining = [c for c, _ in ranked if c.name not in {p.name for p in picked}]
    scores = {c.name: s for c, s in ranked}
    while len(picked) < count and remaining:
        choice = None
        for cluster in remaining:
            if spread is None:
                choice = cluster
                break
            counts: dict[str, int] = {}
            for p in picked:
                counts[spread_value(p, spread.over)] = counts.get(spread_value(p, spread.over), 0) + 1
            open_values = {spread_value(c, spread.over) for c in remaining}
            floor = min((counts.get(v, 0) for v in open_values), default=0)
            mine = spread_value(cluster, spread.over)
            if counts.get(mine, 0) + 1 - floor <= spread.max_skew:
                choice = cluster
                break
            passed[cluster.name] = (f"spread over {spread.over}: {mine} already has {counts.get(mine, 0)}, max skew"
                                    f" {spread.max_skew}")
        if choice is None:
            break
        picked.append(choice)
        passed.pop(choice.name, None)
        remaining = [c for c in remaining if c.name != choice.name]
    lowest = min((scores.get(p.name, 0.0) for p in picked if p.name in scores), default=0.0)
    for cluster in remaining:
        points = scores[cluster.name]
        passed.setdefault(cluster.name, f"score {points:g}: the {count} chosen score higher (lowest chosen {lowest:g})"
                          if points < lowest else f"score {points:g} ties with the lowest chosen; ties go by name")
    return picked, passed


# ------------------------------------------------------------------ dividing replicas


def divide(total: int, weights: dict[str, float], caps: dict[str, int] | None = None) -> dict[str, int]:
    """`total` split in proportion to `weights`, largest remainder first (ties: heavier, then by
    name); no share above its cap, what a capped cluster cannot take going to the others. A weight
    of 0 takes nothing. Refuses when the caps cannot hold the total or every weight is 0."""
    names = sorted(weights)
    cap = {n: (caps or {}).get(n, total) for n in names}
    if sum(cap.values()) < total:
        raise PlacementUnsatisfiable(f"room for {sum(cap.values())} of {total} replicas")
    shares = {n: 0 for n in names}
    left = total
    while left:
        open_ = [n for n in names if shares[n] < cap[n] and weights[n] > 0]
        weight = sum(weights[n] for n in open_)
        if weight <= 0:
            raise PlacementUnsatisfiable(f"{left} of {total} replicas have nowhere to go: every cluster with room weighs 0")
        ideal = {n: left * weights[n] / weight for n in open_}
        given = {n: min(math.floor(ideal[n]), cap[n] - shares[n]) for n in open_}
        rest = left - sum(given.values())
        for n in sorted(open_, key=lambda n: (-(ideal[n] - math.floor(ideal[n])), -weights[n], n)):
            if rest and shares[n] + given[n] < cap[n]:
                given[n] += 1
                rest -= 1
        for n in open_:
            shares[n] += given[n]
        left = total - sum(shares.values())
    return shares


def division_weight(placement: Placement, cluster: ClusterRecord, workload: Workload) -> tuple[float, int | None]:
    """A cluster's weight for one workload, and its cap (capacity division never exceeds the room)."""
    if placement.divide == "weight":
        rule = next((w for w in placement.weights if selects(w.selector, cluster)), None)
        return (float(rule.weight) if rule else 1.0), None
    room = room_for(cluster, workload)
    return (float(room) if room is not None else 1.0), room


def _divide_all(placement: Placement, chosen: Sequence[ClusterRecord], workloads: Sequence[Workload],
                base: dict[str, dict[str, int]] | None = None) -> dict[str, dict[str, int]]:
    """Each workload's replicas over the chosen clusters. With `base` (a move) every cluster keeps
    what it holds, and what is left to place goes first to the clusters furthest below a fresh
    division (a replacement for the cluster that left takes its place), then by weight."""
    shares: dict[str, dict[str, int]] = {c.name: {} for c in chosen}
    names = ", ".join(c.name for c in chosen)
    for workload in workloads:
        weights: dict[str, float] = {}
        room: dict[str, int] = {}
        kept = {c.name: (base or {}).get(c.name, {}).get(workload.key, 0) for c in chosen}
        for cluster in chosen:
            weight, cap = division_weight(placement, cluster, workload)
            weights[cluster.name] = weight
            if cap is not None:
                room[cluster.name] = max(0, cap)  # free room, beyond what it holds
        left = max(0, workload.replicas - sum(kept.values()))
        try:
            if base is None:
                extra = divide(left, weights, room or None)
            else:
                caps = {n: kept[n] + room[n] for n in room}
                fresh = divide(workload.replicas, weights, {n: caps.get(n, workload.replicas) for n in weights})
                short = {n: min(max(0, fresh[n] - kept[n]), room.get(n, workload.replicas)) for n in weights}
                if sum(short.values()) >= left:
                    extra = divide(left, {n: float(v) for n, v in short.items()}, short)
                else:
                    rest = divide(left - sum(short.values()), weights,
                                  {n: room.get(n, workload.replicas) - short[n] for n in weights})
                    extra = {n: short[n] + rest[n] for n in weights}
        except PlacementUnsatisfiable as error:
            raise PlacementUnsatisfiable(f"the chosen clusters ({names}) have {error} of {workload.key}; free capacity,"
                                         " lower its replicas, or choose more clusters") from None
        for name in weights:
            shares[name][workload.key] = kept[name] + extra[name]
    return shares


# ------------------------------------------------------------------ a placement


def place(placement: Placement, *, app: str, revision: str, manifests: Sequence[dict[str, Any]],
          candidates: Sequence[ClusterRecord], left_out: dict[str, str], now: datetime,
          previous: PlacementDecision | None = None) -> PlacementDecision:
    """Choose clusters among the candidates (those the bundle's targets take; `left_out` says why
    the others were not) and divide every workload's replicas over them."""
    workloads = workloads_of(manifests)
    current = {c.cluster for c in previous.chosen} if previous is not None else set()
    not_chosen = dict(left_out)
    eligible = []
    for cluster in sorted(candidates, key=lambda c: c.name):
        if placement.pick == "fixed" and cluster.name not in placement.clusters:
            not_chosen[cluster.name] = "not in the placement's fixed list"
            continue
        because = unfit_because(placement, cluster, workloads, now=now, running_here=cluster.name in current)
        if because is None:
            eligible.append(cluster)
        else:
            not_chosen[cluster.name] = because
    terms = {c.name: score(placement, c, eligible, current=current) for c in eligible}
    totals = {name: round(sum(t.values()), 1) for name, t in terms.items()}
    ranked = sorted(((c, totals[c.name]) for c in eligible), key=lambda cs: (-cs[1], cs[0].name))
    if placement.pick == "fixed":
        missing = [n for n in placement.clusters if n not in {c.name for c in eligible}]
        if missing:
            raise PlacementUnsatisfiable("the fixed clusters cannot all run it: " + "; ".join(
                f"{n}: {not_chosen.get(n, 'not in the inventory')}" for n in missing))
        chosen = [c for c, _ in ranked]
    elif placement.pick == "count":
        assert placement.count is not None
        chosen, passed = _pick_count(placement, ranked, count=placement.count)
        not_chosen.update(passed)
        if len(chosen) < placement.count:
            reasons = "; ".join(f"{n}: {why}" for n, why in sorted(not_chosen.items())[:8])
            raise PlacementUnsatisfiable(f"{len(chosen)} of the {placement.count} clusters asked for can run it"
                                         f" ({reasons}); lower count, loosen the filters, or free capacity")
    else:
        chosen = [c for c, _ in ranked]
    if not chosen:
        reasons = "; ".join(f"{n}: {why}" for n, why in sorted(not_chosen.items())[:8])
        raise PlacementUnsatisfiable(f"no cluster can run {app}: {reasons or 'the targets take none'}")
    shares = _divide_all(placement, chosen, workloads)
    return PlacementDecision(
        app=app, revision=revision, decided_at=now, pick=placement.pick, workloads=workloads,
        chosen=[ClusterShare(cluster=c.name, score=totals[c.name], terms=terms[c.name], replicas=shares[c.name])
                for c in sorted(chosen, key=lambda c: c.name)],
        not_chosen=dict(sorted(not_chosen.items())))


def because(share: ClusterShare) -> str:
    """A chosen cluster's reason, as the plan and `placement show` print it."""
    terms = ", ".join(f"{name} {points:g}" for name, points in share.terms.items()) or "no terms"
    replicas = ", ".join(f"{n} of {key}" for key, n in share.replicas.items())
    return f"chosen: score {share.score:g} ({terms}); {replicas}"


# ------------------------------------------------------------------ rendering a share


def render_share(body: dict[str, Any], share: dict[str, int], workloads: Sequence[Workload],
                 manifests: Sequence[dict[str, Any]]) -> None:
    """Write this cluster's share into a workload's replicas, and scale an absolute `minAvailable`
    of a budget covering one to the share (a budget of 3 for 6 replicas over two clusters is 2 on
    a cluster holding 3, never a floor a cluster's share cannot meet)."""
    key = workload_key(body)
    if is_workload(body):  # a workload this cluster holds no share of runs nothing here
        body.setdefault("spec", {})["replicas"] = share.get(key, 0)
        return
    spec = body.get("spec") or {}
    minimum = spec.get("minAvailable")
    if body.get("kind") != "PodDisruptionBudget" or not isinstance(minimum, int):
        return
    covered = next((m for m in manifests if is_workload(m) and _covers(body, m)), None)
    if covered is None:
        return
    total = next((w.replicas for w in workloads if w.key == workload_key(covered)), 0)
    here = share.get(workload_key(covered), 0)
    spec["minAvailable"] = math.ceil(minimum * here / total) if total else 0


# ------------------------------------------------------------------ moves


def plan_move(placement: Placement, decision: PlacementDecision, *, leaving: Sequence[str],
              clusters: Sequence[ClusterRecord], now: datetime, given: set[str] | None = None) -> MovePlan:
    """Move the leaving clusters' shares to the others: every other cluster keeps what it holds;
    for pick N a replacement is chosen (best score, within the spread) so N clusters run it again.
    `given`: the clusters that were given the bundle; a leaving cluster never given it holds
    nothing to lower (a cluster lost before a rollout reached it)."""
    by_name = {c.name: c for c in clusters}
    workloads = decision.workloads
    staying = [by_name[s.cluster] for s in decision.chosen if s.cluster not in leaving and s.cluster in by_name]
    not_chosen = {n: why for n, why in decision.not_chosen.items() if n not in leaving}
    for name in leaving:
        not_chosen[name] = "moved off"
    if placement.pick == "count" and placement.count:
        current = {s.name for s in staying}
        others = [c for c in clusters if c.name not in current and c.name not in leaving]
        eligible = [c for c in others if unfit_because(placement, c, workloads, now=now) is None]
        for c in others:
            why = unfit_because(placement, c, workloads, now=now)
            if why:
                not_chosen[c.name] = why
        pool = staying + eligible
        ranked = sorted(((c, round(sum(score(placement, c, pool, current=current).values()), 1)) for c in eligible),
                        key=lambda cs: (-cs[1], cs[0].name))
        chosen, passed = _pick_count(placement, ranked, count=placement.count, already=staying)
        not_chosen.update({n: why for n, why in passed.items() if n not in leaving})
    else:
        chosen = staying
    if not chosen:
        raise PlacementUnsatisfiable(f"{decision.app} would run nowhere once {', '.join(leaving)} leave: no other chosen"
                                     " cluster holds it; widen the placement, or roll it out again")
    for c in chosen:
        not_chosen.pop(c.name, None)
    base = {s.cluster: dict(s.replicas) for s in decision.chosen if s.cluster not in leaving}
    after = _divide_all(placement, chosen, workloads, base=base)
    before = {s.cluster: dict(s.replicas) if given is None or s.cluster in given or s.cluster not in leaving
              else {key: 0 for key in s.replicas} for s in decision.chosen}
    steps = move_steps(workloads, before=before, after=after, leaving=leaving)
    old_scores = {s.cluster: s for s in decision.chosen}
    pool = list(chosen)
    new = decision.model_copy(update={
        "decided_at": now,
        "chosen": [old_scores[c.name].model_copy(update={"replicas": after[c.name]}) if c.name in old_scores
                   else ClusterShare(cluster=c.name, score=round(sum(score(placement, c, pool, current=set()).values()), 1),
                                     terms=score(placement, c, pool, current=set()), replicas=after[c.name])
                   for c in sorted(chosen, key=lambda c: c.name)],
        "not_chosen": dict(sorted(not_chosen.items()))})
    return MovePlan(app=decision.app, revision=decision.revision, leaving=list(leaving), decision=new, before=before,
                    steps=steps, withdraw=[n for n in leaving if n in before])


def move_steps(workloads: Sequence[Workload], *, before: dict[str, dict[str, int]], after: dict[str, dict[str, int]],
               leaving: Sequence[str]) -> list[MoveStep]:
    """Steps that take each workload from `before` to `after`: each raises receivers by at most what
    the workload's budget lets go at once (all of it when it has no budget), then lowers the
    leaving clusters by as much. Receivers are always raised first, so the total never drops."""
    steps = []
    for workload in workloads:
        key = workload.key
        gains = {n: after.get(n, {}).get(key, 0) - before.get(n, {}).get(key, 0) for n in after}
        losses = {n: before.get(n, {}).get(key, 0) for n in leaving if before.get(n, {}).get(key, 0)}
        chunk = max(1, workload.disruptions_allowed) if workload.disruptions_allowed is not None else max(
            1, sum(losses.values()))
        held = {n: before.get(n, {}).get(key, 0) for n in set(after) | set(losses)}
        while any(g > 0 for g in gains.values()) or any(v > 0 for v in losses.values()):
            step = MoveStep()
            room = chunk
            for name in sorted(gains):
                take = min(gains[name], room)
                if take > 0:
                    held[name] += take
                    gains[name] -= take
                    room -= take
                    step.raise_to[name] = {key: held[name]}
            lowered = chunk - room if any(step.raise_to) else chunk
            for name in sorted(losses):
                take = min(losses[name], lowered)
                if take > 0:
                    held[name] -= take
                    losses[name] -= take
                    lowered -= take
                    step.lower_to[name] = {key: held[name]}
            if not step.raise_to and not step.lower_to:
                break
            steps.append(step)
    return steps


def traffic_weights(decision: PlacementDecision) -> dict[str, int]:
    """A service's weights that follow the replicas: each cluster's replicas over every workload."""
    return {s.cluster: sum(s.replicas.values()) for s in decision.chosen}


# ------------------------------------------------------------------ displaced


def displaced(decisions: Sequence[tuple[PlacementDecision, Placement]], clusters: Sequence[ClusterRecord], *,
              now: datetime) -> list[Displaced]:
    """The shares that should move now: on a cluster gone from the inventory, held for evacuation,
    or unhealthy for longer than the placement's damping period. A cluster back to health keeps
    its place; nothing moves back on its own (a new rollout places afresh)."""
    by_name = {c.name: c for c in clusters}
    found = []
    for decision, placement in decisions:
        for share in decision.chosen:
            if not any(share.replicas.values()):
                continue
            cluster = by_name.get(share.cluster)
            if cluster is None:
                found.append(Displaced(app=decision.app, cluster=share.cluster, because="left the fleet (not in the inventory)"))
                continue
            hold = cluster.held_at(now)
            if hold is not None and hold.evacuate:
                found.append(Displaced(app=decision.app, cluster=share.cluster,
                                       because=f"held for evacuation by {hold.held_by}: {hold.reason}"))
                continue
            if cluster.unhealthy_since is not None and cluster.health != "healthy":
                down = (now - cluster.unhealthy_since).total_seconds()
                if down >= placement.damping_seconds:
                    found.append(Displaced(app=decision.app, cluster=share.cluster,
                                           because=f"unhealthy for {down:.0f}s (damping {placement.damping_seconds:g}s):"
                                           f" {cluster.health}"))
    return found


def placed_on(decisions: Iterable[PlacementDecision], cluster: str) -> list[PlacementDecision]:
    """The applications that hold replicas on a cluster."""
    return [d for d in decisions if any(s.cluster == cluster and any(s.replicas.values()) for s in d.chosen)]
