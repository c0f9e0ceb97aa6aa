"""Reading one YAML file into one model, with every problem at `file:line: what to fix`: the
1-based line of the node a pydantic or rule location (`("stages", 1, "name")`) reaches. The wave,
bundle, cluster and fleet files and the upgrade hooks file are read through it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

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


# YAML from outside Regatta (a bundle's git source, a file an operator names) is read within these: a
# document's size, and the number of nodes it holds once every alias is expanded (an "alias bomb" of nine
# anchors, each naming the one before ten times, is a few hundred bytes and a billion nodes).
MAX_YAML_BYTES = 4 * 1024 * 1024
MAX_YAML_NODES = 200_000


class YamlTooLarge(yaml.YAMLError):
    def __init__(self, message: str, mark: yaml.Mark | None = None):
        super().__init__(message)
        self.problem, self.problem_mark = message, mark


def _expanded(root: yaml.Node, sizes: dict[int, int], budget: int) -> int:
    """How many nodes `root` stands for with its aliases expanded, stopping once past `budget`; walked
    without recursion, and an alias back into its own anchor (a cycle) is refused."""
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if children_done:
            open_nodes.discard(id(node))
            sizes[id(node)] = min(budget + 1, 1 + sum(sizes[id(child)] for child in children))
            continue
        if id(node) in open_nodes:
            raise YamlTooLarge("an alias refers back into its own anchor (a cycle)", node.start_mark)
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise YamlTooLarge("an alias refers back into its own anchor (a cycle)", child.start_mark)
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def compose_limited(text: str) -> list[yaml.Node | None]:
    """Every document's node tree (None for an empty document), refused (YamlTooLarge) past MAX_YAML_BYTES
    or MAX_YAML_NODES, for a cycle, or for nesting deeper than the parser goes."""
    if len(text.encode()) > MAX_YAML_BYTES:
        raise YamlTooLarge(f"the file is larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB")
    try:
        nodes: list[yaml.Node | None] = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except RecursionError:
        raise YamlTooLarge("the document nests too deeply") from None
    sizes: dict[int, int] = {}
    total = 0
    for node in nodes:
        if node is None:
            continue
        total += _expanded(node, sizes, MAX_YAML_NODES)
        if total > MAX_YAML_NODES:
            raise YamlTooLarge(f"the document holds more than {MAX_YAML_NODES} values once its aliases are expanded"
                               " (an alias bomb?)", node.start_mark)
    return nodes


def load_limited(text: str) -> list[Any]:
    """The documents of a YAML stream (None for an empty one), within the limits of compose_limited."""
    compose_limited(text)
    try:
        return list(yaml.safe_load_all(text))
    except RecursionError:
        raise YamlTooLarge("the document nests too deeply") from None


def yaml_trap(problem: Mapping[str, Any]) -> str:
    """A hint for YAML's usual traps behind a validation problem: an unquoted 1.30 is the number 1.3, an unquoted
    no, yes, on or off a boolean, where a string was meant."""
    value = problem.get("input")
    if problem.get("type") != "string_type":
        return ""
    if isinstance(value, bool):
        return f" (YAML read an unquoted word as {str(value).lower()}: quote it, e.g. \"no\")"
    if isinstance(value, int | float):
        return f" (YAML read it as the number {value!r}: quote it, e.g. version: \"1.30\", as 1.30 unquoted is 1.3)"
    return ""


def _document(path: Path, *, what: str, error: type[ValueError]) -> tuple[Any, yaml.Node | None]:
    """The file's one YAML document, as data and as its node tree, or `error` saying where it is not YAML."""
    try:
        text = path.read_text()
    except OSError as failure:
        raise error(f"cannot read {what} {path}: {failure.strerror or failure}") from None
    try:
        roots = compose_limited(text)
        if len(roots) > 1:
            raise YamlTooLarge("the file holds more than one YAML document; give one",
                               roots[1].start_mark if roots[1] is not None else None)
        return (load_limited(text)[0] if roots else None), (roots[0] if roots else None)
    except yaml.YAMLError as failure:
        mark = getattr(failure, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise error(f"{where}: not valid YAML: {getattr(failure, 'problem', None) or failure}") from None


def _placed(path: Path, root: yaml.Node | None, failure: ValidationError, name: str) -> str:
    return "\n".join(f"{path}:{line_of(root, e['loc'])}: {'.'.join(map(str, e['loc'])) or name}: {e['msg']}{yaml_trap(e)}"
                     for e in failure.errors())


def read_model(path: Path, model: type[Shape], *, what: str, shape: str, error: type[ValueError],
               defaults: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None) -> tuple[Shape, Any]:
    """The file as `model` and its YAML node tree (to place later problems), or `error` with every
    problem at its line. `what` names the file ("wave file"), `shape` says what it should hold; `defaults` fill
    what the file leaves out and `overrides` replace what it says (the command line's flags)."""
    raw, root = _document(path, what=what, error=error)
    if not isinstance(raw, dict):
        raise error(f"{path}:1: a {what} is {shape}")
    try:
        return model.model_validate({**(defaults or {}), **raw, **(overrides or {})}), root
    except ValidationError as failure:
        raise error(_placed(path, root, failure, what.split()[0])) from None


def read_items(path: Path, item: type[Shape], *, what: str, shape: str, error: type[ValueError]) -> list[Any]:
    """A file holding a YAML list of `item`, each checked, as the data it holds; or `error` with every problem at its
    line (`what` names the file, `shape` says what it should hold)."""
    raw, root = _document(path, what=what, error=error)
    if not isinstance(raw, list):
        raise error(f"{path}:1: a {what} is {shape}")
    try:
        TypeAdapter(list[item]).validate_python(raw)  # type: ignore[valid-type]
    except ValidationError as failure:
        raise error(_placed(path, root, failure, what.split()[0])) from None
    return raw
