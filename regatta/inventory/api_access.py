"""Who may use Regatta and how: API tokens (kept as hashes), change tickets claimed once, signed webhook deliveries
seen once, the fleet view's sessions, and people's time-bound access grants.

One of the stores `Inventory` is made of (regatta/inventory/store.py); each uses the one engine it opens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from regatta.inventory.audit_files import AuditKeys
from regatta.inventory.errors import TokenError
from regatta.inventory.tables import (
    AccessGrantRow,
    ApiTicketRow,
    ApiTokenRow,
    WebhookDeliveryRow,
    WebSessionRow,
    utc,
)
from regatta.models import (
    AccessGrantRecord,
    ApiTicket,
    ApiToken,
)

_TOKEN = ApiTokenRow.__table__.c
_TOKEN_BY_HASH = select(_TOKEN.name, _TOKEN.role, _TOKEN.environments, _TOKEN.created_at, _TOKEN.revoked_at).where(
    _TOKEN.token_hash == bindparam("token_hash"))


class AccessStore:
    engine: Engine
    audit_keys: AuditKeys

    # ------------------------------------------------------------------ API tokens and tickets

    @staticmethod
    def _token(row: ApiTokenRow) -> ApiToken:
        return ApiToken(name=row.name, role=row.role, environments=list(row.environments), created_at=row.created_at,
                        revoked_at=row.revoked_at)

    def add_token(self, *, name: str, token_hash: str, role: str, environments: list[str]) -> ApiToken:
        with Session(self.engine) as session, session.begin():
            if session.get(ApiTokenRow, name) is not None:
                free = next(f"{name}-{n}" for n in range(2, 10_000) if session.get(ApiTokenRow, f"{name}-{n}") is None)
                raise TokenError(f"a token named {name} exists already (names are never reused, even once revoked);"
                                 f" choose another name, e.g. --name {free}")
            row = ApiTokenRow(name=name, token_hash=token_hash, role=role, environments=environments,
                              created_at=datetime.now(UTC))
            session.add(row)
            session.flush()
            return self._token(row)

    def revoke_token(self, name: str) -> ApiToken:
        with Session(self.engine) as session, session.begin():
            row = session.get(ApiTokenRow, name)
            if row is None:
                known = ", ".join(session.scalars(select(ApiTokenRow.name).order_by(ApiTokenRow.name)).all()) or "none"
                raise TokenError(f"no token named {name} (tokens: {known})")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            return self._token(row)

    def token_by_hash(self, token_hash: str) -> ApiToken | None:
        """Every API request asks this: one Core SELECT, no ORM session (a fifth of the API's CPU under load)."""
        with self.engine.connect() as connection:
            row = connection.execute(_TOKEN_BY_HASH, {"token_hash": token_hash}).first()
        if row is None:
            return None
        return ApiToken(name=row.name, role=row.role, environments=list(row.environments), created_at=row.created_at,
                        revoked_at=row.revoked_at)

    def list_tokens(self) -> list[ApiToken]:
        with Session(self.engine) as session:
            return [self._token(row) for row in session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.name))]

    def claim_ticket(self, claim: ApiTicket) -> ApiTicket | None:
        """Claim a change ticket for an operation; the claim already held, if one is (the same
        ticket sent twice, even at the same moment, starts one operation)."""
        try:
            with Session(self.engine) as session, session.begin():
                session.add(ApiTicketRow(**claim.model_dump()))
            return None
        except IntegrityError:
            return self.ticket(claim.ticket)

    def release_ticket(self, ticket: str) -> None:
        """Give a ticket back when its operation could not be started, so a retry can start it."""
        with Session(self.engine) as session, session.begin():
            row = session.get(ApiTicketRow, ticket)
            if row is not None:
                session.delete(row)

    def ticket(self, ticket: str) -> ApiTicket | None:
        with Session(self.engine) as session:
            row = session.get(ApiTicketRow, ticket)
            return None if row is None else ApiTicket(ticket=row.ticket, kind=row.kind, operation_id=row.operation_id,
                                                      request_digest=row.request_digest, token=row.token,
                                                      created_at=row.created_at)

    def first_delivery(self, signature: str, *, keep_seconds: float) -> bool:
        """Remember an inbound webhook's signature; False when it was seen before (a replay).
        Signatures older than the timestamp window are forgotten: their requests are refused anyway."""
        now = datetime.now(UTC)
        try:
            with Session(self.engine) as session, session.begin():
                session.execute(delete(WebhookDeliveryRow).where(
                    WebhookDeliveryRow.received_at < now - timedelta(seconds=2 * keep_seconds)))
                session.add(WebhookDeliveryRow(signature=signature, received_at=now))
            return True
        except IntegrityError:
            return False

    # ------------------------------------------------------------------ fleet-view sessions

    def start_web_session(self, *, session_hash: str, token: ApiToken, csrf: str, now: datetime, lifetime: timedelta) -> None:
        """A session for an API token (read again on every page: revoking it ends the session), or for a person
        signed in through the identity provider (what their sign-in gave them kept with it, for its lifetime)."""
        person = token.signed_in_with is not None
        with Session(self.engine) as session, session.begin():
            session.add(WebSessionRow(session_hash=session_hash, token_name=token.name, csrf=csrf, created_at=now,
                                      expires_at=now + lifetime, signed_in_with=token.signed_in_with,
                                      role=token.role if person else None,
                                      environments=list(token.environments) if person else None,
                                      group_name=token.group if person else None,
                                      groups=list(token.groups or []) if person else None))

    def web_session(self, session_hash: str, *, now: datetime) -> tuple[ApiToken, str] | None:
        """The live token and CSRF secret a session stands for; None once it expired or its token was revoked."""
        with Session(self.engine) as session:
            row = session.get(WebSessionRow, session_hash)
            expires = utc(row.expires_at) if row is not None else None
            if row is None or expires is None or expires <= now:
                return None
            if row.signed_in_with is not None:
                return ApiToken(name=row.token_name, role=row.role, environments=list(row.environments or []),
                                created_at=utc(row.created_at), signed_in_with=row.signed_in_with,
                                group=row.group_name, groups=list(row.groups or []),
                                expires_at=utc(row.expires_at)), row.csrf
            token = session.get(ApiTokenRow, row.token_name)
            if token is None or token.revoked_at is not None:
                return None
            return self._token(token), row.csrf

    # ------------------------------------------------------------------ access grants

    def record_access_grant(self, grant: AccessGrantRecord) -> None:
        """The grant as it stands now (written at every change of its phase)."""
        with Session(self.engine) as session, session.begin():
            row = session.get(AccessGrantRow, grant.grant_id)
            values = grant.model_dump()
            if row is None:
                session.add(AccessGrantRow(**values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)

    def access_grants(self, *, cluster: str | None = None, person: str | None = None,
                      grant_id: str | None = None) -> list[AccessGrantRecord]:
        """Grants, newest first, narrowed to a cluster, a person or one grant."""
        query = select(AccessGrantRow).order_by(AccessGrantRow.requested_at.desc())
        if cluster:
            query = query.where(AccessGrantRow.cluster == cluster)
        if person:
            query = query.where(AccessGrantRow.person == person)
        if grant_id:
            query = query.where(AccessGrantRow.grant_id == grant_id)
        with Session(self.engine) as session:
            return [AccessGrantRecord(**{column: (utc(value) if isinstance(value, datetime) else value)
                                         for column, value in ((c.key, getattr(row, c.key))
                                                               for c in AccessGrantRow.__table__.columns)})
                    for row in session.scalars(query)]

    def end_sessions_of(self, name: str) -> int:
        """Every fleet-view session under `name` (a token's, or a person's signed in through the identity provider)
        ended: how many there were."""
        with Session(self.engine) as session, session.begin():
            rows = session.scalars(select(WebSessionRow).where(WebSessionRow.token_name == name)).all()
            for row in rows:
                session.delete(row)
            return len(rows)

    def end_web_session(self, session_hash: str) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(WebSessionRow, session_hash)
            if row is not None:
                session.delete(row)
