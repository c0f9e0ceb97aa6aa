"""Decisions about clusters on your own hardware that Regatta upgrades through their controllers: Cluster API
(`capi`: a KubeadmControlPlane and MachineDeployments on a management cluster) and the system-upgrade-controller of
a k3s or RKE2 cluster (`suc`: Plans). Pure: each takes the objects as the API returned them (dicts) and says what they
mean, or builds what Regatta writes (docs/cloud-conformance.md C1–C9, U1–U8 name the sources).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from regatta.models.errors import ErrorType
from regatta.rules.refusals import Refusal

CONTROLLER_DRIVEN = ("capi", "suc")  # providers whose upgrades a controller in the cluster's world carries out
OWN_HARDWARE = ("kubeconfig", *CONTROLLER_DRIVEN)  # providers whose "cloud" is a Kubernetes API
PAUSED = "cluster.x-k8s.io/paused"
STOPPING = "regatta.dev/stopping"
_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)([-+][0-9A-Za-z.+-]*)?$")
_MINOR = re.compile(r"^v?(\d+)\.(\d+)")


class ReleaseRefused(Refusal):
    error_type = ErrorType.INVALID_NODE_IMAGE


def minor_of(version: str) -> str:
    """"v1.31.4" (or "v1.31.4+k3s1") → "1.31"."""
    found = _MINOR.match(version.strip())
    if found is None:
        raise ValueError(f"not a Kubernetes version: {version!r}")
    return f"{found[1]}.{found[2]}"


# --------------------------------------------------------------------------- Cluster API


def capi_target(target_minor: str, named: str | None) -> tuple[str, str]:
    """The exact release (and infrastructure template, if named) a capi upgrade to `target_minor` rolls: Cluster API
    keeps no catalogue of Kubernetes releases to choose a patch from, so the upgrade names it."""
    if not named:
        raise ReleaseRefused(f"a Cluster API cluster is upgraded to an exact Kubernetes release: give node_images.capi, e.g."
                             f" v{target_minor}.4 (or v{target_minor}.4/<infrastructure machine template> to move its"
                             " MachineDeployments onto a new template as well)")
    release, _, template = named.partition("/")
    found = _SEMVER.match(release)
    if found is None or not release.startswith("v"):
        raise ReleaseRefused(f"node_images.capi {named!r} is not a release such as v{target_minor}.4: Cluster API takes"
                             " semantic versions with a v")
    if f"{found[1]}.{found[2]}" != target_minor:
        raise ReleaseRefused(f"node_images.capi {release} is not a release of Kubernetes {target_minor}")
    return release, template


def operation_id(kind: str, name: str, release: str, drain_timeout_seconds: float | None = None) -> str:
    """A capi rollout Regatta waits for, named so that any worker can poll it again: what rolls, and to what."""
    return json.dumps({"capi": kind, "name": name, "release": release, "drain_timeout": drain_timeout_seconds},
                      separators=(",", ":"), sort_keys=True)


def parse_operation_id(operation_id: str) -> tuple[str, str, str, float | None]:
    found = json.loads(operation_id)
    return found["capi"], found["name"], found["release"], found.get("drain_timeout")


def _annotations(body: dict[str, Any]) -> dict[str, str]:
    return (body.get("metadata") or {}).get("annotations") or {}


def paused(body: dict[str, Any]) -> bool:
    return PAUSED in _annotations(body)


def stopping(body: dict[str, Any]) -> bool:
    return STOPPING in _annotations(body)


def _observed(body: dict[str, Any]) -> bool:
    status = body.get("status") or {}
    return int(status.get("observedGeneration", 0)) >= int((body.get("metadata") or {}).get("generation", 1))


def control_plane_rolling(kcp: dict[str, Any]) -> bool:
    """Whether a KubeadmControlPlane is still moving its Machines to its spec."""
    spec, status = kcp.get("spec") or {}, kcp.get("status") or {}
    replicas = int(spec.get("replicas", 1))
    return not (_observed(kcp) and status.get("version") == spec.get("version")
                and int(status.get("updatedReplicas", 0)) == replicas and int(status.get("replicas", 0)) == replicas
                and int(status.get("readyReplicas", 0)) == replicas)


def machine_deployment_done(md: dict[str, Any]) -> bool:
    """Whether a MachineDeployment's Machines all run its template, and are all available."""
    spec, status = md.get("spec") or {}, md.get("status") or {}
    replicas = int(spec.get("replicas", 1))
    return (_observed(md) and int(status.get("updatedReplicas", 0)) == replicas
            and int(status.get("replicas", 0)) == replicas and int(status.get("availableReplicas", 0)) == replicas)


