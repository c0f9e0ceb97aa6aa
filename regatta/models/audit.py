"""The audit trail and what observers are told: one record per step (who asked, why, what changed, the
outcome), the verdict of `regatta audit verify`, and the signed note a callback URL receives.

Written by every workflow through the inventory activities; read by the CLI and the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from regatta.models.base import Model


class OperationRecord(Model):
    """One line of the audit trail (DESIGN rule 10): who asked, why, what changed, the outcome."""

    operation_id: str
    operation: str
    cluster: str
    requested_by: str
    ticket: str | None = None
    action: str
    outcome: Literal["started", "succeeded", "failed", "aborted", "refused", "paused", "resumed", "abort_requested",
                     "approved", "skipped", "held", "released", "escalated", "found", "remediated", "suppressed",
                     "changed", "accepted", "handed_out", "reached", "rolled_back", "granted", "revoke_requested",
                     "revoked", "expired", "attached", "compared"]
    detail: str = ""
    # Position in the run's own trail; a retried write with the same (operation_id, run_id, seq)
    # is recorded once. 0 means "not from a workflow" and is never deduplicated.
    seq: int = 0
    run_id: str = ""
    at: datetime | None = Field(default=None, description="when it was written; set by the inventory, not by the writer")


class AuditVerification(Model):
    """What `regatta audit verify` finds: the trail whole, or the first record whose chain breaks."""

    ok: bool
    records: int = Field(description="records that hold, from the first")
    broken_at: int | None = Field(default=None, description="id of the first record that breaks the chain")
    reason: str | None = None
    keyed: int = Field(default=0, description="records whose hash is an HMAC under an audit key")
    checkpoints: int = Field(default=0, description="signed checkpoints from outside the database the trail matched")
    warnings: list[str] = Field(default_factory=list, description="what weakens the verdict (no key, no checkpoints,"
                                " checkpoint lines that cannot be trusted)")


class CallbackNote(Model):
    """What an operation's callback URL is POSTed when its phase changes (signed by the activity,
    whose secret never enters history)."""

    url: str
    operation_id: str
    workflow_type: str
    cluster: str
    ticket: str | None = None
    phase: str
    step: str
    sequence: int = Field(description="1, 2, 3... per run: a receiver can tell a missing note from a late one")
    at: datetime
