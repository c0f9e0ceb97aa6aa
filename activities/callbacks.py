"""The activity that tells an operation's callback URL about a change of phase, signed with
HMAC-SHA256 (regatta/signing.py) under REGATTA_WEBHOOK_SECRET, which only the worker holds."""

from __future__ import annotations

import json
import time

import httpx
from temporalio import activity

from activities.failures import refuse
from regatta.models import Activity, CallbackNote
from regatta.models.errors import ErrorType
from regatta.rules import signing


class CallbackActivities:
    def __init__(self, secret: str | None):
        self.secret = secret.encode() if secret else None

    @activity.defn(name=Activity.POST_CALLBACK)
    def post_callback(self, note: CallbackNote) -> None:
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
