"""Cluster API on a simulated management cluster, as its controllers behave (docs/cloud-conformance.md C1–C9).

A fleet file's `provider: capi` cluster is a workload cluster whose Cluster, KubeadmControlPlane, MachineDeployments,
MachineSets and Machines live on its management cluster (`management.context`, another cluster of the file) in
`management.namespace`. Each node pool of the workload cluster is a MachineDeployment of the same name, each of its
nodes a Machine of the same name. The control plane's Machines have no Node in the simulated workload cluster (the
simulator models every control plane without nodes, as the clouds' managed ones).

What the controllers do here, each taken from cluster-api's source:

- A MachineDeployment whose `spec.template.spec.version` (or infrastructure template) changes rolls its Machines
  under `strategy.rollingUpdate`: at most `replicas + maxSurge` Machines, at least `replicas - maxUnavailable`
  available; a new Machine first (its Node joins and turns Ready), then an old one deleted. `OnDelete` replaces only
  Machines someone deletes.
- A Machine being deleted is cordoned and drained through the eviction API (PodDisruptionBudgets are asked), retried
  every 20 s; its `DrainingSucceeded` condition is False with reason `Draining` and a message naming each pod that
  is held and why. With `nodeDrainTimeout` unset or 0 it waits for ever; past a set timeout the drain is skipped and
  the Machine deleted with its pods still on it (the simulator records each budget that breaks).
- The KubeadmControlPlane replaces one Machine at a time (maxSurge 1: a new one first; 0: an old one first), only
  while every Machine has a Node and none is being deleted; `status.version` is the oldest Machine's.
- The `cluster.x-k8s.io/paused` annotation on an object, or the Cluster's `spec.paused`, stops its controller;
  `MachineDeployment.spec.paused` stops its rollout. Writes pass the webhooks' defaulting (a `v` before a version)
  and validation (a semantic version; the control plane one minor at a time; maxSurge 0 or 1, and 0 only with 3
  replicas or more; a MachineDeployment's maxSurge and maxUnavailable not both 0).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regatta.sim import arithmetic
from regatta.sim.policy_engines import crd
from regatta.sim.world import NODE_BOOT_SECONDS, NODE_TERMINATE_SECONDS, SYSTEM_NAMESPACES, Cluster, NodePool, SimError, World

if TYPE_CHECKING:
    from regatta.formats.fleet_file import ClusterSpec

CORE = "cluster.x-k8s.io/v1beta1"
CONTROL_PLANE = "controlplane.cluster.x-k8s.io/v1beta1"
CRDS = [("cluster.x-k8s.io", "v1beta1", "clusters", "Cluster"),
        ("cluster.x-k8s.io", "v1beta1", "machinedeployments", "MachineDeployment"),
        ("cluster.x-k8s.io", "v1beta1", "machinesets", "MachineSet"),
        ("cluster.x-k8s.io", "v1beta1", "machines", "Machine"),
        ("cluster.x-k8s.io", "v1beta1", "machinehealthchecks", "MachineHealthCheck"),
        ("controlplane.cluster.x-k8s.io", "v1beta1", "kubeadmcontrolplanes", "KubeadmControlPlane")]
PAUSED = "cluster.x-k8s.io/paused"
CLUSTER_NAME_LABEL = "cluster.x-k8s.io/cluster-name"
DRAIN_RETRY_SECONDS = 20.0  # drainRetryInterval in the Machine controller
MIN_TICK = 0.02  # real seconds between two passes of a controller, whatever the time scale
# KubeSemver in util/version: the v is required (the defaulting webhooks add it)
KUBE_SEMVER = re.compile(r"^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)([-0-9a-zA-Z_.+]*)?$")


@dataclass
class Machine:
    """A control plane Machine (no Node in the workload cluster): its version and when it is Ready."""

    name: str
    version: str
    ready_at: float
    deleting: bool = False


@dataclass
class Drain:
    started: str  # RFC 3339, when the Machine's drain began
    message: str = ""


@dataclass
class Managed:
    """One workload cluster Cluster API manages, and what its controllers are doing."""

    workload: str
    management: str
    namespace: str
    name: str  # the Cluster object's
    control_plane: str  # the KubeadmControlPlane's name
    infrastructure: str  # the infrastructure kind its machine templates are (DockerMachineTemplate in the simulator)
    control_plane_machines: list[Machine] = field(default_factory=list)
    deleting: dict[str, Drain] = field(default_factory=dict)  # worker Machines being deleted, by name
    tasks: dict[str, asyncio.Task] = field(default_factory=dict)  # reconcilers running, by object
    seq: int = 0


def _managed(world: World) -> dict[str, Managed]:
    if not hasattr(world, "cluster_api"):
        world.cluster_api = {}  # type: ignore[attr-defined]
    return world.cluster_api  # type: ignore[attr-defined]


def release(minor: str, patch: int) -> str:
    return f"v{minor}.{patch}"


def _key(api: str, plural: str, namespace: str, name: str) -> tuple[str, str, str, str]:
    return (api, plural, namespace, name)


def _timestamp(world: World) -> str:
    return world.calendar_now().strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- loading


def install(world: World, spec: ClusterSpec) -> None:
    """A capi cluster of the fleet file: its objects on the management cluster, its workers as nodes."""
    from regatta.sim import kube_objects

    assert spec.management is not None
    management = world.cluster(spec.management.context)
    workload = world.clusters[spec.name]
    namespace, name = spec.management.namespace, spec.management.cluster
    for group, version, plural, kind in CRDS:
        key = _key("apiextensions.k8s.io/v1", "customresourcedefinitions", "", f"{plural}.{group}")
        if key not in management.objects:
            kube_objects.store_object(management, key, crd(group, version, plural, kind, "Namespaced"))
    management.namespaces.add(namespace)
    minor = arithmetic.minor_text(spec.version)
    managed = Managed(workload=spec.name, management=management.name, namespace=namespace, name=name,
                      control_plane=f"{name}-control-plane", infrastructure="DockerMachineTemplate")
    _managed(world)[spec.name] = managed
    cp_release = release(minor, 5)
    for _ in range(spec.control_plane_nodes):
        managed.seq += 1
        managed.control_plane_machines.append(Machine(f"{managed.control_plane}-{managed.seq:03d}", cp_release, 0.0))
    labels = {CLUSTER_NAME_LABEL: name}
    kube_objects.store_object(management, _key(CORE, "clusters", namespace, name), {
        "apiVersion": CORE, "kind": "Cluster", "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"controlPlaneRef": {"apiVersion": CONTROL_PLANE, "kind": "KubeadmControlPlane",
                                     "name": managed.control_plane, "namespace": namespace},
                 "infrastructureRef": {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "DockerCluster",
                                       "name": name, "namespace": namespace}}})
    kube_objects.store_object(management, _key(CONTROL_PLANE, "kubeadmcontrolplanes", namespace, managed.control_plane), {
        "apiVersion": CONTROL_PLANE, "kind": "KubeadmControlPlane",
        "metadata": {"name": managed.control_plane, "namespace": namespace, "labels": dict(labels)},
        "spec": {"replicas": spec.control_plane_nodes, "version": cp_release,
                 "rolloutStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                 "machineTemplate": {"infrastructureRef": {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                                                           "kind": managed.infrastructure,
                                                           "name": f"{managed.control_plane}-{minor}", "namespace": namespace}},
                 "kubeadmConfigSpec": {}}})
    for pool in workload.pools.values():
        pool.image = f"{pool.name}-{pool.version}"
        for node in workload.pool_nodes(pool.name):
            node.version, node.image = release(pool.version, 5), pool.image
        kube_objects.store_object(management, _key(CORE, "machinedeployments", namespace, pool.name), {
            "apiVersion": CORE, "kind": "MachineDeployment",
            "metadata": {"name": pool.name, "namespace": namespace, "labels": dict(labels)},
            "spec": {"clusterName": name, "replicas": pool.desired,
                     "selector": {"matchLabels": {CLUSTER_NAME_LABEL: name, "cluster.x-k8s.io/deployment-name": pool.name}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0,
                                                                             "deletePolicy": "Oldest"}},
                     "template": {"metadata": {"labels": {"cluster.x-k8s.io/deployment-name": pool.name}},
                                  "spec": {"clusterName": name, "version": release(pool.version, 5),
                                           "bootstrap": {"configRef": {"kind": "KubeadmConfigTemplate", "name": pool.name}},
                                           "infrastructureRef": {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                                                                 "kind": managed.infrastructure, "name": pool.image,
                                                                 "namespace": namespace}}}}})
    publish(world, managed)


# --------------------------------------------------------------------------- the webhooks


def _version_of(body: dict[str, Any], path: tuple[str, ...]) -> str | None:
    found: Any = body
    for part in path:
        found = found.get(part) if isinstance(found, dict) else None
    return found if isinstance(found, str) else None


def _set(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        body = body.setdefault(part, {})
    body[path[-1]] = value


def _invalid(kind: str, name: str, field_path: str, value: Any, why: str) -> SimError:
    return SimError(422, "Invalid", f'{kind} "{name}" is invalid: {field_path}: Invalid value: {value!r}: {why}')


def _int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        share = float(value[:-1]) * total / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value)


def admit(api: str, plural: str, old: dict[str, Any] | None, body: dict[str, Any]) -> None:
    """KubeadmControlPlane's and MachineDeployment's defaulting and validating webhooks, as far as an upgrade meets them."""
    name = (body.get("metadata") or {}).get("name", "")
    path: tuple[str, ...]
    if plural == "kubeadmcontrolplanes":
        path, kind = ("spec", "version"), "KubeadmControlPlane"
    elif plural == "machinedeployments":
        path, kind = ("spec", "template", "spec", "version"), "MachineDeployment"
    else:
        return
    version = _version_of(body, path)
    if version is not None:
        if not version.startswith("v"):
            version = f"v{version}"
            _set(body, path, version)
        if not KUBE_SEMVER.match(version):
            raise _invalid(kind, name, ".".join(path), version, "must be a valid semantic version")
    spec = body.get("spec") or {}
    if kind == "KubeadmControlPlane":
        before = _version_of(old, path) if old else None
        if version and before and KUBE_SEMVER.match(before):
            was, now = arithmetic.minor(before), arithmetic.minor(version)
            if now >= (was[0], was[1] + 2):
                raise SimError(422, "Invalid", f'KubeadmControlPlane "{name}" is invalid: spec.version: Forbidden: cannot'
                               f" update Kubernetes version from {before} to {version}")
        surge = ((spec.get("rolloutStrategy") or {}).get("rollingUpdate") or {}).get("maxSurge", 1)
        if surge not in (0, 1):
            raise _invalid(kind, name, "spec.rolloutStrategy.rollingUpdate.maxSurge", surge, "value must be 1 or 0")
        if surge == 0 and int(spec.get("replicas", 1)) < 3:
            raise SimError(422, "Invalid", f'KubeadmControlPlane "{name}" is invalid: spec.rolloutStrategy.rollingUpdate:'
                           " Forbidden: when KubeadmControlPlane is configured to scale-in, replica count needs to be at"
                           " least 3")
    else:
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        replicas = int(spec.get("replicas", 1))
        if (_int_or_percent(rolling.get("maxSurge", 1), replicas, round_up=True) == 0
                and _int_or_percent(rolling.get("maxUnavailable", 0), replicas, round_up=False) == 0):
            raise _invalid(kind, name, "spec.strategy.rollingUpdate.maxSurge", rolling.get("maxSurge"),
                           "may not be 0 when maxUnavailable is 0")


# --------------------------------------------------------------------------- the reconcilers


def notice(world: World, c: Cluster, key: tuple[str, str, str, str]) -> None:
    """A Cluster API object on a management cluster was written: reconcile what it belongs to."""
    api, plural, namespace, name = key
    for managed in _managed(world).values():
        if managed.management != c.name or managed.namespace != namespace:
            continue
        if plural == "kubeadmcontrolplanes" and name == managed.control_plane:
            _spawn(world, managed, "control-plane", _roll_control_plane(world, managed))
        elif plural == "machinedeployments" and (name in world.clusters[managed.workload].pools
                                                 or _object(world, managed, "machinedeployments", name) is not None):
            _spawn(world, managed, name, _roll_machine_deployment(world, managed, name))
        elif plural == "clusters" and name == managed.name:  # a pause lifted on the Cluster: everything looks again
            _spawn(world, managed, "control-plane", _roll_control_plane(world, managed))
            for pool in list(world.clusters[managed.workload].pools):
                _spawn(world, managed, pool, _roll_machine_deployment(world, managed, pool))


def _spawn(world: World, managed: Managed, what: str, coro) -> None:
    running = managed.tasks.get(what)
    if running is not None and not running.done():
        coro.close()  # the running reconciler reads the object again on its next pass
        return
    task = asyncio.get_running_loop().create_task(coro)
    managed.tasks[what] = task
    world._tasks.add(task)
    task.add_done_callback(world._tasks.discard)


def _object(world: World, managed: Managed, plural: str, name: str) -> dict[str, Any] | None:
    api = CONTROL_PLANE if plural == "kubeadmcontrolplanes" else CORE
    return world.clusters[managed.management].objects.get(_key(api, plural, managed.namespace, name))


def _paused(world: World, managed: Managed, body: dict[str, Any] | None) -> bool:
    cluster = _object(world, managed, "clusters", managed.name) or {}
    annotations = ((body or {}).get("metadata") or {}).get("annotations") or {}
    return bool((cluster.get("spec") or {}).get("paused")) or PAUSED in annotations


async def _tick(world: World, workload: Cluster, seconds: float) -> None:
    await asyncio.sleep(max(world.scaled(workload, seconds), MIN_TICK))


async def _roll_control_plane(world: World, managed: Managed) -> None:
    workload = world.clusters[managed.workload]
    while True:
        kcp = _object(world, managed, "kubeadmcontrolplanes", managed.control_plane)
        if kcp is None or _paused(world, managed, kcp):
            _spawn(world, managed, "settle", _settle(world, managed))
            return
        spec = kcp["spec"]
        target, replicas = spec["version"], int(spec.get("replicas", 1))
        surge = int(((spec.get("rolloutStrategy") or {}).get("rollingUpdate") or {}).get("maxSurge", 1))
        now = world.now()
        machines = managed.control_plane_machines
        new = [m for m in machines if m.version == target and not m.deleting]
        old = [m for m in machines if m.version != target and not m.deleting]
        if not old and len(new) == replicas and all(m.ready_at <= now for m in new):
            workload.version = arithmetic.minor_text(target)
            world._check_skew(workload)
            publish(world, managed)
            return
        if any(m.deleting for m in machines) or any(m.ready_at > now for m in machines):
            publish(world, managed)  # preflight checks: one Machine at a time, each with a Node, none being deleted
            await _tick(world, workload, 5)
            continue
        if len(machines) < replicas + surge and len(new) < replicas:
            managed.seq += 1
            machines.append(Machine(f"{managed.control_plane}-{managed.seq:03d}", target,
                                    now + world.scaled(workload, world.step_seconds(workload, "node_boot_seconds", NODE_BOOT_SECONDS))))
        elif old:
            leaving = old[0]
            leaving.deleting = True
            publish(world, managed)
            await world.pause(workload, world.step_seconds(workload, "node_terminate_seconds", NODE_TERMINATE_SECONDS))
            machines.remove(leaving)
        publish(world, managed)
        await _tick(world, workload, 5)


async def _settle(world: World, managed: Managed) -> None:
    """A paused rollout makes and deletes no more Machines, but those already booting turn Ready (the Machine
    controller is not the MachineDeployment's): their status is written until none is."""
    workload = world.clusters[managed.workload]
    while True:
        publish(world, managed)
        now = world.now()
        if all(node.ready(now) for node in workload.nodes.values()) and \
                all(m.ready_at <= now for m in managed.control_plane_machines):
            return
        await _tick(world, workload, 5)


def _semver(version: str) -> tuple[int, ...]:
    found = KUBE_SEMVER.match(version)
    return tuple(int(part) for part in found.groups()[:3]) if found else (0, 0, 0)


def _up_to_date(node, version: str, template: str) -> bool:
    return node.version == version and node.image == template


async def _roll_machine_deployment(world: World, managed: Managed, name: str) -> None:
    workload = world.clusters[managed.workload]
    while True:
        md = _object(world, managed, "machinedeployments", name)
        if md is None:  # deleted: its Machines go, each drained first
            for node in workload.pool_nodes(name):
                if node.name not in managed.deleting:
                    _start_deletion(world, managed, node.name, md)
            if not workload.pool_nodes(name):
                workload.pools.pop(name, None)
                publish(world, managed)
                return
            publish(world, managed)
            await _tick(world, workload, 5)
            continue
        if _paused(world, managed, md) or (md.get("spec") or {}).get("paused"):
            _spawn(world, managed, "settle", _settle(world, managed))
            return
        spec = md["spec"]
        template = spec["template"]["spec"]
        version, infra = template["version"], template["infrastructureRef"]["name"]
        replicas = int(spec.get("replicas", 1))
        pool = workload.pools.get(name)
        if pool is None:  # a new MachineDeployment: a new pool of the workload cluster
            like = next(iter(workload.pools.values()), None)
            pool = NodePool(name=name, version=arithmetic.minor_text(version), size=like.size if like else "m5.large",
                            desired=replicas, labels={}, image=infra)
            workload.pools[name] = pool
        pool.desired = replicas
        strategy = spec.get("strategy") or {}
        rolling = strategy.get("rollingUpdate") or {}
        surge = _int_or_percent(rolling.get("maxSurge", 1), replicas, round_up=True)
        unavailable = _int_or_percent(rolling.get("maxUnavailable", 0), replicas, round_up=False)
        if strategy.get("type") == "OnDelete":
            surge, unavailable = 0, 0
        now = world.now()
        nodes = [n for n in workload.pool_nodes(name) if n.name not in managed.deleting]
        new = [n for n in nodes if _up_to_date(n, version, infra)]
        old = sorted((n for n in nodes if not _up_to_date(n, version, infra)), key=lambda n: n.created)
        leaving = [n for n in workload.pool_nodes(name) if n.name in managed.deleting]
        if not old and not leaving and len(new) == replicas and all(n.ready(now) for n in new):
            pool.version, pool.image = arithmetic.minor_text(version), infra
            publish(world, managed)
            return
        total = len(nodes) + len(leaving)
        while len(new) < replicas and total < replicas + surge:
            fresh = world._add_node(workload, pool, version=arithmetic.minor_text(version), image=infra)
            fresh.version = version
            new.append(fresh)
            total += 1
        available = sum(1 for n in new + old if n.ready(now))
        removable = available - (replicas - unavailable)
        surplus_new = max(0, len(new) - replicas)
        for node in (old + new[:surplus_new])[:max(0, removable)]:
            _start_deletion(world, managed, node.name, md)
        publish(world, managed)
        await _tick(world, workload, 5)


def _duration_seconds(value: Any) -> float:
    """A metav1.Duration as Go writes it ("10m", "1h30m", "90s"); 0 for none."""
    if not value:
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    return arithmetic.duration_seconds(str(value))


def _start_deletion(world: World, managed: Managed, machine: str, md: dict[str, Any] | None) -> None:
    timeout = _duration_seconds(((md or {}).get("spec") or {}).get("template", {}).get("spec", {}).get("nodeDrainTimeout"))
    managed.deleting[machine] = Drain(started=_timestamp(world))
    _spawn(world, managed, f"machine/{machine}", _delete_machine(world, managed, machine, timeout))


async def _delete_machine(world: World, managed: Managed, machine: str, drain_timeout: float) -> None:
    """The Machine controller's deletion: cordon, drain through the eviction API until it is done (or past a set
    nodeDrainTimeout, without it), then the machine and its Node go."""
    workload = world.clusters[managed.workload]
    if machine in workload.nodes:
        world.set_unschedulable(workload, machine, True)
    began = world.now()
    while machine in workload.nodes:
        if _paused(world, managed, None):
            await _tick(world, workload, 5)
            continue
        held = []
        for pod in list(workload.pods_on(machine)):
            if pod.namespace in SYSTEM_NAMESPACES:
                continue
            try:
                world.evict(workload, pod.namespace, pod.name, by="Cluster API Machine deletion (drain)")
            except SimError as refusal:
                causes = "; ".join(cause.get("message", "") for cause in refusal.causes)
                held.append(f"* Pod {pod.namespace}/{pod.name}: cannot evict pod as it would violate the pod's disruption"
                            f" budget. {causes}".rstrip())
        if not held:
            break
        if drain_timeout and world.now() - began >= world.scaled(workload, drain_timeout):
            break  # nodeDrainTimeout exceeded: the drain is skipped and the Machine deleted regardless
        drain = managed.deleting[machine]
        drain.message = f"Drain not completed yet (started at {drain.started}):\n" + "\n".join(held)
        publish(world, managed)
        await _tick(world, workload, DRAIN_RETRY_SECONDS)
    await world.pause(workload, world.step_seconds(workload, "node_terminate_seconds", NODE_TERMINATE_SECONDS))
    world.remove_node(workload, machine, why="Cluster API Machine deletion")
    managed.deleting.pop(machine, None)
    publish(world, managed)
    pool = next((name for name in workload.pools if machine.startswith(f"{name}-")), None)
    if pool is not None:  # the MachineDeployment looks again: a Machine fewer
        _spawn(world, managed, pool, _roll_machine_deployment(world, managed, pool))


# --------------------------------------------------------------------------- what the API shows


def _condition(kind: str, status: bool, *, reason: str = "", message: str = "", severity: str = "",
               since: str = "") -> dict[str, Any]:
    found = {"type": kind, "status": "True" if status else "False", "lastTransitionTime": since}
    if not status:
        found.update({"reason": reason, "severity": severity or "Info", "message": message})
    return found


def _put(world: World, managed: Managed, plural: str, name: str, body: dict[str, Any]) -> None:
    """Write an object the controllers own, or the status of one they reconcile, only when it changed."""
    from regatta.sim import kube_objects

    c = world.clusters[managed.management]
    api = CONTROL_PLANE if plural == "kubeadmcontrolplanes" else CORE
    key = _key(api, plural, managed.namespace, name)
    old = c.objects.get(key)
    if old is not None and {k: v for k, v in old.items() if k != "metadata"} == {k: v for k, v in body.items() if k != "metadata"}:
        return
    if old is not None:
        body = {**body, "metadata": {**old["metadata"], **{k: v for k, v in body["metadata"].items()
                                                           if k in ("labels", "ownerReferences")}}}
    kube_objects.store_object(c, key, copy.deepcopy(body))


def _status(world: World, managed: Managed, plural: str, name: str, status: dict[str, Any]) -> None:
    found = _object(world, managed, plural, name)
    if found is not None:
        _put(world, managed, plural, name, {**found, "status": status})


def publish(world: World, managed: Managed) -> None:
    """Machines, MachineSets and the status of the Cluster, its control plane and its MachineDeployments, as the
    controllers write them from what the simulated machines are doing."""
    from regatta.sim import kube_objects

    workload = world.clusters.get(managed.workload)
    management = world.clusters.get(managed.management)
    if workload is None or management is None:
        return
    now, stamp = world.now(), _timestamp(world)
    names: set[str] = set()
    cluster_label = {CLUSTER_NAME_LABEL: managed.name}
    for machine in managed.control_plane_machines:
        names.add(machine.name)
        up = machine.ready_at <= now
        _put(world, managed, "machines", machine.name, {
            "apiVersion": CORE, "kind": "Machine",
            "metadata": {"name": machine.name, "namespace": managed.namespace,
                         "labels": {**cluster_label, "cluster.x-k8s.io/control-plane": ""},
                         "ownerReferences": [{"apiVersion": CONTROL_PLANE, "kind": "KubeadmControlPlane",
                                              "name": managed.control_plane, "controller": True}]},
            "spec": {"clusterName": managed.name, "version": machine.version},
            "status": {"phase": "Deleting" if machine.deleting else "Running" if up else "Provisioning",
                       **({"nodeRef": {"kind": "Node", "name": machine.name}} if up else {}),
                       "conditions": [_condition("Ready", up, reason="WaitingForNodeRef", since=stamp)]}})
    sets: dict[tuple[str, str, str], list] = {}
    for pool in workload.pools.values():
        for node in workload.pool_nodes(pool.name):
            machine_set = f"{pool.name}-{hashlib.sha256(f'{node.version}/{node.image}'.encode()).hexdigest()[:5]}"
            sets.setdefault((pool.name, machine_set, node.version), []).append(node)
            names.add(node.name)
            drain = managed.deleting.get(node.name)
            up = node.ready(now)
            conditions = [_condition("Ready", up, reason="WaitingForNodeRef", since=stamp)]
            if drain is not None:
                conditions.append(_condition("DrainingSucceeded", False, reason="Draining", message=drain.message,
                                             since=drain.started))
            _put(world, managed, "machines", node.name, {
                "apiVersion": CORE, "kind": "Machine",
                "metadata": {"name": node.name, "namespace": managed.namespace,
                             "labels": {**cluster_label, "cluster.x-k8s.io/deployment-name": pool.name,
                                        "cluster.x-k8s.io/set-name": machine_set},
                             "ownerReferences": [{"apiVersion": CORE, "kind": "MachineSet", "name": machine_set,
                                                  "controller": True}]},
                "spec": {"clusterName": managed.name, "version": node.version,
                         "infrastructureRef": {"kind": managed.infrastructure, "name": node.image}},
                "status": {"phase": "Deleting" if drain is not None else "Running" if up else "Provisioning",
                           **({"nodeRef": {"kind": "Node", "name": node.name}} if up else {}),
                           **({"deletion": {"nodeDrainStartTime": drain.started}} if drain is not None else {}),
                           "conditions": conditions}})
    for (api, plural, namespace, name) in list(management.objects):
        if api == CORE and plural == "machines" and namespace == managed.namespace and name not in names and \
                (management.objects[(api, plural, namespace, name)].get("spec") or {}).get("clusterName") == managed.name:
            kube_objects.remove_object(management, (api, plural, namespace, name))
    live_sets = set()
    for (pool_name, machine_set, version), members in sets.items():
        live_sets.add(machine_set)
        ready = sum(1 for n in members if n.ready(now) and n.name not in managed.deleting)
        _put(world, managed, "machinesets", machine_set, {
            "apiVersion": CORE, "kind": "MachineSet",
            "metadata": {"name": machine_set, "namespace": managed.namespace,
                         "labels": {**cluster_label, "cluster.x-k8s.io/deployment-name": pool_name},
                         "ownerReferences": [{"apiVersion": CORE, "kind": "MachineDeployment", "name": pool_name,
                                              "controller": True}]},
            "spec": {"clusterName": managed.name, "replicas": len(members), "template": {"spec": {"version": version}}},
            "status": {"replicas": len(members), "readyReplicas": ready, "availableReplicas": ready}})
    for (api, plural, namespace, name) in list(management.objects):
        if api == CORE and plural == "machinesets" and namespace == managed.namespace and name not in live_sets and \
                (management.objects[(api, plural, namespace, name)].get("spec") or {}).get("clusterName") == managed.name:
            kube_objects.remove_object(management, (api, plural, namespace, name))
    for pool in workload.pools.values():
        md = _object(world, managed, "machinedeployments", pool.name)
        if md is None:
            continue
        template = md["spec"]["template"]["spec"]
        members = workload.pool_nodes(pool.name)
        staying = [n for n in members if n.name not in managed.deleting]
        current = [n for n in staying if _up_to_date(n, template["version"], template["infrastructureRef"]["name"])]
        ready = sum(1 for n in staying if n.ready(now))
        desired = int(md["spec"].get("replicas", 1))
        phase = "Running" if desired == ready and len(members) == desired else "ScalingUp" if desired > ready else "ScalingDown"
        _status(world, managed, "machinedeployments", pool.name, {
            "observedGeneration": md["metadata"].get("generation", 1), "replicas": len(members),
            "updatedReplicas": len(current), "readyReplicas": ready, "availableReplicas": ready,
            "unavailableReplicas": max(0, desired - ready), "phase": phase,
            "selector": f"{CLUSTER_NAME_LABEL}={managed.name},cluster.x-k8s.io/deployment-name={pool.name}",
            "conditions": [_condition("Ready", ready >= desired, reason="WaitingForAvailableMachines", severity="Warning",
                                      since=stamp)]})
    kcp = _object(world, managed, "kubeadmcontrolplanes", managed.control_plane)
    if kcp is not None:
        machines = managed.control_plane_machines
        target = kcp["spec"]["version"]
        oldest = min((m.version for m in machines), key=_semver, default=target)
        ready = sum(1 for m in machines if m.ready_at <= now and not m.deleting)
        updated = sum(1 for m in machines if m.version == target and not m.deleting)
        desired = int(kcp["spec"].get("replicas", 1))
        rolling = updated < desired or len(machines) != desired
        _status(world, managed, "kubeadmcontrolplanes", managed.control_plane, {
            "observedGeneration": kcp["metadata"].get("generation", 1), "version": oldest, "replicas": len(machines),
            "updatedReplicas": updated, "readyReplicas": ready, "unavailableReplicas": max(0, len(machines) - ready),
            "ready": True, "initialized": True,
            "selector": f"{CLUSTER_NAME_LABEL}={managed.name},cluster.x-k8s.io/control-plane",
            "conditions": [_condition("MachinesSpecUpToDate", not rolling, reason="RollingUpdateInProgress",
                                      severity="Warning", message=f"Rolling {len(machines)} replicas with outdated spec"
                                      f" ({desired - updated} replicas up to date)" if rolling else "", since=stamp)]})
    if _object(world, managed, "clusters", managed.name) is not None:
        _status(world, managed, "clusters", managed.name, {
            "phase": "Provisioned", "controlPlaneReady": True, "infrastructureReady": True,
            "conditions": [_condition("Ready", True, since=stamp)]})
