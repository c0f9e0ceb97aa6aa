"""Signing in to the fleet view: an API token, or a sign-in through the company's identity provider
(regatta/api/identity_provider.py), exchanged for a session cookie (HttpOnly,
SameSite=Strict, Secure over HTTPS; only its SHA-256 is kept), a CSRF secret per session that
every form carries, and a double-submit cookie guarding the sign-in form itself. A session ends
when it expires (8 hours; a person's when the provider's token they signed in with expires), when its owner
signs out, when `regatta token revoke NAME` names it, or at once when its API token is revoked. A person's
role is decided again on every page from the groups they signed in with and the sign-in file in force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import Request
from fastapi.responses import Response

from regatta.inventory import Inventory
from regatta.models import ApiToken
from regatta.rules import sign_in

COOKIE = "regatta_session"
LOGIN_COOKIE = "regatta_login"
SIGN_IN_COOKIE = "regatta_oidc"  # one sign-in through the identity provider: state, nonce, PKCE verifier, next page
LIFETIME = timedelta(hours=8)
PERSON_AT_LEAST = timedelta(minutes=5)


class SignInNeeded(Exception):
    """No live session: the page answers with the sign-in form."""


class CsrfRefused(Exception):
    """A form without the session's CSRF secret: refused (403), nothing done."""


@dataclass(frozen=True)
class Viewer:
    token: ApiToken
    csrf: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None,
               samesite: Literal["strict", "lax"] = "strict", path: str = "/ui") -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True, samesite=samesite,
                        secure=request.url.scheme == "https" or request.app.state.settings.cookie_secure)


def lifetime_of(token: ApiToken, now: datetime) -> timedelta:
    """An API token's session lasts LIFETIME; a person's until the provider's token they signed in with expires
    (so that a person the provider no longer vouches for is sent back to it), between PERSON_AT_LEAST and LIFETIME."""
    if token.signed_in_with is None or token.expires_at is None:
        return LIFETIME
    return min(LIFETIME, max(PERSON_AT_LEAST, token.expires_at - now))


def start(inventory: Inventory, request: Request, response: Response, token: ApiToken) -> None:
    secret = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    lifetime = lifetime_of(token, now)
    inventory.start_web_session(session_hash=_hash(secret), token=token, csrf=secrets.token_urlsafe(32), now=now,
                                lifetime=lifetime)
    set_cookie(request, response, COOKIE, secret, max_age=int(lifetime.total_seconds()))
    response.delete_cookie(LOGIN_COOKIE, path="/ui")


def viewer(inventory: Inventory, request: Request) -> Viewer:
    """The session's token; a person's role decided again, from the groups they signed in with, by the sign-in file
    the API runs with now (a group taken out of the file, or the provider taken away, ends the session)."""
    secret = request.cookies.get(COOKIE)
    found = inventory.web_session(_hash(secret), now=datetime.now(UTC)) if secret else None
    if found is None:
        raise SignInNeeded()
    token, csrf = found
    if token.signed_in_with is not None:
        identity = request.app.state.identity
        if identity is None or identity.config.issuer != token.signed_in_with:
            inventory.end_web_session(_hash(secret or ""))
            raise SignInNeeded()
        config = identity.config
        decided = sign_in.grant({config.name_claim: token.name, config.groups_claim: token.groups or []},
                                name_claim=config.name_claim, groups_claim=config.groups_claim, roles=config.roles)
        if isinstance(decided, str):
            inventory.end_web_session(_hash(secret or ""))
            raise SignInNeeded()
        token = token.model_copy(update={"role": decided.role, "environments": list(decided.environments),
                                         "group": decided.group})
    return Viewer(token=token, csrf=csrf)


def end(inventory: Inventory, request: Request, response: Response) -> None:
    secret = request.cookies.get(COOKIE)
    if secret:
        inventory.end_web_session(_hash(secret))
    response.delete_cookie(COOKIE, path="/ui")


def check_csrf(expected: str, given: str | None) -> None:
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):  # bytes: any text compares
        raise CsrfRefused()
