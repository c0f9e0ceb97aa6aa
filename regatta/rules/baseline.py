"""The baseline every new cluster is born with, as a bundle like any other: the platform
namespaces, the SRE group's cluster-admin binding, and default-deny ingress in each platform
namespace. ProvisionCluster gives it with the same code a PolicyRollout uses, so a new cluster
shows in `regatta policy status` at once, and drift sweeps watch it from then on.

Pure: the bootstrap activity and the unit tests call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from regatta.models.policy import BundleSpec
from regatta.rules import bundles

BASELINE = "baseline"


def baseline_bundle(*, namespaces: Sequence[str], admin_group: str) -> BundleSpec:
    manifests: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in namespaces]
    manifests.append({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "regatta-platform-admins"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "Group", "name": admin_group, "apiGroup": "rbac.authorization.k8s.io"}],
    })
    manifests += [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"name": "default-deny-ingress", "namespace": ns},
                   "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}} for ns in namespaces]
    spec = BundleSpec(name=BASELINE, description="what every cluster Regatta provisions starts with",
                      manifests=manifests, requested_by="regatta", stages=[{"name": "all"}])
    return spec.model_copy(update={"revision": bundles.revision(spec)})
