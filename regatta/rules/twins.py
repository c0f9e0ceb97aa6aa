"""What a twin of the fleet keeps of each cluster, decided from what its API server answered, and how long each
cloud's steps take, from the upgrades Regatta recorded.

Pure: `regatta fleet snapshot` (regatta/inventory/twin_snapshot.py) reads the lists and the trail and calls these.
Objects arrive as the API server sent them (JSON); nothing here reads a Secret or a ConfigMap, and nothing needs to.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from regatta.models.twin import Calibration, TwinBudget, TwinLeftOut, TwinWorkload, UpgradeSample
from regatta.rules.disruption import label_selector_matches
from regatta.rules.quantities import mebibytes, millicores

# Pods a drain does not evict, so a twin does not carry them: a DaemonSet's (kubectl drain --ignore-daemonsets), a
# node's own mirror pods; a Job's finish on their own.
NOT_DRAINED = {"DaemonSet": "a DaemonSet's pods stay on their node through a drain",
               "Node": "a static pod, mirrored by its node's kubelet", "Job": "a Job's pods end on their own"}
CALIBRATION_CLAMP = (0.05, 20.0)
MAX_READY_SECONDS = 3600.0  # a pod Ready more than an hour after its start went not Ready and back since: no reading  # a recorded upgrade 20 times faster or slower than the model is not a calibration


def _meta(item: Mapping[str, Any]) -> Mapping[str, Any]:
    return item.get("metadata") or {}


def _requests(containers: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """What a pod's containers request, summed: (CPU millicores, memory MiB); an unreadable quantity counts nothing."""
    cpu = memory = 0
    for container in containers:
        asked = (container.get("resources") or {}).get("requests") or {}
        try:
            cpu += millicores(asked.get("cpu", 0))
            memory += mebibytes(asked.get("memory", 0))
        except ValueError:
            continue
    return cpu, memory


def _time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def ready_seconds(pods: Iterable[Mapping[str, Any]]) -> float | None:
    """The median time the pods took from their start (status.startTime) to Ready (the Ready condition's
    lastTransitionTime). A pod Ready no later than it started carries no reading (it was Ready before anything was
    measured), nor one not Ready; None when no pod gives one."""
    readings = []
    for pod in pods:
        status = pod.get("status") or {}
        if any((c.get("restartCount") or 0) > 0 for c in status.get("containerStatuses") or []):
            continue  # its Ready came back after a restart, not after its start
        started = _time(status.get("startTime"))
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        if started is None or ready is None or ready.get("status") != "True":
            continue
        became = _time(ready.get("lastTransitionTime"))
        if became is not None and started < became <= started + timedelta(seconds=MAX_READY_SECONDS):
            readings.append((became - started).total_seconds())
    return round(statistics.median(readings), 1) if readings else None


def unready(pods: Iterable[Mapping[str, Any]]) -> int:
    """The pods on a node whose Ready condition is not True: a crash loop, a failing readiness probe."""
    return sum(1 for pod in pods if (pod.get("spec") or {}).get("nodeName") and not any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or []))


