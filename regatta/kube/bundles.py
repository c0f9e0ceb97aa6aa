"""Giving one cluster a bundle through its own API, the way `kubectl apply --server-side
--field-manager=regatta` does, and reading back what the policy engines report.

- Each object's resource is found through the cluster's discovery (once per group-version), so
  any kind works, CRDs and the custom resources they define included: CRDs go first, then
  Namespaces, then the rest.
- Objects are server-side applied with field manager `regatta`; a field another manager owns is
  refused naming that manager, unless the bundle says `force`.
- What the cluster holds of the bundle is recorded in the cluster itself: the ConfigMap
  kube-system/regatta-bundle-<bundle> names the revision, the mode, the rollout and every object
  applied, so the next revision knows what to prune even if the inventory were lost. A cluster that
  refuses an object part-way is recorded too (state `partial`, with what was applied).
- Pruning deletes what the last record listed and this revision drops, and only objects that
  carry the bundle's label: nothing else is ever deleted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from regatta.models.errors import ErrorType
from regatta.models.policy import (
    BUNDLE_LABEL,
    FIELD_MANAGER,
    BundleObjectKey,
    FieldChange,
    GiveRenderedBundle,
    GiveReport,
    ObjectChange,
)
from regatta.rules import bundles as bundle_rules
from regatta.rules.refusals import Refusal

RECORD_NAMESPACE = "kube-system"
ORDER = {"CustomResourceDefinition": 0, "Namespace": 1}
# Where each engine's admission webhook runs: a fail-closed policy needs it answering.
ENGINES = {"kyverno": ("kyverno", "kyverno-admission-controller"),
           "gatekeeper": ("gatekeeper-system", "gatekeeper-controller-manager")}


class BundleRefused(Refusal):
    """The cluster refused an object (or a field manager owns a field): a retry will not help."""

    def __init__(self, message: str, error_type: ErrorType):
        super().__init__(message)
        self.error_type = error_type


def record_name(bundle: str) -> str:
    return f"regatta-bundle-{bundle}"


@dataclass
class Resolver:
    """kind → (plural, namespaced) from the cluster's discovery, read once per group-version
    (a fleet-wide sweep may share what it found between clusters: a kind's plural is its CRD's)."""

    api: k8s.ApiClient
    found: dict[str, dict[str, tuple[str, bool]]] = field(default_factory=dict)

    def forget(self) -> None:
        self.found.clear()

    def resource(self, key: BundleObjectKey) -> tuple[str, bool]:
        if key.api_version not in self.found:
            path = "/api/v1" if key.api_version == "v1" else f"/apis/{key.api_version}"
            try:
                listing = _call(self.api, path, "GET")
            except ApiException as error:
                if error.status == 404:
                    raise BundleRefused(f"{key.words()}: the cluster serves no {key.api_version} (is its CRD installed?)",
                                        ErrorType.MANIFEST_REFUSED) from None
                raise
            self.found[key.api_version] = {r["kind"]: (r["name"], bool(r.get("namespaced")))
                                           for r in listing.get("resources", []) if "/" not in r["name"]}
        kinds = self.found[key.api_version]
        if key.kind not in kinds:
            raise BundleRefused(f"{key.words()}: the cluster's {key.api_version} has no kind {key.kind}",
                                ErrorType.MANIFEST_REFUSED)
        return kinds[key.kind]

    def path(self, key: BundleObjectKey, namespace: str) -> str:
        plural, namespaced = self.resource(key)
        base = "/api/v1" if key.api_version == "v1" else f"/apis/{key.api_version}"
        scope = f"/namespaces/{namespace or 'default'}" if namespaced else ""
        return f"{base}{scope}/{plural}/{key.name}"


# A busy or throttling API server is asked again a few times within the call, with a short backoff
# (its Retry-After when it gives one): server-side apply and reads are idempotent, so a 20-object
# bundle is not started over because one write out of twenty met a 429. A delete is asked again
# only where the server cannot have acted (429, 503).
TRANSIENT = {"GET": (429, 500, 502, 503, 504), "PATCH": (429, 500, 502, 503, 504), "DELETE": (429, 503)}
ATTEMPTS = 5


def _call(api: k8s.ApiClient, path: str, method: str, *, query: list[tuple[str, str]] | None = None,
          body: Any = None, content_type: str | None = None) -> Any:
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    for attempt in range(ATTEMPTS):
        try:
            response = api.call_api(path, method, query_params=query or [], header_params=headers, body=body,
                                    auth_settings=["BearerToken"], _return_http_data_only=True, _preload_content=False,
                                    _request_timeout=30)
            return json.loads(response.data or b"{}")
        except ApiException as error:
            if error.status not in TRANSIENT.get(method, ()) or attempt == ATTEMPTS - 1:
                raise
            time.sleep(_backoff(error, attempt))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _backoff(error: ApiException, attempt: int) -> float:
    try:
        asked = float((error.headers or {}).get("Retry-After", 0))
    except (TypeError, ValueError):
        asked = 0.0
    return min(5.0, max(asked, 0.1 * 2 ** attempt))


def _message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.body or error.reason)


def read_record(api: k8s.ApiClient, bundle: str) -> dict[str, Any] | None:
    try:
        found = _call(api, f"/api/v1/namespaces/{RECORD_NAMESPACE}/configmaps/{record_name(bundle)}", "GET")
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    data = found.get("data") or {}
    return {**data, "objects": json.loads(data.get("objects") or "[]")}


def _write_record(api: k8s.ApiClient, request: GiveRenderedBundle, state: str, applied: list[BundleObjectKey]) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": record_name(request.bundle), "namespace": RECORD_NAMESPACE,
                         "labels": {BUNDLE_LABEL + "-record": request.bundle}},
            "data": {"bundle": request.bundle, "revision": request.rendering.revision, "state": state,
                     "mode": request.rendering.mode or "", "rollout": request.rollout,
                     "applied_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "objects": json.dumps([k.model_dump() for k in applied], sort_keys=True)}}
    _call(api, f"/api/v1/namespaces/{RECORD_NAMESPACE}/configmaps/{record_name(request.bundle)}", "PATCH",
          query=[("fieldManager", FIELD_MANAGER), ("force", "true")], body=body,
          content_type="application/apply-patch+yaml")


def _write_record_if_allowed(api: k8s.ApiClient, request: GiveRenderedBundle, applied: list[BundleObjectKey]) -> None:
    """Record what was applied before a refusal (state `partial`), so the next revision prunes
    it; a cluster that refuses the record too is left to the compliance record's `error`."""
    try:
        _write_record(api, request, "partial", applied)
    except ApiException:
        pass


