"""Node pool names as each cloud takes them, and the name of a blue/green replacement.

- EKS: up to 63 letters, digits, hyphens and underscores, starting with a letter or digit (EKS user
  guide, create-managed-node-group; the API model itself sets no limit).
- GKE: `(?:[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?)`: up to 40 lowercase letters, digits and hyphens,
  starting with a letter and ending with a letter or digit (GKE's own refusal text).
- AKS: `^[a-z][a-z0-9]{0,11}$`: up to 12 lowercase letters and digits, a letter first, no hyphen;
  six characters for a Windows pool (the agentPoolName parameter of the AKS REST specification,
  and the AKS docs).

A replacement takes the pool's own name with the target's version after it (`general` →
`general-v1-31` on EKS and GKE, `generalv31` on AKS), and a short digest of the node image when the
version stays (`general-v1-31-i4f2a9c`, `generalv31i4f2`). A name too long for its cloud keeps the
start of the pool's name and a digest of the whole, so two long names never meet.

Pure: called by ClusterUpgrade (blue/green), the provisioning rules and the unit tests.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from regatta.models import NodePool
from regatta.models.errors import ErrorType
from regatta.rules.refusals import Refusal
from regatta.rules.versions import minor_version, parse_target_version


class UnnameablePool(Refusal):
    error_type = ErrorType.CLOUD_RULE_VIOLATION


@dataclass(frozen=True)
class NameRule:
    pattern: re.Pattern[str]
    max_length: int
    words: str  # what the cloud allows, said to the operator
    hyphens: bool


RULES = {
    "eks": NameRule(re.compile(r"^[0-9A-Za-z][A-Za-z0-9\-_]*$"), 63, "up to 63 letters, digits, '-' and '_', starting with"
                    " a letter or digit", hyphens=True),
    "gke": NameRule(re.compile(r"^[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?$"), 40, "up to 40 lowercase letters, digits and '-',"
                    " starting with a letter and ending with a letter or digit", hyphens=True),
    "aks": NameRule(re.compile(r"^[a-z][a-z0-9]{0,11}$"), 12, "up to 12 lowercase letters and digits (6 for a Windows"
                    " pool), starting with a letter", hyphens=False),
}
AKS_WINDOWS_MAX = 6


def name_problem(provider: str, name: str, *, windows: bool = False) -> str | None:
    """Why `provider` would refuse a node pool called `name`, if it would."""
    rule = RULES.get(provider)
    if rule is None:
        return None
    limit = AKS_WINDOWS_MAX if provider == "aks" and windows else rule.max_length
    if not rule.pattern.match(name) or len(name) > limit:
        return f"{provider.upper()} node pool names are {rule.words}; {name!r} is not"
    return None


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def replacement_pool_names(node_pools: Sequence[NodePool], replaced: Iterable[str], target: str,
                           node_image: str | None, *, provider: str) -> dict[str, str]:
    """Each replaced pool's blue/green replacement, as its cloud's naming rules allow (a Windows pool's, shorter)."""
    pools = {pool.name: pool for pool in node_pools}
    return {name: replacement_pool_name(name, target, node_image, provider=provider, pool_version=pools[name].version,
                                        windows=(pools[name].image_type or "").upper().startswith("WINDOWS"))
            for name in replaced}


def replacement_pool_name(pool: str, target: str, node_image: str | None = None, *, provider: str = "eks",
                          pool_version: str | None = None, windows: bool = False) -> str:
    """The blue/green pool that replaces `pool` at `target` (and `node_image`, when one is asked for)."""
    major, minor = parse_target_version(target)
    rule = RULES.get(provider, RULES["eks"])
    limit = AKS_WINDOWS_MAX if provider == "aks" and windows else rule.max_length
    if rule.hyphens:
        base = re.sub(r"-v\d+-\d+(-i[0-9a-f]{6})?$", "", pool)
        suffix = f"-v{major}-{minor}" + (f"-i{_digest(node_image, 6)}" if node_image is not None else "")
    else:
        # Only the suffix of the version the pool runs is Regatta's own: `dev12` at 1.30 keeps its name.
        if pool_version is not None:
            base = re.sub(rf"v{minor_version(pool_version)[1]}(i[0-9a-f]{{3}})?$", "", pool) or pool
        else:
            base = pool
        suffix = f"v{minor}" + (f"i{_digest(node_image, 3)}" if node_image is not None else "")
    if len(base) + len(suffix) > limit:
        room = limit - len(suffix)
        keep = room - 4 if room >= 6 else room  # the start of the name and a digest of the whole, where there is room
        base = base[:keep] + (_digest(pool, 4) if room >= 6 else "")
        if rule.hyphens:
            base = base.rstrip("-_")
    name = base + suffix
    if not base or name_problem(provider, name, windows=windows) is not None or name == pool:
        raise UnnameablePool(f"node pool {pool} cannot be replaced blue/green on {provider.upper()}: its replacement would"
                             f" need a name of {rule.words}, and none fits; upgrade it by surge instead")
    return name
