"""Temporal's codec-server protocol, so the Temporal UI can show decrypted payloads to the people
allowed to read them.

A payload does not say which environment it is about, so decoding takes a token (or a fleet view
session) whose role may read and whose environments are all of them (`*`): a staging viewer does not
open prod's payloads. Two ways in, neither with a secret in the URL:

- `POST /codec/{encode|decode}` with `Authorization: Bearer <token>` (scripts, `temporal` CLI);
- `POST /ui/codec/{encode|decode}` with the fleet view's session cookie: the Temporal UI sends it when
  its codec endpoint is set with "include credentials" (TEMPORAL_CODEC_INCLUDE_CREDENTIALS=true), so a
  person signed in to the fleet view in the same browser sees decrypted payloads there. Cross-origin
  requests are allowed for these paths only, from REGATTA_CODEC_CORS_ORIGINS.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from regatta.api.errors import ApiError
from regatta.api.gate import Gate, gate, inventory_of, settings_of
from regatta.temporal.codec import CodecKeyError, CodecRequestError, EncryptionCodec, codec_server_reply
from regatta.temporal.codec import codec_from_env as codec_from_env
from regatta.web import session

router = APIRouter(include_in_schema=False)
CODEC_PATHS = ("/codec/", "/ui/codec/")


def codec_of(request: Request) -> EncryptionCodec | None:
    codec: EncryptionCodec | None = request.app.state.codec
    return codec


async def reply(the: Gate, direction: str, request: Request) -> JSONResponse:
    if not the.sees_every_environment:
        the.audit(verb="decode", outcome="refused", detail="payloads of every environment: a token for * only")
        raise ApiError(403, f"token {the.token.name} is scoped to {', '.join(the.token.environments)}; a payload may be"
                       " about any environment, so only a token for every environment (*) decodes them")
    # Reading payloads is a reader's; making ciphertext Temporal would accept (a forged input, an approval) is
    # an admin's only: the workers refuse plaintext, and encode must not hand anyone the way around that.
    the.permit("admin" if direction == "encode" else "read", set(), verb=direction)
    try:
        return JSONResponse(await codec_server_reply(codec_of(request), direction, await request.body()))
    except (CodecRequestError, CodecKeyError) as error:
        raise ApiError(422, str(error)) from None


@router.post("/codec/{direction}")
async def codec_endpoint(direction: Literal["encode", "decode"], request: Request, the: Gate = Depends(gate)) -> JSONResponse:
    return await reply(the, direction, request)


@router.post("/ui/codec/{direction}")
async def codec_for_the_ui(direction: Literal["encode", "decode"], request: Request) -> JSONResponse:
    """The Temporal UI's way in: the fleet view's session cookie, sent along by the browser."""
    try:
        viewer = session.viewer(inventory_of(request), request)
    except session.SignInNeeded:
        raise ApiError(401, "sign in to the fleet view (/ui) in this browser; the Temporal UI then sends its"
                       " session along") from None
    return await reply(Gate(token=viewer.token, inventory=inventory_of(request), settings=settings_of(request)),
                       direction, request)
