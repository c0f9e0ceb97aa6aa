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

from regatta.formats.yaml_lines import line_of
from regatta.models import PatchWaveInput
from regatta.rules import waves


class WaveFileError(ValueError):
    pass


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
        lines = [f"{path}:{line_of(root, e['loc'])}: {'.'.join(map(str, e['loc'])) or 'wave'}: {e['msg']}"
                 for e in error.errors()]
        raise WaveFileError("\n".join(lines)) from None
    problems = waves.wave_problems(wave)
    if problems:
        raise WaveFileError("\n".join(f"{path}:{line_of(root, loc)}: {message}" for loc, message in problems))
    return wave