SERVER_KEPT = ("resourceVersion", "generation", "managedFields", "uid", "creationTimestamp")


def changed_fields(before: Any, after: Any, prefix: str = "") -> list[FieldChange]:
    """Where two objects differ (JSON pointers, with both values), outside status and the metadata
    the server keeps."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for k in sorted(set(before) | set(after)):
            if (prefix == "" and k == "status") or (prefix == "/metadata" and k in SERVER_KEPT):
                continue
            found += changed_fields(before.get(k), after.get(k), f"{prefix}/{k.replace('~', '~0').replace('/', '~1')}")
        return found
    return [] if before == after else [FieldChange(path=prefix or "/", before=before, after=after)]


def engine_unhealthy(api: k8s.ApiClient, engine: str) -> str | None:
    """Why the engine's admission webhook cannot answer, or None when its Deployment is ready."""
    namespace, name = ENGINES[engine]
    try:
        deployment = _call(api, f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}", "GET")
    except ApiException as error:
        if error.status == 404:
            return f"{engine} is not installed (no Deployment {namespace}/{name})"
        raise
    wanted = int((deployment.get("spec") or {}).get("replicas", 1))
    ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
    return None if wanted and ready >= wanted else f"{engine}'s {namespace}/{name} has {ready} of {wanted} replicas ready"


