"""Cloud API rate limits as numbers: the configuration an operator writes, the account a call
counts against, and the slots requests take on a shared schedule."""

from __future__ import annotations

import pytest

from regatta.clouds.rate_limits import SharedRateLimit
from regatta.models import ClusterRef
from regatta.rules.rate_limits import HEADROOM, RateLimitsRefused, account_of, next_slot, parse_rate_limits, slot_interval


def test_the_configuration_names_accounts_by_cloud_and_credential_reference():
    assert parse_rate_limits("eks/default=10, gke/prod-project=2.5,aks=4") == {
        "eks/default": 10.0, "gke/prod-project": 2.5, "aks/default": 4.0}
    assert parse_rate_limits(None) == {} and parse_rate_limits("") == {}
    assert account_of("eks", "payments") == "eks/payments"


@pytest.mark.parametrize("text, says", [
    ("eks/default", "give account=requests-per-second"), ("eks/default=0", "give account=requests-per-second"),
    ("eks/default=fast", "give account=requests-per-second"), ("openstack/default=3", "the cloud is eks, gke or aks"),
])
def test_a_configuration_that_cannot_be_read_is_refused_with_what_to_write(text: str, says: str):
    with pytest.raises(RateLimitsRefused, match=says):
        parse_rate_limits(text)


def test_slots_are_spaced_under_the_limit_and_never_in_the_past():
    interval = slot_interval(10)
    assert interval == pytest.approx(1 / (10 * HEADROOM)) and interval > 0.1
    assert next_slot(None, now=100.0, interval=interval) == 100.0
    assert next_slot(100.0, now=100.0, interval=interval) == pytest.approx(100.0 + interval)
    assert next_slot(50.0, now=100.0, interval=interval) == 100.0  # a schedule that fell behind starts from now


def test_each_request_waits_for_its_slot_and_an_unlimited_account_does_not_wait():
    slots: dict[str, float | None] = {}
    now = [1000.0]
    slept: list[float] = []

    def take_slot(account: str, interval: float) -> float:
        slots[account] = next_slot(slots.get(account), now[0], interval)
        return slots[account]  # type: ignore[return-value]

    limit = SharedRateLimit({"eks/default": 5}, take_slot=take_slot, clock=lambda: now[0], sleep=slept.append)
    eks = ClusterRef(name="a", provider="eks", region="us-east-1")
    for _ in range(4):
        limit(eks)
    assert slept == pytest.approx([slot_interval(5) * n for n in (1, 2, 3)])
    limit(ClusterRef(name="b", provider="gke", region="europe-west4"))
    assert len(slept) == 3 and "gke/default" not in slots
