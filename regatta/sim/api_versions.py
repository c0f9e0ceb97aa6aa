"""The API versions a cluster's API server serves for the kinds Kubernetes moved from one version to
another, by the cluster's control plane version, and what a real API server does about them.

A version is served from the release that introduced it (its successor entry's `available_since`)
until the release that removed it (`removed_in`), as the upstream Deprecated API Migration Guide
lists them (regatta/formats/api_removals.yaml, the table Regatta ships; the served-or-not arithmetic
here is the simulator's own). Then, as a real API server:

- a request for a version the control plane does not serve is 404, as for a kind it never had, and
  discovery does not list it;
- a request for a deprecated version still served (one with a removal date) is counted in the
  `apiserver_requested_deprecated_apis` gauge (labels group, version, resource, subresource,
  removed_release) that `/metrics` shows. The API server keeps that gauge in memory, so it starts
  empty again when the API server restarts: on every control plane upgrade;
- an object is stored once, in its kind's newest version, and read through every version served:
  the body shows the version asked for, and each field manager's managedFields entry keeps the
  apiVersion it wrote with (what `kubectl` and Regatta's readiness read to find manifests still
  written against an old version).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from regatta.formats.fleet_data import api_removals
from regatta.sim.kube_api import reach
from regatta.sim.world import Cluster

router = APIRouter(prefix="/k8s/{cluster}")

# The kinds of the table that are not namespaced (the API reference's scope of each).
CLUSTER_SCOPED = frozenset({"flowschemas", "prioritylevelconfigurations", "podsecuritypolicies", "runtimeclasses"})


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.lstrip("v").split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()))


@dataclass(frozen=True)
class Version:
    group_version: str
    kind: str
    plural: str
    introduced: str | None  # None: before any release a cluster of ours runs
    removed: str | None  # None: still served by every release we know

    def served_by(self, control_plane: str) -> bool:
        at = _minor(control_plane)
        return ((self.introduced is None or _minor(self.introduced) <= at)
                and (self.removed is None or at < _minor(self.removed)))


@functools.lru_cache(maxsize=1)
def versions() -> dict[tuple[str, str], list[Version]]:
    """(group, plural) → its versions, oldest first."""
    table = api_removals()
    found: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for removal in table.removals:
        group = removal.group_version.split("/")[0]
        entry = found.setdefault((group, removal.resource), {})
        entry.setdefault(removal.group_version, {"kind": removal.kind, "introduced": None})["removed"] = removal.removed_in
        if removal.use_instead:
            successor = entry.setdefault(removal.use_instead, {"kind": removal.kind, "removed": None})
            if removal.available_since and successor.get("introduced") is None:
                successor["introduced"] = removal.available_since
    return {key: sorted((Version(gv, facts["kind"], key[1], facts.get("introduced"), facts.get("removed"))
                         for gv, facts in entry.items()), key=lambda v: _minor(v.removed or "9.99"))
            for key, entry in found.items()}


def _group(api: str) -> str:
    return api.split("/")[0] if "/" in api else ""


def version_of(api: str, plural: str) -> Version | None:
    """The moved kind's entry for this version, or None for a kind the table does not move."""
    return next((v for v in versions().get((_group(api), plural), []) if v.group_version == api), None)


def stored_as(api: str, plural: str) -> str:
    """The version an object of this kind is stored in: its newest (the one never removed)."""
    kinds = versions().get((_group(api), plural))
    if not kinds or version_of(api, plural) is None:
        return api
    return next((v.group_version for v in kinds if v.removed is None), kinds[-1].group_version)


def served(c: Cluster, api: str, plural: str) -> bool | None:
    """Whether the cluster's control plane serves this version of a moved kind; None when not one."""
    version = version_of(api, plural)
    return None if version is None else version.served_by(c.version)


def note_request(c: Cluster, api: str, plural: str, subresource: str = "") -> None:
    """Count a request for a deprecated version in the API server's gauge."""
    version = version_of(api, plural)
    if version is None or version.removed is None:
        return
    group, _, name = api.rpartition("/")
    c.requested_deprecated.add((group, name, plural, subresource, version.removed))


def shown(body: dict[str, Any], api: str) -> dict[str, Any]:
    """An object as read through `api`: the same object, its apiVersion the one asked for."""
    if body.get("apiVersion") == api:
        return body
    seen = copy.copy(body)
    seen["apiVersion"] = api
    return seen


def served_kinds(c: Cluster) -> dict[str, list[Version]]:
    """Every moved kind's versions this cluster serves, by group version (for discovery)."""
    found: dict[str, list[Version]] = {}
    for kinds in versions().values():
        for version in kinds:
            if version.served_by(c.version):
                found.setdefault(version.group_version, []).append(version)
    return found


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, cluster: str) -> str:
    """The API server's /metrics, as far as the simulator keeps any: the deprecated APIs requested."""
    _, c = reach(request, cluster, "metrics")
    lines = ["# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested,"
             " broken out by API group, version, resource, subresource, and removed_release.",
             "# TYPE apiserver_requested_deprecated_apis gauge"]
    for group, version, resource, subresource, removed in sorted(c.requested_deprecated):
        lines.append(f'apiserver_requested_deprecated_apis{{group="{group}",removed_release="{removed}",'
                     f'resource="{resource}",subresource="{subresource}",version="{version}"}} 1')
    return "\n".join(lines) + "\n"
