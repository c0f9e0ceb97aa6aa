"""Encryption of every workflow payload (inputs, results, progress, activity arguments) before it
reaches Temporal, with AES-256-GCM from `cryptography`, and key rotation by key id.

DESIGN rule 1 keeps credentials out of payloads; this keeps what remains (cluster names,
tickets, who asked) unreadable to anyone with only the Temporal database. Off unless a key is
set:

- `REGATTA_CODEC_KEYS="k2:BASE64KEY,k1:BASE64KEY"`, or `REGATTA_CODEC_KEY_FILE` naming a file
  with one `ID BASE64KEY` per line. The first key encrypts; every key listed decrypts, so a
  rotation adds a new first key and keeps the old ones until no history needs them.
- `REGATTA_CODEC_KEYS=aws-secretsmanager:NAME[#KEY]`: the keys kept in AWS Secrets Manager, in either
  form; asked for again before each use (the store's copy kept a minute), so a rotation made there
  is in use in every process within a minute, with no restart.
- `regatta codec new-key` prints a fresh key line.

The API serves `/codec/encode` and `/codec/decode` (Temporal's codec-server protocol) so the
Temporal UI shows decrypted payloads to people holding a token.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec

from regatta.clouds.secret_stores import SecretStoreError, is_reference, stored

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class CodecKeyError(ValueError):
    """Keys that cannot be used, or a payload whose key this process does not hold."""


def new_key_line(key_id: str) -> str:
    return f"{key_id} {base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


def _parse(entries: Sequence[tuple[str, str]], where: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for key_id, encoded in entries:
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise CodecKeyError(f"{where}: key {key_id!r} is not base64; make one with `regatta codec new-key`") from None
        if len(key) != 32:
            raise CodecKeyError(f"{where}: key {key_id!r} is {len(key)} bytes; AES-256 needs 32")
        if key_id in keys:
            raise CodecKeyError(f"{where}: key id {key_id!r} appears twice")
        keys[key_id] = key
    return keys


def keys_from_env(env: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """The codec keys the environment names, the encrypting one first; empty when none is set."""
    env = os.environ if env is None else env
    if text := env.get("REGATTA_CODEC_KEYS", "").strip():
        if is_reference(text):  # kept in a secrets store: its text is either form (regatta/clouds/secret_stores.py)
            try:
                return _keys_text(stored(text, name="REGATTA_CODEC_KEYS").value(), "REGATTA_CODEC_KEYS's secret")
            except SecretStoreError as error:
                raise CodecKeyError(str(error)) from None
        pairs = [item.strip().partition(":") for item in text.split(",") if item.strip()]
        if any(not sep or not key_id for key_id, sep, _ in pairs):
            raise CodecKeyError("REGATTA_CODEC_KEYS: give id:base64key pairs separated by commas")
        return _parse([(key_id, key) for key_id, _, key in pairs], "REGATTA_CODEC_KEYS")
    if path := env.get("REGATTA_CODEC_KEY_FILE", "").strip():
        try:
            lines = [line.split() for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")]
        except OSError as error:
            raise CodecKeyError(f"REGATTA_CODEC_KEY_FILE: cannot read {path}: {error.strerror}") from None
        if any(len(parts) != 2 for parts in lines):
            raise CodecKeyError(f"{path}: each line is `ID BASE64KEY`")
        return _parse([(parts[0], parts[1]) for parts in lines], path)
    return {}


def codec_identity(env: Mapping[str, str] | None = None) -> tuple:
    """What tells one codec setting from another, without a secrets store's read: the reference itself where the keys
    are kept in a store (its codec reads them again on its own), else the keys."""
    env = os.environ if env is None else env
    text = env.get("REGATTA_CODEC_KEYS", "").strip()
    return (text,) if is_reference(text) else tuple(sorted(keys_from_env(env).items()))


def _keys_text(text: str, where: str) -> dict[str, bytes]:
    """Keys written as REGATTA_CODEC_KEYS (`id:base64,...`) or as a key file (`ID BASE64` a line)."""
    lines = [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if lines and all(len(parts) == 2 for parts in lines):
        return _parse([(parts[0], parts[1]) for parts in lines], where)
    pairs = [item.strip().partition(":") for item in text.split(",") if item.strip()]
    if not pairs or any(not sep or not key_id for key_id, sep, _ in pairs):
        raise CodecKeyError(f"{where}: give `ID BASE64KEY` lines or id:base64key pairs separated by commas")
    return _parse([(key_id, key) for key_id, _, key in pairs], where)


class PlaintextRefused(CodecKeyError):
    """A payload that is not ciphertext where a key is set: written by something without the key."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Mapping[str, bytes], *, accept_plaintext: bool = False,
                 reload: Callable[[], Mapping[str, bytes]] | None = None):
        if not keys:
            raise CodecKeyError("no codec key: set REGATTA_CODEC_KEYS or REGATTA_CODEC_KEY_FILE")
        self._hold(keys)
        # Keys kept in a secrets store are asked for again before each use (the store's copy is kept a minute), so
        # a rotation there (a new key first, the old ones after it) is in use without a restart; a store that cannot
        # be read leaves the keys held as they were.
        self.reload = reload
        self._asked_until = 0.0
        # Where a key is set, every payload must be ciphertext: a plaintext one was written by someone who
        # reached Temporal without the key (a DecommissionCluster started by hand, a forged approval), and is
        # refused. REGATTA_CODEC_ACCEPT_PLAINTEXT=1 lets histories begun before encryption finish.
        self.accept_plaintext = accept_plaintext

    def _hold(self, keys: Mapping[str, bytes]) -> None:
        self.held = tuple(keys.items())
        self.keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current = next(iter(keys))

    async def refresh(self) -> None:
        """The keys asked for again, at most once a second, in a thread: a store slow to answer holds up the payload
        that waits for it, never the event loop every workflow runs on."""
        if self.reload is None or time.monotonic() < self._asked_until:
            return
        self._asked_until = time.monotonic() + 1.0
        try:
            keys = await asyncio.to_thread(self.reload)
        except CodecKeyError as error:
            logging.getLogger(__name__).warning("codec keys not read again, the held ones kept: %s", error)
            return
        if keys and tuple(keys.items()) != self.held:
            self._hold(keys)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        await self.refresh()
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        await self.refresh()
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self.keys[self.current].encrypt(nonce, payload.SerializeToString(), self.current.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: self.current.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            if self.accept_plaintext:
                return payload  # written before encryption was turned on
            raise PlaintextRefused("a payload is not encrypted, and this installation encrypts every payload: it was"
                                   " written by a client without the codec key (set REGATTA_CODEC_ACCEPT_PLAINTEXT=1 only"
                                   " while histories begun before encryption finish)")
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        if key_id not in self.keys:
            raise CodecKeyError(f"a payload is encrypted with key {key_id!r}, which this process does not hold;"
                                f" it holds {', '.join(self.keys)}. Keep old keys listed after a rotation")
        opened = self.keys[key_id].decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id.encode())
        return Payload.FromString(opened)


