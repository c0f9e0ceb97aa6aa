"""What every request meets before any route reads it (DESIGN rule 11):

- a limit on its body, by path (`BODY_LIMITS`): a larger Content-Length is a 413 before a byte of the
  body is read, and a body streamed without one is cut off at the limit the same way;
- under `/v1/` (but the ticket webhook, which is signed rather than authorised by a token), `/codec/`
  and `/metrics`: a known, live bearer token, or a 401 before the body is read, so a caller without one
  learns nothing from how its body is judged (malformed JSON from a stranger is a 401, not a 422).
  The token found is handed to the routes (`request.state.token`), which decide what it may do.

A bearer token the company's identity provider signed (a JWT, when REGATTA_OIDC_FILE names one) is
checked against the provider's keys and mapped to a role by its groups (regatta/api/identity_provider.py);
one refused with a signature that holds (expired, for another audience, a group with no role: 403) is
written to the trail as an `access` record, at most once a minute per person and reason.

A revoked token presented is written to the audit trail by its name (a stolen token used after its
revocation leaves a trace); an unknown one is logged by the first characters of its hash.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from regatta.api.identity_provider import IdentityProvider, ProviderUnreachable, TokenRefused
from regatta.api.tokens import PREFIX, authenticate, token_hash
from regatta.inventory import Inventory
from regatta.models import OperationRecord
from regatta.rules import sign_in

log = logging.getLogger(__name__)
KIB = 1024
# The most a request's body may hold, by the longest path prefix that matches.
BODY_LIMITS: tuple[tuple[str, int], ...] = (
    ("/v1/webhooks/", 64 * KIB),  # a ticket system's event
    ("/v1/", 1024 * KIB),  # an operation's input (a provision file, a bundle with inline manifests)
    ("/codec/", 4 * 1024 * KIB),  # the Temporal UI's payloads to decode
    ("/ui/codec/", 4 * 1024 * KIB),
    ("/ui", 64 * KIB),  # the fleet view's forms
    ("/", 16 * KIB),
)
TOKEN_FREE = ("/v1/webhooks/",)
REFUSAL_KEPT_SECONDS = 60.0
REFUSALS_KEPT_A_MINUTE = 100  # refused people written to the trail in any minute, whatever names they carry
TOKEN_REQUIRED = ("/v1/", "/metrics", "/codec/")


def body_limit(path: str) -> int:
    return next(limit for prefix, limit in BODY_LIMITS if path.startswith(prefix))


def needs_token(path: str) -> bool:
    return path.startswith(TOKEN_REQUIRED) and not path.startswith(TOKEN_FREE)


def _replay(chunks: list[bytes], ending: Message | None, receive: Receive) -> Receive:
    """A receive that hands out the body already read (or the message that ended it), then the server's own."""
    first: list[Message] = [ending if ending is not None else {"type": "http.request", "body": b"".join(chunks),
                                                                "more_body": False}]

    async def replayed() -> Message:
        return first.pop() if first else await receive()

    return replayed


