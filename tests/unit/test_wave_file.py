"""Wave files: the example loads, and each kind of mistake is refused naming the file, the line
and what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from regatta.formats.wave_file import WaveFileError, load_wave_file

EXAMPLE = Path(__file__).parents[2] / "examples" / "wave.yaml"
GOOD = """\
name: nov
target_version: "1.31"
stages:
- name: canary
  selector: {environment: canary}
- name: prod
  selector: {environment: prod}
  concurrency: 2
"""


def refusal(tmp_path, text: str) -> str:
    path = tmp_path / "wave.yaml"
    path.write_text(text)
    with pytest.raises(WaveFileError) as refused:
        load_wave_file(path)
    return str(refused.value).replace(str(path), "wave.yaml")


def test_the_example_wave_loads():
    wave = load_wave_file(EXAMPLE)
    assert [s.name for s in wave.stages] == ["canary", "staging", "prod-eu", "prod-rest"]
    assert wave.failure_budget == "10%" and wave.freezes[0].name == "end-of-year"


@pytest.mark.parametrize("change, says", [
    (("  concurrency: 2", "  concurrency: 0"), "wave.yaml:8: stages.1.concurrency: Input should be greater than or equal to 1"),
    (("  concurrency: 2", "  concurency: 2"), "wave.yaml:8: stages.1.concurency: Extra inputs are not permitted"),
    (('target_version: "1.31"', 'target_version: "1.31.4"'), "wave.yaml:2: target_version:"),
    (("- name: prod", "- name: canary"), "wave.yaml:6: stages[1].name: 'canary' is used by an earlier stage"),
    (("name: nov\n", ""), "wave.yaml:1: name: Field required"),
    (("  selector: {environment: prod}", "  selector: {environment: prod"), "wave.yaml:8: not valid YAML"),
])
def test_bad_wave_files_are_refused_with_the_line_that_is_wrong(tmp_path, change, says):
    old, new = change
    assert says in refusal(tmp_path, GOOD.replace(old, new))


def test_windows_freezes_and_budgets_are_checked_where_they_stand(tmp_path):
    text = GOOD + """\
failure_budget: many
maintenance_windows:
- days: [tue]
  start: "25:00"
  duration_minutes: 60
- days: [tue]
  start: "02:00"
  duration_minutes: 60
  timezone: Europe/Atlantis
"""
    message = refusal(tmp_path, text)
    assert "wave.yaml:12: maintenance_windows.0.start: String should match pattern" in message
    message = refusal(tmp_path, text.replace('"25:00"', '"02:00"'))
    assert "wave.yaml:9: failure_budget: 'many' is neither a count (2) nor a share" in message
    assert "wave.yaml:17: maintenance_windows[1].timezone: unknown time zone 'Europe/Atlantis'" in message


def test_a_file_that_is_not_a_wave_is_refused(tmp_path):
    assert "a wave file is one mapping" in refusal(tmp_path, "- just\n- a list\n")
    with pytest.raises(WaveFileError) as missing:
        load_wave_file(tmp_path / "nope.yaml")
    assert "cannot read wave file" in str(missing.value)
