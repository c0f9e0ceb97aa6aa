"""Microsoft Entra ID's client-credentials sign-in, as the simulator serves it on its HTTPS listener under
`/sim/entra/login` (an authority host `127.0.0.1:PORT/sim/entra/login`): what azure-identity's ClientSecretCredential
meets. From Microsoft's reference ("Microsoft identity platform and the OAuth 2.0 client credentials flow", and the
OpenID Connect discovery document): `GET /TENANT/v2.0/.well-known/openid-configuration` names the token endpoint;
`POST /TENANT/oauth2/v2.0/token` with `grant_type=client_credentials`, `client_id`, `client_secret` and
`scope=RESOURCE/.default` answers `{"token_type": "Bearer", "expires_in", "ext_expires_in", "access_token"}`; an
unknown application is 400 `unauthorized_client` (AADSTS700016), a wrong secret 401 `invalid_client`
(AADSTS7000215). Registering an application and its secret is the portal's part: `POST /sim/entra/applications`.
The tokens name their application and resource: ARM knows its caller by them (`principal` in the request log)."""

from __future__ import annotations

import secrets
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter()
TOKEN_SECONDS = 3599


@router.post("/sim/entra/applications", status_code=201)
async def register(request: Request) -> dict:
    body = await request.json()
    request.app.state.world.entra_applications[(str(body["tenant_id"]), str(body["client_id"]))] = str(body["client_secret"])
    return {"registered": body["client_id"]}


@router.get("/sim/entra/login/{tenant}/v2.0/.well-known/openid-configuration")
async def discovery(request: Request, tenant: str) -> dict:
    base = f"{str(request.base_url).rstrip('/')}/sim/entra/login/{tenant}"
    return {"token_endpoint": f"{base}/oauth2/v2.0/token", "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "issuer": f"{base}/v2.0", "jwks_uri": f"{base}/discovery/v2.0/keys", "response_types_supported": ["code"],
            "subject_types_supported": ["pairwise"], "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "tenant_region_scope": None}


@router.post("/sim/entra/login/{tenant}/oauth2/v2.0/token")
async def token(request: Request, tenant: str) -> JSONResponse:
    world = request.app.state.world
    form = await request.form()
    if form.get("grant_type") != "client_credentials":
        return JSONResponse({"error": "unsupported_grant_type", "error_description": "AADSTS70003: The app requested an"
                             " unsupported grant type."}, status_code=400)
    client_id, secret = str(form.get("client_id") or ""), str(form.get("client_secret") or "")
    registered = world.entra_applications.get((tenant, client_id))
    if registered is None:
        return JSONResponse({"error": "unauthorized_client", "error_description": f"AADSTS700016: Application with"
                             f" identifier '{client_id}' was not found in the directory '{tenant}'."}, status_code=400)
    if not secrets.compare_digest(registered, secret):
        return JSONResponse({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret"
                             f" provided. Ensure the secret being sent in the request is the client secret value, not"
                             f" the client secret ID, for a secret added to app '{client_id}'."}, status_code=401)
    scope = str(form.get("scope") or "")
    issued = f"simtok-entra-app-{secrets.token_hex(16)}"
    world.entra_app_tokens[issued] = (client_id, scope.removesuffix("/.default").split()[0] if scope else "",
                                      time.time() + TOKEN_SECONDS)
    return JSONResponse({"token_type": "Bearer", "expires_in": TOKEN_SECONDS, "ext_expires_in": TOKEN_SECONDS,
                         "access_token": issued})


def principal(world, bearer: str) -> str | None:
    """The application a bearer token was issued to, while it lives."""
    found = world.entra_app_tokens.get(bearer)
    return found[0] if found is not None and found[2] > time.time() else None
