"""Policy engines a simulated cluster can be born with (`policy_engines: [kyverno, gatekeeper]` in
the fleet file), as their Helm charts would leave a cluster: the engine's CustomResourceDefinitions
(Kyverno's policies and the wgpolicyk8s.io reports; Gatekeeper's ConstraintTemplates) and its
admission controller's Deployment. The simulator evaluates no policy: reports and constraint
status are written by whoever plays the engine (the tests), as the engine would write them.
"""

from __future__ import annotations

import time
from typing import Any

ENGINES = ("kyverno", "gatekeeper")
# engine → (namespace, Deployment) and the CRDs (group, version, plural, kind, scope)
CONTROLLERS = {"kyverno": ("kyverno", "kyverno-admission-controller"),
               "gatekeeper": ("gatekeeper-system", "gatekeeper-controller-manager")}
CRDS = {
    "kyverno": [("kyverno.io", "v1", "clusterpolicies", "ClusterPolicy", "Cluster"),
                ("kyverno.io", "v1", "policies", "Policy", "Namespaced"),
                ("wgpolicyk8s.io", "v1alpha2", "policyreports", "PolicyReport", "Namespaced"),
                ("wgpolicyk8s.io", "v1alpha2", "clusterpolicyreports", "ClusterPolicyReport", "Cluster")],
    "gatekeeper": [("templates.gatekeeper.sh", "v1", "constrainttemplates", "ConstraintTemplate", "Cluster")],
}


def crd(group: str, version: str, plural: str, kind: str, scope: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    names = {"plural": plural, "singular": kind.lower(), "kind": kind}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": {"app.kubernetes.io/part-of": group.split(".")[0]}},
        "spec": {"group": group, "scope": scope, "names": names,
                 "versions": [{"name": version, "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
        "status": {"acceptedNames": names, "storedVersions": [version],
                   "conditions": [{"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                                   "lastTransitionTime": now}]},
    }
