"""Every failure type Regatta raises is one of the named constants in regatta/models/errors.py, so
what a wave matches, what the API maps and what an operator's script looks for cannot drift apart
the way strings matched in several places did."""

from __future__ import annotations

import ast
from pathlib import Path

from regatta.models import ErrorType

ROOT = Path(__file__).resolve().parents[2]
RAISERS = {"ApplicationError", "refuse", "CloudError", "StartRefused"}
SOURCES = [*ROOT.glob("workflows/**/*.py"), *ROOT.glob("activities/*.py"), *ROOT.glob("regatta/rules/*.py"),
           *ROOT.glob("regatta/clouds/*.py"), *ROOT.glob("regatta/kube/*.py"), *ROOT.glob("regatta/temporal/*.py")]


def literal_types() -> list[str]:
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in RAISERS:
                for keyword in node.keywords:
                    if keyword.arg in ("type", "error_type") and isinstance(keyword.value, ast.Constant):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {keyword.value.value!r}")
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "error_type" for t in node.targets):
                if isinstance(node.value, ast.Constant):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} error_type = {node.value.value!r}")
    return found


def test_no_failure_type_is_spelled_as_a_string():
    assert literal_types() == []


def test_the_names_are_unique_and_read_as_they_are_matched():
    values = [e.value for e in ErrorType]
    assert len(values) == len(set(values))
    assert ErrorType.UNKNOWN_CLUSTER == "UnknownCluster" and ErrorType.CLUSTER_HELD == "ClusterHeld"
