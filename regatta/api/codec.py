"""Temporal's codec-server protocol, so the Temporal UI can show decrypted payloads to people
holding a token (any role may read; a payload does not say which environment it is about).

The Temporal UI cannot send our bearer token (it passes its own SSO token or cookies), but a codec
endpoint may sit at any depth of a URL: each person sets theirs, in the UI, to
http://127.0.0.1:8700/codec/t/<their token>. Access logs are off, so the URL is not written down.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from regatta.api.errors import ApiError
from regatta.api.gate import Gate, gate, inventory_of, settings_of
from regatta.api.tokens import authenticate
from regatta.inventory import Inventory
from regatta.settings import Settings
from regatta.temporal.codec import CodecKeyError, CodecRequestError, EncryptionCodec, codec_server_reply, keys_from_env

router = APIRouter(prefix="/codec", include_in_schema=False)


def codec_of(request: Request) -> EncryptionCodec | None:
    codec: EncryptionCodec | None = request.app.state.codec
    return codec


async def reply(the: Gate, direction: str, request: Request) -> JSONResponse:
    the.permit("read", set(), verb="read")
    try:
        return JSONResponse(await codec_server_reply(codec_of(request), direction, await request.body()))
    except (CodecRequestError, CodecKeyError) as error:
        raise ApiError(422, str(error)) from None


@router.post("/{direction}")
async def codec_endpoint(direction: Literal["encode", "decode"], request: Request, the: Gate = Depends(gate)) -> JSONResponse:
    return await reply(the, direction, request)


@router.post("/t/{secret}/{direction}")
async def codec_for_the_ui(secret: str, direction: Literal["encode", "decode"], request: Request,
                           inventory: Inventory = Depends(inventory_of),
                           settings: Settings = Depends(settings_of)) -> JSONResponse:
    token = authenticate(inventory, secret)
    if token is None:
        raise ApiError(401, "the token in the codec URL is unknown or revoked")
    return await reply(Gate(token=token, inventory=inventory, settings=settings), direction, request)


def codec_from_env() -> EncryptionCodec | None:
    keys = keys_from_env()
    return EncryptionCodec(keys) if keys else None
