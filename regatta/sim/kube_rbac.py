"""Who may do what on a simulated cluster: the API server's authorization of a service account's request by
RBAC, as Kubernetes does it (sources in docs/cloud-conformance.md, "Service accounts and RBAC").

- A request's attributes are read off its method and path as the API server's RequestInfo resolver reads them:
  a GET of a collection is `list` (`watch` with ?watch=true), of one object `get`; POST `create`, PUT `update`,
  PATCH `patch`, DELETE `delete` (of a collection, `deletecollection`); `/api/v1/namespaces/NS/pods/NAME/eviction`
  is resource `pods`, subresource `eviction`, in namespace NS.
- A service account's token authenticates as `system:serviceaccount:NS:NAME`, in the groups
  `system:serviceaccounts`, `system:serviceaccounts:NS` and `system:authenticated`.
- ClusterRoleBindings grant their role everywhere; RoleBindings in their namespace only (to a Role there, or a
  ClusterRole's rules in that namespace). Nothing is allowed unless a rule allows it; rules only add.
- The default user-facing ClusterRoles `view`, `edit`, `admin` and `cluster-admin` are served from the
  bootstrap policy (DEFAULT_CLUSTER_ROLES) when the cluster holds no ClusterRole of that name; discovery
  (`/api`, `/apis`, `/version`, `/openapi`, health) is open to every authenticated user (`system:discovery`,
  `system:public-info-viewer`).

Regatta's own lasting token, and tokens a cloud hands out for its identity, stand for a cluster admin and are
not checked here (the simulator's stand-in for the cloud's IAM mapping).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

RBAC = "rbac.authorization.k8s.io/v1"
DISCOVERY = ("/api", "/apis", "/version", "/openapi", "/healthz", "/livez", "/readyz")
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]


@dataclass(frozen=True)
class RequestAttributes:
    verb: str
    path: str
    resource_request: bool = False
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]


def service_account_user(namespace: str, name: str) -> User:
    return User(f"system:serviceaccount:{namespace}:{name}",
                ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"))


def attributes(method: str, path: str, query: dict[str, str]) -> RequestAttributes:
    """The RBAC attributes of a request to `path` (the API server's own path, `/api/v1/...`)."""
    method = method.upper()
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        rest = []
        group = ""
    if not rest:
        return RequestAttributes(verb=method.lower(), path=path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) == 3 and rest[2] in ("status", "finalize"):
        return RequestAttributes(verb={"GET": "get", "PUT": "update", "PATCH": "patch"}.get(method, method.lower()),
                                 path=path, resource_request=True, resource="namespaces", subresource=rest[2],
                                 namespace=rest[1], name=rest[1])
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) == 2:
        namespace = rest[1]  # a namespace object is in its own namespace, as RequestInfo has it
    resource = rest[0]
    listing = len(rest) == 1
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    selected = query.get("fieldSelector", "")
    if listing and selected.startswith("metadata.name=") and "," not in selected:
        name = selected.removeprefix("metadata.name=")  # a list or watch of one named object is judged for that name
    watching = "watch" in query and query["watch"].lower() not in ("false", "0")
    verb = {"GET": ("watch" if watching else ("list" if listing else "get")), "HEAD": "get", "POST": "create",
            "PUT": "update", "PATCH": "patch", "DELETE": "deletecollection" if listing else "delete"}.get(method, method.lower())
    return RequestAttributes(verb=verb, path=path, resource_request=True, api_group=group, resource=resource,
                             subresource=subresource, namespace=namespace, name=name)


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


