"""Connecting to Temporal the one way every Regatta process does: the address and namespace
from the REGATTA_* settings, and the pydantic data converter so payloads are plain JSON (encrypted
when REGATTA_CODEC_KEYS or REGATTA_CODEC_KEY_FILE is set: regatta/temporal/codec.py), traced when
tracing is on (regatta/telemetry.py)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from regatta.settings import Settings
from regatta.telemetry import temporal_interceptors
from regatta.temporal.codec import with_codec
from regatta.temporal.outcomes import TemporalUnreachable

__all__ = ["TemporalUnreachable", "connect"]




async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    try:
        return await Client.connect(
            settings.temporal_address, namespace=settings.namespace, data_converter=with_codec(pydantic_data_converter),
            runtime=runtime, interceptors=temporal_interceptors(),
        )
    except RuntimeError as error:  # the SDK's core reports a failed connection as RuntimeError
        raise TemporalUnreachable(
            f"cannot reach Temporal at {settings.temporal_address} ({error}). Start it with `regatta dev`, or set"
            " REGATTA_TEMPORAL_ADDRESS to where it listens"
        ) from error
