"""A person's time-bound access on a cluster's own API (workflows/access_grant.py): a ServiceAccount in the
`regatta-access` namespace and a ClusterRoleBinding of it to one of the cluster's default roles (view, edit,
admin), a TokenRequest for that account that expires with the grant, and both taken back at the end. Every step
is safe to repeat: what exists already is kept, what is gone already is done."""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from regatta.rules.access_grants import NAMESPACE

MANAGED_BY = {"app.kubernetes.io/managed-by": "regatta"}


class AccessRefused(Exception):
    """The cluster refused to make or take back the grant (403, 422): said as the API server said it."""


def _create(make: Any, *args: Any, read: Any = None, ours: Any = None) -> None:
    """Make the object; one there already is kept only when `ours(read())` says an earlier attempt of this same grant
    made it (another grant's, or anyone's, is refused: a grant never takes over what it did not make)."""
    try:
        make(*args)
    except ApiException as error:
        if error.status == 409:
            if read is None or ours(read()):
                return
            raise AccessRefused("an object of that name is there already and is not this grant's: nothing was bound") from None
        if error.status in (403, 422, 400):
            raise AccessRefused(f"the cluster refused it ({error.status} {error.reason}): {_message(error)}") from None
        raise


def _message(error: ApiException) -> str:
    import json

    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)[:300]
    except ValueError:
        return str(error.reason)


def grant(api: k8s.ApiClient, *, grant_id: str, account: str, role: str, person: str) -> None:
    labels = {**MANAGED_BY, "regatta.dev/grant": account}
    annotations = {"regatta.dev/person": person, "regatta.dev/grant-id": grant_id}
    core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    _create(core.create_namespace, {"apiVersion": "v1", "kind": "Namespace",
                                    "metadata": {"name": NAMESPACE, "labels": dict(MANAGED_BY)}})
    def this_grant(found: Any) -> bool:
        return ((found.metadata.annotations or {}).get("regatta.dev/grant-id") == grant_id
                and (getattr(found, "role_ref", None) is None or found.role_ref.name == role))

    _create(core.create_namespaced_service_account, NAMESPACE, {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": account, "namespace": NAMESPACE, "labels": labels, "annotations": annotations}},
            read=lambda: core.read_namespaced_service_account(account, NAMESPACE), ours=this_grant)
    _create(rbac.create_cluster_role_binding, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": account, "labels": labels, "annotations": annotations},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]},
            read=lambda: rbac.read_cluster_role_binding(account), ours=this_grant)


def token(api: k8s.ApiClient, *, account: str, seconds: int) -> tuple[str, str]:
    """A token for the account (TokenRequest): (token, expirationTimestamp)."""
    try:
        answer = k8s.CoreV1Api(api).create_namespaced_service_account_token(
            account, NAMESPACE, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                 "spec": {"expirationSeconds": seconds}}, _preload_content=False)
    except ApiException as error:
        if error.status in (403, 404, 422, 400):
            raise AccessRefused(f"the cluster refused the token ({error.status} {error.reason}): {_message(error)}") from None
        raise
    import json

    status = json.loads(answer.data).get("status") or {}
    return str(status["token"]), str(status.get("expirationTimestamp") or "")


def revoke(api: k8s.ApiClient, *, account: str) -> list[str]:
    """The binding and the account deleted (deleting the account ends every token it was given): what was there."""
    removed = []
    for what, delete in (("ClusterRoleBinding", lambda: k8s.RbacAuthorizationV1Api(api).delete_cluster_role_binding(account)),
                         ("ServiceAccount", lambda: k8s.CoreV1Api(api).delete_namespaced_service_account(account, NAMESPACE))):
        try:
            delete()
            removed.append(what)
        except ApiException as error:
            if error.status == 404:
                continue
            if error.status in (403, 422):
                raise AccessRefused(f"the cluster refused to delete the {what} ({error.status}): {_message(error)}") from None
            raise
    return removed
