"""The activity that tells an operation's callback URL about a change of phase, signed with
HMAC-SHA256 (regatta/rules/signing.py) under REGATTA_WEBHOOK_SECRET, which only the worker holds."""

from __future__ import annotations

import json
import time

from temporalio import activity

from activities.failures import refuse
from regatta.models import Activity, CallbackNote
from regatta.models.errors import ErrorType
from regatta.outbound_connections import OutboundRefused, send
from regatta.rules import signing
from regatta.rules.outbound import OutboundRules


class CallbackActivities:
    def __init__(self, secret: str | None, *, outbound: OutboundRules | None = None):
        self.secret = secret.encode() if secret else None
        self.outbound = outbound or OutboundRules()

    @activity.defn(name=Activity.POST_CALLBACK)
    def post_callback(self, note: CallbackNote) -> None:
        if (problem := self.outbound.problem(note.url, what="the callback URL")) is not None:
            raise refuse(problem, error_type=ErrorType.OUTBOUND_REFUSED)  # said first: no secret makes it right
        if self.secret is None:
            raise refuse("REGATTA_WEBHOOK_SECRET is not set on the worker: callbacks are only sent signed",
                         error_type=ErrorType.NO_WEBHOOK_SECRET)
        body = json.dumps(note.model_dump(mode="json", exclude={"url"}), sort_keys=True).encode()
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", signing.TIMESTAMP_HEADER: str(timestamp),
                   signing.SIGNATURE_HEADER: signing.sign(self.secret, timestamp, body)}
        try:  # to the address the outbound rules checked; a redirect is an answer, not followed
            response = send("POST", note.url, self.outbound, what="the callback URL", content=body, headers=headers)
        except OutboundRefused as refused:
            raise refuse(str(refused), error_type=ErrorType.OUTBOUND_REFUSED) from None
        # What the receiver says is its own business: only its status reaches the operation's readers.
        if 300 <= response.status_code < 500 and response.status_code not in (408, 429):
            raise refuse(f"the callback receiver at {note.url} refused note {note.sequence} with HTTP"
                         f" {response.status_code}", error_type=ErrorType.CALLBACK_REFUSED)
        if response.status_code >= 400:  # 5xx, 408, 429: Temporal retries
            raise RuntimeError(f"the callback receiver at {note.url} answered HTTP {response.status_code}")
