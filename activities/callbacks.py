"""The activity that tells an operation's callback URL about a change of phase, signed with
HMAC-SHA256 (regatta/rules/signing.py) under REGATTA_WEBHOOK_SECRET, which only the worker holds."""

from __future__ import annotations

import json
import time

from temporalio import activity

from activities.failures import refuse
from regatta.clouds.secret_stores import SecretStoreError, stored
from regatta.models import Activity, CallbackNote, HookCall
from regatta.models.errors import ErrorType
from regatta.outbound_connections import OutboundRefused, OutboundUnreachable, send
from regatta.rules import signing
from regatta.rules.outbound import OutboundRules


class CallbackActivities:
    def __init__(self, secret: str | None, *, outbound: OutboundRules | None = None):
        # the secret itself, or where a secrets store keeps it: read when a note is signed (regatta/clouds/secret_stores.py)
        self.secret = stored(secret, name="REGATTA_WEBHOOK_SECRET")
        self.outbound = outbound or OutboundRules()

    def _key(self, why: str) -> bytes:
        """The webhook secret as it is now (read from its store when the setting names one), or the refusal that says
        why there is none; a store that cannot be reached for now is an error Temporal retries."""
        if not self.secret:
            raise refuse(f"REGATTA_WEBHOOK_SECRET is not set on the worker: {why}", error_type=ErrorType.NO_WEBHOOK_SECRET)
        try:
            return self.secret.value().encode()
        except SecretStoreError as error:
            if error.retryable:
                raise
            raise refuse(str(error), error_type=ErrorType.NO_WEBHOOK_SECRET) from None

    @activity.defn(name=Activity.POST_CALLBACK)
    def post_callback(self, note: CallbackNote) -> None:
        if (problem := self.outbound.problem(note.url, what="the callback URL")) is not None:
            raise refuse(problem, error_type=ErrorType.OUTBOUND_REFUSED)  # said first: no secret makes it right
        secret = self._key("callbacks are only sent signed")
        body = json.dumps(note.model_dump(mode="json", exclude={"url"}), sort_keys=True).encode()
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", signing.TIMESTAMP_HEADER: str(timestamp),
                   signing.SIGNATURE_HEADER: signing.sign(secret, timestamp, body)}
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

    @activity.defn(name=Activity.CALL_HOOK)
    def call_hook(self, call: HookCall) -> str:
        """POST an upgrade's moment to a hook's URL, signed as callbacks are; say what a 2xx answered. A 4xx (but 408
        and 429) is the hook saying no, at once; a 5xx, a 408, a 429 or no answer is asked again every few seconds
        until the hook's timeout, and then it has said no. A no's words (the answer's first 200 characters) go into the
        refusal: the hook is the operator's own, and why it said no is what they need to read."""
        if (problem := self.outbound.problem(call.url, what=f"hook {call.hook}")) is not None:
            raise refuse(problem, error_type=ErrorType.OUTBOUND_REFUSED)
        secret = self._key("hooks are only called signed")
        body = json.dumps(call.model_dump(mode="json", exclude={"url", "timeout_seconds"}), sort_keys=True).encode()
        deadline = time.monotonic() + call.timeout_seconds
        while True:
            timestamp = int(time.time())
            headers = {"Content-Type": "application/json", signing.TIMESTAMP_HEADER: str(timestamp),
                       signing.SIGNATURE_HEADER: signing.sign(secret, timestamp, body)}
            left = deadline - time.monotonic()
            try:
                response = send("POST", call.url, self.outbound, what=f"hook {call.hook}", content=body, headers=headers,
                                timeout=max(1.0, min(30.0, left)))
                if 200 <= response.status_code < 300:
                    return f"HTTP {response.status_code}"
                said = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code not in (408, 429):
                    raise refuse(f"hook {call.hook} ({call.at}) said no: {said}: {_words(response.text)}",
                                 error_type=ErrorType.HOOK_SAID_NO)
            except OutboundRefused as refused:
                raise refuse(str(refused), error_type=ErrorType.OUTBOUND_REFUSED) from None
            except OutboundUnreachable as unreachable:
                said = str(unreachable)
            activity.heartbeat(said)
            if time.monotonic() + HOOK_RETRY_SECONDS > deadline:
                raise refuse(f"hook {call.hook} ({call.at}) did not say yes within {call.timeout_seconds:g}s; last: {said}",
                             error_type=ErrorType.HOOK_SAID_NO)
            time.sleep(HOOK_RETRY_SECONDS)


HOOK_RETRY_SECONDS = 2.0


def _words(text: str) -> str:
    """Why a hook said no, as it said it: the first 200 printable characters of its answer, on one line (only a
    refusal's words are kept; a yes is its status)."""
    printable = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(printable.split())[:200] or "(no body)"
