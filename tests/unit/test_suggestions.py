"""Names suggested for one that is not known (regatta/rules/suggestions.py)."""

from __future__ import annotations

from regatta.rules.suggestions import known_names_hint, nearest

FLEET = ["aks-dev-westeurope", "eks-dev-apse2", "eks-prod-euw1", "eks-prod-use1", "eks-staging-use1", "gke-prod-euw4"]


def test_a_misspelt_name_gets_the_nearest_ones_not_the_first_in_the_alphabet():
    assert nearest("eks-prod-usee1", FLEET)[0] == "eks-prod-use1"
    assert known_names_hint("eks-prod-usee1", FLEET, what="cluster").startswith("; did you mean eks-prod-use1")
    assert nearest("gke-prd-euw4", FLEET)[0] == "gke-prod-euw4"


def test_a_name_like_none_lists_the_known_ones_and_says_how_many_more():
    many = [f"c{i:02d}" for i in range(10)]
    assert nearest("zzzzzz", FLEET) == []
    assert known_names_hint("zzzzzz", many, what="cluster") == (
        "; known clusters include c00, c01, c02, c03, c04, c05, c06, c07 and 2 more")
    assert known_names_hint("x", [], what="bundle") == "; there are no bundles yet"
