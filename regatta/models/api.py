"""The HTTP API's records in the inventory: tokens (their hash, never the token) and the change tickets
the API started operations under.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from regatta.models.base import Model


class ApiToken(Model):
    """An API token as the inventory keeps it (its hash; never the token)."""

    name: str
    role: Literal["viewer", "operator", "approver", "admin"]
    environments: list[str] = Field(description="environments it may act on; '*' for every one")
    created_at: datetime
    revoked_at: datetime | None = None
    # A person signed in through the identity provider (regatta/api/identity_provider.py) is a token too, made
    # for the request or the fleet-view session: the provider's issuer, and the group that gave the role.
    signed_in_with: str | None = None
    group: str | None = None
    groups: list[str] | None = Field(default=None, description="a person's groups at sign-in (their role is decided"
                                                                " again from them on every page)")
    expires_at: datetime | None = Field(default=None, description="a person's: when the provider's token expires")


class ApiTicket(Model):
    """A change ticket the API started an operation for."""

    ticket: str
    kind: str
    operation_id: str
    request_digest: str
    token: str
    created_at: datetime