# The bootstrap policy's aggregated rules of the user-facing roles, each including the one before
# (kubernetes/kubernetes plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go).
_VIEW = [
    _rule([""], ["pods", "pods/log", "pods/status", "configmaps", "endpoints", "persistentvolumeclaims",
                 "persistentvolumeclaims/status", "replicationcontrollers", "replicationcontrollers/scale",
                 "replicationcontrollers/status", "serviceaccounts", "services", "services/status", "bindings", "events",
                 "limitranges", "resourcequotas", "resourcequotas/status", "namespaces/status"], READ),
    _rule([""], ["namespaces"], READ),
    _rule(["discovery.k8s.io"], ["endpointslices"], READ),
    _rule(["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                     "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
                     "statefulsets/scale", "statefulsets/status"], READ),
    _rule(["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"], READ),
    _rule(["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
    _rule(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
    _rule(["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"], READ),
]
_EDIT = [
    *_VIEW,
    _rule([""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"], READ),
    _rule([""], ["serviceaccounts"], ["impersonate"]),
    _rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], WRITE),
    _rule([""], ["pods/eviction"], ["create"]),
    _rule([""], ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers", "replicationcontrollers/scale",
                 "secrets", "serviceaccounts", "services", "services/proxy"], WRITE),
    _rule([""], ["serviceaccounts/token"], ["create"]),
    _rule(["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
                     "replicasets/scale", "statefulsets", "statefulsets/scale"], WRITE),
    _rule(["autoscaling"], ["horizontalpodautoscalers"], WRITE),
    _rule(["batch"], ["cronjobs", "jobs"], WRITE),
    _rule(["policy"], ["poddisruptionbudgets"], WRITE),
    _rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], WRITE),
    _rule(["coordination.k8s.io"], ["leases"], [*READ, *WRITE]),
]
_ADMIN = [
    *_EDIT,
    _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
    _rule(["rbac.authorization.k8s.io"], ["rolebindings", "roles"], [*READ, *WRITE]),
]
DEFAULT_CLUSTER_ROLES: dict[str, list[dict[str, Any]]] = {
    "view": _VIEW, "edit": _EDIT, "admin": _ADMIN,
    "cluster-admin": [_rule(["*"], ["*"], ["*"]), {"nonResourceURLs": ["*"], "verbs": ["*"]}],
}


def _subject_is(subject: dict[str, Any], user: User, binding_namespace: str) -> bool:
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"system:serviceaccount:{namespace}:{subject.get('name')}"
    if kind == "User":
        return subject.get("name") == user.name
    if kind == "Group":
        return subject.get("name") in user.groups
    return False


def _covers(rule: dict[str, Any], a: RequestAttributes) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and a.verb not in verbs:
        return False
    if not a.resource_request:
        return any(url == "*" or url == a.path or (url.endswith("*") and a.path.startswith(url[:-1]))
                   for url in rule.get("nonResourceURLs") or [])
    groups = rule.get("apiGroups") or []
    if "*" not in groups and a.api_group not in groups:
        return False
    wanted = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    resources = rule.get("resources") or []
    if not any(r == "*" or r == wanted or (a.subresource and r == f"{a.resource}/*") or
               (r.startswith("*/") and r[2:] == a.subresource) for r in resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or (bool(a.name) and a.name in names)


def _role_rules(objects: dict[tuple[str, str, str, str], dict], ref: dict[str, Any], namespace: str) -> list[dict]:
    kind, name = ref.get("kind"), str(ref.get("name") or "")
    if kind == "ClusterRole":
        found = objects.get((RBAC, "clusterroles", "", name))
        return list((found or {}).get("rules") or []) if found is not None else DEFAULT_CLUSTER_ROLES.get(name, [])
    if kind == "Role" and namespace:
        return list((objects.get((RBAC, "roles", namespace, name)) or {}).get("rules") or [])
    return []


def _bindings(objects: dict[tuple[str, str, str, str], dict], plural: str) -> Iterable[tuple[str, dict]]:
    return ((key[2], body) for key, body in objects.items() if key[0] == RBAC and key[1] == plural)


def allows(objects: dict[tuple[str, str, str, str], dict], user: User, a: RequestAttributes) -> bool:
    """Whether some binding of the cluster gives `user` a rule that covers the request."""
    if not a.resource_request and a.verb in ("get", "head") and (
            a.path in DISCOVERY or a.path.startswith(tuple(f"{p}/" for p in DISCOVERY))):
        return True  # system:discovery and system:public-info-viewer, bound to system:authenticated
    for namespace, binding in _bindings(objects, "clusterrolebindings"):
        if any(_subject_is(s, user, namespace) for s in binding.get("subjects") or []):
            if any(_covers(rule, a) for rule in _role_rules(objects, binding.get("roleRef") or {}, "")):
                return True
    if a.namespace:
        for namespace, binding in _bindings(objects, "rolebindings"):
            if namespace != a.namespace:
                continue
            if any(_subject_is(s, user, namespace) for s in binding.get("subjects") or []):
                if any(_covers(rule, a) for rule in _role_rules(objects, binding.get("roleRef") or {}, namespace)):
                    return True
    return False


def forbidden_message(user: User, a: RequestAttributes) -> str:
    """The API server's words for a refusal (its Status message, reason Forbidden, code 403)."""
    if not a.resource_request:
        return f'forbidden: User "{user.name}" cannot {a.verb} path "{a.path}"'
    kind = f"{a.resource}.{a.api_group}" if a.api_group else a.resource
    what = f'{kind} "{a.name}"' if a.name else kind
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    return (f'{what} is forbidden: User "{user.name}" cannot {a.verb} resource "{resource}" in API group'
            f' "{a.api_group}" {scope}')
