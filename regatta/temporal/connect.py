"""Connecting to Temporal the one way every Regatta process does: the address and namespace
from the REGATTA_* settings, TLS, mTLS or an API key when the server is more than the dev server
(a Temporal cluster of your own, or Temporal Cloud), and the pydantic data converter so payloads
are plain JSON (encrypted when REGATTA_CODEC_KEYS or REGATTA_CODEC_KEY_FILE is set:
regatta/temporal/codec.py), traced when tracing is on (regatta/telemetry.py)."""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from regatta.settings import Settings
from regatta.telemetry import temporal_interceptors, tracer_provider
from regatta.temporal.codec import codec_identity, with_codec
from regatta.temporal.outcomes import OperationRefused, TemporalUnreachable

__all__ = ["TemporalSettingsRefused", "TemporalUnreachable", "connect", "connection_options"]


class TemporalSettingsRefused(OperationRefused):
    """The REGATTA_TEMPORAL_* settings cannot make a connection as given (a key without its
    certificate, a file that cannot be read): nothing was tried."""


def _read(variable: str, path: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as error:
        raise TemporalSettingsRefused(f"{variable}={path}: cannot read it ({error.strerror}); give the path of a PEM file"
                                      " this process can read") from None


def connection_options(settings: Settings) -> dict[str, Any]:
    """How to reach the server: `tls` (False, True for the system's roots, or a TLSConfig with
    the CA, client certificate and server name) and `api_key`. An API key implies TLS: Temporal
    Cloud accepts it over TLS only."""
    if bool(settings.temporal_tls_cert) != bool(settings.temporal_tls_key):
        given, missing = (("REGATTA_TEMPORAL_TLS_CERT", "REGATTA_TEMPORAL_TLS_KEY") if settings.temporal_tls_cert
                          else ("REGATTA_TEMPORAL_TLS_KEY", "REGATTA_TEMPORAL_TLS_CERT"))
        raise TemporalSettingsRefused(f"{given} is set but {missing} is not: mTLS needs the client certificate and its key")
    tls: bool | TLSConfig = settings.temporal_tls or bool(settings.temporal_api_key)
    if settings.temporal_tls_ca or settings.temporal_tls_cert or settings.temporal_tls_server_name:
        tls = TLSConfig(
            server_root_ca_cert=_read("REGATTA_TEMPORAL_TLS_CA", settings.temporal_tls_ca) if settings.temporal_tls_ca else None,
            client_cert=_read("REGATTA_TEMPORAL_TLS_CERT", settings.temporal_tls_cert) if settings.temporal_tls_cert else None,
            client_private_key=_read("REGATTA_TEMPORAL_TLS_KEY", settings.temporal_tls_key) if settings.temporal_tls_key else None,
            domain=settings.temporal_tls_server_name,
        )
    return {"tls": tls, "api_key": settings.temporal_api_key}


def describe_security(settings: Settings) -> str:
    """How this process reaches Temporal, for the lines a worker and `regatta dev` print (no secret)."""
    if settings.temporal_tls_cert:
        return "mTLS"
    if settings.temporal_api_key:
        return "TLS and an API key"
    if settings.temporal_tls or settings.temporal_tls_ca or settings.temporal_tls_server_name:
        return "TLS"
    return "plaintext"


# One client per event loop and way of connecting, for the life of the process: an API process
# answers every request with the client its first request made, instead of a connection (and a
# handshake, and a system-info call) per request. A client reconnects on its own after the server
# restarts. Keyed by everything the connection is made from, so other settings get their own.
_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Client]] = weakref.WeakKeyDictionary()
_CONNECTING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _connection_key(settings: Settings) -> tuple[Any, ...]:
    return (settings.temporal_address, settings.namespace, settings.temporal_tls, settings.temporal_tls_ca,
            settings.temporal_tls_cert, settings.temporal_tls_key, settings.temporal_tls_server_name,
            settings.temporal_api_key, codec_identity(), id(tracer_provider()))


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """The process's client for these settings, connecting on first use. A worker that brings its
    own runtime (its Prometheus metrics) gets a client of its own."""
    if runtime is not None:
        return await _connect(settings, runtime)
    loop = asyncio.get_running_loop()
    key = _connection_key(settings)
    clients = _CLIENTS.setdefault(loop, {})
    if (found := clients.get(key)) is not None:
        return found
    async with _CONNECTING.setdefault(loop, asyncio.Lock()):
        if (found := clients.get(key)) is None:
            found = clients[key] = await _connect(settings, None)
    return found


async def _connect(settings: Settings, runtime: Runtime | None) -> Client:
    options = connection_options(settings)
    try:
        return await Client.connect(
            settings.temporal_address, namespace=settings.namespace, data_converter=with_codec(pydantic_data_converter),
            runtime=runtime, interceptors=temporal_interceptors(), **options,
        )
    except RuntimeError as error:  # the SDK's core reports a failed connection as RuntimeError
        raise TemporalUnreachable(
            f"cannot reach Temporal at {settings.temporal_address} over {describe_security(settings)} ({error}). Start it"
            " with `regatta dev`, or set REGATTA_TEMPORAL_ADDRESS (and REGATTA_TEMPORAL_TLS_*, REGATTA_TEMPORAL_API_KEY)"
            " to where and how it listens"
        ) from error
