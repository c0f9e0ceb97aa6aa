"""How an operation ended, as every answer reports it (regatta/rules/outcomes.py)."""

from __future__ import annotations

import pytest

from regatta.rules.outcomes import outcome_of, outcome_of_result, verdict


@pytest.mark.parametrize(("status", "returned", "outcome", "judged"), [
    ("RUNNING", None, None, "running"),
    ("CONTINUED_AS_NEW", None, None, "running"),
    ("COMPLETED", "succeeded", "succeeded", "succeeded"),
    ("COMPLETED", "released", "released", "succeeded"),  # a DR hold let go, as asked
    ("COMPLETED", "nothing_to_move", "nothing_to_move", "succeeded"),
    ("COMPLETED", "halted", "halted", "unsuccessful"),  # a rollout stopped by a conflict: its code ran to the end
    ("COMPLETED", "aborted", "aborted", "unsuccessful"),
    ("COMPLETED", "rolled_back", "rolled_back", "unsuccessful"),
    ("COMPLETED", "not_started", "not_started", "unsuccessful"),
    ("COMPLETED", None, None, "unknown"),  # its result could not be read
    ("FAILED", None, "failed", "unsuccessful"),
    ("TERMINATED", None, "terminated", "unsuccessful"),
    ("CANCELED", None, "canceled", "unsuccessful"),
    ("TIMED_OUT", None, "timed_out", "unsuccessful"),
])
def test_only_an_operation_that_did_what_was_asked_reads_as_succeeded(status, returned, outcome, judged):
    assert outcome_of(status, returned) == outcome
    assert verdict(status, outcome) == judged


def test_a_completed_result_that_names_no_outcome_ran_to_its_end_and_succeeded():
    assert outcome_of_result({"outcome": "halted", "message": "conflict"}) == "halted"
    assert outcome_of_result({"swept": 12, "failed": []}) == "succeeded"  # a fleet sweep's counts
    assert outcome_of_result(None) == "succeeded"  # a workflow that returns nothing
