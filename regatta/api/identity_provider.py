"""The company's identity provider (OpenID Connect), as the API and the fleet view use it:

- its discovery document (`{issuer}/.well-known/openid-configuration`, whose `issuer` must be the one
  configured) and its signing keys (`jwks_uri`), kept an hour and read again at once (at most every
  REFETCH_SECONDS) when a token names a key Regatta does not hold: a rotated key is picked up without a
  restart, and a key the provider stopped publishing stops being accepted;
- a bearer token checked by joserfc: signed with an asymmetric algorithm the provider announces (never
  `none`, never a shared-secret HMAC a client could forge with a public value), by one of its keys; `iss`
  the issuer, `aud` the client id or one of the file's `audiences`, `exp` in the future and `nbf` / `iat`
  not (with the file's leeway), and for a sign-in the `nonce` this browser was given;
- the authorization code flow with PKCE (S256) for the fleet view: the address to send the browser to,
  and the code exchanged for an ID token at the token endpoint.

Who the token names, and the role their groups get, is regatta/rules/sign_in.py's decision.

Written on httpx and joserfc rather than Authlib's client: Authlib 1.9 deprecates its httpx client, and
its Starlette integration keeps the flow's state in a session middleware the API does not have; the
three requests are short, and the checks that matter are joserfc's.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from regatta.models import ApiToken
from regatta.models.sign_in import LOCAL_HOSTS, OidcProvider
from regatta.rules import sign_in

log = logging.getLogger(__name__)
METADATA_SECONDS = 3600.0
KEYS_SECONDS = 3600.0
REFETCH_SECONDS = 10.0  # an unknown key id reads the keys again, at most this often (a stranger's tokens cannot make us hammer the provider)
TIMEOUT = httpx.Timeout(5.0)
FETCH_SECONDS = 5.0  # one read of the provider's, from the connection to the last byte
MAX_DOCUMENT_BYTES = 256 * 1024
# Asymmetric only: with HS256 the "key" would be the client secret (or, for a public client, nothing at all).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class ProviderUnreachable(RuntimeError):
    """The identity provider did not answer as one should; the message names what, never a token."""


class TokenRefused(ValueError):
    """A bearer token or a sign-in refused. `person` is who it names when its signature held (the refusal
    belongs in the audit trail); None for a token nobody can vouch for (logged, not kept)."""

    def __init__(self, reason: str, *, person: str | None = None, status: int = 401):
        super().__init__(reason)
        self.reason, self.person, self.status = reason, person, status


@dataclass(frozen=True)
class SignInStart:
    """What one browser's sign-in needs kept until the provider sends it back (in a short-lived cookie)."""

    url: str
    state: str
    nonce: str
    verifier: str


def _challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


