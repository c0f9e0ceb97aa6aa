"""What every route depends on: the settings and the inventory the app was made with, the caller's
token, and the gate that lets a call through or refuses it (403) and writes the audit line.

Callers cannot say who they are: the token's name is who asked, in the workflow and in the audit
trail, which records every call that changes something or is refused.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from regatta.api.errors import ApiError
from regatta.api.tokens import authenticate
from regatta.fleet_clock import read_fleet_clock
from regatta.inventory import Inventory, UnknownCluster
from regatta.models import ApiToken, ClusterRecord, OperationRecord
from regatta.rules import access
from regatta.settings import Settings

bearer = HTTPBearer(auto_error=False, description="an API token from `regatta token create`")


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def inventory_of(request: Request) -> Inventory:
    inventory: Inventory = request.app.state.inventory
    return inventory


# The dependencies every route has are coroutines: FastAPI runs a plain function in its thread pool, and the
# hops cost the API more CPU under load than reading the token did. The one read that may block (a token the
# front door did not read) is made in a thread.
async def caller(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> ApiToken:
    found: ApiToken | None = getattr(request.state, "token", None)
    if found is not None:  # the front door checked it before the body was read (regatta/api/front_door.py)
        return found
    if credentials is None:
        raise ApiError(401, "send Authorization: Bearer <token>; `regatta token create` makes one")
    token = await asyncio.to_thread(authenticate, inventory_of(request), credentials.credentials)
    if token is None:
        raise ApiError(401, "the token is unknown or revoked; ask an admin for a new one")
    return token


@dataclass
class Gate:
    """One call's token, and what it may do."""

    token: ApiToken
    inventory: Inventory
    settings: Settings

    def audit(self, *, verb: str, outcome: str, operation_id: str = "-", cluster: str = "-", ticket: str | None = None,
              detail: str = "") -> None:
        self.inventory.append_audit(OperationRecord(
            operation_id=operation_id, operation="api", cluster=cluster, requested_by=self.token.name, ticket=ticket,
            action=f"api {verb}", outcome=outcome, detail=detail))

    def permit(self, action: access.Action, environments: set[str] | frozenset[str], *, verb: str,
               operation_id: str = "-", cluster: str = "-", ticket: str | None = None) -> None:
        refusal = access.refusal(token=self.token.name, role=self.token.role, scope=self.token.environments,
                                 action=action, environments=environments)
        if refusal is not None:
            if action != "read":  # a refused change is part of the trail; a refused read is not a change
                self.audit(verb=verb, outcome="refused", operation_id=operation_id, cluster=cluster, ticket=ticket,
                           detail=refusal)
            raise ApiError(403, refusal)

    def scope_refusal(self, action: access.Action, environments: set[str] | frozenset[str]) -> str | None:
        return access.refusal(token=self.token.name, role=self.token.role, scope=self.token.environments,
                              action=action, environments=environments)

    def may(self, action: access.Action, *, verb: str, ticket: str | None = None, operation_id: str = "-",
            cluster: str = "-") -> None:
        """403 unless the token's role may `action` somewhere: asked before a request is read further."""
        self.permit(action, set(), verb=verb, ticket=ticket, operation_id=operation_id, cluster=cluster)

    @property
    def sees_every_environment(self) -> bool:
        return access.ALL_ENVIRONMENTS in set(self.token.environments)

    def unseen(self, what: str) -> ApiError:
        """The one answer for "no such thing" and "not in your environments": a token learns nothing about
        names outside its scope, not even that they exist."""
        return ApiError(404, f"no {what} that token {self.token.name} may see (its environments:"
                             f" {', '.join(sorted(self.token.environments)) or 'none'}); GET /v1/clusters lists its clusters")

    def in_scope(self, action: access.Action, environments: set[str] | frozenset[str], *, verb: str, what: str,
                 operation_id: str = "-", cluster: str = "-", ticket: str | None = None) -> None:
        """Like `permit`, but a scope refusal is a 404 (recorded in the trail as the refusal it is), so the
        answer does not tell a name outside the token's environments from one that does not exist."""
        self.may(action, verb=verb, ticket=ticket, operation_id=operation_id, cluster=cluster)
        refusal = access.refusal(token=self.token.name, role=self.token.role, scope=self.token.environments,
                                 action=action, environments=environments)
        if refusal is not None:
            self.audit(verb=verb, outcome="refused", operation_id=operation_id, cluster=cluster, ticket=ticket,
                       detail=refusal)
            raise self.unseen(what)

    def cluster_for(self, name: str, action: access.Action, *, verb: str, ticket: str | None = None) -> ClusterRecord:
        """The cluster `name`, when the token may `action` on it; a 404 that names no other cluster otherwise."""
        self.may(action, verb=verb, ticket=ticket, cluster=name)
        try:
            record = self.inventory.get_cluster(name)
        except UnknownCluster as error:
            if self.sees_every_environment:  # the whole inventory is this token's to see: say what is there
                raise ApiError(404, str(error)) from None
            raise self.unseen(f"cluster {name!r}") from None
        self.in_scope(action, {record.environment}, verb=verb, what=f"cluster {name!r}", cluster=name, ticket=ticket)
        return record

    def visible_clusters(self) -> set[str] | None:
        """The clusters the token's environments cover; None: all of them."""
        scope = set(self.token.environments)
        if access.ALL_ENVIRONMENTS in scope:
            return None
        return {r.name for r in self.inventory.list_clusters() if r.environment in scope}

    def fleet_now(self) -> datetime:
        try:
            return read_fleet_clock(self.settings.sim_url).now
        except Exception as error:  # noqa: BLE001 - the simulator not answering means the same to the caller
            raise ApiError(503, f"cannot read the fleet's clock: {error}") from None


async def gate(request: Request, token: ApiToken = Depends(caller)) -> Gate:
    return Gate(token=token, inventory=inventory_of(request), settings=settings_of(request))
