"""A k3s or RKE2 cluster's system-upgrade-controller, as rancher/system-upgrade-controller behaves
(docs/cloud-conformance.md U1–U8).

A fleet file's `provider: suc` cluster serves `upgrade.cattle.io/v1` Plans in the `system-upgrade` namespace. Its
server nodes (`control_plane_nodes` of them, pool `server`, labelled `node-role.kubernetes.io/control-plane` and
`master` "true") run the control plane: the API server a server's own kubelet talks to is its own, so the cluster's version (what the skew checks read) is the newest server's. Each node's kubelet reports the
distribution's release (`v1.30.2+k3s1`, `v1.30.2+rke2r1`).

For each Plan the controller resolves the release (`version`, else the `channel`: here a per-minor channel such as
`https://update.k3s.io/v1-release/channels/v1.31`, resolved to the simulator's newest patch of that minor), hashes
it with the service account's name into `status.latestHash`, and selects the nodes its `nodeSelector` matches whose
`plan.upgrade.cattle.io/<plan>` label is neither that hash nor `disabled`. Up to `concurrency` of them are applying
at once, each by a Job `apply-<plan>-on-<node>-with-<hash>`: `prepare` (the k3s-upgrade image's `prepare <plan>`
waits for that plan to be complete), `cordon` or `drain` (kubectl drain through the eviction API: a budget's refusal
retried every 5 s until `drain.timeout`, a pod no controller owns refused without `force`; failed attempts tried
again until the Job's active deadline, `jobActiveDeadlineSecs` or the shipped manifest's 900 s), then the upgrade
(the kubelet restarts on the new release). A Job that succeeds labels the node with the hash and uncordons it; one
that fails leaves the node cordoned and in `applying`, and the Plan `Complete` False with reason `JobFailed`, until
the Plan is written again.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regatta.sim import arithmetic
from regatta.sim.policy_engines import crd
from regatta.sim.world import SYSTEM_NAMESPACES, Cluster, SimError, World

if TYPE_CHECKING:
    from regatta.formats.fleet_file import ClusterSpec

PLANS = ("upgrade.cattle.io/v1", "plans")
JOBS = ("batch/v1", "jobs")
NAMESPACE = "system-upgrade"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
NEWEST_PATCH = 4  # what a per-minor channel resolves to in the simulator: v1.31.4+k3s1
LOADED_PATCH = 2  # the release the fleet file's nodes run when loaded
SUFFIX = {"k3s": "+k3s1", "rke2": "+rke2r1"}
EVICTION_RETRY_SECONDS = 5.0  # kubectl drain's "(will retry after 5s)"
ATTEMPT_BACKOFF_SECONDS = 10.0  # the Job's next pod after a failed one
DEFAULT_JOB_DEADLINE_SECONDS = 900.0  # SYSTEM_UPGRADE_JOB_ACTIVE_DEADLINE_SECONDS in the shipped manifest
KUBELET_RESTART_SECONDS = 30.0
MIN_TICK = 0.02
_CHANNEL = re.compile(r"/channels/v?(\d+)\.(\d+)$")


@dataclass
class JobRun:
    plan: str
    node: str
    hash: str
    task: asyncio.Task | None = None
    failed: str | None = None  # why, once it failed
    done: bool = False
    generation: int = 0  # the Plan's generation it was made for: a failed Job stays until the Plan is written again


@dataclass
class Controller:
    distribution: str
    jobs: dict[str, JobRun] = field(default_factory=dict)  # by Job name


def _controller(world: World, c: Cluster) -> Controller:
    if not hasattr(world, "system_upgrade"):
        world.system_upgrade = {}  # type: ignore[attr-defined]
    found: dict[str, Controller] = world.system_upgrade  # type: ignore[attr-defined]
    return found.setdefault(c.name, Controller(distribution="k3s"))


def release(minor: str, patch: int, distribution: str) -> str:
    return f"v{minor}.{patch}{SUFFIX[distribution]}"


def install(world: World, spec: ClusterSpec) -> None:
    """A suc cluster of the fleet file: the Plan CRD, the controller's namespace, its servers and agents' releases."""
    from regatta.sim import kube_objects

    c = world.clusters[spec.name]
    distribution = spec.distribution or "k3s"
    _controller(world, c).distribution = distribution
    key = ("apiextensions.k8s.io/v1", "customresourcedefinitions", "", "plans.upgrade.cattle.io")
    kube_objects.store_object(c, key, crd("upgrade.cattle.io", "v1", "plans", "Plan", "Namespaced"))
    c.namespaces.add(NAMESPACE)
    for node in c.nodes.values():
        node.version = release(c.pools[node.pool].version, LOADED_PATCH, distribution)
        node.image = ""


def server_pool_labels() -> dict[str, str]:
    return {CONTROL_PLANE_LABEL: "true", "node-role.kubernetes.io/master": "true", "node-role.kubernetes.io/etcd": "true"}


def admit(plural: str, body: dict[str, Any]) -> None:
    """The controller has no admission webhook: a Plan is validated by the controller (its Validated condition)."""


# --------------------------------------------------------------------------- the controller


def _labels(c: Cluster, node) -> dict[str, str]:
    from regatta.sim.kube_api import node_labels

    return node_labels(c, node)


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _resolve(plan: dict[str, Any], distribution: str) -> tuple[str | None, str]:
    """The release the Plan asks for, and why not when it cannot be resolved."""
    spec = plan.get("spec") or {}
    if spec.get("version"):
        return str(spec["version"]), ""
    channel = spec.get("channel")
    if not channel:
        return None, "spec.version or spec.channel is required"
    found = _CHANNEL.search(str(channel))
    if found is None:
        return None, f"cannot resolve channel {channel}: the simulated release server knows the per-minor channels only"
    return release(f"{found[1]}.{found[2]}", NEWEST_PATCH, distribution), ""


def _invalid(plan: dict[str, Any]) -> str:
    spec = plan.get("spec") or {}
    drain = spec.get("drain") or {}
    if drain.get("deleteLocalData") is not None and drain.get("deleteEmptydirData") is not None:
        return "spec.drain.deleteLocalData is deprecated and cannot be set with spec.drain.deleteEmptydirData"
    if not (spec.get("upgrade") or {}).get("image"):
        return "spec.upgrade.image is required"
    if int(spec.get("concurrency") or 0) < 0:
        return "spec.concurrency must not be negative"
    return ""


def _hash(version: str, plan: dict[str, Any]) -> str:
    return hashlib.sha224((version + str((plan.get("spec") or {}).get("serviceAccountName", ""))).encode()).hexdigest()


def _condition(kind: str, status: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": "True" if status else "False", "reason": reason, "message": message}


def notice(world: World, c: Cluster) -> None:
    """Plans or node labels changed: every Plan of the cluster is reconciled."""
    from regatta.sim import kube_objects

    controller = _controller(world, c)
    plans = {key[3]: body for key, body in c.objects.items() if key[:3] == (*PLANS, NAMESPACE)}
    for name, run in list(controller.jobs.items()):  # Jobs of a Plan that is gone, or of an older hash, are deleted
        plan = plans.get(run.plan)
        version, _ = _resolve(plan, controller.distribution) if plan else (None, "")
        if plan is None or version is None or _hash(version, plan) != run.hash or (run.failed and _rewritten(plan, run)):
            if run.task is not None and not run.task.done():
                run.task.cancel()
            controller.jobs.pop(name)
            kube_objects.remove_object(c, (*JOBS, NAMESPACE, name))
    for name, plan in plans.items():
        _reconcile(world, c, controller, name, plan)


def _rewritten(plan: dict[str, Any], run: JobRun) -> bool:
    """A failed Job stays until the Plan is written again (which redeploys it)."""
    return int(plan["metadata"].get("generation", 1)) != run.generation


def _reconcile(world: World, c: Cluster, controller: Controller, name: str, plan: dict[str, Any]) -> None:
    from regatta.sim import kube_objects

    spec = plan.get("spec") or {}
    status: dict[str, Any] = {}
    version, unresolved = _resolve(plan, controller.distribution)
    problem = _invalid(plan)
    if version is None or problem:
        status["conditions"] = [_condition("LatestResolved", version is not None, "Error" if version is None else "Version",
                                           unresolved),
                                _condition("Validated", not problem, "Error" if problem else "", problem),
                                _condition("Complete", False, "NotReady", unresolved or problem)]
        _write_status(c, name, plan, status)
        return
    latest = _hash(version, plan)
    label = f"plan.upgrade.cattle.io/{name}"
    selector = spec.get("nodeSelector") or {}
    runs = {run.node: run for run in controller.jobs.values() if run.plan == name}
    wanted = sorted((node for node in c.nodes.values()
                     if _matches(selector, _labels(c, node)) and node.labels.get(label) not in ("disabled", latest)),
                    key=lambda node: hashlib.sha256(f"{node.name}{latest}".encode()).hexdigest())
    # a node whose Job runs stays applying whatever its labels now say; a failed one stays until the Plan is written
    applying = [n for n, run in runs.items() if not run.done]
    concurrency = max(0, int(spec.get("concurrency") or 0))
    for node in wanted:
        if len(applying) >= concurrency:
            break
        if node.name in applying:
            continue
        applying.append(node.name)
        job = f"apply-{name}-on-{node.name}-with-{latest}"[:63].rstrip("-")
        run = JobRun(plan=name, node=node.name, hash=latest, generation=int(plan["metadata"].get("generation", 1)))
        controller.jobs[job] = run
        kube_objects.store_object(c, (*JOBS, NAMESPACE, job), {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job, "namespace": NAMESPACE,
                         "labels": {"upgrade.cattle.io/controller": "system-upgrade-controller",
                                    "upgrade.cattle.io/node": node.name, "upgrade.cattle.io/plan": name,
                                    "upgrade.cattle.io/version": version.replace("+", "-"), label: latest}},
            "spec": {"backoffLimit": 99, "activeDeadlineSeconds": int(spec.get("jobActiveDeadlineSecs") or 900)},
            "status": {"active": 1}})
        run.task = asyncio.get_running_loop().create_task(_apply(world, c, controller, job, run, dict(plan), version))
        world._tasks.add(run.task)
        run.task.add_done_callback(world._tasks.discard)
    failed = [run for run in runs.values() if run.failed]
    if failed:
        complete = _condition("Complete", False, "JobFailed", failed[0].failed or "")
    elif not applying:
        complete = _condition("Complete", True, "Complete")
    else:
        complete = _condition("Complete", False, "Applying", f"applying on {', '.join(applying)}")
    status = {"latestVersion": version.replace("+", "-"), "latestHash": latest, "applying": applying,
              "conditions": [_condition("LatestResolved", True, "Version"), _condition("Validated", True), complete]}
    _write_status(c, name, plan, status)


def _write_status(c: Cluster, name: str, plan: dict[str, Any], status: dict[str, Any]) -> None:
    from regatta.sim import kube_objects

    if plan.get("status") != status:
        kube_objects.store_object(c, (*PLANS, NAMESPACE, name), {**plan, "status": status})


def _seconds(value: Any) -> float:
    """drain.timeout: an int is nanoseconds, a string is kubectl's duration ("15m", "900s")."""
    if value is None:
        return 0.0
    if isinstance(value, int | float):
        return float(value) / 1e9
    return arithmetic.duration_seconds(str(value))


