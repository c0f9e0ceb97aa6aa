"""Who may do what through the API: roles, each a set of actions, scoped to environments.

Pure (no I/O, under the purity contract): the API asks `refusal(...)` for every request, and the
role × action × environment matrix test asks it too.

- viewer: read operations and the inventory;
- operator: read, start operations, pause / resume / abort them;
- approver: read, approve (never an operation they asked for: the workflows enforce four eyes);
- admin: everything, including tokens.

A token names the environments it may act on (`*` for every one): a staging operator cannot
touch prod.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Role = Literal["viewer", "operator", "approver", "admin"]
Action = Literal["read", "start", "control", "approve", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "approver", "admin")
ACTIONS: tuple[Action, ...] = ("read", "start", "control", "approve", "admin")
ALL_ENVIRONMENTS = "*"

ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read", "start", "control"}),
    "approver": frozenset({"read", "approve"}),
    "admin": frozenset(ACTIONS),
}


def refusal(*, token: str, role: Role, scope: Iterable[str], action: Action, environments: Iterable[str]) -> str | None:
    """Why the token may not do `action` on clusters of `environments`; None when it may."""
    if action not in ROLE_ACTIONS[role]:
        may = ", ".join(a for a in ACTIONS if a in ROLE_ACTIONS[role])
        a = "an" if role[0] in "aeiou" else "a"  # an operator, an admin, an approver; a viewer
        return f"token {token} is {a} {role} and may not {action} ({a} {role} may: {may})"
    allowed = set(scope)
    if ALL_ENVIRONMENTS in allowed:
        return None
    outside = sorted(set(environments) - allowed)
    if outside:
        return (f"token {token} is scoped to {', '.join(sorted(allowed)) or 'no environment'} and may not {action} in"
                f" {', '.join(outside)}")
    return None


def person(name: str) -> str:
    """Who a name stands for, as four eyes compares names from different places: a token's name, the
    fleet view's, a ticket system's `by` (free text). Case and spaces aside, and an address's domain
    aside (`Alice@corp.example` is `alice`)."""
    plain = " ".join(name.split()).casefold()
    return plain.split("@", 1)[0] if "@" in plain else plain


def same_person(first: str, second: str) -> bool:
    return person(first) == person(second)
