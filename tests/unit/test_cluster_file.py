"""A cluster file's problems at their lines, with YAML's usual traps named (regatta/formats/cluster_file.py)."""

from __future__ import annotations

import pytest

from regatta.formats.cluster_file import ClusterFileError, load_cluster_file

GOOD = """name: gke-search-euw4
provider: gke
region: europe-west4
version: "1.35"
environment: staging
node_pools:
  - {name: system, node_count: 2, node_size: e2-standard-4}
"""


def test_the_example_reads_and_the_flags_replace_what_the_file_says(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text(GOOD)
    request = load_cluster_file(path, defaults={"requested_by": "alice", "ticket": "CHG-FILE"},
                                overrides={"ticket": "CHG-FLAG"})
    assert (request.name, request.version, request.requested_by, request.ticket) == (
        "gke-search-euw4", "1.35", "alice", "CHG-FLAG")


def test_an_unquoted_version_is_placed_at_its_line_and_the_trap_named(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text(GOOD.replace('version: "1.35"', "version: 1.30"))
    with pytest.raises(ClusterFileError) as refused:
        load_cluster_file(path, defaults={"requested_by": "alice"})
    said = str(refused.value)
    assert said.startswith(f"{path}:4: version: Input should be a valid string"), said
    assert "YAML read it as the number 1.3: quote it" in said and "pydantic.dev" not in said


def test_a_word_yaml_takes_for_a_boolean_is_named_too(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text(GOOD.replace("environment: staging", "environment: no"))
    with pytest.raises(ClusterFileError, match=r":5: environment: .*YAML read an unquoted word as false"):
        load_cluster_file(path, defaults={"requested_by": "alice"})


def test_a_hooks_file_says_the_line_of_each_problem_and_its_yaml_trap(tmp_path):
    from regatta.cli.upgrade import read_hooks
    from regatta.temporal.outcomes import OperationRefused

    path = tmp_path / "hooks.yaml"
    path.write_text("- name: gate\n  at: before_control_plane\n  webhook: {url: https://hooks.example.com/gate}\n"
                    "- name: late\n  at: after_lunch\n  webhook: {url: https://hooks.example.com/late}\n")
    with pytest.raises(OperationRefused) as refused:
        read_hooks(str(path))
    assert f"--hooks-file {path}: {path}:5: 1.at: Input should be 'before_control_plane'" in str(refused.value)
    path.write_text("name: gate\n")
    with pytest.raises(OperationRefused, match=r"hooks.yaml:1: a hooks file is a YAML list of hooks"):
        read_hooks(str(path))
    path.write_text("- name: gate\n  at: before_control_plane\n  webhook: {url: https://hooks.example.com/gate}\n")
    assert read_hooks(str(path))[0]["name"] == "gate"