def _owner(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    owner = next((o for o in _meta(pod).get("ownerReferences") or [] if o.get("controller")), None)
    return (str(owner.get("kind")), str(owner.get("name"))) if owner else None


def _owned_by(pod: Mapping[str, Any], kind: str, name: str) -> bool:
    owner = _owner(pod)
    if owner is None:
        return False
    if kind == "StatefulSet":
        return owner == ("StatefulSet", name)
    return owner[0] == "ReplicaSet" and owner[1].startswith(f"{name}-") and "-" not in owner[1][len(name) + 1:]


def workloads(*, deployments: Sequence[Mapping[str, Any]], stateful_sets: Sequence[Mapping[str, Any]],
              pods: Sequence[Mapping[str, Any]], cluster: str) -> tuple[list[TwinWorkload], list[TwinLeftOut]]:
    """The workloads a drain of this cluster meets: each Deployment and StatefulSet (its replicas, its pod template's
    labels and requests, how long its pods take to be Ready) and each pod no controller makes again. Pods of
    DaemonSets, Jobs and nodes are left out, each kind named once with why; a pod a ReplicaSet made that no
    Deployment selects is kept as a Deployment of that ReplicaSet's name (a ReplicaSet makes its pods again too)."""
    live = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    found: list[TwinWorkload] = []
    claimed: set[tuple[str, str]] = set()
    for kind, items in (("Deployment", deployments), ("StatefulSet", stateful_sets)):
        for item in items:
            namespace, name = _meta(item).get("namespace") or "default", _meta(item).get("name") or ""
            spec = item.get("spec") or {}
            template = spec.get("template") or {}
            selector = spec.get("selector") or {}
            # its pods: those its selector takes whose owner is its own (a Deployment's ReplicaSets are NAME-HASH), not
            # another's whose pods the selector happens to take too (web's app=web takes web-canary's pods)
            mine = [p for p in live if _meta(p).get("namespace") == namespace and _owned_by(p, kind, name)
                    and label_selector_matches(selector, _meta(p).get("labels") or {})]
            claimed.update((namespace, _meta(p).get("name") or "") for p in mine)
            cpu, memory = _requests((template.get("spec") or {}).get("containers") or [])
            replicas = int(spec.get("replicas", 1) or 0)
            found.append(TwinWorkload(
                name=name, namespace=namespace, kind=kind, replicas=replicas,
                labels={str(k): str(v) for k, v in ((template.get("metadata") or {}).get("labels") or {}).items()},
                cpu_m=cpu, memory_mi=memory, ready_seconds=ready_seconds(mine), unready=min(unready(mine), replicas)))
    left_out: dict[str, TwinLeftOut] = {}
    orphans: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for pod in live:
        namespace, name = _meta(pod).get("namespace") or "default", _meta(pod).get("name") or ""
        if (namespace, name) in claimed:
            continue
        owner = _owner(pod)
        if owner is not None and owner[0] in NOT_DRAINED:
            left_out.setdefault(owner[0], TwinLeftOut(cluster=cluster, what=f"pods of each {owner[0]}",
                                                      why=NOT_DRAINED[owner[0]]))
            continue
        if owner is not None and owner[0] == "ReplicaSet":
            orphans[(namespace, owner[1])].append(pod)
            continue
        if owner is not None:  # another controller's (an operator's custom resource): kept, as one that remakes them
            orphans[(namespace, owner[1])].append(pod)
            left_out.setdefault(f"owner:{owner[0]}", TwinLeftOut(
                cluster=cluster, what=f"pods of each {owner[0]}",
                why="kept as a Deployment of the same pods: the simulator has no controller of that kind"))
            continue
        cpu, memory = _requests((pod.get("spec") or {}).get("containers") or [])
        found.append(TwinWorkload(name=name, namespace=namespace, kind="Pod", replicas=1,
                                  labels={str(k): str(v) for k, v in (_meta(pod).get("labels") or {}).items()},
                                  cpu_m=cpu, memory_mi=memory, ready_seconds=ready_seconds([pod]), unready=unready([pod])))
    for (namespace, owner_name), owned in sorted(orphans.items()):
        cpu, memory = _requests((owned[0].get("spec") or {}).get("containers") or [])
        found.append(TwinWorkload(name=owner_name, namespace=namespace, kind="Deployment", replicas=len(owned),
                                  labels={str(k): str(v) for k, v in (_meta(owned[0]).get("labels") or {}).items()},
                                  cpu_m=cpu, memory_mi=memory, ready_seconds=ready_seconds(owned), unready=unready(owned)))
    return sorted(found, key=lambda w: (w.namespace, w.name, w.kind)), list(left_out.values())


def budgets(pdbs: Sequence[Mapping[str, Any]], found: Sequence[TwinWorkload]) -> list[TwinBudget]:
    """Each PodDisruptionBudget as it stands, with the workloads whose pods it selects."""
    out = []
    for pdb in pdbs:
        namespace, spec = _meta(pdb).get("namespace") or "default", pdb.get("spec") or {}
        selector = spec.get("selector")
        out.append(TwinBudget(
            name=_meta(pdb).get("name") or "", namespace=namespace, selector=selector,
            min_available=spec.get("minAvailable"), max_unavailable=spec.get("maxUnavailable"),
            covers=[f"{w.kind}/{w.name}" for w in found
                    if w.namespace == namespace and label_selector_matches(selector, w.labels)]))
    return sorted(out, key=lambda b: (b.namespace, b.name))


def calibrate(samples: Sequence[UpgradeSample], *, defaults: Mapping[str, float],
              providers: Iterable[str]) -> list[Calibration]:
    """How long each cloud's steps take, from the upgrades recorded on it. The model an upgrade is read against is the
    simulator's: its control plane, then each node booted and one terminated after its drain (`defaults`: the
    simulator's control_plane_upgrade_seconds, node_boot_seconds, node_terminate_seconds). With three upgrades or more
    over clusters of two sizes or more, the control plane and the nodes are fitted apart (least squares of seconds
    on nodes); otherwise, or where that fit is not positive, both are scaled by the median of recorded/modelled.
    No upgrade recorded: the defaults, said so."""
    control_plane = defaults["control_plane_upgrade_seconds"]
    per_node = defaults["node_boot_seconds"] + defaults["node_terminate_seconds"]
    low, high = CALIBRATION_CLAMP
    by_provider: dict[str, list[UpgradeSample]] = defaultdict(list)
    for sample in samples:
        by_provider[sample.provider].append(sample)
    out = []
    for provider in sorted(set(providers) | set(by_provider)):
        mine = by_provider.get(provider, [])
        if not mine:
            out.append(Calibration(provider=provider, samples=0, factor=1.0, control_plane_upgrade_seconds=control_plane,
                                   node_boot_seconds=defaults["node_boot_seconds"],
                                   node_terminate_seconds=defaults["node_terminate_seconds"],
                                   how="no upgrade recorded on this cloud: the simulator's defaults"))
            continue
        ratios = [s.seconds / (control_plane + per_node * s.nodes) for s in mine]
        factor = min(max(statistics.median(ratios), low), high)
        cp_factor = node_factor = factor
        how = (f"the median of {len(mine)} recorded upgrades against the model: {factor:.2f} times the defaults"
               if len(mine) > 1 else f"one recorded upgrade against the model: {factor:.2f} times the defaults")
        if len(mine) >= 3 and len({s.nodes for s in mine}) >= 2:
            slope, intercept = statistics.linear_regression([float(s.nodes) for s in mine], [s.seconds for s in mine])
            if slope > 0 and intercept > 0:
                cp_factor = min(max(intercept / control_plane, low), high)
                node_factor = min(max(slope / per_node, low), high)
                how = (f"fitted to {len(mine)} recorded upgrades: the control plane {intercept:.0f} s, each node"
                       f" {slope:.0f} s")
        out.append(Calibration(
            provider=provider, samples=len(mine), factor=round(factor, 3),
            control_plane_upgrade_seconds=round(control_plane * cp_factor, 1),
            node_boot_seconds=round(defaults["node_boot_seconds"] * node_factor, 1),
            node_terminate_seconds=round(defaults["node_terminate_seconds"] * node_factor, 1), how=how))
    return out


def upgrade_samples(trail: Iterable[tuple[str, str, str, datetime | None]], clusters: Mapping[str, tuple[str, int]],
                    ) -> list[UpgradeSample]:
    """The upgrades the trail recorded from start to success: `trail` is (operation_id + run, cluster, outcome, at)
    for each ClusterUpgrade's `upgrade` record; `clusters` each cluster's provider and node count now. An upgrade that
    failed, was aborted or is still running is no sample; nor is one on a cluster no longer in the inventory."""
    started: dict[str, datetime] = {}
    out = []
    for run, cluster, outcome, at in trail:
        if at is None:
            continue
        if outcome == "started":
            started[run] = at
        elif outcome == "succeeded" and run in started and cluster in clusters:
            seconds = (at - started.pop(run)).total_seconds()
            if seconds > 0:
                provider, nodes = clusters[cluster]
                out.append(UpgradeSample(provider=provider, nodes=nodes, seconds=seconds))
    return out


def custom_resources(definitions: list[dict[str, Any]]) -> list[dict[str, str]]:
    """What the twin keeps of each CustomResourceDefinition the cluster serves: its group, the version it stores (else
    the first it serves), kind, plural and scope; not its schema. One not yet established is left out (its kind is not
    served)."""
    out = []
    for crd in definitions:
        spec, status = crd.get("spec") or {}, crd.get("status") or {}
        names = spec.get("names") or {}
        established = any(c.get("type") == "Established" and c.get("status") == "True"
                          for c in status.get("conditions") or [])
        versions = [v for v in spec.get("versions") or [] if v.get("served")]
        version = next((v for v in versions if v.get("storage")), versions[0] if versions else None)
        if not (established and version and spec.get("group") and names.get("kind") and names.get("plural")):
            continue
        out.append({"group": spec["group"], "version": version.get("name", ""), "kind": names["kind"],
                    "plural": names["plural"], "scope": spec.get("scope") or "Namespaced"})
    return sorted(out, key=lambda served: (served["group"], served["kind"]))
