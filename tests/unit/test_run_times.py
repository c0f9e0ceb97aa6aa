"""A run of the whole suite writes its own figures (docs/testing.md links to them); a run of part of it writes none."""

from __future__ import annotations

import json

pytest_plugins = ["pytester"]

CONFTEST = """
from tests.run_times import register

def pytest_configure(config):
    register(config)
"""
TESTS = """
import time, pytest

def test_slow():
    time.sleep(0.2)

def test_fails():
    assert 1 == 2

@pytest.mark.skip(reason="not here")
def test_skipped():
    pass
"""


def test_a_whole_run_writes_its_counts_wall_time_and_slowest_tests(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_some=TESTS)
    pytester.runpytest_inprocess().assert_outcomes(passed=1, failed=1, skipped=1)
    figures = json.loads((pytester.path / "test-results" / "times.json").read_text())
    assert figures["tests"] == {"failed": 1, "passed": 1, "skipped": 1} and figures["exit_status"] == 1
    assert figures["wall_seconds"] >= 0.2 and figures["test_seconds"] >= 0.2
    assert figures["slowest"][0]["test"] == "test_some.py::test_slow" and figures["slowest"][0]["seconds"] >= 0.2
    assert figures["files"][0]["file"] == "test_some.py" and figures["files"][0]["seconds"] >= 0.2
    assert figures["processes"]["main"][0]["file"] == "test_some.py" and figures["processes"]["main"][0]["to"] >= 0.2


def test_a_run_of_part_of_the_suite_writes_nothing(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_some=TESTS)
    pytester.runpytest_inprocess("-k", "slow").assert_outcomes(passed=1)
    pytester.runpytest_inprocess("test_some.py").assert_outcomes(passed=1, failed=1, skipped=1)
    assert not (pytester.path / "test-results").exists()