def oldest_release(machines: Iterable[dict[str, Any]], otherwise: str) -> str:
    """The oldest release among Machines (what a MachineDeployment still runs part way through a rollout)."""
    def key(version: str) -> tuple[int, ...]:
        found = _SEMVER.match(version)
        return tuple(int(part) for part in found.groups()[:3]) if found else (0, 0, 0)
    versions = [str((m.get("spec") or {}).get("version")) for m in machines if (m.get("spec") or {}).get("version")]
    return min(versions, key=key) if versions else otherwise


def machines_moving(machines: Iterable[dict[str, Any]]) -> bool:
    """Whether a Machine is being made or deleted (what a stop waits for)."""
    return any((m.get("status") or {}).get("phase") in ("Pending", "Provisioning", "Provisioned", "Deleting")
               for m in machines)


control_plane_machines_moving = machines_moving


def _timestamp(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def drain_held_longer_than(machines: Iterable[dict[str, Any]], seconds: float, *, now: datetime) -> list[str]:
    """Each Machine whose drain a budget has held for `seconds` or more, with what Cluster API says holds it."""
    held = []
    for machine in machines:
        # when the drain began: status.deletion.nodeDrainStartTime, as Cluster API's own timeout reads it (the
        # condition's lastTransitionTime moves whenever its message does); the condition's, where there is none
        began = ((machine.get("status") or {}).get("deletion") or {}).get("nodeDrainStartTime")
        for condition in (machine.get("status") or {}).get("conditions") or []:
            if condition.get("type") != "DrainingSucceeded" or condition.get("status") != "False":
                continue
            since = _timestamp(str(began or condition.get("lastTransitionTime", "")))
            if since is None or (now - since).total_seconds() < seconds:
                continue
            node = ((machine.get("status") or {}).get("nodeRef") or {}).get("name", "?")
            message = " ".join(str(condition.get("message", "")).split())
            held.append(f"Machine {machine['metadata']['name']} (node {node}) has been draining for"
                        f" {(now - since).total_seconds():.0f} s: {message}")
    return held


def api_message(body: Any) -> str:
    """The message of a Kubernetes Status an API server answered with."""
    try:
        found = json.loads(body) if isinstance(body, str | bytes) else body
    except ValueError:
        return str(body)[:300]
    return str(found.get("message", ""))[:500] if isinstance(found, dict) else ""


# --------------------------------------------------------------------------- the system-upgrade-controller

SUC_NAMESPACE = "system-upgrade"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
SERVER_PLAN = "regatta-server"
UPGRADE_IMAGES = {"k3s": "rancher/k3s-upgrade", "rke2": "rancher/rke2-upgrade"}
CHANNELS = {"k3s": "https://update.k3s.io/v1-release/channels", "rke2": "https://update.rke2.io/v1-release/channels"}
UPGRADE_ALLOWANCE_SECONDS = 600  # a Job's time for the upgrade itself, beyond its drain
DISABLED = "disabled"


def distribution_of(kubelet_versions: Iterable[str]) -> str:
    """k3s or rke2, from the release its kubelets report (v1.30.2+k3s1, v1.30.2+rke2r1)."""
    versions = list(kubelet_versions)
    if any("+rke2" in v for v in versions):
        return "rke2"
    if any("+k3s" in v for v in versions):
        return "k3s"
    raise ValueError("its nodes run neither k3s nor RKE2 (their kubelets report " + ", ".join(sorted(set(versions))[:3])
                     + "): register it as kubeconfig, or as capi if Cluster API manages it")


def is_server(labels: dict[str, str]) -> bool:
    return labels.get(CONTROL_PLANE_LABEL) == "true" or labels.get("node-role.kubernetes.io/master") == "true"


def suc_release(target_minor: str, named: str | None, distribution: str) -> dict[str, str]:
    """What a Plan asks for: the release named in node_images.suc, or the distribution's channel for the minor
    (the controller resolves it to that minor's newest release)."""
    if not named:
        return {"channel": f"{CHANNELS[distribution]}/v{target_minor}"}
    found = _SEMVER.match(named)
    suffix = "+k3s" if distribution == "k3s" else "+rke2"
    if found is None or not named.startswith("v") or suffix not in named:
        raise ReleaseRefused(f"node_images.suc {named!r} is not a {distribution} release such as v{target_minor}.4{suffix}"
                             f"{'1' if distribution == 'k3s' else 'r1'}")
    if f"{found[1]}.{found[2]}" != target_minor:
        raise ReleaseRefused(f"node_images.suc {named} is not a release of Kubernetes {target_minor}")
    return {"version": named}


def plan_name(node_pool: str | None) -> str:
    """`regatta-server`, or `regatta-pool-<pool>-<digest>` (a DNS label whatever the pool label says, and never the
    servers' Plan nor another pool's, however long or odd the pool's name)."""
    if node_pool is None:
        return SERVER_PLAN
    shown = re.sub(r"[^a-z0-9-]+", "-", node_pool.lower()).strip("-")[:40].strip("-") or "pool"
    return f"regatta-pool-{shown}-{hashlib.sha256(node_pool.encode()).hexdigest()[:6]}"


def release_of(latest_version: str) -> str:
    """A Plan's status.latestVersion as the release it is ("v1.31.4-k3s1" → "v1.31.4+k3s1": the controller writes
    "+" as "-" for an image tag)."""
    found = re.match(r"^(v\d+\.\d+\.\d+)-(k3s\d+|rke2r\d+)$", latest_version)
    return f"{found[1]}+{found[2]}" if found else latest_version


def plan_selector(node_pool: str | None, pool_label: str | None, other_pool_labels: Sequence[str] = ()) -> dict[str, Any]:
    """The nodes a Plan upgrades: the servers, or one pool's agents (by the label its nodes carry; a pool of nodes
    with no pool label is every agent without one)."""
    if node_pool is None:
        return {"matchExpressions": [{"key": CONTROL_PLANE_LABEL, "operator": "In", "values": ["true"]}]}
    expressions: list[dict[str, Any]] = [{"key": CONTROL_PLANE_LABEL, "operator": "DoesNotExist"},
                                         {"key": "node-role.kubernetes.io/master", "operator": "DoesNotExist"}]
    if pool_label:
        expressions.append({"key": pool_label, "operator": "In", "values": [node_pool]})
    else:
        expressions += [{"key": label, "operator": "DoesNotExist"} for label in other_pool_labels]
    return {"matchExpressions": expressions}


def plan(*, node_pool: str | None, selector: dict[str, Any], release: dict[str, str], distribution: str,
         drain_timeout_seconds: float | None, attempt: str, after_servers: bool = True) -> dict[str, Any]:
    """The Plan Regatta writes. Servers: one at a time, cordoned (k3s's own example). A pool's agents: one at a
    time, after the servers when their Plan stands (`after_servers`), drained through the eviction API (never
    --disable-eviction, never --force), the drain given the upgrade's drain timeout and the Job that long and the
    upgrade's allowance."""
    image = UPGRADE_IMAGES[distribution]
    spec: dict[str, Any] = {"concurrency": 1, "nodeSelector": selector, "serviceAccountName": "system-upgrade",
                            "upgrade": {"image": image}, **release}
    if node_pool is None:
        spec["cordon"] = True
    else:
        timeout = int(drain_timeout_seconds or 900)
        if after_servers:
            spec["prepare"] = {"image": image, "args": ["prepare", SERVER_PLAN]}
        spec["drain"] = {"force": False, "disableEviction": False, "ignoreDaemonSets": True, "deleteEmptydirData": True,
                         "timeout": f"{timeout}s"}
        spec["jobActiveDeadlineSecs"] = timeout + UPGRADE_ALLOWANCE_SECONDS
    return {"apiVersion": "upgrade.cattle.io/v1", "kind": "Plan",
            "metadata": {"name": plan_name(node_pool), "namespace": SUC_NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "regatta"},
                         "annotations": {"regatta.dev/attempt": attempt}},
            "spec": spec}


