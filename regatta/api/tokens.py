"""API tokens: made here, shown once, kept only as a SHA-256 (a token is 256 random bits, so a
fast hash is enough: there is no password to guess)."""

from __future__ import annotations

import hashlib
import secrets

from regatta.inventory import Inventory, TokenError
from regatta.models import ApiToken
from regatta.rules import access

PREFIX = "rgt_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(inventory: Inventory, *, name: str, role: str, environments: list[str]) -> tuple[ApiToken, str]:
    """A new token and its secret, which is never stored and cannot be shown again."""
    if role not in access.ROLES:
        raise TokenError(f"role {role!r} is not one of {', '.join(access.ROLES)}")
    if not environments or any(not env.strip() for env in environments):
        raise TokenError("name the environments the token may act on (--env staging, or --env '*' for every one)")
    if not name.strip() or len(name) > 100:
        raise TokenError("give the token a name of 1 to 100 characters (who or what uses it)")
    secret = PREFIX + secrets.token_urlsafe(32)
    return inventory.add_token(name=name, token_hash=token_hash(secret), role=role, environments=environments), secret


def authenticate(inventory: Inventory, secret: str) -> ApiToken | None:
    """The live token a secret belongs to; None for an unknown or revoked one."""
    token = inventory.token_by_hash(token_hash(secret))
    return token if token is not None and token.revoked_at is None else None
