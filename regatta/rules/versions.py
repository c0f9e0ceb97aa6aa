"""Kubernetes versions and the skew policy: is a version jump legal, which parts of a cluster still need
the target (control plane, node pools, node image), does a cluster break skew.

Pure: called by ClusterUpgrade's preflight, the pre-start checks of the CLI and the API, and waves.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from regatta.models import NodePool
from regatta.models.errors import ErrorType
from regatta.rules.refusals import Refusal

# Kubernetes' version-skew policy (since 1.28): a kubelet may be up to three minor versions
# older than the API server and never newer.
MAX_KUBELET_SKEW = 3


SUPPORTED_MINORS = range(26, 36)  # 1.26 … 1.35: what the clouds we drive still offer


class InvalidVersion(Refusal):
    error_type = ErrorType.INVALID_VERSION


class IllegalVersionJump(Refusal):
    error_type = ErrorType.ILLEGAL_VERSION_JUMP


class AlreadyAtVersion(Refusal):
    error_type = ErrorType.ALREADY_AT_VERSION


class InvalidNodeImage(Refusal):
    error_type = ErrorType.INVALID_NODE_IMAGE


class SkewViolation(Refusal):
    error_type = ErrorType.SKEW_VIOLATION


_TARGET = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)$")


_OBSERVED = re.compile(r"^v?(\d+)\.(\d+)(?:[.\-+].*)?$")


def parse_target_version(value: str) -> tuple[int, int]:
    """A target an operator typed: exactly `MAJOR.MINOR` as Kubernetes writes it (no padding, no leading zeros:
    the target is compared, recorded and sent to the clouds as written), within the supported range."""
    match = _TARGET.fullmatch(value)
    if not match:
        raise InvalidVersion(f"target version {value!r} is not of the form MAJOR.MINOR, for example 1.31")
    major, minor = int(match[1]), int(match[2])
    if major != 1 or minor not in SUPPORTED_MINORS:
        raise InvalidVersion(
            f"target version {value} is not supported; choose one of 1.{SUPPORTED_MINORS.start}"
            f" to 1.{SUPPORTED_MINORS.stop - 1}"
        )
    return major, minor


def minor_version(value: str) -> tuple[int, int]:
    """A version a cluster reports: `1.30`, `v1.30.4`, `v1.30.4-eks-a1b2c3`."""
    match = _OBSERVED.match(value.strip())
    if not match:
        raise InvalidVersion(f"cannot read a Kubernetes version from {value!r}")
    return int(match[1]), int(match[2])


def format_version(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


@dataclass(frozen=True)
class UpgradeScope:
    """What an upgrade to a target has left to do on one cluster."""

    control_plane: bool
    node_pools: tuple[str, ...]


def plan_upgrade_scope(*, control_plane: str, node_pools: Sequence[NodePool], target: str,
                       node_image: str | None = None) -> UpgradeScope:
    """Refuse an illegal jump; otherwise say which parts still need the target version (and,
    when one is asked for, the target node image).

    Legal: the control plane is exactly one minor below the target, or already at it with
    node pools behind (finishing an upgrade that stopped half way, or a new node image).
    """
    wanted = parse_target_version(target)
    current = minor_version(control_plane)
    behind = tuple(pool.name for pool in node_pools
                   if minor_version(pool.version) < wanted or (node_image is not None and pool.node_image != node_image))
    ahead = [pool for pool in node_pools if minor_version(pool.version) > wanted]
    if wanted < current or ahead:
        raise IllegalVersionJump(
            f"{target} is older than what the cluster runs (control plane {control_plane}"
            + (f", node pool {ahead[0].name} at {ahead[0].version}" if ahead else "")
            + "); Kubernetes cannot be downgraded in place"
        )
    if wanted == current:
        if not behind:
            on = f" on node image {node_image}" if node_image is not None else ""
            raise AlreadyAtVersion(f"the control plane and every node pool already run {target}{on}; nothing to do")
        return UpgradeScope(control_plane=False, node_pools=behind)
    if wanted[1] != current[1] + 1:
        between = [format_version((current[0], minor)) for minor in range(current[1] + 1, wanted[1])]
        raise IllegalVersionJump(  # every minor named: "1.32 first, then 1.34" skipped 1.33
            f"the control plane runs {format_version(current)} and may move one minor version at a time;"
            f" upgrade to {between[0]} first, then to {', then to '.join([*between[1:], target])}"
        )
    lagging = [pool for pool in node_pools if wanted[1] - minor_version(pool.version)[1] > MAX_KUBELET_SKEW]
    if lagging:
        floor = format_version((wanted[0], wanted[1] - MAX_KUBELET_SKEW))
        names = ", ".join(f"{pool.name} ({pool.version})" for pool in lagging)
        raise SkewViolation(
            f"node pools {names} would be more than {MAX_KUBELET_SKEW} minor versions behind a {target}"
            f" control plane; upgrade them to at least {floor} with target {format_version(current)} first"
        )
    return UpgradeScope(control_plane=True, node_pools=behind)


def node_image_problem(provider: str, image: str, target: str) -> str | None:
    """Why `image` cannot be a node image for `target` on `provider`'s clusters, if it cannot."""
    if provider == "kubeconfig":
        return "clusters on your own hardware (kubeconfig) have no cloud node image to roll; leave kubeconfig out"
    if not image.strip():
        return f"give the {provider} node image, e.g. {NODE_IMAGE_EXAMPLES[provider]}"
    if provider in ("eks", "gke") and not image.startswith(f"{target}."):
        return (f"{image} is not a node image of Kubernetes {target} on {provider.upper()}; it starts with the version,"
                f" e.g. {NODE_IMAGE_EXAMPLES[provider]}")
    return None


