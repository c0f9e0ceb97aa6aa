"""The activity that tells an operation's callback URL about a change of phase, signed with
HMAC-SHA256 (regatta/rules/signing.py) under REGATTA_WEBHOOK_SECRET, which only the worker holds."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx
from temporalio import activity

from activities.failures import refuse
from regatta.models import Activity, CallbackNote
from regatta.models.errors import ErrorType
from regatta.rules import outbound, signing


def refuse_unless_reachable(url: str, *, allowed: Sequence[str], what: str) -> None:
    """Refuse, before connecting, a URL the outbound rules forbid for any address its host resolves to."""
    host = urlsplit(url).hostname or ""
    try:
        resolved = sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})
    except OSError:
        resolved = []  # unresolvable: the request itself fails, and is retried
    if (problem := outbound.outbound_problem(url, allowed=allowed, resolved=resolved, what=what)) is not None:
        raise refuse(problem, error_type=ErrorType.OUTBOUND_REFUSED)


class CallbackActivities:
    def __init__(self, secret: str | None, *, outbound_allow: Sequence[str] = ()):
        self.secret = secret.encode() if secret else None
        self.outbound_allow = tuple(outbound_allow)

    @activity.defn(name=Activity.POST_CALLBACK)
    def post_callback(self, note: CallbackNote) -> None:
        refuse_unless_reachable(note.url, allowed=self.outbound_allow, what="the callback URL")
        if self.secret is None:
            raise refuse("REGATTA_WEBHOOK_SECRET is not set on the worker: callbacks are only sent signed",
                         error_type=ErrorType.NO_WEBHOOK_SECRET)
        body = json.dumps(note.model_dump(mode="json", exclude={"url"}), sort_keys=True).encode()
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", signing.TIMESTAMP_HEADER: str(timestamp),
                   signing.SIGNATURE_HEADER: signing.sign(self.secret, timestamp, body)}
        response = httpx.post(note.url, content=body, headers=headers, timeout=10)
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            raise refuse(f"the callback receiver at {note.url} refused note {note.sequence} with"
                         f" {response.status_code}: {response.text[:200]}", error_type=ErrorType.CALLBACK_REFUSED)
        response.raise_for_status()  # 5xx, 408, 429: Temporal retries
