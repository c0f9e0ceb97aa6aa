"""Four eyes compares people, not spellings: a token's name, the fleet view's, and a ticket system's
free-text `by` are the same person when they differ only in case, spacing or an e-mail domain."""

from __future__ import annotations

import pytest

from regatta.rules.access import same_person


@pytest.mark.parametrize(("first", "second", "same"), [
    ("alice", "alice", True),
    ("alice", " Alice ", True),
    ("alice", "ALICE@corp.example", True),
    ("sre bob", "sre  Bob", True),
    ("alice", "alicia", False),
    ("alice", "bob@corp.example", False),
    ("servicenow", "alice", False),
])
def test_four_eyes_compares_people(first, second, same):
    assert same_person(first, second) is same
