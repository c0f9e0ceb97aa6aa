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


def test_a_refusal_names_the_role_in_english():
    from regatta.rules.access import refusal

    said = refusal(token="t", role="operator", scope=["*"], action="approve", environments=["prod"])
    assert said is not None and said.startswith("token t is an operator and may not approve (an operator may: ")
    said = refusal(token="v", role="viewer", scope=["*"], action="start", environments=["prod"])
    assert said is not None and said.startswith("token v is a viewer and may not start (a viewer may: ")


def test_a_count_takes_its_noun_in_the_right_number():
    from regatta.cli.render import counted

    assert [counted(1, "stage"), counted(2, "stage"), counted(0, "DR pair"), counted(1, "DR pair")] == [
        "1 stage", "2 stages", "0 DR pairs", "1 DR pair"]
