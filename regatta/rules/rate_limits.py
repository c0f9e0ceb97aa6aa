"""Cloud API rate limits, as numbers: which account a cluster's cloud calls count against, the
limits an operator configures (REGATTA_CLOUD_RATE_LIMITS), and the slot each request takes.

Every worker takes its requests' slots from one shared schedule per account (a row in the
inventory: regatta/inventory/store.py), each slot one interval after the last, so all workers
together never ask faster than the limit, less a headroom for requests that arrive late.
Called by regatta/clouds/rate_limits.py and the worker.
"""

from __future__ import annotations

# Spend at most this share of an account's published limit: a request sent at its slot can reach
# the cloud a little late and bunch with the next one.
HEADROOM = 0.85


class RateLimitsRefused(ValueError):
    pass


def account_of(provider: str, credential_ref: str) -> str:
    """The account a cluster's cloud calls count against: its cloud and the credentials it is reached by."""
    return f"{provider}/{credential_ref}"


def parse_rate_limits(text: str | None) -> dict[str, float]:
    """`eks/default=10,gke/prod-project=20`: requests per second per account (`eks` alone means
    `eks/default`)."""
    limits: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        account, sep, rate = item.strip().partition("=")
        try:
            value = float(rate)
        except ValueError:
            value = -1.0
        if not sep or not account or value <= 0:
            raise RateLimitsRefused(f"REGATTA_CLOUD_RATE_LIMITS: {item.strip()!r}: give account=requests-per-second, e.g."
                                    " eks/default=10 (the cloud and the credential reference, then a positive number)")
        provider, _, credential_ref = account.partition("/")
        if provider not in ("eks", "gke", "aks"):
            raise RateLimitsRefused(f"REGATTA_CLOUD_RATE_LIMITS: {account!r}: the cloud is eks, gke or aks")
        limits[account_of(provider, credential_ref or "default")] = value
    return limits


def slot_interval(requests_per_second: float) -> float:
    """Seconds between two requests' slots on one account."""
    return 1.0 / (requests_per_second * HEADROOM)


def next_slot(last_slot: float | None, now: float, interval: float) -> float:
    """The slot a request takes: the next free one after the last taken, never in the past."""
    return now if last_slot is None else max(last_slot + interval, now)