async def _answer(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


# On every answer: never framed, never sniffed, no referrer leaving with a URL. The fleet view's pages run
# no script at all and style themselves inline; nothing else may load.
EVERY_RESPONSE: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
PAGE_HEADERS = EVERY_RESPONSE + ((b"content-security-policy",
                                  b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:;"
                                  b" form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),)


def _with_headers(send: Send, headers: tuple[tuple[bytes, bytes], ...]) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {key.lower() for key, _ in message.get("headers", [])}
            message = {**message, "headers": [*message.get("headers", []), *(h for h in headers if h[0] not in present)]}
        await send(message)

    return sending


class FrontDoor:
    def __init__(self, app: ASGIApp, inventory: Inventory, identity: IdentityProvider | None = None):
        self.app, self.inventory, self.identity = app, inventory, identity
        self._refusals_kept: dict[tuple[str, str], float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        send = _with_headers(send, PAGE_HEADERS if path.startswith("/ui") else EVERY_RESPONSE)
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        if needs_token(path):
            token = await self._token(headers.get("authorization", ""), path)
            if isinstance(token, tuple):
                status, message = token
                await _answer(send, status, message, [(b"www-authenticate", b"Bearer")] if status == 401 else [])
                return
            scope.setdefault("state", {})["token"] = token
        limit = body_limit(path)
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            await _answer(send, 400, "Content-Length is not a number")
            return
        if declared > limit:
            await _answer(send, 413, f"the body is {declared} bytes; {path} takes at most {limit}")
            return
        await self._limited(scope, receive, send, limit)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """A body without a Content-Length is read here first, up to the limit, and handed on whole; one past
        the limit is a 413 without the route ever seeing it."""
        names = {key.decode("latin-1").lower() for key, _ in scope["headers"]}
        if "content-length" in names or "transfer-encoding" not in names:
            await self.app(scope, receive, send)  # no body, or one the server holds to its declared length
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await _answer(send, 413, f"the body is larger than {scope['path']} takes ({limit} bytes)")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(chunks, None, receive), send)

    async def _token(self, authorization: str, path: str) -> Any:
        """The live token of `Authorization: Bearer ...` (an API token, or the identity provider's token of a
        person), or why not: (status, message)."""
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return 401, "send Authorization: Bearer <token>; `regatta token create` makes one"
        secret = secret.strip()
        if self.identity is not None and not secret.startswith(PREFIX) and sign_in.looks_like_jwt(secret):
            return await self._person(secret, path)
        token = await asyncio.to_thread(authenticate, self.inventory, secret)
        if token is not None:
            return token
        known = await asyncio.to_thread(self.inventory.token_by_hash, token_hash(secret))
        if known is not None:  # a revoked token in use: the trail keeps it (unknown ones are logged, not kept,
            # so a stranger spraying guesses cannot grow the trail)
            await asyncio.to_thread(self.inventory.append_audit, OperationRecord(
                operation_id="-", operation="access", cluster="-", requested_by=known.name, action="api authenticate",
                outcome="refused", detail=f"revoked token {known.name} presented for {path}"))
        else:
            log.warning("an unknown token (hash %s) was presented for %s", token_hash(secret)[:12], path)
        return 401, "the token is unknown or revoked; ask an admin for a new one"

    async def _person(self, bearer: str, path: str) -> Any:
        """A person's token from the identity provider: who it names and the role their groups get, or why not."""
        assert self.identity is not None
        try:
            return await self.identity.principal(bearer)
        except ProviderUnreachable as error:
            log.warning("could not check a token with the identity provider: %s", error)
            return 503, "the identity provider cannot be reached to check the token; try again, or use an API token"
        except TokenRefused as refused:
            if refused.person is None:  # nobody vouches for it: logged, never kept (a stranger cannot grow the trail)
                log.warning("a token the identity provider did not sign was presented for %s: %s", path, refused.reason)
            else:
                await self._keep_refusal(refused.person, refused.reason, path)
            return refused.status, refused.reason

    async def _keep_refusal(self, person: str, reason: str, path: str) -> None:
        """A refused person in the trail, once a minute per person and kind of refusal at most (a script
        retrying with an expired token writes one line a minute, not one a request)."""
        key, now = (person, " ".join(reason.split()[:3])), time.monotonic()
        if now - self._refusals_kept.get(key, -REFUSAL_KEPT_SECONDS) < REFUSAL_KEPT_SECONDS:
            return
        recent = [at for at in self._refusals_kept.values() if now - at < REFUSAL_KEPT_SECONDS]
        if len(recent) >= REFUSALS_KEPT_A_MINUTE:  # many names at once: the log has them, the trail says so once
            log.warning("refused %s for %s: %s (not written to the trail: %d refusals this minute already)", person,
                        path, reason, len(recent))
            return
        if len(self._refusals_kept) > 10_000:
            self._refusals_kept = {k: at for k, at in self._refusals_kept.items() if now - at < REFUSAL_KEPT_SECONDS}
        self._refusals_kept[key] = now
        await asyncio.to_thread(self.inventory.append_audit, OperationRecord(
            operation_id="-", operation="access", cluster="-", requested_by=person, action="api sign in",
            outcome="refused", detail=f"{reason} ({path})"))
