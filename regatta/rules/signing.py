"""HMAC-SHA256 signatures on webhooks, both ways: the callbacks Regatta posts about an operation,
and the events ticket systems post to Regatta. The signature covers a timestamp and the body,
so a captured request cannot be replayed outside the window (and the API remembers the ones it
has seen inside it).

Pure: the secret, the clock and the body are handed in.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Regatta-Signature"
TIMESTAMP_HEADER = "X-Regatta-Timestamp"
WINDOW_SECONDS = 300


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def envelope_problem(*, signature: str | None, timestamp: str | None, now: float,
                     window: float = WINDOW_SECONDS) -> str | None:
    """What makes a request untrustworthy before its signature is checked (no secret needed): missing headers, a
    timestamp that is no number or outside the window. None when only the signature is left to check."""
    if not signature or not timestamp:
        return f"sign the request: {SIGNATURE_HEADER} (sha256=HMAC of '<timestamp>.<body>') and {TIMESTAMP_HEADER}"
    try:
        sent = int(timestamp)
    except ValueError:
        return f"{TIMESTAMP_HEADER} must be Unix seconds, not {timestamp!r}"
    if abs(now - sent) > window:
        return f"{TIMESTAMP_HEADER} is {now - sent:+.0f}s from now, outside the {window:.0f}s window: a replay or a wrong clock"
    return None


def verification_problem(secret: bytes, *, signature: str | None, timestamp: str | None, body: bytes, now: float,
                         window: float = WINDOW_SECONDS) -> str | None:
    """Why a signed request is not to be trusted; None when it is."""
    if (problem := envelope_problem(signature=signature, timestamp=timestamp, now=now, window=window)) is not None:
        return problem
    assert signature is not None and timestamp is not None
    sent = int(timestamp)
    if not hmac.compare_digest(sign(secret, sent, body).encode(), signature.encode()):  # bytes: any text compares
        return "the signature does not match the body and timestamp under the shared secret"
    return None
