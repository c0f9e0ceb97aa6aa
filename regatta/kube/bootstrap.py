"""What every new cluster gets before it is handed over: the platform namespaces, RBAC for the
SRE group, and the baseline policy bundle (default-deny ingress per namespace, a record of the
bundle version). Every create tolerates AlreadyExists, so a retried bootstrap converges."""

from __future__ import annotations

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

BASELINE_BUNDLE = "baseline-2026.11"


def _tolerate_existing(create, *args) -> bool:
    try:
        create(*args)
        return True
    except ApiException as error:
        if error.status != 409:
            raise
        return False


def bootstrap(api: k8s.ApiClient, *, namespaces: list[str], admin_group: str) -> list[str]:
    """Apply the bootstrap; return what it created (what already existed is left alone)."""
    core, rbac, networking = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api), k8s.NetworkingV1Api(api)
    created = []
    for namespace in namespaces:
        if _tolerate_existing(core.create_namespace, k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))):
            created.append(f"namespace/{namespace}")
    binding = k8s.V1ClusterRoleBinding(
        metadata=k8s.V1ObjectMeta(name="regatta-platform-admins"),
        role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"),
        subjects=[k8s.RbacV1Subject(kind="Group", name=admin_group, api_group="rbac.authorization.k8s.io")],
    )
    if _tolerate_existing(rbac.create_cluster_role_binding, binding):
        created.append("clusterrolebinding/regatta-platform-admins")
    for namespace in namespaces:
        policy = k8s.V1NetworkPolicy(
            metadata=k8s.V1ObjectMeta(name="default-deny-ingress", labels={"regatta.dev/bundle": BASELINE_BUNDLE}),
            spec=k8s.V1NetworkPolicySpec(pod_selector=k8s.V1LabelSelector(), policy_types=["Ingress"]),
        )
        if _tolerate_existing(networking.create_namespaced_network_policy, namespace, policy):
            created.append(f"networkpolicy/{namespace}/default-deny-ingress")
    record = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="regatta-baseline"), data={"bundle": BASELINE_BUNDLE})
    if _tolerate_existing(core.create_namespaced_config_map, "kube-system", record):
        created.append("configmap/kube-system/regatta-baseline")
    return created
