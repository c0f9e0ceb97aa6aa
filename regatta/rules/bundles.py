"""Rendering a bundle for one cluster, and what is wrong with a bundle beyond its schema.

A bundle's revision is the hash of its content (manifests and overrides), so the same bundle read
from a directory, from git or inline has the same revision. For a cluster, rendering substitutes
inventory fields into strings (`{{ cluster.name }}`, `{{ cluster.region }}`, `{{ cluster.environment }}`,
`{{ cluster.provider }}`, `{{ cluster.version }}`, `{{ cluster.labels.team }}`; Jinja2's sandbox, with an
unknown name an error), applies the RFC 6902 overrides whose selector takes the cluster, sets the
policy mode on policy-engine objects, and labels every object with the bundle so pruning can
tell Regatta's objects from everyone else's.

Pure: the PolicyRollout plan, `regatta policy preview` and the unit tests call it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from typing import Any

import jsonpatch
from jinja2 import StrictUndefined, Template, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from regatta.models import ClusterRecord
from regatta.models.errors import ErrorType
from regatta.models.policy import (
    BUNDLE_LABEL,
    REVISION_ANNOTATION,
    BundleObjectKey,
    BundleSpec,
    ClusterRendering,
    GiveReport,
    ObjectMatch,
    PolicyMode,
    RenderedObject,
)
from regatta.rules import placement, refusals, waves
from regatta.rules.selectors import selects

TEMPLATES = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
KYVERNO_GROUP = "kyverno.io"
GATEKEEPER_CONSTRAINTS = "constraints.gatekeeper.sh"
Where = tuple[str | int, ...]


class InvalidBundle(refusals.Refusal):
    error_type = ErrorType.INVALID_BUNDLE


def key_of(manifest: dict[str, Any]) -> BundleObjectKey:
    meta_ = manifest.get("metadata") or {}
    return BundleObjectKey(api_version=str(manifest.get("apiVersion", "")), kind=str(manifest.get("kind", "")),
                           namespace=str(meta_.get("namespace") or ""), name=str(meta_.get("name") or ""))


def revision(spec: BundleSpec) -> str:
    """The hash of what the bundle says: its manifests and overrides, in a canonical form."""
    what: dict[str, Any] = {"manifests": spec.manifests, "overrides": [o.model_dump(mode="json") for o in spec.overrides]}
    if spec.placement is not None:  # where it runs is part of what it is (a bundle without keeps its revision)
        what["placement"] = spec.placement.model_dump(mode="json")
    content = json.dumps(what, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def group_of(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def policy_engine(key: BundleObjectKey) -> str | None:
    """The engine an object belongs to: 'kyverno' for its policies, 'gatekeeper' for constraints."""
    group = group_of(key.api_version)
    if group == KYVERNO_GROUP and key.kind in ("ClusterPolicy", "Policy"):
        return "kyverno"
    if group == GATEKEEPER_CONSTRAINTS:
        return "gatekeeper"
    return None


def has_policy_engine_objects(spec: BundleSpec) -> bool:
    return any(policy_engine(key_of(m)) for m in spec.manifests)


def fails_closed(body: dict[str, Any]) -> bool:
    """A Kyverno policy's webhook refuses requests when Kyverno cannot answer (failurePolicy Fail,
    Kyverno's default). Gatekeeper's webhook is installed failing open."""
    key = key_of(body)
    return policy_engine(key) == "kyverno" and (body.get("spec") or {}).get("failurePolicy", "Fail") == "Fail"


def set_mode(body: dict[str, Any], mode: PolicyMode) -> None:
    """Kyverno: validationFailureAction (and each rule's failureAction where given) Audit/Enforce;
    Gatekeeper constraints: enforcementAction dryrun/deny."""
    engine = policy_engine(key_of(body))
    spec = body.setdefault("spec", {})
    if engine == "kyverno":
        spec["validationFailureAction"] = "Audit" if mode == "audit" else "Enforce"
        for rule in spec.get("rules") or []:
            validate = rule.get("validate") if isinstance(rule, dict) else None
            if isinstance(validate, dict) and "failureAction" in validate:
                validate["failureAction"] = "Audit" if mode == "audit" else "Enforce"
    elif engine == "gatekeeper":
        spec["enforcementAction"] = "dryrun" if mode == "audit" else "deny"


def matches(match: ObjectMatch, key: BundleObjectKey) -> bool:
    return ((match.kind is None or match.kind == key.kind) and (match.name is None or match.name == key.name)
            and (match.namespace is None or match.namespace == key.namespace))


def cluster_fields(cluster: ClusterRecord) -> dict[str, Any]:
    return {"cluster": {"name": cluster.name, "region": cluster.region, "environment": cluster.environment,
                        "provider": cluster.provider, "version": cluster.control_plane_version,
                        "labels": dict(cluster.labels)}}


@functools.lru_cache(maxsize=4096)
def _template(text: str) -> Template:
    """Compiled once per distinct text: a fleet-wide render compiles each substitution once."""
    return TEMPLATES.from_string(text)


def _substitute(value: Any, fields: dict[str, Any], where: str) -> Any:
    if isinstance(value, str) and "{{" in value:
        try:
            return _template(value).render(fields)
        except TemplateError as error:
            raise InvalidBundle(f"{where}: {error.message or error}") from None
    if isinstance(value, dict):
        return {k: _substitute(v, fields, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, fields, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def render(spec: BundleSpec, cluster: ClusterRecord, *, mode: PolicyMode | None, bundle_revision: str | None = None,
           replicas: dict[str, int] | None = None) -> ClusterRendering:
    """The objects this cluster is given (a placed application: with its share of each workload's
    replicas). Refuses (naming the object) a substitution that names an unknown field or an
    override that does not apply."""
    fields = cluster_fields(cluster)
    rev = bundle_revision or spec.revision or revision(spec)
    chosen = [i for i, override in enumerate(spec.overrides) if selects(override.selector, cluster)]
    workloads = placement.workloads_of(spec.manifests) if spec.placement is not None and replicas is not None else []
    objects = []
    for index, manifest in enumerate(spec.manifests):
        key = key_of(manifest)
        body = copy.deepcopy(manifest)
        for i in chosen:
            override = spec.overrides[i]
            if not matches(override.target, key):
                continue
            try:
                body = jsonpatch.apply_patch(body, override.patch)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
                raise InvalidBundle(f"overrides[{i}] on {key.words()} for {cluster.name}: {error}") from None
        body = _substitute(body, fields, f"manifests[{index}] ({key.words()})")
        if spec.placement is not None and replicas is not None:
            placement.render_share(body, replicas, workloads, spec.manifests)
        if mode is not None and policy_engine(key) is not None:
            set_mode(body, mode)
        meta_ = body.setdefault("metadata", {})
        meta_.setdefault("labels", {})[BUNDLE_LABEL] = spec.name
        meta_.setdefault("annotations", {})[REVISION_ANNOTATION] = rev
        objects.append(RenderedObject(key=key_of(body), body=body))
    return ClusterRendering(cluster=cluster.name, revision=rev, mode=mode, objects=objects, overrides=chosen)


def _template_names(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, str) and "{{" in value:
        found |= meta.find_undeclared_variables(TEMPLATES.parse(value))
    elif isinstance(value, dict):
        for v in value.values():
            found |= _template_names(v)
    elif isinstance(value, list):
        for v in value:
            found |= _template_names(v)
    return found


def bundle_problems(spec: BundleSpec) -> list[tuple[Where, str]]:
    """Everything wrong with a bundle that its models cannot see: (where, what to fix)."""
    problems: list[tuple[Where, str]] = []
    if not spec.manifests:
        problems.append((("manifests",), "the bundle has no objects: give manifests, or a source directory or git"
                         " repository that holds YAML files"))
    seen: dict[tuple[str, str, str, str], int] = {}
    for i, manifest in enumerate(spec.manifests):
        key = key_of(manifest)
        for field, value in (("apiVersion", key.api_version), ("kind", key.kind), ("metadata.name", key.name)):
            if not value:
                problems.append((("manifests", i), f"manifests[{i}]: {field} is required"))
        identity = (group_of(key.api_version), key.kind, key.namespace, key.name)
        if identity in seen and key.name:
            problems.append((("manifests", i), f"manifests[{i}]: {key.words()} is also manifests[{seen[identity]}];"
                             " each object once"))
        seen.setdefault(identity, i)
        try:
            unknown = _template_names(manifest) - {"cluster"}
        except TemplateError as error:
            problems.append((("manifests", i), f"manifests[{i}] ({key.words()}): not a valid substitution: {error}"))
            continue
        if unknown:
            problems.append((("manifests", i), f"manifests[{i}] ({key.words()}): substitutions may use only cluster.*"
                             f" (name, region, environment, provider, version, labels); not {', '.join(sorted(unknown))}"))
    for i, override in enumerate(spec.overrides):
        targets = [m for m in spec.manifests if matches(override.target, key_of(m))]
        if not targets:
            problems.append((("overrides", i, "target"), f"overrides[{i}].target matches none of the bundle's objects"))
        try:
            patch = jsonpatch.JsonPatch(override.patch)
            for manifest in targets:
                patch.apply(copy.deepcopy(manifest))
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError, TypeError) as error:
            problems.append((("overrides", i, "patch"), f"overrides[{i}].patch: {error}"))
    try:
        waves.failure_budget(spec.failure_budget, 100)
    except refusals.Refusal as error:
        problems.append((("failure_budget",), str(error)))
    names = [stage.name for stage in spec.stages]
    for i, name in enumerate(names):
        if name in names[:i]:
            problems.append((("stages", i, "name"), f"stages[{i}].name: {name!r} is used by an earlier stage"))
    for i, stage in enumerate(spec.stages):
        spread = stage.pick.spread_over if stage.pick else None
        if spread and spread not in ("region", "provider", "environment", "version") and not (
                spread.startswith("label:") and len(spread) > 6):
            problems.append((("stages", i, "pick", "spread_over"), f"stages[{i}].pick.spread_over: {spread!r}; use region,"
                             " provider, environment, version or label:<key>"))
    if spec.placement is not None:
        problems += placement.placement_problems(spec.placement, spec.manifests, spec.overrides)
    for i, rule in enumerate(spec.drift.ignore):
        for j, path in enumerate(rule.paths):
            if not path.startswith("/"):
                problems.append((("drift", "ignore", i, "paths", j), f"drift.ignore[{i}].paths[{j}]: {path!r} is not a"
                                 " JSON pointer; start it with /"))
    return problems


def check(spec: BundleSpec) -> None:
    problems = bundle_problems(spec)
    if problems:
        raise InvalidBundle("; ".join(message for _, message in problems))


def describe(report: GiveReport) -> str:
    """What a cluster was given, in a few words: '2 created, 1 pruned; 3 violations'."""
    changed = [c for c in report.changes if c.action != "unchanged"]
    words = ", ".join(f"{sum(1 for c in changed if c.action == a)} {a}" for a in ("created", "configured", "pruned")
                      if any(c.action == a for c in changed)) or "already at the revision"
    return words + (f"; {report.violations} violations" if report.violations else "")
