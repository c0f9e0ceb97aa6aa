"""Selectors as Kubernetes writes them: equality labels (matchLabels), set-based requirements (matchExpressions: In,
NotIn, Exists, DoesNotExist) and kubectl's `-l` syntax, with what a cluster lacks in words."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from regatta.models import ClusterRecord, ClusterSelector
from regatta.rules.selectors import misses, parse_label_selector, selects


def cluster(name: str, **labels: str) -> ClusterRecord:
    return ClusterRecord(name=name, provider="eks", region="us-east-1", environment=labels.get("env", "dev"),
                         labels=labels, control_plane_version="1.31")


FLEET = [cluster("dev-a", env="dev", team="payments"), cluster("stg-a", env="staging", team="payments", pci="yes"),
         cluster("prod-a", env="prod", team="ledger", pci="yes"), cluster("bare")]


def taken(selector: ClusterSelector) -> list[str]:
    return [c.name for c in FLEET if selects(selector, c)]


def test_kubectls_label_selector_takes_what_kubernetes_takes():
    assert taken(parse_label_selector("env in (dev,staging),!pci")) == ["dev-a"]
    assert taken(parse_label_selector("env notin (prod)")) == ["dev-a", "stg-a", "bare"]  # no env label: not in prod
    assert taken(parse_label_selector("pci")) == ["stg-a", "prod-a"]
    assert taken(parse_label_selector("team=payments,env!=staging")) == ["dev-a"]
    assert taken(parse_label_selector("team==ledger")) == ["prod-a"]
    assert taken(parse_label_selector(" env in ( dev , staging ) , team = payments ")) == ["dev-a", "stg-a"]
    assert taken(parse_label_selector("")) == ["dev-a", "stg-a", "prod-a", "bare"]  # empty: every cluster


def test_todays_selectors_keep_their_meaning_and_kubernetes_field_names_are_taken():
    assert parse_label_selector("env=prod,team=ledger") == ClusterSelector(labels={"env": "prod", "team": "ledger"})
    assert ClusterSelector.model_validate({"labels": {"env": "prod"}}).model_dump() == ClusterSelector(
        labels={"env": "prod"}).model_dump()
    spelled = ClusterSelector.model_validate({"matchLabels": {"team": "payments"}, "matchExpressions": [
        {"key": "env", "operator": "NotIn", "values": ["prod"]}]})
    assert taken(spelled) == ["dev-a", "stg-a"]
    # a selector without expressions is written as before: no key a worker of the release before would refuse
    assert "match_expressions" not in ClusterSelector(labels={"env": "prod"}).model_dump()


def test_what_a_cluster_lacks_is_said_as_kubectl_writes_the_requirement():
    lacking = misses(parse_label_selector("env in (dev,staging),!pci,team=payments"), FLEET[2])
    assert lacking == ["label team=payments (it has team=ledger)", "label env in (dev,staging) (it has env=prod)",
                       "label !pci (it has pci=yes)"]
    assert misses(parse_label_selector("tier"), FLEET[3]) == ["label tier (it has no tier label)"]


@pytest.mark.parametrize(("text", "says"), [
    ("env in dev", "is not a label requirement"),
    ("env=prod,env=dev", "env is already prod"),
    ("env in ()", "name at least one value"),
    ("=prod", "is not a label requirement"),
    ("Bad Key=1", "is not a label requirement"),
    ("-bad=1", "is not a label key"),
])
def test_a_selector_that_is_not_one_is_refused_saying_what_to_write(text, says):
    with pytest.raises(ValueError, match=says):
        parse_label_selector(text)


def test_a_requirement_holds_its_values_to_its_operator():
    with pytest.raises(ValidationError, match="takes no values"):
        ClusterSelector.model_validate({"match_expressions": [{"key": "pci", "operator": "Exists", "values": ["x"]}]})
    with pytest.raises(ValidationError, match="name at least one value"):
        ClusterSelector.model_validate({"match_expressions": [{"key": "env", "operator": "In"}]})