def codec_from_env(env: Mapping[str, str] | None = None) -> EncryptionCodec | None:
    """The codec the environment's keys make (None: no key set)."""
    env = os.environ if env is None else env
    keys = keys_from_env(env)
    accept = (env.get("REGATTA_CODEC_ACCEPT_PLAINTEXT") or "").strip().lower() in ("1", "true", "yes", "on")
    if not keys:
        return None
    reload = (lambda: keys_from_env(env)) if is_reference(env.get("REGATTA_CODEC_KEYS", "").strip()) else None
    return EncryptionCodec(keys, accept_plaintext=accept, reload=reload)


def with_codec(converter: DataConverter, env: Mapping[str, str] | None = None) -> DataConverter:
    """The converter, encrypting when the environment sets keys; unchanged otherwise."""
    codec = codec_from_env(env)
    return dataclasses.replace(converter, payload_codec=codec) if codec else converter


class CodecRequestError(ValueError):
    """A codec-server request body that is not Temporal Payloads JSON."""


async def codec_server_reply(codec: EncryptionCodec | None, direction: str, body: bytes) -> dict:
    """Temporal's codec-server protocol, as the Temporal UI speaks it: `{"payloads": [...]}` in the
    proto JSON form, encoded or decoded, back in the same form. Without keys, payloads pass through."""
    import json

    from google.protobuf import json_format
    from temporalio.api.common.v1 import Payloads

    try:
        parsed = json.loads(body)
        if not isinstance(parsed, dict):
            raise ValueError('expected an object like {"payloads": [...]}')
        payloads = json_format.ParseDict(parsed, Payloads())
    except (ValueError, json_format.ParseError) as error:
        raise CodecRequestError(f"the body is not Temporal Payloads JSON: {error}") from None
    if codec is not None:
        done = await (codec.encode if direction == "encode" else codec.decode)(payloads.payloads)
        payloads = Payloads(payloads=done)
    reply: dict = json.loads(json_format.MessageToJson(payloads))
    return reply
