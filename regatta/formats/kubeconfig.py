"""Kubeconfig files as `regatta clusters kubeconfig` writes them: one cluster, one user, one
context named after the cluster, in the form kubectl reads (`apiVersion: v1`, `kind: Config`).

Real clouds get the exec-plugin user their own CLIs write, so kubectl asks for a fresh token each
time and no credential is stored: `aws eks get-token` (what `aws eks update-kubeconfig` writes),
`gke-gcloud-auth-plugin` (what `gcloud container clusters get-credentials` writes), `kubelogin
get-token` (what `az aks get-credentials` followed by `kubelogin convert-kubeconfig -l azurecli`
writes). A simulated cluster gets its CA and its bearer token, since no plugin knows it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from typing import Any

EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"
# The application id of the AKS AAD server, the same for every AKS cluster (what kubelogin takes).
AKS_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"


def kubeconfig(*, name: str, server: str, ca_data: str | None, user: dict[str, Any]) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    }


def token_user(token: str) -> dict[str, Any]:
    return {"token": token}


def _exec(command: str, args: list[str], *, hint: str, env: list[dict[str, str]] | None = None,
          provide_cluster_info: bool = False) -> dict[str, Any]:
    plugin: dict[str, Any] = {"apiVersion": EXEC_API_VERSION, "command": command, "args": args, "env": env,
                              "interactiveMode": "IfAvailable", "provideClusterInfo": provide_cluster_info,
                              "installHint": hint}
    return {"exec": plugin}


def eks_user(*, cluster: str, region: str, profile: str | None) -> dict[str, Any]:
    args = ["--region", region, "eks", "get-token", "--cluster-name", cluster, "--output", "json"]
    env = [{"name": "AWS_PROFILE", "value": profile}] if profile else None
    return _exec("aws", args, env=env, hint="install the AWS CLI v2 (it provides `aws eks get-token`)")


def gke_user() -> dict[str, Any]:
    return _exec("gke-gcloud-auth-plugin", [], provide_cluster_info=True,
                 hint="install gke-gcloud-auth-plugin: gcloud components install gke-gcloud-auth-plugin")


def aks_user() -> dict[str, Any]:
    return _exec("kubelogin", ["get-token", "--login", "azurecli", "--server-id", AKS_SERVER_ID],
                 hint="install kubelogin (az aks install-cli) and sign in with az login")


def context_of(config: dict[str, Any], *, context: str | None) -> dict[str, Any]:
    """One context of a kubeconfig (the current one when `context` is None), with its cluster and
    user, as a kubeconfig of its own. KeyError names what is missing."""
    name = context or config.get("current-context")
    if not name:
        raise KeyError("the kubeconfig has no current-context; name one as the cluster's credential_ref")

    def pick(kind: str, wanted: str) -> dict[str, Any]:
        found = next((item for item in config.get(kind) or [] if item.get("name") == wanted), None)
        if found is None:
            raise KeyError(f"the kubeconfig has no {kind[:-1]} {wanted!r}")
        return dict(found)

    chosen = pick("contexts", name)
    inner = chosen.get("context") or {}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [pick("clusters", inner.get("cluster", ""))],
        "users": [pick("users", inner.get("user", ""))] if inner.get("user") else [],
        "contexts": [chosen],
        "current-context": name,
        "preferences": {},
    }


def write_private(path: str, text: str) -> None:
    """A credential written whole to a new file of mode 0600 beside `path`, then moved over it: a file that is there (of
    any mode) never holds the credential, and a symlink there is replaced, not followed."""
    target = os.path.abspath(path)
    scratch = f"{target}.{secrets.token_hex(4)}.tmp"
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(scratch, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)
        raise


# What a kubeconfig kept in a secrets store may hold: a credential in itself. Anything else (a command to run, a file
# to read, a proxy) would let whoever can write the secret act in the worker that reads it.
SAFE_CLUSTER_FIELDS = frozenset({"server", "certificate-authority-data", "tls-server-name", "extensions"})
SAFE_USER_FIELDS = frozenset({"token", "client-certificate-data", "client-key-data", "extensions"})


def unsafe_fields(config: dict[str, Any]) -> list[str]:
    """The fields of a one-context kubeconfig (as `context_of` returns it) that a stored kubeconfig may not use."""
    found = []
    for section, key, safe in (("clusters", "cluster", SAFE_CLUSTER_FIELDS), ("users", "user", SAFE_USER_FIELDS)):
        for entry in config.get(section) or []:
            fields = (entry or {}).get(key) or {}
            found += [f"{key}.{name}" for name in sorted(fields) if name not in safe]
    return found
