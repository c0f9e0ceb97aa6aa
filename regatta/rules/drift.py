"""Drift: how a live object differs from what Regatta applied, in the fields Regatta sets, who
changed them (the field manager that owns them now, from managedFields) and when; which
differences are noise (values the API server writes in another form, paths a bundle ignores);
and which drifts a suppression covers.

Pure: the drift sweep activity and the unit tests call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from regatta.models.policy import FIELD_MANAGER, BundleObjectKey, DriftIgnore, DriftSuppression, FieldChange
from regatta.rules import quantities
from regatta.rules.bundles import matches

# Paths every bundle ignores: what the API server, kubectl and admission controllers write on
# their own into objects Regatta applies.
KNOWN_NOISE = ("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
               "/metadata/annotations/deployment.kubernetes.io~1revision",
               "/spec/template/metadata/creationTimestamp")
def same_value(applied: Any, live: Any) -> bool:
    """Equal, or the same quantity written another way (the API server's '1' for '1000m', 1 for '1');
    true is not 1."""
    if isinstance(applied, bool) or isinstance(live, bool):
        return applied is live
    if applied == live:
        return True
    a, b = quantities.read(applied), quantities.read(live)
    return a is not None and a == b


def _pointer(parts: Sequence[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def differences(applied: Any, live: Any, parts: tuple[str | int, ...] = ()) -> list[FieldChange]:
    """The fields Regatta set (every leaf of what it applied) whose live value differs."""
    if isinstance(applied, dict):
        if not isinstance(live, dict):
            return [FieldChange(path=_pointer(parts), before=applied, after=live)]
        found = []
        for key, value in applied.items():
            if not parts and key == "status":
                continue
            found += differences(value, live.get(key), (*parts, key))
        return found
    if isinstance(applied, list):
        if not isinstance(live, list) or len(live) != len(applied):
            return [FieldChange(path=_pointer(parts), before=applied, after=live)]
        return [change for i, (a, b) in enumerate(zip(applied, live, strict=True)) for change in differences(a, b, (*parts, i))]
    return [] if same_value(applied, live) else [FieldChange(path=_pointer(parts), before=applied, after=live)]


def ignored(path: str, key: BundleObjectKey, rules: Sequence[DriftIgnore]) -> bool:
    prefixes = list(KNOWN_NOISE) + [p for rule in rules if matches(rule.match, key) for p in rule.paths]
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def _owned_paths(fields: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The paths a managedFields fieldsV1 names, as field names ('f:data' → 'data'; list keys and
    values stay as written: a pointer with list indexes matches up to the list)."""
    found = []
    if isinstance(fields, dict):
        for key, value in fields.items():
            if key == ".":
                continue
            name = key[2:] if key.startswith("f:") else key
            found.append((*prefix, name))
            found += _owned_paths(value, (*prefix, name))
    return found


def _parts(pointer: str) -> tuple[str, ...]:
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:])


def who_changed(managed_fields: Sequence[dict[str, Any]], path: str) -> tuple[str | None, str | None]:
    """The manager other than Regatta that owns the deepest part of the path, and when it wrote it."""
    wanted = _parts(path)
    best: tuple[int, str | None, str | None] = (0, None, None)
    for entry in managed_fields:
        manager = entry.get("manager")
        if manager == FIELD_MANAGER:
            continue
        for owned in _owned_paths(entry.get("fieldsV1") or {}):
            depth = len(owned)
            if wanted[:depth] == owned and depth > best[0]:
                best = (depth, manager, entry.get("time"))
    return best[1], best[2]


def suppression_for(suppressions: Sequence[DriftSuppression], *, cluster: str, bundle: str, key: BundleObjectKey,
                    paths: Sequence[str], at: datetime) -> DriftSuppression | None:
    """The suppression in force that covers every changed path of the drift."""
    for suppression in suppressions:
        if (suppression.cluster, suppression.bundle) != (cluster, bundle) or suppression.until <= at:
            continue
        if not matches(suppression.match, key):
            continue
        prefix = suppression.path.rstrip("/")
        if not prefix or all(p == prefix or p.startswith(prefix + "/") for p in paths):
            return suppression
    return None