def give_rendered_bundle(api: k8s.ApiClient, request: GiveRenderedBundle, *, on_poll: Callable[[str], None] | None = None) -> GiveReport:
    rendering = request.rendering
    resolver = Resolver(api)
    report = GiveReport(cluster=request.cluster.name, revision=rendering.revision)
    previous = read_record(api, request.bundle)
    earlier = [BundleObjectKey.model_validate(k) for k in (previous or {}).get("objects", [])]
    if rendering.mode == "enforce" and not request.dry_run:
        for engine in sorted({e for o in rendering.objects if bundle_rules.fails_closed(o.body)
                              for e in [bundle_rules.policy_engine(o.key)] if e}):
            problem = engine_unhealthy(api, engine)
            if problem:
                raise BundleRefused(f"enforcing a fail-closed {engine} policy on {request.cluster.name} is refused: {problem};"
                                    " it would lock the cluster's API while the engine is down. Fix the engine, or"
                                    " roll the policy in audit", ErrorType.POLICY_ENGINE_UNHEALTHY)
    applied: list[BundleObjectKey] = []
    query = [("fieldManager", FIELD_MANAGER)] + ([("force", "true")] if request.force else []) + (
        [("dryRun", "All")] if request.dry_run else [])
    written: list[tuple[str, dict[str, Any]]] = []
    # Kinds the bundle's own CRDs define: a dry run cannot ask the server about them before the CRD exists.
    defined = {((o.body.get("spec") or {}).get("group"), ((o.body.get("spec") or {}).get("names") or {}).get("kind"))
               for o in rendering.objects if o.key.kind == "CustomResourceDefinition"}
    # Namespaces the bundle makes: a dry run cannot ask the server about objects in one before it exists (404, as the
    # API server's NamespaceLifecycle answers), so each is said to be created.
    made: set[str] = set()
    for obj in sorted(rendering.objects, key=lambda o: ORDER.get(o.key.kind, 2)):
        key = obj.key
        ours = (bundle_rules.group_of(key.api_version), key.kind) in defined
        if request.dry_run and key.namespace and key.namespace in made:
            report.changes.append(ObjectChange(key=key, action="would_create"))
            continue
        if ours and request.dry_run:
            try:
                resolver.resource(key)
            except BundleRefused:
                report.changes.append(ObjectChange(key=key, action="would_create"))
                continue
        try:
            if ours:
                _wait_served(resolver, key, request, on_poll)
            path = resolver.path(key, key.namespace)
            _, namespaced = resolver.resource(key)
            if namespaced and not key.namespace:
                key = key.model_copy(update={"namespace": "default"})
                obj.body.setdefault("metadata", {})["namespace"] = "default"
            try:
                before = _call(api, path, "GET")
            except ApiException as error:
                if error.status != 404:
                    raise
                before = None
            after = _call(api, path, "PATCH", query=query, body=obj.body, content_type="application/apply-patch+yaml")
        except ApiException as error:
            if error.status in (429,) or error.status >= 500:
                raise  # retried: the activity's next attempt applies again
            if not request.dry_run:
                _write_record_if_allowed(api, request, _union(earlier, applied))
            if error.status in (401, 403):
                raise  # not this manifest's fault: our credentials (KubeRefused, with the status)
            kind = ErrorType.FIELD_MANAGER_CONFLICT if error.status == 409 else ErrorType.MANIFEST_REFUSED
            hint = " (the bundle's force: true takes the fields)" if error.status == 409 else ""
            raise BundleRefused(f"{request.cluster.name} refused {key.words()}: {_message(error)}{hint}", kind) from None
        except BundleRefused:
            if not request.dry_run:
                _write_record_if_allowed(api, request, _union(earlier, applied))
            raise
        applied.append(key)
        fields = changed_fields(before, after) if before is not None else []
        action = ("created" if before is None else "configured" if fields else "unchanged")
        if request.dry_run:
            action = {"created": "would_create", "configured": "would_configure"}.get(action, action)
        report.changes.append(ObjectChange(key=key, action=action, fields=fields))
        if key.kind == "CustomResourceDefinition":
            resolver.forget()  # its kinds are servable now
        if key.kind == "Namespace" and before is None and request.dry_run:
            made.add(key.name)
        written.append((path, after))
    current = {identity(k) for k in applied}
    for gone in earlier:
        if identity(gone) in current:
            continue
        try:
            path = resolver.path(gone, gone.namespace)
            live = _call(api, path, "GET")
        except (ApiException, BundleRefused):
            continue  # already gone, or its kind is no longer served
        if ((live.get("metadata") or {}).get("labels") or {}).get(BUNDLE_LABEL) != request.bundle:
            continue  # not ours: never deleted
        if request.prune:
            if not request.dry_run:
                _call(api, path, "DELETE")
            report.changes.append(ObjectChange(key=gone, action="would_prune" if request.dry_run else "pruned"))
    if request.dry_run:
        return report
    _wait_observed(api, written, request, on_poll)
    kept = applied if request.prune else _union(earlier, applied)
    _write_record(api, request, "applied", kept)
    return report


