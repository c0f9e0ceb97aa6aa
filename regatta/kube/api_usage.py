"""Which API versions a cluster's clients and manifests still use, read from the cluster itself: the
facts behind the `removed_api` readiness findings (regatta/rules/readiness.py).

- What clients asked for: the API server's `apiserver_requested_deprecated_apis` gauge on /metrics
  (a STABLE metric: labels group, version, resource, subresource, removed_release; the API server
  keeps it in memory, so it covers the requests since it last started).
- What manifests were applied with: for each kind a removal concerns, the objects listed through a
  version the cluster serves, and the apiVersion each server-side apply manager last applied with
  (`metadata.managedFields[].apiVersion` of its Apply entry) and kubectl's last-applied-configuration
  annotation. A stored object is readable through every served version, so the apiVersion of the
  list says nothing; these two say what the next `kubectl apply` will send.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import kubernetes.client as k8s
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from regatta.models.readiness import ApiRemoval, ApiRemovalTable, ApiUsage, AppliedObject, RequestedDeprecatedApi
from regatta.rules import readiness, versions
from regatta.rules.versions import minor_version

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
GAUGE = "apiserver_requested_deprecated_apis"


METRICS_LIMIT = 256 * 2**20  # a real API server's /metrics is tens of MB; a hostile one is not read past this
# What a readiness read keeps of a cluster's answers (it goes into a workflow's history and the inventory): a real
# cluster has a handful of deprecated series; a hostile one does not fill the history with them.
MAX_SERIES = 100
MAX_OBJECTS = 500
MAX_LABEL = 100


def deprecated_series(lines: Iterable[str]) -> list[RequestedDeprecatedApi]:
    """The gauge's series at 1 among /metrics lines; every other metric is passed over unparsed."""
    kept = [line for line in lines if line.startswith(GAUGE)]
    found = []
    try:
        families = list(text_string_to_metric_families("\n".join(kept) + "\n"))
    except ValueError:  # a line that is no exposition format: read what parses, one line at a time
        families = []
        for line in kept:
            try:
                families += list(text_string_to_metric_families(line + "\n"))
            except ValueError:
                continue
    for family in families:
        for sample in family.samples:
            if sample.name == GAUGE and sample.value >= 1:
                labels = sample.labels
                found.append(RequestedDeprecatedApi(**{field: labels.get(field, "")[:MAX_LABEL] for field in (
                    "group", "version", "resource", "subresource", "removed_release")}))
    return found


def requested_deprecated_apis(api: k8s.ApiClient) -> list[RequestedDeprecatedApi]:
    """Every deprecated API some client requested since this API server started (a series at 1).
    One GET reaches one API server: where the cloud runs several, or one restarted lately, a request
    another served is not in it, so an empty gauge does not prove nobody asked."""
    response = api.call_api("/metrics", "GET", header_params={"Accept": "text/plain"}, auth_settings=["BearerToken"],
                            _return_http_data_only=True, _preload_content=False, _request_timeout=30)
    lines: list[str] = []
    read, rest = 0, b""
    try:
        for chunk in response.stream(2**16):
            read += len(chunk)
            if read > METRICS_LIMIT:
                raise ValueError(f"/metrics is larger than {METRICS_LIMIT // 2**20} MiB; not read further")
            *whole, rest = (rest + chunk).split(b"\n")
            lines += [line.decode(errors="replace") for line in whole if line.startswith(GAUGE.encode())]
    finally:
        response.release_conn()
    if rest.startswith(GAUGE.encode()):
        lines.append(rest.decode(errors="replace"))
    return deprecated_series(lines)


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


def written_with(item: object) -> set[str]:
    """The apiVersions an object's manifests were last applied with: each server-side apply manager's
    (an Apply entry is replaced whole by its manager's next apply) and kubectl's last-applied
    annotation. Update entries are left out: a real API server keeps one per manager and version
    while it owns fields, so an old one outlives a migrated controller; what such clients still
    request is the gauge's to say. A malformed object says nothing rather than failing the read."""
    if not isinstance(item, dict) or not isinstance(item.get("metadata"), dict):
        return set()
    meta = item["metadata"]
    entries = meta.get("managedFields") if isinstance(meta.get("managedFields"), list) else []
    versions = {str(entry["apiVersion"]) for entry in entries
                if isinstance(entry, dict) and entry.get("operation") == "Apply" and entry.get("apiVersion")}
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    applied = annotations.get(LAST_APPLIED)
    if isinstance(applied, str) and len(applied) <= 2**20:
        try:
            version = json.loads(applied).get("apiVersion")
        except (ValueError, AttributeError, RecursionError):
            version = None  # an annotation someone edited by hand
        if isinstance(version, str):
            versions.add(version)
    return versions


def applied_objects(api: k8s.ApiClient, removals: Iterable[ApiRemoval]) -> list[AppliedObject]:
    """Every object of a removal's kind whose manifest was last applied with the removed version."""
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
                meta: dict = item["metadata"] if isinstance(item, dict) and isinstance(item.get("metadata"), dict) else {}
                for old in sorted(written_with(item) & removed):
                    found.append(AppliedObject(group_version=old, kind=kinds[(group, resource)],
                                               namespace=str(meta["namespace"]) if meta.get("namespace") else None,
                                               name=str(meta.get("name", ""))))
            break  # one served version lists every object of the kind
    return found


def api_usage(api: k8s.ApiClient, table: ApiRemovalTable, *, control_plane: str, target: str) -> ApiUsage:
    """What the readiness of `control_plane` for `target` needs to know of the cluster's API use: the
    gauge's series, the objects last applied with a version the path removes, and the removals of
    the releases after the control plane's (the path's, and the later ones its warnings name)."""
    now = minor_version(control_plane)
    ahead = table.model_copy(update={"removals": [r for r in table.removals if minor_version(r.removed_in) > now]})
    crossed = readiness.removals_crossed(ahead, versions.upgrade_path(control_plane, target))
    try:
        requested = requested_deprecated_apis(api)
        applied = applied_objects(api, crossed)
    except ApiException as error:
        if error.status not in (401, 403):
            raise  # anything else is the cluster's trouble, retried or reported as unreadable by the caller
        return ApiUsage(table=ahead, unread=f"{error.status} {error.reason}: Regatta's credentials may not GET /metrics"
                                             " or list the kinds a removal on the path concerns")
    return ApiUsage(table=ahead, requested=requested[:MAX_SERIES], applied=applied[:MAX_OBJECTS])
