"""Signing in to the fleet view: an API token, or a sign-in through the company's identity provider
(regatta/api/identity_provider.py), exchanged for a session cookie (HttpOnly,
SameSite=Strict, Secure over HTTPS; only its SHA-256 is kept), a CSRF secret per session that
every form carries, and a double-submit cookie guarding the sign-in form itself. A session ends
when it expires (8 hours), when its owner signs out, or at once when its API token is revoked; a person's
session keeps the role their groups gave them at sign-in until it ends.
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

COOKIE = "regatta_session"
LOGIN_COOKIE = "regatta_login"
SIGN_IN_COOKIE = "regatta_oidc"  # one sign-in through the identity provider: state, nonce, PKCE verifier, next page
LIFETIME = timedelta(hours=8)


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


def start(inventory: Inventory, request: Request, response: Response, token: ApiToken) -> None:
    secret = secrets.token_urlsafe(32)
    inventory.start_web_session(session_hash=_hash(secret), token=token, csrf=secrets.token_urlsafe(32),
                                now=datetime.now(UTC), lifetime=LIFETIME)
    set_cookie(request, response, COOKIE, secret, max_age=int(LIFETIME.total_seconds()))
    response.delete_cookie(LOGIN_COOKIE, path="/ui")


def viewer(inventory: Inventory, request: Request) -> Viewer:
    secret = request.cookies.get(COOKIE)
    found = inventory.web_session(_hash(secret), now=datetime.now(UTC)) if secret else None
    if found is None:
        raise SignInNeeded()
    return Viewer(token=found[0], csrf=found[1])


def end(inventory: Inventory, request: Request, response: Response) -> None:
    secret = request.cookies.get(COOKIE)
    if secret:
        inventory.end_web_session(_hash(secret))
    response.delete_cookie(COOKIE, path="/ui")


def check_csrf(expected: str, given: str | None) -> None:
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):  # bytes: any text compares
        raise CsrfRefused()
