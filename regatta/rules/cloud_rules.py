"""The clouds' own rules for an upgrade, checked before anything changes, so that what a cloud would
refuse half way through is refused at the start instead, in words that say what to change
(docs/cloud-conformance.md lists each with its source):

- EKS upgrades a control plane only when every managed node group runs its version (UpdateClusterVersion);
  a node group on an AMI of its own moves only to a new version of its launch template; an ERROR upgrade
  insight for the target stops the upgrade unless an operator accepts it, with a reason.
- GKE keeps node pools within two minor versions of the control plane; its surge upgrade honours a
  PodDisruptionBudget for at most an hour per node and then goes on without it, so a surge does not start
  while a budget allows no disruption.
- AKS keeps node pools within three minor versions of the control plane (two before 1.28) and refuses a
  pool upgrade while any budget has maxUnavailable 0.

Pure: called by ClusterUpgrade's preflight (and through it by every wave), the CLI and the API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from regatta.models import NodePool, PdbState, UpgradeInsight
from regatta.models.errors import ErrorType
from regatta.rules import own_hardware
from regatta.rules.refusals import Refusal
from regatta.rules.versions import format_version, minor_version, parse_target_version


class CloudRuleViolation(Refusal):
    error_type = ErrorType.CLOUD_RULE_VIOLATION


class InsightsError(Refusal):
    error_type = ErrorType.UPGRADE_INSIGHTS_ERROR


def pool_skew_allowed(provider: str, control_plane: tuple[int, int], *, auto_upgrade: bool | None = None) -> int:
    """How many minor versions a node pool may trail the control plane on `provider`."""
    if provider == "gke":
        # "up to two minor versions older than the control plane"; one, where the pool's auto-upgrade is on
        return 1 if auto_upgrade else 2
    if provider == "aks":
        return 3 if control_plane[1] >= 28 else 2  # "Starting with Kubernetes 1.28, ... up to three minor versions ahead"
    return 3  # Kubernetes' own skew policy for kubelets (1.28 and later)


def cloud_refusals(*, provider: str, control_plane: str, node_pools: Sequence[NodePool], target: str, moves_control_plane: bool,
                   upgrading: Sequence[str], strategy: str, launch_template_versions: Mapping[str, str],
                   budgets: Sequence[PdbState] = (), node_image: str | None = None) -> list[str]:
    """Everything the cluster's cloud would refuse about this upgrade, each saying what to do instead."""
    found: list[str] = []
    if provider in ("capi", "suc"):
        return own_hardware_refusals(provider=provider, target=target, strategy=strategy, node_image=node_image,
                                     launch_template_versions=launch_template_versions)
    current = minor_version(control_plane)
    wanted = parse_target_version(target)
    pools = {pool.name: pool for pool in node_pools}
    if provider == "eks" and moves_control_plane:
        behind = [pool for pool in node_pools if minor_version(pool.version) != current]
        if behind:
            names = ", ".join(f"{pool.name} ({pool.version})" for pool in behind)
            found.append(f"EKS upgrades a control plane only when every managed node group runs its version"
                         f" ({format_version(current)}): node groups {names} do not. Upgrade them to {format_version(current)}"
                         f" first (target {format_version(current)}), then to {target}")
    if provider == "eks":
        for name in upgrading:
            pool = pools[name]
            if pool.image_type == "CUSTOM" and name not in launch_template_versions:
                template = pool.launch_template
                named = f" ({template.id or template.name}, version {template.version})" if template else ""
                found.append(f"node group {name} runs an AMI of its own launch template{named}: EKS moves it only to a new"
                             f" version of that template. Make one with the AMI built for {target} and start again with"
                             f" launch_template_versions: {{{name}: <that version>}}")
        for name in launch_template_versions:
            if name in pools and pools[name].launch_template is None:
                found.append(f"launch_template_versions names node group {name}, which was not made from a launch template")
    for name in launch_template_versions:
        if provider != "eks":
            found.append(f"launch_template_versions is for EKS node groups; {provider.upper()} has no launch templates")
            break
        if name not in pools:
            found.append(f"launch_template_versions names node group {name}, which the cluster does not have")
    if provider in ("gke", "aks") and moves_control_plane:
        by_window: dict[int, list[NodePool]] = {}
        for pool in node_pools:
            allowed = pool_skew_allowed(provider, wanted, auto_upgrade=pool.auto_upgrade)
            if wanted[1] - minor_version(pool.version)[1] > allowed:
                by_window.setdefault(allowed, []).append(pool)
        for allowed, lagging in sorted(by_window.items()):
            names = ", ".join(f"{pool.name} ({pool.version})" for pool in lagging)
            floor = format_version((wanted[0], wanted[1] - allowed))
            window = f"{allowed} minor version{'s' if allowed > 1 else ''}"
            because = " (their node auto-upgrade is on)" if provider == "gke" and allowed == 1 else ""
            found.append(f"{provider.upper()} keeps node pools within {window} of the control plane{because}: {names}"
                         f" would fall behind a {target} control plane. Upgrade them to at least {floor} first")
    if provider == "gke" and strategy == "surge" and upgrading:
        blocking = [b for b in budgets if b.expected_pods > 0 and b.disruptions_allowed < 1]
        if blocking:
            names = ", ".join(f"{b.namespace}/{b.name}" for b in blocking)
            found.append(f"GKE's surge upgrade honours a PodDisruptionBudget for at most an hour per node and then deletes the"
                         f" pods; budgets {names} allow no disruption now. Restore their workloads' health, or start with"
                         " strategy blue_green, in which Regatta drains under every budget for as long as it takes")
    if provider == "aks" and upgrading:
        zero = [b for b in budgets if str(b.max_unavailable) in ("0", "0%")]
        if zero:
            found.append("AKS refuses to upgrade a node pool while a PodDisruptionBudget has maxUnavailable 0 (UnsatisfiablePDB):"
                         f" {', '.join(f'{b.namespace}/{b.name}' for b in zero)}. Relax it, then start again")
    return found


