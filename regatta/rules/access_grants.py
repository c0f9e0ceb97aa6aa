"""Time-bound access to a cluster (workflows/access_grant.py): which grants wait for a second person, how long
a request may ask for, what the cluster's service account is called, how long its token lives, and when a grant
is overdue. Pure: unit-tested in tests/unit/test_access_grant_rules.py."""

from __future__ import annotations

import hashlib
import math
import re
from datetime import datetime, timedelta

MIN_SECONDS = 30
MAX_SECONDS = 24 * 3600
# The API server's floor for a TokenRequest (`may not specify a duration less than 10 minutes`): a shorter grant
# asks for ten minutes and ends on time by deleting its account, which ends its tokens at once.
TOKEN_FLOOR_SECONDS = 600
NAMESPACE = "regatta-access"
PRODUCTION = ("prod", "production")
_DURATION = re.compile(r"^\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$")


def duration_seconds(text: str) -> int:
    """`2h`, `90m`, `1h30m`, `45s` → seconds; ValueError saying what to write otherwise."""
    match = _DURATION.match(text.lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration: write it as 2h, 90m, 1h30m or 45s")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if not MIN_SECONDS <= total <= MAX_SECONDS:
        raise ValueError(f"{text} is {total} s: a grant lasts from {MIN_SECONDS} s to {MAX_SECONDS // 3600} h")
    return total


def needs_approval(environment: str, role: str) -> bool:
    """Four eyes: every grant in production, and `edit` or `admin` anywhere: admin may grant itself more through RBAC,
    and edit may impersonate any service account (another person's grant among them) and leave behind what outlives
    the grant (a token Secret, a CronJob). A `view` grant outside production is given at once."""
    return environment.strip().lower() in PRODUCTION or role in ("edit", "admin")


def account_name(grant_id: str) -> str:
    """The service account (and ClusterRoleBinding) a grant makes: `regatta-grant-` and a digest of the grant's whole
    id, so that no two grants share one however long their cluster's name (the id itself is in its annotations)."""
    return f"regatta-grant-{hashlib.sha256(grant_id.encode()).hexdigest()[:24]}"


def revocation_pause(attempts: int) -> float:
    """Seconds before taking a grant back is tried again after `attempts` refusals: 10 s, doubling, at most 10 min
    (it is tried until it is done; each pause is a durable timer)."""
    return float(min(600, 10 * 2 ** max(0, attempts - 1)))


def token_seconds(expires_at: datetime, now: datetime) -> int:
    """What the hand-out asks the API server for: the grant's remaining time, rounded up, and never under the
    API server's floor."""
    return max(TOKEN_FLOOR_SECONDS, math.ceil((expires_at - now).total_seconds()))


def overdue(*, phase: str, expires_at: datetime | None, now: datetime) -> bool:
    """A grant whose time is up and whose access is still on the cluster: Regatta has not yet taken it back (its
    workers were down at the moment of expiry; they do it when they return)."""
    return phase == "granted" and expires_at is not None and expires_at <= now


def shown_state(*, phase: str, expires_at: datetime | None, now: datetime) -> str:
    """The state a list shows: the phase, or `overdue`."""
    return "overdue" if overdue(phase=phase, expires_at=expires_at, now=now) else phase


def held_at(*, granted_at: datetime | None, revoked_at: datetime | None, moment: datetime) -> bool:
    """Whether a grant's access was on the cluster at `moment`: from its grant until it was taken back (at its end or
    on revocation; one not yet taken back, overdue included, still holds)."""
    return granted_at is not None and granted_at <= moment and (revoked_at is None or moment < revoked_at)


def human(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n) or "0s"


def ends_at(granted_at: datetime, duration_seconds: int) -> datetime:
    return granted_at + timedelta(seconds=duration_seconds)
