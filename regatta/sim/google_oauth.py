"""Google's OAuth 2.0 token endpoint for service accounts, as the simulator serves it (what a service account key's
`token_uri` points at): a JWT assertion signed with the account's key is exchanged for an access token, which the
simulated GKE API then knows the account by (`principal` in the request log), as it knows one by a self-signed JWT
(what Google's client libraries send for a service account key: "Addendum: Service account authorization without
OAuth" in the same reference). From Google's reference, "Using OAuth
2.0 for Server to Server Applications" (developers.google.com/identity/protocols/oauth2/service-account, "Making
the access token request"): `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, `assertion=JWT` whose `iss`
is the account's email, `aud` "always https://oauth2.googleapis.com/token", `scope` the scopes, `exp` at most an hour after `iat`; the answer
`{"access_token", "expires_in", "token_type": "Bearer"}`, a refusal 400 `{"error": "invalid_grant", ...}`.

Creating a key is IAM's part: `POST /sim/google/service-account-keys` registers a key's public half (as
`gcloud iam service-accounts keys create` leaves Google holding it); an assertion signed by any other key is
refused as Google refuses it ("Invalid JWT Signature.")."""

from __future__ import annotations

import secrets
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

router = APIRouter()
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUDIENCE = "https://oauth2.googleapis.com/token"
TOKEN_SECONDS = 3599


def _refused(description: str) -> JSONResponse:
    return JSONResponse({"error": "invalid_grant", "error_description": description}, status_code=400)


@router.post("/sim/google/service-account-keys", status_code=201)
async def register_key(request: Request) -> dict:
    body = await request.json()
    world = request.app.state.world
    world.google_service_account_keys[(str(body["client_email"]), str(body["private_key_id"]))] = str(body["public_key_pem"])
    return {"registered": body["private_key_id"]}


@router.post("/sim/google/token")
async def token(request: Request) -> JSONResponse:
    world = request.app.state.world
    form = await request.form()
    if form.get("grant_type") != GRANT:
        return JSONResponse({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}, status_code=400)
    assertion = str(form.get("assertion") or "")
    claims, header = _peek(assertion)  # who it says it is, to find the key that must have signed it
    if claims is None:
        return _refused("Invalid JWT: it is not a JSON Web Token")
    email, kid = str(claims.get("iss", "")), str(header.get("kid", ""))
    pem = world.google_service_account_keys.get((email, kid))
    if pem is None:
        return _refused("Invalid JWT Signature.")
    try:
        verified = jwt.decode(assertion, RSAKey.import_key(pem), algorithms=["RS256"])
    except (JoseError, ValueError):
        return _refused("Invalid JWT Signature.")
    claims = dict(verified.claims)
    now = time.time()
    if str(claims.get("aud", "")) != AUDIENCE:  # "always https://oauth2.googleapis.com/token", wherever it is sent
        return _refused("Invalid JWT: Failed audience check.")
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= now or claims["exp"] - claims.get("iat", now) > 3600:
        return _refused("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
    if not claims.get("scope"):
        return _refused("Invalid JWT: no scope")
    issued = f"simtok-goog-{secrets.token_hex(16)}"
    world.google_tokens[issued] = (email, now + TOKEN_SECONDS)
    return JSONResponse({"access_token": issued, "expires_in": TOKEN_SECONDS, "token_type": "Bearer"})


def principal(world, bearer: str) -> str | None:
    """The service account a GKE request's bearer token stands for: one this endpoint issued, or a self-signed JWT
    (Google's "service account authorization without OAuth", which the client libraries use for service account
    keys: `iss` and `sub` the account's email, signed with one of its keys); None for anything else."""
    if bearer in world.google_tokens:
        return str(world.google_tokens[bearer][0])
    claims, header = _peek(bearer)
    if claims is None:
        return None
    email = str(claims.get("iss", ""))
    pem = world.google_service_account_keys.get((email, str(header.get("kid", ""))))
    if pem is None or claims.get("sub") != email:
        return None
    try:
        jwt.decode(bearer, RSAKey.import_key(pem), algorithms=["RS256"])
    except (JoseError, ValueError):
        return None
    expires = claims.get("exp")
    return email if isinstance(expires, int | float) and expires > time.time() else None


def _peek(assertion: str) -> tuple[dict | None, dict]:
    import base64
    import json

    try:
        header, claims, _ = assertion.split(".")
        decoded = [json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in (header, claims)]
        return decoded[1], decoded[0]
    except (ValueError, TypeError):
        return None, {}
