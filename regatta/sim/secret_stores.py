"""Three secrets stores the simulator stands in for, each from its own API reference, so that Regatta's readers
(regatta/clouds/secret_stores.py) are held to the wire format they will meet (docs/cloud-conformance.md, S1-S2):

- Google Secret Manager under `/sim/google/secretmanager`: `GET /v1/projects/P/secrets/S/versions/V:access` answers
  `{"name", "payload": {"data": BASE64}}` (V a number or `latest`) to a caller Google knows (a token of the
  simulated token endpoint, or a service account's self-signed JWT: regatta/sim/google_oauth.py), 401
  UNAUTHENTICATED to anyone else, 404 NOT_FOUND for a secret or version that is not there. Versions are added as
  `gcloud secrets versions add` adds them: `POST /sim/google/secretmanager/versions` `{"secret": "projects/P/
  secrets/S", "data": TEXT}`.
- HashiCorp Vault's KV version 2 under `/sim/vault` (a VAULT_ADDR): `POST|PUT /v1/MOUNT/data/PATH` `{"data": {...}}`
  writes a new version and `GET /v1/MOUNT/data/PATH` reads the latest (`{"data": {"data": {...}, "metadata": {...}}}`),
  with `X-Vault-Token` the run's root token (`GET /sim/vault/root-token`); another token is 403 `{"errors":
  ["permission denied"]}`, a path with nothing written 404 `{"errors": []}`.
- Azure Key Vault under `/sim/keyvault/VAULT` (served on the HTTPS listener too, as Key Vault is HTTPS only):
  `PUT /secrets/NAME` `{"value"}` (SetSecret) makes a new version, `GET /secrets/NAME[/VERSION]` (GetSecret) answers
  `{"value", "id": "https://VAULT.vault.azure.net/secrets/NAME/VERSION", "attributes": {...}}` to a caller with an
  Entra token for `https://vault.azure.net` (regatta/sim/entra.py), 401 `Unauthorized` to anyone else, 404
  `SecretNotFound` for a secret or version that is not there.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from regatta.sim import entra, google_oauth

router = APIRouter()


def _google_error(code: int, status: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "status": status}}, status_code=code)


@router.post("/sim/google/secretmanager/versions", status_code=201)
async def add_version(request: Request) -> dict:
    body = await request.json()
    world = request.app.state.world
    versions = world.google_secrets.setdefault(str(body["secret"]), [])
    versions.append(str(body["data"]))
    return {"name": f"{body['secret']}/versions/{len(versions)}"}


@router.get("/sim/google/secretmanager/v1/projects/{project}/secrets/{secret}/versions/{version}:access")
async def access_version(request: Request, project: str, secret: str, version: str) -> JSONResponse:
    world = request.app.state.world
    bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
    if not bearer or google_oauth.principal(world, bearer) is None:
        return _google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2"
                                                     " access token, login cookie or other valid authentication credential.")
    name = f"projects/{project}/secrets/{secret}"
    versions = world.google_secrets.get(name) or []
    number = len(versions) if version == "latest" else (int(version) if version.isdigit() else 0)
    if not 1 <= number <= len(versions):
        return _google_error(404, "NOT_FOUND", f"Secret Version [{name}/versions/{version}] not found.")
    return JSONResponse({"name": f"{name}/versions/{number}",
                         "payload": {"data": base64.b64encode(versions[number - 1].encode()).decode()}})


def _vault_token(request: Request) -> JSONResponse | None:
    world = request.app.state.world
    if not secrets.compare_digest(request.headers.get("x-vault-token", ""), world.vault_root_token):
        return JSONResponse({"errors": ["permission denied"]}, status_code=403)
    return None


@router.get("/sim/vault/root-token")
async def vault_root_token(request: Request) -> dict:
    return {"token": request.app.state.world.vault_root_token}


@router.api_route("/sim/vault/v1/{mount}/data/{path:path}", methods=["POST", "PUT"])
async def vault_write(request: Request, mount: str, path: str) -> JSONResponse:
    refused = _vault_token(request)
    if refused is not None:
        return refused
    body = await request.json()
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        return JSONResponse({"errors": ["no data provided"]}, status_code=400)
    versions = request.app.state.world.vault_secrets.setdefault((mount, path), [])
    versions.append((dict(body["data"]), time.time()))
    return JSONResponse({"request_id": str(uuid.uuid4()), "data": _metadata(len(versions), versions[-1][1])})


@router.get("/sim/vault/v1/{mount}/data/{path:path}")
async def vault_read(request: Request, mount: str, path: str) -> JSONResponse:
    refused = _vault_token(request)
    if refused is not None:
        return refused
    versions = request.app.state.world.vault_secrets.get((mount, path)) or []
    if not versions:
        return JSONResponse({"errors": []}, status_code=404)
    data, written = versions[-1]
    return JSONResponse({"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": False, "lease_duration": 0,
                         "data": {"data": data, "metadata": _metadata(len(versions), written)}})


def _metadata(version: int, written: float) -> dict:
    return {"created_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(written)), "custom_metadata": None,
            "deletion_time": "", "destroyed": False, "version": version}


def _keyvault_error(code: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": error, "message": message}}, status_code=code)


def _keyvault_caller(request: Request) -> JSONResponse | None:
    world = request.app.state.world
    bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
    issued = world.entra_app_tokens.get(bearer)
    if not (entra.principal(world, bearer) and issued and issued[1].rstrip("/") == "https://vault.azure.net"):
        return _keyvault_error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
    return None


@router.put("/sim/keyvault/{vault}/secrets/{name}")
async def keyvault_set(request: Request, vault: str, name: str) -> JSONResponse:
    refused = _keyvault_caller(request)
    if refused is not None:
        return refused
    body = await request.json()
    if not isinstance(body, dict) or not isinstance(body.get("value"), str):
        return _keyvault_error(400, "BadParameter", "The request body must hold the secret's value.")
    version = uuid.uuid4().hex
    request.app.state.world.keyvault_secrets.setdefault((vault, name), []).append((version, body["value"], time.time()))
    return JSONResponse(_keyvault_secret(vault, name, version, body["value"], time.time()))


@router.get("/sim/keyvault/{vault}/secrets/{name}")
@router.get("/sim/keyvault/{vault}/secrets/{name}/{version}")
async def keyvault_get(request: Request, vault: str, name: str, version: str = "") -> JSONResponse:
    refused = _keyvault_caller(request)
    if refused is not None:
        return refused
    versions = request.app.state.world.keyvault_secrets.get((vault, name)) or []
    found = versions[-1] if versions and not version else next((v for v in versions if v[0] == version), None)
    if found is None:
        return _keyvault_error(404, "SecretNotFound", f"A secret with (name/id) {name}{'/' + version if version else ''}"
                                                      " was not found in this key vault.")
    return JSONResponse(_keyvault_secret(vault, name, *found))


def _keyvault_secret(vault: str, name: str, version: str, value: str, written: float) -> dict:
    return {"value": value, "id": f"https://{vault}.vault.azure.net/secrets/{name}/{version}",
            "attributes": {"enabled": True, "created": int(written), "updated": int(written), "recoveryLevel": "Recoverable"}}
