"""The simulated API server's authorization (regatta/sim/kube_rbac.py) against what Kubernetes' RequestInfo
resolver, RBAC authorizer and bootstrap roles do (sources in docs/cloud-conformance.md): expectations written
out from the reference, not read from the module."""

from __future__ import annotations

from regatta.sim.kube_rbac import RequestAttributes, allows, attributes, forbidden_message, service_account_user

RBAC = "rbac.authorization.k8s.io/v1"
ALICE = service_account_user("team-a", "alice")


def test_request_attributes_are_read_as_the_api_server_reads_them():
    assert attributes("GET", "/api/v1/namespaces/shop/pods", {}) == RequestAttributes(
        verb="list", path="/api/v1/namespaces/shop/pods", resource_request=True, resource="pods", namespace="shop")
    assert attributes("GET", "/api/v1/pods", {"watch": "true"}).verb == "watch"
    assert attributes("GET", "/api/v1/pods", {"watch": "0"}).verb == "list"
    assert attributes("GET", "/api/v1/namespaces/shop/pods/p1", {}).verb == "get"
    eviction = attributes("POST", "/api/v1/namespaces/shop/pods/p1/eviction", {})
    assert (eviction.verb, eviction.resource, eviction.subresource, eviction.name) == ("create", "pods", "eviction", "p1")
    assert attributes("DELETE", "/apis/apps/v1/namespaces/shop/deployments", {}).verb == "deletecollection"
    deployment = attributes("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web", {})
    assert (deployment.verb, deployment.api_group, deployment.name) == ("patch", "apps", "web")
    namespace = attributes("GET", "/api/v1/namespaces/shop", {})
    assert (namespace.resource, namespace.name, namespace.namespace) == ("namespaces", "shop", "shop")
    assert attributes("GET", "/api/v1/namespaces/shop/status", {}).subresource == "status"
    one = attributes("GET", "/api/v1/namespaces/shop/pods", {"fieldSelector": "metadata.name=p1"})
    assert (one.verb, one.name) == ("list", "p1")
    assert not attributes("GET", "/apis/apps", {}).resource_request and not attributes("GET", "/version", {}).resource_request


def test_a_service_account_is_who_the_api_server_says():
    assert ALICE.name == "system:serviceaccount:team-a:alice"
    assert ALICE.groups == ("system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated")


def binding(kind: str, role: str, namespace: str = "", subject: dict | None = None) -> tuple[tuple, dict]:
    plural = "clusterrolebindings" if kind == "ClusterRoleBinding" else "rolebindings"
    return (RBAC, plural, namespace, f"b-{role}"), {
        "roleRef": {"kind": "ClusterRole", "name": role},
        "subjects": [subject or {"kind": "ServiceAccount", "name": "alice", "namespace": "team-a"}]}


def can(objects: dict, method: str, path: str) -> bool:
    return allows(objects, ALICE, attributes(method, path, {}))


def test_nothing_is_allowed_without_a_binding_but_discovery():
    assert not can({}, "GET", "/api/v1/namespaces/shop/pods")
    for path in ("/api", "/apis", "/api/v1", "/apis/apps/v1", "/version", "/openapi/v3"):
        assert can({}, "GET", path), path
    assert not can({}, "POST", "/api")


def test_view_everywhere_reads_namespaced_kinds_but_not_secrets_nodes_or_writes():
    objects = dict([binding("ClusterRoleBinding", "view")])
    assert can(objects, "GET", "/api/v1/namespaces/shop/pods") and can(objects, "GET", "/api/v1/pods")
    assert can(objects, "GET", "/apis/policy/v1/namespaces/shop/poddisruptionbudgets")
    assert can(objects, "GET", "/api/v1/namespaces")
    assert not can(objects, "GET", "/api/v1/namespaces/shop/secrets")
    assert not can(objects, "GET", "/api/v1/nodes")
    assert not can(objects, "DELETE", "/api/v1/namespaces/shop/pods/p1")
    assert not can(objects, "POST", "/api/v1/namespaces/shop/pods/p1/eviction")


def test_edit_in_one_namespace_by_a_role_binding_writes_there_only():
    objects = dict([binding("RoleBinding", "edit", "shop")])
    assert can(objects, "POST", "/api/v1/namespaces/shop/configmaps")
    assert can(objects, "POST", "/api/v1/namespaces/shop/pods/p1/eviction")
    assert can(objects, "GET", "/api/v1/namespaces/shop/secrets")
    assert not can(objects, "POST", "/api/v1/namespaces/other/configmaps")
    assert not can(objects, "GET", "/api/v1/pods")  # all namespaces is the cluster scope
    assert not can(objects, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings")  # edit: no RBAC


def test_admin_adds_roles_and_bindings_and_cluster_admin_everything():
    admin = dict([binding("RoleBinding", "admin", "shop")])
    assert can(admin, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings")
    assert not can(admin, "GET", "/api/v1/nodes")
    root = dict([binding("ClusterRoleBinding", "cluster-admin")])
    assert can(root, "PATCH", "/api/v1/nodes/n1") and can(root, "GET", "/metrics")


def test_a_binding_to_another_account_or_a_group_it_is_not_in_gives_nothing():
    other = dict([binding("ClusterRoleBinding", "view", subject={"kind": "ServiceAccount", "name": "bob",
                                                                 "namespace": "team-a"})])
    assert not can(other, "GET", "/api/v1/pods")
    group = dict([binding("ClusterRoleBinding", "view", subject={"kind": "Group", "name": "system:serviceaccounts:team-a"})])
    assert can(group, "GET", "/api/v1/pods")


def test_a_cluster_role_the_cluster_holds_is_used_instead_of_the_default():
    objects = dict([binding("ClusterRoleBinding", "view"),
                    ((RBAC, "clusterroles", "", "view"), {"rules": [{"apiGroups": [""], "resources": ["nodes"],
                                                                      "verbs": ["list"]}]})])
    assert can(objects, "GET", "/api/v1/nodes") and not can(objects, "GET", "/api/v1/pods")


def test_a_refusal_is_worded_as_the_api_server_words_it():
    user = 'User "system:serviceaccount:team-a:alice"'
    assert forbidden_message(ALICE, attributes("GET", "/api/v1/nodes", {})) == (
        f'nodes is forbidden: {user} cannot list resource "nodes" in API group "" at the cluster scope')
    assert forbidden_message(ALICE, attributes("DELETE", "/api/v1/namespaces/shop/pods/p1", {})) == (
        f'pods "p1" is forbidden: {user} cannot delete resource "pods" in API group "" in the namespace "shop"')
    assert forbidden_message(ALICE, attributes("POST", "/api/v1/namespaces/shop/pods/p1/eviction", {})) == (
        f'pods "p1" is forbidden: {user} cannot create resource "pods/eviction" in API group "" in the namespace "shop"')
    assert forbidden_message(ALICE, attributes("GET", "/apis/apps/v1/deployments", {})) == (
        f'deployments.apps is forbidden: {user} cannot list resource "deployments" in API group "apps" at the cluster scope')
    assert forbidden_message(ALICE, attributes("GET", "/metrics", {})) == f'forbidden: {user} cannot get path "/metrics"'