async def _apply(world: World, c: Cluster, controller: Controller, job: str, run: JobRun, plan: dict[str, Any],
                 version: str) -> None:
    """One Job: prepare, cordon or drain, upgrade, then the node is labelled done and uncordoned."""
    spec = plan.get("spec") or {}
    node = c.nodes.get(run.node)
    began = world.now()
    deadline = float(spec.get("jobActiveDeadlineSecs") or DEFAULT_JOB_DEADLINE_SECONDS)

    def past_deadline() -> bool:
        return world.now() - began >= world.scaled(c, deadline)

    async def tick(seconds: float) -> None:
        await asyncio.sleep(max(world.scaled(c, seconds), MIN_TICK))

    try:
        prepare = spec.get("prepare") or {}
        args = prepare.get("args") or []
        if len(args) == 2 and args[0] == "prepare":  # the k3s-upgrade image waits for the named plan to be complete
            while not _complete(c, args[1]):
                if past_deadline():
                    return _fail(world, c, controller, job, run, "DeadlineExceeded",
                                 "Job was active longer than specified deadline")
                await tick(EVICTION_RETRY_SECONDS)
        drain = spec.get("drain")
        if node is None:
            return _fail(world, c, controller, job, run, "NodeGone", f"node {run.node} is gone")
        if spec.get("cordon") or drain is not None:
            world.set_unschedulable(c, node.name, True)
        if drain is not None:
            why = await _drain(world, c, node.name, drain, past_deadline, tick)
            if why:
                return _fail(world, c, controller, job, run, "DeadlineExceeded", why)
        node.version = version
        node.ready_at = world.now() + world.scaled(c, KUBELET_RESTART_SECONDS)
        c.resource_version += 1
        while not node.ready(world.now()):
            await tick(1)
        node.labels[f"plan.upgrade.cattle.io/{run.plan}"] = run.hash
        if spec.get("cordon") or drain is not None:
            world.set_unschedulable(c, node.name, False)
        servers = [n for n in c.nodes.values() if n.labels.get(CONTROL_PLANE_LABEL) == "true"]
        if servers:  # a server's kubelet talks to its own API server, the newest there is while servers move one by one
            c.version = max((arithmetic.minor_text(n.version) for n in servers), key=arithmetic.minor)
        world._check_skew(c)
        run.done = True
        _finish(c, job, {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
        controller.jobs.pop(job, None)
        notice(world, c)
    except asyncio.CancelledError:
        raise
    except Exception as error:  # noqa: BLE001 - a bug in the simulator shows as a failed Job, not a hang
        _fail(world, c, controller, job, run, "InternalError", repr(error))


async def _drain(world: World, c: Cluster, node: str, drain: dict[str, Any], past_deadline, tick) -> str:
    """kubectl drain, attempt after attempt: '' once the node is empty, else why the Job failed."""
    attempt_timeout = _seconds(drain.get("timeout"))
    force = bool(drain.get("force"))
    last = ""
    while True:
        started = world.now()
        while True:
            bare = [p for p in c.pods_on(node) if p.owner is None and p.namespace not in SYSTEM_NAMESPACES]
            if bare and not force:
                last = ("cannot delete Pods that declare no controller (use --force to override): "
                        + ", ".join(f"{p.namespace}/{p.name}" for p in bare))
                break
            held = []
            for pod in list(c.pods_on(node)):
                if pod.namespace in SYSTEM_NAMESPACES:
                    continue
                try:
                    if drain.get("disableEviction"):
                        world.delete_pod(c, pod.namespace, pod.name, via="kubectl drain --disable-eviction")
                    else:
                        world.evict(c, pod.namespace, pod.name, by="system-upgrade-controller drain")
                except SimError as refusal:
                    held.append(f"error when evicting pods/\"{pod.name}\" -n \"{pod.namespace}\" (will retry after 5s):"
                                f" {refusal.message}")
            if not held:
                return ""
            last = "; ".join(held)
            if attempt_timeout and world.now() - started >= world.scaled(c, attempt_timeout):
                last = f"drain did not complete within {drain.get('timeout')}: {last}"
                break
            if past_deadline():
                return f"Job was active longer than specified deadline: {last}"
            await tick(EVICTION_RETRY_SECONDS)
        if past_deadline():
            return f"Job was active longer than specified deadline: {last}"
        await tick(ATTEMPT_BACKOFF_SECONDS)


def _complete(c: Cluster, plan: str) -> bool:
    found = c.objects.get((*PLANS, NAMESPACE, plan))
    conditions = ((found or {}).get("status") or {}).get("conditions") or []
    return any(cond.get("type") == "Complete" and cond.get("status") == "True" for cond in conditions)


def _finish(c: Cluster, job: str, status: dict[str, Any]) -> None:
    from regatta.sim import kube_objects

    found = c.objects.get((*JOBS, NAMESPACE, job))
    if found is not None:
        kube_objects.store_object(c, (*JOBS, NAMESPACE, job), {**found, "status": status})


def _fail(world: World, c: Cluster, controller: Controller, job: str, run: JobRun, reason: str, message: str) -> None:
    run.failed = f"Job {NAMESPACE}/{job} failed on Node {run.node}: {reason}: {message}"
    _finish(c, job, {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": reason,
                                                  "message": message}]})
    notice(world, c)
