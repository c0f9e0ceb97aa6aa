"""How the simulated API server changes an object the way a real one does: merge patches (RFC
7386), strategic-merge patches (lists of named items merged by name, `$patch: delete`), JSON
patches (RFC 6902, through the `jsonpatch` library), and server-side apply with managedFields:
each field manager owns the fields it set, applying a field another manager owns with a different
value is a conflict naming that manager (unless forced), and fields a manager stops applying are
removed when nobody else owns them.

Field sets follow the API server's simplifications well enough for kubectl and for drift reports:
a path is a tuple of map keys, every list is atomic (owned whole), and the server-owned parts of
metadata and all of `status` are never owned.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import jsonpatch

Path = tuple[str, ...]
SERVER_METADATA = frozenset({"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                             "managedFields", "deletionTimestamp", "selfLink"})


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[tuple[Path, str]]):
        super().__init__("; ".join(f"{dotted(path)} owned by {manager}" for path, manager in conflicts))
        self.conflicts = conflicts


def dotted(path: Path) -> str:
    return "." + ".".join(path)


# --------------------------------------------------------------------------- patches


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge key by key, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """A strategic-merge patch: a merge patch in which lists of maps that carry a `name` are merged
    item by item on it (containers, ports, volumes, env), and `$patch: delete` removes an item."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):  # $setElementOrder/..., $retainKeys: ordering hints, not data
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and _named(value) and isinstance(result.get(key), list) and _named(result[key]):
            merged = {item["name"]: item for item in result[key]}
            for item in value:
                if item.get("$patch") == "delete":
                    merged.pop(item["name"], None)
                else:
                    merged[item["name"]] = strategic_merge_patch(merged.get(item["name"]), item)
            result[key] = list(merged.values())
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and "name" in item for item in items)


def json_patch(target: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    patched: dict[str, Any] = jsonpatch.apply_patch(target, operations)
    return patched


# --------------------------------------------------------------------------- field sets


def fields_of(obj: dict[str, Any]) -> set[Path]:
    """The paths of every leaf a client can own in `obj`."""
    found: set[Path] = set()

    def walk(value: Any, path: Path) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                walk(item, (*path, key))
        else:
            found.add(path)

    for key, value in obj.items():
        if key in ("apiVersion", "kind", "status"):
            continue
        if key == "metadata":
            for meta_key, meta_value in (value or {}).items():
                if meta_key not in SERVER_METADATA:
                    walk(meta_value, ("metadata", meta_key))
            continue
        walk(value, (key,))
    return found


def value_at(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


_MISSING = object()


def _set(obj: dict[str, Any], path: Path, value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(obj.get(key), dict):
            obj[key] = {}
        obj = obj[key]
    obj[path[-1]] = copy.deepcopy(value)


def _remove(obj: dict[str, Any], path: Path) -> None:
    parents = []
    for key in path[:-1]:
        if not isinstance(obj.get(key), dict):
            return
        parents.append((obj, key))
        obj = obj[key]
    obj.pop(path[-1], None)
    for parent, key in reversed(parents):  # a map emptied by the removal goes too
        if parent[key] == {}:
            parent.pop(key)


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return tree


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for key, child in tree.items():
        if not key.startswith("f:"):
            continue
        path = (*prefix, key[2:])
        paths |= from_fields_v1(child, path) if child else {path}
    return paths


def _entries(obj: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list(((obj or {}).get("metadata") or {}).get("managedFields") or [])


def _entry(manager: str, operation: str, api_version: str, paths: set[Path]) -> dict[str, Any]:
    return {"manager": manager, "operation": operation, "apiVersion": api_version, "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(paths), "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def owners(obj: dict[str, Any] | None) -> dict[tuple[str, str], set[Path]]:
    """(manager, operation) → the fields it owns."""
    return {(e["manager"], e["operation"]): from_fields_v1(e.get("fieldsV1") or {}) for e in _entries(obj)}


def _with_owners(obj: dict[str, Any], owned: dict[tuple[str, str], set[Path]], api_version: str,
                 writer: tuple[str, str]) -> dict[str, Any]:
    """The managed fields after `writer` wrote with `api_version`: every other manager's entry keeps
    the apiVersion it last wrote with, as the API server keeps it."""
    previous = {(e["manager"], e["operation"]): e for e in _entries(obj)}
    entries = []
    for (manager, operation), paths in owned.items():
        if not paths:
            continue
        kept = previous.get((manager, operation))
        written = api_version if (manager, operation) == writer or kept is None else str(kept.get("apiVersion") or api_version)
        entry = _entry(manager, operation, written, paths)
        if kept is not None and from_fields_v1(kept.get("fieldsV1") or {}) == paths:
            entry["time"] = kept.get("time", entry["time"])
        entries.append(entry)
    obj.setdefault("metadata", {})["managedFields"] = entries
    return obj


# --------------------------------------------------------------------------- writes


def record_update(old: dict[str, Any] | None, new: dict[str, Any], *, manager: str) -> dict[str, Any]:
    """A create, a replace or a patch by `manager`: the fields it changed become its own."""
    owned = owners(old)
    before, after = (fields_of(old) if old else set()), fields_of(new)
    changed = {p for p in before | after if value_at(old or {}, p) != value_at(new, p)}
    for key in owned:
        owned[key] -= changed
        owned[key] &= after
    owned[(manager, "Update")] = owned.get((manager, "Update"), set()) | (changed & after)
    return _with_owners(new, owned, str(new.get("apiVersion", "v1")), (manager, "Update"))


def apply(live: dict[str, Any] | None, applied: dict[str, Any], *, manager: str, force: bool) -> dict[str, Any]:
    """Server-side apply of `applied` (the manager's whole intent) onto `live`."""
    intent = fields_of(applied)
    owned = owners(live)
    base = copy.deepcopy(live) if live else {"apiVersion": applied.get("apiVersion"), "kind": applied.get("kind"),
                                              "metadata": {k: v for k, v in (applied.get("metadata") or {}).items()
                                                           if k in ("name", "namespace")}}
    conflicts = [(path, other) for (other, _), paths in owned.items() if other != manager
                 for path in sorted(intent & paths) if value_at(base, path) != value_at(applied, path)]
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    mine = owned.get((manager, "Apply"), set())
    others = set().union(*(paths for key, paths in owned.items() if key != (manager, "Apply")))
    result = base
    for path in mine - intent - others:  # what the manager no longer applies, and nobody else owns
        _remove(result, path)
    for path in sorted(intent):
        _set(result, path, value_at(applied, path))
    for key, paths in owned.items():
        if key[0] != manager and force:
            owned[key] = paths - intent  # forced: the fields move to this manager
    owned[(manager, "Apply")] = intent
    return _with_owners(result, owned, str(applied.get("apiVersion", "v1")), (manager, "Apply"))