class IdentityProvider:
    def __init__(self, config: OidcProvider, *, client_secret: Any = None):
        self.config = config
        self._client_secret = client_secret  # a StoredSecret (regatta/clouds/secret_stores.py) or None: a public client
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        # When each was last asked for, read or not, and why the last read failed: a provider that fails is
        # asked again every REFETCH_SECONDS at most, and what was read before stays in use meanwhile.
        self._metadata_tried_at = -REFETCH_SECONDS
        self._keys_tried_at = -REFETCH_SECONDS
        self._metadata_failure: str | None = None
        self._keys_failure: str | None = None
        self._metadata_lock = asyncio.Lock()
        self._keys_lock = asyncio.Lock()

    # ------------------------------------------------------------------ what the provider publishes

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        """One document of the provider's, within FETCH_SECONDS in all (a provider dribbling bytes cannot hold a
        request longer) and MAX_DOCUMENT_BYTES (read as it streams, never whole first)."""
        try:
            async with asyncio.timeout(FETCH_SECONDS), httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
                async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
                    if response.status_code != 200:
                        raise ProviderUnreachable(f"the identity provider's {what} ({url}) answered {response.status_code}")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_DOCUMENT_BYTES:
                            raise ProviderUnreachable(f"the identity provider's {what} ({url}) is larger than"
                                                      f" {MAX_DOCUMENT_BYTES} bytes")
        except (httpx.HTTPError, TimeoutError) as error:
            raise ProviderUnreachable(f"the identity provider's {what} ({url}) did not answer: {type(error).__name__}") from None
        try:
            document = json.loads(bytes(body))
        except ValueError:
            raise ProviderUnreachable(f"the identity provider's {what} ({url}) is not JSON") from None
        if not isinstance(document, dict):
            raise ProviderUnreachable(f"the identity provider's {what} ({url}) is not a JSON object")
        return document

    async def metadata(self) -> dict[str, Any]:
        """The discovery document, read again after METADATA_SECONDS; while the provider cannot be reached, the one
        held stays in use (a failed read is not tried again for REFETCH_SECONDS)."""
        now = time.monotonic()
        if self._metadata is not None and now - self._metadata_at < METADATA_SECONDS:
            return self._metadata
        if now - self._metadata_tried_at < REFETCH_SECONDS:
            if self._metadata is not None:
                return self._metadata
            raise ProviderUnreachable(self._metadata_failure or "the identity provider's discovery document is unread")
        async with self._metadata_lock:
            if self._metadata_tried_at > now:  # another request read it (or failed to) while this one waited
                return await self.metadata()
            self._metadata_tried_at = time.monotonic()
            url = f"{self.config.issuer}/.well-known/openid-configuration"
            try:
                document = await self._get_json(url, "discovery document")
                problem = discovery_problem(document, self.config.issuer)
                if problem is not None:
                    raise ProviderUnreachable(f"the discovery document at {url} {problem}")
            except ProviderUnreachable as error:
                self._metadata_failure = str(error)
                if self._metadata is not None:
                    log.warning("%s; the discovery document read before stays in use", error)
                    return self._metadata
                raise
            self._metadata, self._metadata_at = document, time.monotonic()
        return self._metadata

    async def _key_set(self, *, kid: str | None, failed: bool = False) -> KeySet:
        """The provider's keys: read again when they are old, or when `kid` is not among them (or, `failed`, they
        did not verify a token that names no key), but never more often than every REFETCH_SECONDS, whether the
        read before succeeded or not; while the provider cannot be reached, the keys held stay in use."""
        now = time.monotonic()
        held = self._keys
        known = held is not None and not failed and (kid is None or _has_kid(held, kid))
        if held is not None and known and now - self._keys_at < KEYS_SECONDS:
            return held
        if now - self._keys_tried_at < REFETCH_SECONDS:
            if held is not None:
                return held
            raise ProviderUnreachable(self._keys_failure or "the identity provider's signing keys are unread")
        metadata = await self.metadata()
        async with self._keys_lock:
            if self._keys_tried_at > now:  # another request read them (or failed to) while this one waited
                return self._keys if self._keys is not None else await self._key_set(kid=kid)
            self._keys_tried_at = time.monotonic()
            try:
                document = await self._get_json(str(metadata["jwks_uri"]), "signing keys")
                try:
                    keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
                except (JoseError, ValueError, TypeError, KeyError) as error:
                    raise ProviderUnreachable(f"the identity provider's signing keys are unusable: {error}") from None
            except ProviderUnreachable as error:
                self._keys_failure = str(error)
                if held is not None:
                    log.warning("%s; the keys read before stay in use", error)
                    return held
                raise
            self._keys, self._keys_at = keys, time.monotonic()
            log.info("read the identity provider's signing keys (%d)", len(keys.keys))
        return self._keys

    def _algorithms(self, metadata: dict[str, Any]) -> list[str]:
        announced = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        return [a for a in ALGORITHMS if a in announced] or ["RS256"]

    # ------------------------------------------------------------------ tokens

    async def claims(self, token: str, *, nonce: str | None = None) -> dict[str, Any]:
        """The token's claims once its signature, issuer, audience and times hold; TokenRefused saying why not."""
        metadata = await self.metadata()
        try:
            header = jws.extract_compact(token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError):
            raise TokenRefused("the bearer token is not a signed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in self._algorithms(metadata):
            raise TokenRefused(f"the token is signed with {algorithm!r}, which Regatta does not accept from this provider")
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        keys = await self._key_set(kid=kid)
        if kid is not None and not _has_kid(keys, kid):
            raise TokenRefused("the token is signed by a key the identity provider does not publish (an old key"
                               " that was rotated out, or another provider's)")
        algorithms = self._algorithms(metadata)
        decoded = _verified(token, keys, kid, algorithms)
        if decoded is None and kid is None:  # a token that names no key, after a rotation: the keys read again
            fresh = await self._key_set(kid=None, failed=True)
            decoded = _verified(token, fresh, kid, algorithms) if fresh is not keys else None
        if decoded is None:
            raise TokenRefused("the token's signature does not hold")
        claims = dict(decoded)
        if str(claims.get("iss", "")).rstrip("/") != self.config.issuer:
            # Not named: a provider that signs for many tenants with one key would let anyone write any name here.
            raise TokenRefused(f"the token was issued by {str(claims.get('iss'))[:200]!r}, not {self.config.issuer!r}")
        problem = self._claims_problem(claims, nonce=nonce)
        if problem is not None:
            raise TokenRefused(problem, person=sign_in.person_name(claims, self.config.name_claim))
        return claims

    def _claims_problem(self, claims: dict[str, Any], *, nonce: str | None) -> str | None:
        """What is wrong with the claims of a token this issuer signed, or None (OpenID Connect Core 1.0, 3.1.3.7)."""
        now, leeway = time.time(), self.config.leeway_seconds
        audiences = claims.get("aud")
        named = [audiences] if isinstance(audiences, str) else [a for a in audiences or [] if isinstance(a, str)]
        if not set(named) & set(self.config.accepted_audiences):
            return (f"the token is for {', '.join(named)[:200] or 'no audience'}, not for Regatta"
                    f" ({', '.join(self.config.accepted_audiences)})")
        party = claims.get("azp")
        if party is not None and party not in self.config.accepted_parties:
            return (f"the token was issued to client {str(party)[:100]!r}, which the sign-in file does not name"
                    " (client_id, authorized_parties)")
        if party is None and len(named) > 1:
            return "the token names several audiences and no authorized party (azp): Regatta cannot tell whose it is"
        expires = claims.get("exp")
        if not isinstance(expires, int | float):
            return "the token has no expiry (exp)"
        if expires + leeway <= now:
            ago = int(now - expires)
            return f"the token expired {ago} s ago; sign in again for a new one"
        for claim in ("nbf", "iat"):
            value = claims.get(claim)
            if value is not None and (not isinstance(value, int | float) or value - leeway > now):
                return f"the token's {claim} is in the future: check the clocks of Regatta and the identity provider"
        if nonce is not None and (not nonce or not secrets.compare_digest(str(claims.get("nonce", "")).encode(),
                                                                            nonce.encode())):
            return "the ID token's nonce is not the one this sign-in sent: start the sign-in again"
        return None

    async def principal(self, token: str, *, nonce: str | None = None) -> ApiToken:
        """Who the token stands for in Regatta (name, role, environments); TokenRefused (403 for a person whose
        groups have no role) otherwise."""
        claims = await self.claims(token, nonce=nonce)
        decided = sign_in.grant(claims, name_claim=self.config.name_claim, groups_claim=self.config.groups_claim,
                                roles=self.config.roles)
        if isinstance(decided, str):
            raise TokenRefused(decided, person=sign_in.person_name(claims, self.config.name_claim), status=403)
        expires = claims.get("exp")
        return ApiToken(name=decided.name, role=decided.role, environments=list(decided.environments),
                        created_at=datetime.now(UTC), signed_in_with=self.config.issuer, group=decided.group,
                        groups=sign_in.groups_of(claims, self.config.groups_claim)[:200],
                        expires_at=datetime.fromtimestamp(float(expires), UTC) if isinstance(expires, int | float) else None)

    # ------------------------------------------------------------------ the fleet view's sign-in

    async def start_sign_in(self, redirect_url: str) -> SignInStart:
        metadata = await self.metadata()
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        query = urlencode({"response_type": "code", "client_id": self.config.client_id, "redirect_uri": redirect_url,
                           "scope": " ".join(self.config.scopes), "state": state, "nonce": nonce,
                           "code_challenge": _challenge(verifier), "code_challenge_method": "S256"})
        endpoint = str(metadata["authorization_endpoint"])
        return SignInStart(url=f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", state=state, nonce=nonce,
                           verifier=verifier)

    async def finish_sign_in(self, *, code: str, verifier: str, nonce: str, redirect_url: str) -> ApiToken:
        """The code exchanged at the token endpoint; its ID token checked (nonce included) and mapped."""
        metadata = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_url, "code_verifier": verifier,
                "client_id": self.config.client_id}
        secret = await asyncio.to_thread(self._secret)
        # a confidential client authenticates with its secret (client_secret_basic); a public one by PKCE alone
        auth: httpx.Auth = httpx.BasicAuth(self.config.client_id, secret) if secret else _NoAuth()
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
                response = await client.post(str(metadata["token_endpoint"]), data=form, auth=auth,
                                             headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise ProviderUnreachable(f"the identity provider's token endpoint did not answer: {type(error).__name__}") from None
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code != 200 or not isinstance(answer, dict):
            said = answer.get("error") if isinstance(answer, dict) else None
            raise TokenRefused(f"the identity provider refused the sign-in's code ({said or response.status_code});"
                               " start the sign-in again")
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise TokenRefused("the identity provider sent no ID token: is openid among the sign-in file's scopes?")
        return await self.principal(id_token, nonce=nonce)

    def _secret(self) -> str | None:
        if not self._client_secret:
            return None
        value: str = self._client_secret.value()
        return value


class _NoAuth(httpx.Auth):
    """No client authentication: a public client, whose code only its PKCE verifier redeems."""


def _local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in LOCAL_HOSTS


def discovery_problem(document: dict[str, Any], issuer: str) -> str | None:
    """What is wrong with a discovery document for `issuer` (OpenID Connect Discovery 1.0, 4.3: its issuer is the one
    asked for), or None. Its endpoints must be https (http only where the issuer itself is on this machine): the
    client secret goes to the token endpoint."""
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        return f"names issuer {document.get('issuer')!r}, not {issuer!r}: check the sign-in file's issuer"
    missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not document.get(k)]
    if missing:
        return f"has no {', '.join(missing)}"
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        url = str(document[key])
        if not (url.startswith("https://") or (_local(issuer) and _local(url) and url.startswith("http://"))):
            return f"gives {key} {url!r}, which is not https"
    return None


