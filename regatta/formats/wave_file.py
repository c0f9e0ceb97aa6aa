"""Reading a wave file (`regatta wave start --file wave.yaml`): YAML into a PatchWaveInput, and
every problem reported with the file and line that holds it, so the fix is one edit away.

Used by the CLI and by schedules made from a wave file; the API takes the same wave as JSON
(`POST /v1/operations`, kind `wave`). The planner's own checks (`waves.wave_problems`) are
located the same way as the model's.
"""

from __future__ import annotations

from pathlib import Path

from regatta.formats.yaml_lines import line_of, read_model
from regatta.models import PatchWaveInput
from regatta.rules import waves


class WaveFileError(ValueError):
    pass


def load_wave_file(path: str | Path) -> PatchWaveInput:
    path = Path(path)
    wave, root = read_model(path, PatchWaveInput, what="wave file", error=WaveFileError,
                            shape="one mapping with name, target_version and stages (see examples/wave.yaml)")
    problems = waves.wave_problems(wave)
    if problems:
        raise WaveFileError("\n".join(f"{path}:{line_of(root, loc)}: {message}" for loc, message in problems))
    return wave