# What taking a bundle off a cluster leaves: deleting a Namespace deletes whatever else lives in
# it, and deleting a CRD deletes every object of its kinds cluster-wide.
KEPT_ON_WITHDRAW = ("Namespace", "CustomResourceDefinition")


def withdraw_bundle(api: k8s.ApiClient, bundle: str) -> tuple[list[BundleObjectKey], list[BundleObjectKey]]:
    """Take a bundle off a cluster: delete the objects its record names that still carry its label
    (never anything else), then the record. Namespaces and CRDs stay (see KEPT_ON_WITHDRAW).
    Returns (deleted, kept). Run again, it finds no record and deletes nothing."""
    record = read_record(api, bundle)
    if record is None:
        return [], []
    resolver = Resolver(api)
    deleted, kept = [], []
    for key in sorted((BundleObjectKey.model_validate(k) for k in record.get("objects", [])),
                      key=lambda k: -ORDER.get(k.kind, 2)):
        if key.kind in KEPT_ON_WITHDRAW:
            kept.append(key)
            continue
        try:
            path = resolver.path(key, key.namespace)
            live = _call(api, path, "GET")
        except ApiException as error:
            if error.status == 404:
                continue  # already gone
            raise
        except BundleRefused:
            continue  # its kind is no longer served
        if ((live.get("metadata") or {}).get("labels") or {}).get(BUNDLE_LABEL) != bundle:
            kept.append(key)  # not ours any more: never deleted
            continue
        try:
            _call(api, path, "DELETE")
        except ApiException as error:
            if error.status != 404:
                raise
        deleted.append(key)
    try:
        _call(api, f"/api/v1/namespaces/{RECORD_NAMESPACE}/configmaps/{record_name(bundle)}", "DELETE")
    except ApiException as error:
        if error.status != 404:
            raise
    return deleted, kept


def identity(key: BundleObjectKey) -> tuple[str, str, str, str]:
    """Who an object is: group (not version), kind, namespace, name."""
    return (bundle_rules.group_of(key.api_version), key.kind, key.namespace, key.name)


def _union(first: list[BundleObjectKey], then: list[BundleObjectKey]) -> list[BundleObjectKey]:
    seen = {identity(k): k for k in first}
    seen.update({identity(k): k for k in then})
    return list(seen.values())


def _wait_served(resolver: Resolver, key: BundleObjectKey, request: GiveRenderedBundle,
                 on_poll: Callable[[str], None] | None) -> None:
    """A kind the bundle's own CRD defines is served once the CRD is established: wait for it."""
    deadline = time.monotonic() + request.timeout_seconds
    while True:
        try:
            resolver.resource(key)
            return
        except BundleRefused:
            if time.monotonic() > deadline:
                raise
        if on_poll:
            on_poll(f"waiting for the cluster to serve {key.kind}")
        time.sleep(request.poll_interval_seconds)
        resolver.forget()


