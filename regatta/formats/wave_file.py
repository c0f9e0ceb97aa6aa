"""Reading a wave file (`regatta wave start --file wave.yaml`): YAML into a PatchWaveInput, and
every problem reported with the file and line that holds it, so the fix is one edit away.

Used by the CLI and by schedules made from a wave file; the API takes the same wave as JSON
(`POST /v1/operations`, kind `wave`). The planner's own checks (`waves.wave_problems`) are
located the same way as the model's.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from regatta.models import PatchWaveInput
from regatta.rules import waves


class WaveFileError(ValueError):
    pass


def _line(node: yaml.Node | None, loc: tuple) -> int:
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


def load_wave_file(path: str | Path) -> PatchWaveInput:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise WaveFileError(f"cannot read wave file {path}: {error.strerror or error}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise WaveFileError(f"{where}: not valid YAML: {getattr(error, 'problem', None) or error}") from None
    if not isinstance(raw, dict):
        raise WaveFileError(f"{path}:1: a wave file is one mapping with name, target_version and stages (see examples/wave.yaml)")
    try:
        wave = PatchWaveInput.model_validate(raw)
    except ValidationError as error:
        lines = [f"{path}:{_line(root, e['loc'])}: {'.'.join(map(str, e['loc'])) or 'wave'}: {e['msg']}"
                 for e in error.errors()]
        raise WaveFileError("\n".join(lines)) from None
    problems = waves.wave_problems(wave)
    if problems:
        raise WaveFileError("\n".join(f"{path}:{_line(root, loc)}: {message}" for loc, message in problems))
    return wave