def blocking_insights(insights: Sequence[UpgradeInsight], target: str) -> list[UpgradeInsight]:
    """The cloud's upgrade insights that stop an upgrade to `target`: ERROR for that version."""
    wanted = parse_target_version(target)
    blocking = []
    for insight in insights:
        try:
            about = minor_version(insight.kubernetes_version)
        except Refusal:
            continue
        if insight.status == "ERROR" and about == wanted:
            blocking.append(insight)
    return blocking


def refuse_blocking_insights(insights: Sequence[UpgradeInsight], target: str, *, accepted: str | None) -> list[UpgradeInsight]:
    """Refuse an upgrade the cloud's own readiness checks say will break, unless an operator accepted them with a
    reason; returns what was accepted (to go to the audit trail, and to have the cloud told to go ahead)."""
    blocking = blocking_insights(insights, target)
    if blocking and not accepted:
        raise InsightsError(
            f"EKS upgrade insights report {len(blocking)} problem{'s' if len(blocking) > 1 else ''} for {target}: "
            + "; ".join(insight.line() for insight in blocking)
            + ". Fix what they name, or start again with accept_insights and the reason it is safe")
    return blocking


def own_hardware_refusals(*, provider: str, target: str, strategy: str, node_image: str | None,
                          launch_template_versions: Mapping[str, str]) -> list[str]:
    """What Cluster API or the system-upgrade-controller could not do for this upgrade: Cluster API needs the exact
    release, and neither replaces a pool's machines by a new pool here (the controllers roll the machines)."""
    found: list[str] = []
    try:
        if provider == "capi":
            own_hardware.capi_target(target, node_image)
        elif node_image is not None:
            own_hardware.suc_release(target, node_image, "rke2" if "+rke2" in node_image else "k3s")
    except own_hardware.ReleaseRefused as refused:
        found.append(str(refused))
    if strategy == "blue_green":
        found.append(f"{'Cluster API' if provider == 'capi' else 'the system-upgrade-controller'} upgrades a pool's machines"
                     f" itself ({'MachineDeployment rollout' if provider == 'capi' else 'in place, node by node'}) under"
                     " every budget; Regatta makes no replacement pool there: use strategy surge")
    if launch_template_versions:
        found.append(f"launch_template_versions is for EKS node groups; {provider} clusters have none")
    return found