def _condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in (body.get("status") or {}).get("conditions") or [] if c.get("type") == kind), {})


def plan_failure(plan_body: dict[str, Any]) -> str | None:
    """What the controller says went wrong, if a Job failed or the Plan cannot be resolved or validated."""
    complete = _condition(plan_body, "Complete")
    if complete.get("status") == "False" and complete.get("reason") == "JobFailed":
        return str(complete.get("message") or "a Job failed")
    for kind in ("LatestResolved", "Validated"):
        found = _condition(plan_body, kind)
        if found.get("status") == "False":
            return f"{kind}: {found.get('message') or found.get('reason')}"
    return None


def plan_done(plan_body: dict[str, Any], nodes: Sequence[tuple[str, dict[str, str], str]], target_minor: str) -> bool:
    """Whether every node the Plan selects (name, labels, kubelet version) runs the target and carries the Plan's
    hash: the Plan's own status is not enough (it says Complete for a Plan it has not yet read again)."""
    status = plan_body.get("status") or {}
    latest = status.get("latestHash")
    label = f"plan.upgrade.cattle.io/{plan_body['metadata']['name']}"
    if not latest or status.get("applying"):
        return False
    return all(labels.get(label) == latest and minor_of(version) == target_minor for _, labels, version in nodes)


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector's answer for a node's labels (matchLabels and In, NotIn, Exists, DoesNotExist)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        present = key in labels
        if (operator == "In" and labels.get(key) not in values) or (operator == "NotIn" and present and labels[key] in values) \
                or (operator == "Exists" and not present) or (operator == "DoesNotExist" and present):
            return False
    return True
