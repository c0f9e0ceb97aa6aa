"""Which API versions a cluster's clients and manifests still use, read from the cluster itself: the
facts behind the `removed_api` readiness findings (regatta/rules/readiness.py).

- What clients asked for: the API server's `apiserver_requested_deprecated_apis` gauge on /metrics
  (a STABLE metric: labels group, version, resource, subresource, removed_release; the API server
  keeps it in memory, so it covers the requests since it last started).
- What manifests were written with: for each kind a removal concerns, the objects listed through a
  version the cluster serves, and the apiVersion each field manager last wrote with
  (`metadata.managedFields[].apiVersion`) and kubectl's last-applied-configuration annotation. A
  stored object is readable through every served version, so the apiVersion of the list says
  nothing; these two say what the next `kubectl apply` or Helm upgrade will send.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import kubernetes.client as k8s
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from regatta.models.readiness import ApiRemoval, AppliedObject, RequestedDeprecatedApi

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
GAUGE = "apiserver_requested_deprecated_apis"


def requested_deprecated_apis(api: k8s.ApiClient) -> list[RequestedDeprecatedApi]:
    """Every deprecated API some client requested since the API server started (a series at 1)."""
    response = api.call_api("/metrics", "GET", header_params={"Accept": "text/plain"}, auth_settings=["BearerToken"],
                            _return_http_data_only=True, _preload_content=False, _request_timeout=30)
    found = []
    for family in text_string_to_metric_families((response.data or b"").decode()):
        if family.name != GAUGE:
            continue
        for sample in family.samples:
            if sample.value >= 1:
                labels = sample.labels
                found.append(RequestedDeprecatedApi(group=labels.get("group", ""), version=labels.get("version", ""),
                                                    resource=labels.get("resource", ""),
                                                    subresource=labels.get("subresource", ""),
                                                    removed_release=labels.get("removed_release", "")))
    return found


def _served_versions(api: k8s.ApiClient, group: str) -> list[str]:
    """The group's versions the cluster serves, preferred first ([] when it serves none)."""
    path = f"/apis/{group}" if group else "/api"
    try:
        response = api.call_api(path, "GET", header_params={"Accept": "application/json"}, auth_settings=["BearerToken"],
                                _return_http_data_only=True, _preload_content=False, _request_timeout=30)
    except ApiException as error:
        if error.status == 404:
            return []
        raise
    body = json.loads(response.data or b"{}")
    if not group:
        return list(body.get("versions") or [])
    preferred = (body.get("preferredVersion") or {}).get("groupVersion")
    versions = [v["groupVersion"] for v in body.get("versions") or []]
    return sorted(versions, key=lambda v: v != preferred)  # the preferred first, the rest as the server lists them


def _written_with(item: dict) -> set[str]:
    meta = item.get("metadata") or {}
    versions = {entry["apiVersion"] for entry in meta.get("managedFields") or [] if entry.get("apiVersion")}
    applied = (meta.get("annotations") or {}).get(LAST_APPLIED)
    if applied:
        try:
            versions.add(str(json.loads(applied).get("apiVersion")))
        except (ValueError, AttributeError):
            pass  # an annotation someone edited by hand: the managed fields still say
    return versions


def applied_objects(api: k8s.ApiClient, removals: Iterable[ApiRemoval]) -> list[AppliedObject]:
    """Every object of a removal's kind whose manifest was last written with the removed version."""
    by_kind: dict[tuple[str, str], set[str]] = {}
    kinds: dict[tuple[str, str], str] = {}
    for removal in removals:
        group = removal.group_version.split("/")[0] if "/" in removal.group_version else ""
        by_kind.setdefault((group, removal.resource), set()).add(removal.group_version)
        kinds[(group, removal.resource)] = removal.kind
    found = []
    for (group, resource), removed in sorted(by_kind.items()):
        for group_version in _served_versions(api, group):
            try:
                response = api.call_api(f"/apis/{group_version}/{resource}" if group else f"/api/{group_version}/{resource}",
                                        "GET", header_params={"Accept": "application/json"},
                                        auth_settings=["BearerToken"], _return_http_data_only=True,
                                        _preload_content=False, _request_timeout=30)
            except ApiException as error:
                if error.status == 404:
                    continue  # this version of the group does not serve the kind: try the next
                raise
            for item in json.loads(response.data or b"{}").get("items") or []:
                meta = item.get("metadata") or {}
                for old in sorted(_written_with(item) & removed):
                    found.append(AppliedObject(group_version=old, kind=kinds[(group, resource)],
                                               namespace=meta.get("namespace"), name=meta.get("name", "")))
            break  # one served version lists every object of the kind
    return found