def _wait_observed(api: k8s.ApiClient, written: list[tuple[str, dict[str, Any]]], request: GiveRenderedBundle,
                   on_poll: Callable[[str], None] | None) -> None:
    """Every object whose controller reports status.observedGeneration has observed its generation."""
    deadline = time.monotonic() + request.timeout_seconds
    waiting = [(path, body) for path, body in written if not _observed(body)]
    while waiting:
        if time.monotonic() > deadline:
            names = ", ".join(path.rsplit("/", 1)[-1] for path, _ in waiting[:5])
            raise BundleRefused(f"{request.cluster.name}: not observed within {request.timeout_seconds:g}s: {names}",
                                ErrorType.NOT_OBSERVED)
        if on_poll:
            on_poll(f"{len(waiting)} objects not yet observed")
        time.sleep(request.poll_interval_seconds)
        waiting = [(path, body) for path, _ in waiting for body in [_call(api, path, "GET")] if not _observed(body)]


def _observed(body: dict[str, Any]) -> bool:
    observed = (body.get("status") or {}).get("observedGeneration")
    generation = (body.get("metadata") or {}).get("generation")
    return observed is None or generation is None or int(observed) >= int(generation)


def count_violations(api: k8s.ApiClient, policies: list[BundleObjectKey]) -> tuple[int, list[str]]:
    """Failing results the engines report against these policies: Kyverno's (and any
    wgpolicyk8s.io reporter's) PolicyReports and ClusterPolicyReports, and Gatekeeper constraints'
    status.totalViolations. A cluster without the report kinds reports none."""
    names = {k.name for k in policies if bundle_rules.policy_engine(k) == "kyverno"}
    total, detail = 0, []
    if names:
        counts: dict[str, int] = {}
        for path in ("/apis/wgpolicyk8s.io/v1alpha2/policyreports", "/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports"):
            try:
                listing = _call(api, path, "GET")
            except ApiException as error:
                if error.status == 404:
                    continue
                raise
            for report in listing.get("items", []):
                for result in report.get("results") or []:
                    if result.get("policy") in names and result.get("result") in ("fail", "error"):
                        counts[result["policy"]] = counts.get(result["policy"], 0) + 1
        for name, n in sorted(counts.items()):
            total += n
            detail.append(f"{name}: {n} failing results")
    resolver = Resolver(api)
    for key in policies:
        if bundle_rules.policy_engine(key) != "gatekeeper":
            continue
        try:
            live = _call(api, resolver.path(key, ""), "GET")
        except (ApiException, BundleRefused):
            continue
        n = int((live.get("status") or {}).get("totalViolations") or 0)
        if n:
            total += n
            detail.append(f"{key.kind}/{key.name}: {n} violations")
    return total, detail


def live_objects(api: k8s.ApiClient, keys: list[BundleObjectKey], bundle: str, resolver: Resolver
                 ) -> tuple[dict[tuple[str, str, str, str], dict[str, Any]], list[BundleObjectKey]]:
    """The bundle's objects as they are live, read with one list per kind (by the bundle's label,
    across namespaces), by identity; and the keys as the cluster names them (a namespaced kind
    given without a namespace lives in default). A kind the cluster no longer serves has none."""
    found: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    named = []
    listed: set[tuple[str, str]] = set()
    for key in keys:
        try:
            plural, namespaced = resolver.resource(key)
        except BundleRefused:
            named.append(key)
            continue
        if namespaced and not key.namespace:
            key = key.model_copy(update={"namespace": "default"})
        named.append(key)
        if (key.api_version, key.kind) in listed:
            continue
        listed.add((key.api_version, key.kind))
        base = "/api/v1" if key.api_version == "v1" else f"/apis/{key.api_version}"
        listing = _call(api, f"{base}/{plural}", "GET", query=[("labelSelector", f"{BUNDLE_LABEL}={bundle}")])
        for item in listing.get("items", []):
            item.setdefault("apiVersion", key.api_version)
            item.setdefault("kind", key.kind)
            found[identity(bundle_rules.key_of(item))] = item
    return found, named
