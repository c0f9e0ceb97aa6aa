"""Reading one YAML file into one model, with every problem at `file:line: what to fix`: the
1-based line of the node a pydantic or rule location (`("stages", 1, "name")`) reaches. The wave
file and the bundle file readers share it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Shape = TypeVar("Shape", bound=BaseModel)


def line_of(node: yaml.Node | None, loc: tuple) -> int:
    """The 1-based line of the deepest node the location reaches."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((value for key, value in node.value if key.value == part), None)
            if found is None:
                # A missing field belongs where its mapping is; an unknown one is its own key.
                key = next((k for k, _ in node.value if k.value == part), None)
                return key.start_mark.line + 1 if key is not None else line
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def read_model(path: Path, model: type[Shape], *, what: str, shape: str, error: type[ValueError]) -> tuple[Shape, Any]:
    """The file as `model` and its YAML node tree (to place later problems), or `error` with every
    problem at its line. `what` names the file ("wave file"), `shape` says what it should hold."""
    try:
        text = path.read_text()
    except OSError as failure:
        raise error(f"cannot read {what} {path}: {failure.strerror or failure}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as failure:
        mark = getattr(failure, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise error(f"{where}: not valid YAML: {getattr(failure, 'problem', None) or failure}") from None
    if not isinstance(raw, dict):
        raise error(f"{path}:1: a {what} is {shape}")
    try:
        return model.model_validate(raw), root
    except ValidationError as failure:
        name = what.split()[0]
        raise error("\n".join(f"{path}:{line_of(root, e['loc'])}: {'.'.join(map(str, e['loc'])) or name}: {e['msg']}"
                              for e in failure.errors())) from None