def _verified(token: str, keys: KeySet, kid: str | None, algorithms: list[str]) -> dict[str, Any] | None:
    """The token's claims when one of `keys` signed it (the one it names; naming none, any of them), else None."""
    candidates: list[Any] = [keys] if kid is not None or len(keys.keys) == 1 else list(keys.keys)
    for key in candidates:
        try:
            return dict(jwt.decode(token, key, algorithms=algorithms).claims)
        except (JoseError, ValueError, TypeError):
            continue
    return None


def _has_kid(keys: KeySet, kid: str) -> bool:
    try:
        keys.get_by_kid(kid)
    except (ValueError, KeyError, JoseError):
        return False
    return True


def from_settings(path: str | None) -> IdentityProvider | None:
    """The provider of the sign-in file at `path` (REGATTA_OIDC_FILE), its client secret from
    REGATTA_OIDC_CLIENT_SECRET (a value or a secrets store's reference); None when unset."""
    if not path:
        return None
    import os

    from regatta.clouds.secret_stores import stored
    from regatta.formats.sign_in_file import load_sign_in_file

    setting = os.environ.get("REGATTA_OIDC_CLIENT_SECRET") or None
    return IdentityProvider(load_sign_in_file(path),
                            client_secret=stored(setting, name="REGATTA_OIDC_CLIENT_SECRET") if setting else None)
