"""Who a person signed in through the identity provider is in Regatta: their name from one claim, and
the role and environments of the first group in the sign-in file's order that they belong to.

Pure: the API and the fleet view ask `grant(...)` with claims whose signature, issuer, audience and
expiry were already checked (regatta/api/identity_provider.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from regatta.models.sign_in import GroupRole


@dataclass(frozen=True)
class Grant:
    name: str
    role: str
    environments: tuple[str, ...]
    group: str


def person_name(claims: Mapping[str, Any], name_claim: str) -> str | None:
    """The person's name from `name_claim` alone (one claim, so that the same person has one name whichever token
    they bring: four eyes compares names); None when it is not a string of 1 to 100 characters."""
    value = claims.get(name_claim)
    if isinstance(value, str) and value.strip() and len(value) <= 100:
        return " ".join(value.split())
    return None


def groups_of(claims: Mapping[str, Any], groups_claim: str) -> list[str]:
    """The groups the claim lists: a list of strings, or one string (some providers send a single group so)."""
    value = claims.get(groups_claim)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [g for g in value if isinstance(g, str)]
    return []


def grant(claims: Mapping[str, Any], *, name_claim: str, groups_claim: str, roles: Sequence[GroupRole]) -> Grant | str:
    """The person's grant, or why they get none (a str that says what an admin would change)."""
    name = person_name(claims, name_claim)
    if name is None:
        return (f"the identity provider's token names nobody: it has no {name_claim} claim of 1 to 100 characters"
                f" (the sign-in file's name_claim)")
    if name_claim == "email" and claims.get("email_verified") is False:
        return f"{name} signed in, but the identity provider says that address is not verified"
    groups = groups_of(claims, groups_claim)
    held = set(groups)
    for rule in roles:
        if rule.group in held:
            return Grant(name=name, role=rule.role, environments=tuple(rule.environments), group=rule.group)
    if not groups:
        return (f"{name} signed in, but the token lists no groups in its {groups_claim!r} claim; ask the identity"
                f" provider's admins to send it, or an admin of Regatta to name the claim that holds them")
    shown = ", ".join(sorted(held)[:10]) + (" …" if len(held) > 10 else "")
    return (f"{name} signed in, but none of their groups ({shown}) has a role in Regatta; an admin adds one to"
            f" the roles of the sign-in file (REGATTA_OIDC_FILE)")


def looks_like_jwt(bearer: str) -> bool:
    """Three base64url parts, the first a JSON object's (`eyJ`): a token the identity provider signed, not an
    API token (`rgt_...`)."""
    parts = bearer.split(".")
    return len(parts) == 3 and bearer.startswith("eyJ") and all(parts)
