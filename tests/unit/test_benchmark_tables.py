"""The targets are stated once (benchmarks/targets.py), held against the figures the same way every
time, and docs/benchmarks.md's tables are what the saved runs say: a figure edited by hand, or a
result saved without its table written again, fails here."""

from __future__ import annotations

import json

from benchmarks.repeat import combine, medians, spread_of
from benchmarks.tables import number, rendered, stale
from benchmarks.targets import TABLES, Row, figure, verdicts


def test_a_bound_is_kept_or_missed():
    assert Row("x", at_most=1.5).met(1.5) is True
    assert Row("x", at_most=1.5).met(1.51) is False
    assert Row("x", at_least=500).met(499.9) is False
    assert Row("x", at_most=0, at_least=0).met(1) is False
    assert Row("x", at_most=0, at_least=0).target == "= 0"
    assert Row("x").met(3) is None  # a figure without a target
    assert Row("x", at_most=1).met(None) is None  # not measured is not met
    assert Row("x", at_most=1).met(True) is None  # a yes/no is not a number


def test_a_figure_is_found_by_its_dotted_path_keys_with_spaces_included():
    figures = {"queries": {"first page": {"p95_ms": 137}}, "seconds": 9}
    assert figure(figures, "queries.first page.p95_ms") == 137
    assert figure(figures, "queries.missing.p95_ms") is None


def test_verdicts_hold_each_target_against_the_run():
    found = {v["figure"]: v for v in verdicts("patch_wave_1000", {"clusters_per_min": 480.0, "ratio_to_script_plus_raw": 1.2})}
    assert found["clusters_per_min"]["met"] is False
    assert found["ratio_to_script_plus_raw"]["met"] is True
    assert found["max_history_events"]["measured"] is None and found["max_history_events"]["met"] is None


def test_the_median_of_three_runs_figure_by_figure():
    runs = [{"a": 1.0, "b": {"c": 10}, "d": [1, 5], "name": "x"}, {"a": 3.0, "b": {"c": 30}, "d": [2, 6], "name": "x"},
            {"a": 2.0, "b": {"c": 20}, "d": [3, 4], "name": "x"}]
    assert medians(runs) == {"a": 2.0, "b": {"c": 20}, "d": [2, 5], "name": "x"}
    assert spread_of(runs) == {"a": [1.0, 3.0], "b.c": [10, 30]}


def test_combined_runs_say_how_many_and_are_judged_on_the_medians():
    runs = [{"clusters_per_min": value, "run": {"command": ["patch_wave.py"]}} for value in (490.0, 520.0, 510.0)]
    combined = combine(runs, name="patch_wave_1000", command=["repeat.py", "--runs", "3"])
    assert combined["clusters_per_min"] == 510.0
    assert combined["median_of"]["runs"] == 3
    assert combined["median_of"]["spread"] == {"clusters_per_min": [490.0, 520.0]}
    assert {v["figure"]: v["met"] for v in combined["verdicts"]}["clusters_per_min"] is True


def test_one_run_keeps_its_evidence_and_several_keep_only_their_numbers():
    run = {"seconds": 800.0, "chaos": [{"killed": "worker", "at": 12.5}], "details": {"lost": []},
           "final_state": {"c-1": "1.31"}, "run": {"command": ["chaos.py"]}}
    alone = combine([run], name="chaos_50", command=["repeat.py", "--runs", "1"])
    assert alone["chaos"] == run["chaos"] and alone["details"] == run["details"] and alone["final_state"] == run["final_state"]
    several = combine([run, {**run, "seconds": 900.0}], name="chaos_50", command=["repeat.py", "--runs", "2"])
    assert "chaos" not in several and several["seconds"] == 850.0


def test_numbers_are_printed_as_a_reader_expects():
    assert number(513.0) == "513"
    assert number(10_000) == "10,000"
    assert number(3.4712) == "3.47"
    assert number(0.045) == "0.045"
    assert number(42.14, " ms") == "42.1 ms"
    assert number(None) == "not measured"


def test_a_table_is_written_from_the_json_and_goes_stale_when_the_json_changes(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "drain.json").write_text(json.dumps({"ratio_to_kubectl": 1.2, "regatta_seconds": 6.0,
                                                    "kubectl_seconds": 5.0, "pdb_violations": 0}))
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Drain\n\n<!-- figures: drain -->\nhand-written 0.01x\n<!-- end figures -->\n\nprose\n")
    assert stale(docs, results) == ["drain"]
    docs.write_text(rendered(docs.read_text(), results))
    text = docs.read_text()
    assert "| Regatta's drain against kubectl drain, replacements Ready at once | 1.2 | ≤ 1 | **missed** |" in text
    assert "| budget violations, either drain | 0 | = 0 | met |" in text
    assert "not measured yet" in text  # the slow-replacement run is not in this JSON
    assert "made before results recorded their commit" in text
    assert text.endswith("<!-- end figures -->\n\nprose\n")
    assert stale(docs, results) == []
    (results / "drain.json").write_text(json.dumps({"ratio_to_kubectl": 0.9}))
    assert stale(docs, results) == ["drain"]


def test_every_table_of_the_docs_is_what_its_saved_run_says():
    assert stale() == [], "run python benchmarks/tables.py after saving a result"


def test_every_table_names_figures_and_at_least_one_target():
    for name, rows in TABLES.items():
        assert rows and any(row.target for row in rows), name
        assert all(row.figure and row.words for row in rows), name



def test_a_steps_table_has_a_row_per_saved_run_with_the_commit_it_measured():
    from benchmarks.tables import steps_table

    saved = {"about": "why", "steps": [
        {"change": "before", "clusters_per_min": 232.3, "median_of": {"runs": 3}, "run": {"commit": "6bfb7c9ae9e7"}},
        {"change": "after", "clusters_per_min": 534.6, "run": {"commit": "eef748b7a1f5", "uncommitted_changes": True}},
    ]}
    lines = steps_table("patch_wave_1000_steps", saved).splitlines()
    assert lines[2].startswith("| before | 232.3 |") and lines[2].endswith("`6bfb7c9ae9`, median of 3 runs |")
    assert lines[3].startswith("| after | 534.6 |") and "`eef748b7a1` with uncommitted changes, one run" in lines[3]
    assert "not measured" in lines[3]  # a figure the run did not save is not made up
    assert lines[-1] == "why"
