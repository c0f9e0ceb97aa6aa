"""The way back from an upgrade: what each cloud lets Regatta take back, in which order and until when.

EKS rolls a control plane back one minor, to the version an in-place upgrade came from, within 7 days
of that upgrade completing, once every managed node group is back on that minor; the managed add-ons
stay where the upgrade moved them (docs/cloud-conformance.md, "Version rollback"). GKE rolls a control
plane back only within the soak of a two-step "rollback-safe" upgrade, which Regatta does not run, and
AKS never rolls a control plane back (it rolls node pools back to a recently used version, which leaves
the cluster on the new minor). So an upgrade's plan says, before it starts, what could be taken back.

Pure: the plan (`way_back`) and the rollback's preflight (`plan_rollback`) both come from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from regatta.models import NodePool, UpgradeInsight, VersionChange
from regatta.models.errors import ErrorType
from regatta.rules.refusals import Refusal
from regatta.rules.versions import format_version, minor_version

# "The rollback must be initiated within 7 days of the upgrade completing." Regatta counts from when the upgrade
# began (what EKS records of it), so it never judges a rollback allowed that EKS would refuse.
EKS_ROLLBACK_WINDOW = timedelta(days=7)


class CannotRollBack(Refusal):
    """No way back for this cluster: its cloud offers none, or the one it offers is closed."""

    error_type = ErrorType.CANNOT_ROLL_BACK


class RollbackInsights(Refusal):
    """The cloud's own rollback readiness checks say the rollback would break something; nobody accepted it."""

    error_type = ErrorType.ROLLBACK_INSIGHTS_ERROR


@dataclass(frozen=True)
class RollbackScope:
    """What a rollback does: every node pool ahead of `to_version` back first, one at a time, through the cloud's
    own rolling update under every budget; then the control plane."""

    from_version: str
    to_version: str
    node_pools: tuple[str, ...]
    window_ends: datetime
    accepted_insights: tuple[UpgradeInsight, ...] = ()  # what EKS is then told to go past (force)


def way_back(provider: str) -> str:
    """What could be taken back after an upgrade on this cloud, and what not: a line of the upgrade's plan."""
    if provider == "eks":
        return (f"way back: `regatta upgrade rollback` takes the last minor back within {EKS_ROLLBACK_WINDOW.days} days"
                " of its upgrade (node groups, then the control plane; one rollback, not two in a row); the EKS managed"
                " add-ons stay where the upgrade moves them")
    if provider == "gke":
        return ("no way back: GKE rolls a control plane back only within the soak of its two-step rollback-safe upgrade,"
                " which Regatta does not run; a blue/green pool's old pool is deleted once drained")
    if provider == "aks":
        return ("no way back: AKS never rolls a control plane back (it rolls node pools back to a recently used version"
                " for 7 days, which leaves the cluster on the new minor); a blue/green pool's old pool is deleted once"
                " drained")
    return "no way back: clusters on your own hardware go back, if at all, with the tools that upgraded them"


def plan_rollback(*, provider: str, control_plane: str, node_pools: Sequence[NodePool], last_change: VersionChange | None,
                  now: datetime, insights: Sequence[UpgradeInsight] = (), accept_insights: str | None = None) -> RollbackScope:
    """The rollback of the cluster's last upgrade, or why there is none. EKS's own rollback readiness checks
    (insights of category ROLLBACK_READINESS) that say ERROR or UNKNOWN stop it
    ("Insights with ERROR or UNKNOWN status block the rollback"), unless an operator accepts them with a reason."""
    if provider != "eks":
        raise CannotRollBack(f"{provider.upper()} cluster: {way_back(provider)}")
    current = minor_version(control_plane)
    if last_change is None:
        raise CannotRollBack(f"EKS records no upgrade of this control plane: a cluster created at {control_plane} has no"
                             " earlier version to go back to")
    if last_change.kind == "rollback":
        raise CannotRollBack(f"the control plane's last change was already a rollback to {last_change.version}: EKS takes"
                             " no second rollback in a row; the way on is an upgrade")
    if minor_version(last_change.version) != current:
        raise CannotRollBack(f"the control plane runs {control_plane}, but the last upgrade EKS records moved it to"
                             f" {last_change.version}: nothing of Regatta's to take back")
    window_ends = last_change.started_at + EKS_ROLLBACK_WINDOW
    if now > window_ends:
        raise CannotRollBack(f"the upgrade to {format_version(current)} began {last_change.started_at:%Y-%m-%d %H:%M}Z;"
                             f" EKS rolls back only within {EKS_ROLLBACK_WINDOW.days} days of an upgrade, so the window"
                             f" closed {window_ends:%Y-%m-%d %H:%M}Z. The way on is an upgrade")
    to_version = format_version((current[0], current[1] - 1))
    ahead = tuple(pool.name for pool in node_pools if minor_version(pool.version) > minor_version(to_version))
    custom = [pool.name for pool in node_pools if pool.name in ahead and (pool.image_type or "").upper() == "CUSTOM"]
    if custom:
        raise CannotRollBack(f"node groups {', '.join(custom)} run an AMI of their own launch template, which EKS moves"
                             " only to a new version of that template: roll them back to a template version holding a"
                             f" {to_version} AMI yourself, then start the rollback again")
    # Every one that says ERROR or UNKNOWN: EKS says nothing of a version in them, and blocks on them all.
    stopping = tuple(insight for insight in insights if insight.status in ("ERROR", "UNKNOWN"))
    if stopping and not (accept_insights or "").strip():
        raise RollbackInsights(f"EKS rollback readiness insights report {len(stopping)} problem"
                               f"{'s' if len(stopping) > 1 else ''} for {to_version}: "
                               + "; ".join(insight.line() for insight in stopping)
                               + ". Fix what they name, or start again with accept_insights and the reason it is safe")
    return RollbackScope(from_version=format_version(current), to_version=to_version, node_pools=ahead,
                         window_ends=window_ends, accepted_insights=stopping)
