"""Waiting for an account's turn before every request to a cloud's API (the providers' `_call`),
so that all workers together stay under the account's rate limit instead of meeting the cloud's
429s. The turns come from a schedule shared by every worker (`take_slot`: the inventory's
`take_cloud_request_slot`); an account with no configured limit does not wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from regatta.models import ClusterRef
from regatta.rules.rate_limits import account_of, slot_interval


class RateLimit(Protocol):
    def __call__(self, cluster: ClusterRef) -> None: ...


def no_rate_limit(cluster: ClusterRef) -> None:
    return None


class SharedRateLimit:
    """Requests per second per account, held across every worker through one shared schedule."""

    def __init__(self, limits: dict[str, float], *, take_slot: Callable[[str, float], float],
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep):
        self.limits = limits
        self.take_slot = take_slot  # (account, interval) -> the wall-clock time this request may go
        self.clock, self.sleep = clock, sleep

    def __call__(self, cluster: ClusterRef) -> None:
        account = account_of(cluster.provider, cluster.credential_ref)
        limit = self.limits.get(account)
        if limit is None:
            return
        wait = self.take_slot(account, slot_interval(limit)) - self.clock()
        if wait > 0:
            self.sleep(wait)
