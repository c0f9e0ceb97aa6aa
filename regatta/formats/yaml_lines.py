"""Where a problem sits in a YAML file: the 1-based line of the node a pydantic or rule location
(`("stages", 1, "name")`) reaches, so every reader reports `file:line: what to fix`."""

from __future__ import annotations

import yaml


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