NODE_IMAGE_EXAMPLES = {"eks": "1.31.2-20261101 (an AMI release version)", "gke": "1.31.5-gke.1200 (a node version)",
                       "aks": "AKSUbuntu-2204gen2containerd-202611.20.0 (a node image version)",
                       "capi": "v1.31.4 (the exact release; v1.31.4/<machine template> moves the template too)",
                       "suc": "v1.31.4+k3s1 or v1.31.4+rke2r1 (the exact release; without it, the minor's channel)"}


def plan_upgrade(*, provider: str, control_plane: str, node_pools: Sequence[NodePool], target: str,
                 node_image: str | None = None) -> UpgradeScope:
    """What an upgrade to `target` (and `node_image`, if asked) has to do, or why it cannot: the
    one judgement the CLI, the API and the workflow's preflight all make."""
    if node_image is not None and (problem := node_image_problem(provider, node_image, target)) is not None:
        raise InvalidNodeImage(problem)
    return plan_upgrade_scope(control_plane=control_plane, node_pools=node_pools, target=target, node_image=node_image)


def upgrade_path(current: str, target: str) -> list[str]:
    """The minor versions a control plane at `current` passes through to reach `target`, the target
    last ([] when it is already there): Kubernetes moves a control plane one minor at a time."""
    wanted = parse_target_version(target)
    now = minor_version(current)
    if wanted < now:
        raise IllegalVersionJump(f"{target} is older than the control plane's {current}; Kubernetes cannot be downgraded in place")
    return [format_version((now[0], minor)) for minor in range(now[1] + 1, wanted[1] + 1)]


SEVERAL_MINORS_WITH_TEMPLATES = (
    "launch_template_versions name one template version per node group, the one holding the AMI for the target; over"
    " several minors each minor needs its own: upgrade one minor at a time")


class SeveralMinorsRefused(Refusal):
    """A path of several minors with what only one minor can carry (a launch template version per node group)."""

    error_type = ErrorType.ILLEGAL_VERSION_JUMP


def plan_upgrade_path(*, provider: str, control_plane: str, node_pools: Sequence[NodePool], target: str,
                      node_image: str | None = None, launch_templates: bool = False) -> list[str]:
    """The minors an upgrade to `target` takes the cluster through, the target last ([] when only node pools
    move), or why it cannot. Each minor is an upgrade of its own that leaves every node pool on it, so only the
    first is judged against the pools as they are; a node image is the target's, rolled at the last."""
    if node_image is not None and (problem := node_image_problem(provider, node_image, target)) is not None:
        raise InvalidNodeImage(problem)
    path = upgrade_path(control_plane, target) if parse_target_version(target) >= minor_version(control_plane) else []
    plan_upgrade_scope(control_plane=control_plane, node_pools=node_pools, target=path[0] if path else target,
                       node_image=node_image if len(path) <= 1 else None)
    if launch_templates and len(path) > 1:
        raise SeveralMinorsRefused(SEVERAL_MINORS_WITH_TEMPLATES)
    return path


def skew_violations(*, control_plane: str, node_versions: dict[str, str]) -> list[str]:
    """Every node whose kubelet breaks the skew policy against this control plane."""
    cp = minor_version(control_plane)
    found = []
    for node, version in sorted(node_versions.items()):
        kubelet = minor_version(version)
        if kubelet > cp:
            found.append(f"node {node}: kubelet {version} is newer than control plane {control_plane}")
        elif cp[1] - kubelet[1] > MAX_KUBELET_SKEW:
            found.append(
                f"node {node}: kubelet {version} is more than {MAX_KUBELET_SKEW} minors behind control plane {control_plane}"
            )
    return found


def moves_control_plane(control_plane: str, target: str) -> bool:
    """Whether an upgrade to `target` would move this control plane: the target is a supported version
    above it (an illegal one is the preflight's to refuse, with its reason)."""
    try:
        return parse_target_version(target) > minor_version(control_plane)
    except InvalidVersion:
        return False


def moves_addons_after_control_plane(provider: str) -> bool:
    """Whether the operator moves the cloud's managed add-ons after a control plane upgrade: EKS leaves
    vpc-cni, coredns and kube-proxy where they were ("Amazon EKS doesn't automatically update an add-on ...
    after you update your cluster to a new Kubernetes minor version"); GKE and AKS move their own."""
    return provider == "eks"
