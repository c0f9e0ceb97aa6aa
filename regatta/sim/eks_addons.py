"""The simulated EKS add-on catalogue (DescribeAddonVersions): the versions of vpc-cni, coredns and
kube-proxy, which cluster minors each is compatible with, and which one is the default for a minor
(`compatibilities[].defaultVersion`, the version an add-on is created with; EKS User Guide,
updating-an-add-on). EKS never moves an add-on by itself after a control plane upgrade: the
cluster's add-ons stay where they were until an UpdateAddon (docs/cloud-conformance.md).

The versions are shaped like EKS's own (`v1.31.3-eksbuild.2`) and dated 2026-12: a catalogue of the
simulator's, not a copy of AWS's.
"""

from __future__ import annotations

MINORS = range(26, 37)  # 1.26 … 1.36

# coredns follows the upstream release each Kubernetes minor was tested with.
_COREDNS = {26: "v1.9.3", 27: "v1.10.1", 28: "v1.10.1", 29: "v1.11.1", 30: "v1.11.3", 31: "v1.11.3", 32: "v1.11.4",
            33: "v1.12.1", 34: "v1.12.2", 35: "v1.12.4", 36: "v1.13.1"}
# vpc-cni releases and the oldest and newest minors each supports.
_VPC_CNI = [("v1.18.6-eksbuild.1", 26, 31), ("v1.19.2-eksbuild.1", 28, 33), ("v1.20.4-eksbuild.2", 30, 36)]


def catalogue() -> dict[str, list[dict]]:
    """add-on → its versions, each with the minors it is compatible with and the one it is the default for."""
    found: dict[str, list[dict]] = {"kube-proxy": [], "coredns": [], "vpc-cni": []}
    for minor in MINORS:
        # kube-proxy matches its cluster's minor exactly; two builds per minor, the newer the default.
        for build, default in (("v1.{m}.2-eksbuild.1", False), ("v1.{m}.3-eksbuild.2", True)):
            found["kube-proxy"].append({"addonVersion": build.format(m=minor),
                                        "compatibilities": [{"clusterVersion": f"1.{minor}", "defaultVersion": default}]})
    # A coredns release runs on the minors it is the default for and on the minor on either side of them.
    for release in sorted(set(_COREDNS.values()), key=_release):
        minors = sorted({m + step for m, r in _COREDNS.items() if r == release for step in (-1, 0, 1)} & set(MINORS))
        found["coredns"].append({"addonVersion": f"{release}-eksbuild.1", "compatibilities": [
            {"clusterVersion": f"1.{m}", "defaultVersion": _COREDNS[m] == release} for m in minors]})
    for version, low, high in _VPC_CNI:
        found["vpc-cni"].append({"addonVersion": version, "compatibilities": [
            {"clusterVersion": f"1.{m}", "defaultVersion": _newest_vpc_cni(m) == version} for m in range(low, high + 1)]})
    return found


def _release(version: str) -> int:
    major, minor, patch = (int(part) for part in version.lstrip("v").split("-")[0].split("."))
    return major * 10000 + minor * 100 + patch


def _newest_vpc_cni(minor: int) -> str:
    return [version for version, low, high in _VPC_CNI if low <= minor <= high][-1]


def versions_for(addon: str, cluster_version: str) -> list[dict]:
    """The versions of `addon` compatible with a cluster at `cluster_version` (1.31), as DescribeAddonVersions lists them."""
    return [version for version in catalogue().get(addon, [])
            if any(c["clusterVersion"] == cluster_version for c in version["compatibilities"])]


def default_version(addon: str, cluster_version: str) -> str | None:
    for version in versions_for(addon, cluster_version):
        if any(c["clusterVersion"] == cluster_version and c["defaultVersion"] for c in version["compatibilities"]):
            return str(version["addonVersion"])
    return None


def installed_by_default(cluster_version: str) -> dict[str, str]:
    """What a new cluster of `cluster_version` runs: each add-on at its default version for that minor."""
    return {addon: version for addon in ("vpc-cni", "coredns", "kube-proxy")
            if (version := default_version(addon, cluster_version)) is not None}
