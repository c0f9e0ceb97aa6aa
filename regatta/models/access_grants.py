"""AccessGrant: a person's time-bound access to one cluster (workflows/access_grant.py): what is asked, where it
stands, and what the activities that make and take back the access on the cluster are given."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from regatta.models.base import Model
from regatta.models.fleet import ClusterRef, TargetsByRef
from regatta.models.operations import Reported

GrantRole = Literal["view", "edit", "admin"]
GrantPhase = Literal["checking", "awaiting_approval", "granting", "granted", "revoking", "revoked", "expired",
                     "refused", "failed"]


class AccessGrantInput(Model):
    cluster: str
    role: GrantRole = Field(description="the cluster's default ClusterRole of that name, bound cluster-wide")
    duration_seconds: int = Field(ge=30, le=24 * 3600, description="how long the access lasts once granted")
    reason: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$")
    ticket: str | None = Field(default=None, max_length=200)
    requested_by: str = "temporal-ui"
    callback_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://",
                                     description="POSTed an HMAC-signed JSON note on every change of phase")
    approval_timeout_seconds: float = Field(default=4 * 3600, gt=0, description="an unapproved request ends after this")


class AccessGrantProgress(Reported):
    operation_id: str = ""
    cluster: str
    person: str = ""
    role: str = ""
    environment: str = ""
    phase: GrantPhase = "checking"
    step: str = "starting"
    needs_approval: bool = False
    approved_by: str | None = None
    granted_at: datetime | None = None
    expires_at: datetime | None = None
    handed_out_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    account: str = Field(default="", description="the service account the grant binds: regatta-access/<account>")
    message: str = ""


class AccessGrantResult(Model):
    operation_id: str
    cluster: str
    person: str
    role: str
    outcome: Literal["expired", "revoked", "refused"]
    approved_by: str | None
    granted_at: datetime | None
    ended_at: datetime | None
    message: str


class RevokeInput(Model):
    """End a grant now: its binding and account are deleted, and the kubeconfig handed out stops working."""

    requested_by: str = "temporal-ui"
    reason: str = ""


class HandOutInput(Model):
    """Ask for the grant's kubeconfig, once, sealed to `recipient_key` (an X25519 public key, base64): only the holder of
    its private key can read it, so the workflow's history holds nothing anyone else can use."""

    requested_by: str
    recipient_key: str = Field(min_length=40, max_length=60)

    @field_validator("recipient_key")
    @classmethod
    def _a_public_key(cls, key: str) -> str:
        import base64
        import binascii

        try:
            raw = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the recipient key is not base64") from None
        if len(raw) != 32 or raw == bytes(32):
            raise ValueError("the recipient key is not an X25519 public key (32 bytes, base64)")
        return key


class SealedKubeconfig(Model):
    """A kubeconfig sealed to the recipient's key (regatta/formats/sealed_box.py): X25519, HKDF-SHA256, AES-256-GCM."""

    ephemeral_key: str
    nonce: str
    ciphertext: str
    expires_at: datetime


class GrantAccess(TargetsByRef, Model):
    """Make the grant's service account and its ClusterRoleBinding on the cluster (both labelled with the grant)."""

    cluster: ClusterRef
    grant_id: str
    account: str
    role: GrantRole
    person: str


class HandOutAccess(TargetsByRef, Model):
    """A token for the grant's service account that expires with the grant, in a kubeconfig sealed to the recipient."""

    cluster: ClusterRef
    account: str
    expires_at: datetime = Field(description="the grant's end: the token lives until then (ten minutes at least)")
    recipient_key: str


class RevokeAccess(TargetsByRef, Model):
    cluster: ClusterRef
    grant_id: str
    account: str


class AccessGrantRecord(Model):
    """A grant as the inventory keeps it (`regatta access list`)."""

    grant_id: str
    cluster: str
    environment: str
    person: str
    role: str
    reason: str
    ticket: str | None = None
    phase: str
    approved_by: str | None = None
    requested_at: datetime
    granted_at: datetime | None = None
    expires_at: datetime | None = None
    handed_out_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
