"""Which clusters a selector takes (labels as Kubernetes selects them, environment, provider, region, explicit
names), what a cluster lacks when one does not take it, and the label selector as kubectl's `-l` writes it.

Pure: called by wave planning, the inventory's filters, the pre-start checks, the CLI and the API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from regatta.models import (
    ClusterRecord,
    ClusterSelector,
)
from regatta.models.calendar import LABEL_KEY, LabelRequirement


def holds(requirement: LabelRequirement, labels: Mapping[str, str]) -> bool:
    """Kubernetes' semantics: In needs the label with one of the values; NotIn is met by a cluster without the label
    or with another value; Exists and DoesNotExist by the label's presence alone."""
    has = requirement.key in labels
    if requirement.operator == "In":
        return has and labels[requirement.key] in requirement.values
    if requirement.operator == "NotIn":
        return not has or labels[requirement.key] not in requirement.values
    return has if requirement.operator == "Exists" else not has


def labels_match(selector: ClusterSelector, labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.labels.items()) and all(
        holds(requirement, labels) for requirement in selector.match_expressions)


def said(requirement: LabelRequirement) -> str:
    """The requirement as kubectl's `-l` writes it."""
    if requirement.operator in ("In", "NotIn"):
        return f"{requirement.key} {requirement.operator.lower()} ({','.join(requirement.values)})"
    return requirement.key if requirement.operator == "Exists" else f"!{requirement.key}"


# One requirement of kubectl's `-l`: `key in (a,b)`, `key notin (a,b)`, `key=v`, `key==v`, `key!=v`, `key`, `!key`.
_SET = re.compile(r"^\s*(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*$")
_EQUALITY = re.compile(r"^\s*(?P<key>[^\s!=(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)\s*$")
_EXISTS = re.compile(r"^\s*(?P<not>!?)\s*(?P<key>[^\s!=(),]+)\s*$")


def parse_label_selector(text: str) -> ClusterSelector:
    """A label selector as kubectl's `-l` takes it (`env in (dev,staging),!pci,team=payments,tier!=3`): equality
    parts go to `labels`, the rest to `match_expressions` (`!=` is NotIn, as Kubernetes reads it). ValueError saying
    which part is wrong and how to write it."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    labels: dict[str, str] = {}
    expressions: list[dict[str, Any]] = []
    for part in parts:
        if not part.strip():
            continue
        if found := _SET.match(part):
            values = [v.strip() for v in found["values"].split(",") if v.strip()]
            expressions.append({"key": found["key"], "operator": "In" if found["op"] == "in" else "NotIn",
                                "values": values})
        elif found := _EQUALITY.match(part):
            if not re.match(LABEL_KEY, found["key"]):
                raise ValueError(f"selector part {part.strip()!r}: {found['key']!r} is not a label key (letters, digits,"
                                 " -, _ and ., starting and ending with a letter or digit; a prefix/ before it)")
            if found["op"] == "!=":
                expressions.append({"key": found["key"], "operator": "NotIn", "values": [found["value"]]})
            elif found["key"] in labels and labels[found["key"]] != found["value"]:
                raise ValueError(f"selector part {part.strip()!r}: {found['key']} is already {labels[found['key']]}")
            else:
                labels[found["key"]] = found["value"]
        elif found := _EXISTS.match(part):
            expressions.append({"key": found["key"], "operator": "DoesNotExist" if found["not"] else "Exists"})
        else:
            raise ValueError(f"selector part {part.strip()!r} is not a label requirement; write it as kubectl's -l does:"
                             " env=prod, tier!=3, env in (dev,staging), env notin (prod), pci, !pci")
    try:
        return ClusterSelector.model_validate({"labels": labels, "match_expressions": expressions})
    except ValidationError as error:
        problem = error.errors()[0]
        raise ValueError(f"selector {text!r}: {problem['msg']}") from None


def selects(selector: ClusterSelector, cluster: ClusterRecord) -> bool:
    if selector.clusters is not None and cluster.name not in selector.clusters:
        return False
    if selector.environment is not None and cluster.environment != selector.environment:
        return False
    if selector.provider is not None and cluster.provider != selector.provider:
        return False
    if selector.region is not None and cluster.region != selector.region:
        return False
    return labels_match(selector, cluster.labels)


def misses(selector: ClusterSelector, cluster: ClusterRecord) -> list[str]:
    """What a selector asks for that the cluster does not have, in words ('label tier=1 (it has
    none)'); empty when the selector takes it."""
    found = []
    if selector.clusters is not None and cluster.name not in selector.clusters:
        found.append("to be one of " + ", ".join(selector.clusters[:5]) + ("…" if len(selector.clusters) > 5 else ""))
    for field in ("environment", "provider", "region"):
        wanted = getattr(selector, field)
        if wanted is not None and getattr(cluster, field) != wanted:
            found.append(f"{field} {wanted} (it is {getattr(cluster, field)})")
    for key, value in sorted(selector.labels.items()):
        has = cluster.labels.get(key)
        if has != value:
            found.append(f"label {key}={value} (it has {f'{key}={has}' if has is not None else f'no {key} label'})")
    for requirement in selector.match_expressions:
        if not holds(requirement, cluster.labels):
            has = cluster.labels.get(requirement.key)
            found.append(f"label {said(requirement)} (it has {f'{requirement.key}={has}' if has is not None else f'no {requirement.key} label'})")
    return found
