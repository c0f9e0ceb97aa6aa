"""The fleet view's pages, on the API's port under `/ui`, rendered on the server (Jinja2) with no
front-end build and no script but the browser's own forms:

- `/ui`: the fleet, every cluster the token may see, filtered, sorted and paginated on the server
  (labels, provider, region, environment, compliance; any column);
- `/ui/clusters/{name}`: one cluster: node pools and versions, its operation in flight, bundles
  and their states, drifts, placed applications, its recent audit trail;
- `/ui/access`: time-bound access to clusters: ask, approve, revoke, take a grant's kubeconfig once;
- `/ui/operations` and `/ui/operations/{id}`: running and recent operations, progress per stage,
  a wave's forecast, and the controls the token's role may use (pause, resume, abort, approve),
  each a form carrying the session's CSRF secret, refused by the same rules as the API.

Sign-in exchanges an API token, or a sign-in through the company's identity provider (authorization code
with PKCE, `/ui/login/oidc`), for a session cookie (regatta/web/session.py); each is an `access` record in
the audit trail.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from temporalio.client import ScheduleActionStartWorkflow

from regatta.api import access_grants
from regatta.api.errors import ApiError, readable
from regatta.api.gate import Gate, inventory_of, settings_of
from regatta.api.identity_provider import IdentityProvider, ProviderUnreachable, TokenRefused
from regatta.api.operations import ControlRequest, described, environments_of, send_control
from regatta.api.tokens import authenticate
from regatta.formats import fleet_data
from regatta.inventory import fleet_reads, rehearsal_records
from regatta.models import ClusterRecord, OperationRecord, PatchWaveInput
from regatta.models.fleet_view import SORTABLE, FleetQuery
from regatta.models.operations import WorkflowName
from regatta.models.search_attributes import CLUSTER
from regatta.rules import access, fleet_view, operation_catalog, outcomes
from regatta.rules import access_grants as access_grants_rules
from regatta.temporal.connect import TemporalUnreachable, connect
from regatta.temporal.operations import OperationRefused, list_operations, query
from regatta.web import session
from regatta.web.fleet_cache import FleetCache

router = APIRouter(prefix="/ui", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
CONTROLS = ("pause", "resume", "abort", "approve")
log = logging.getLogger(__name__)




def _gate(request: Request, viewer: session.Viewer) -> Gate:
    return Gate(token=viewer.token, inventory=inventory_of(request), settings=settings_of(request))


def _page(request: Request, name: str, viewer: session.Viewer | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    settings = settings_of(request)
    workflows = f"{settings.temporal_ui}/namespaces/{settings.namespace}/workflows"
    return templates.TemplateResponse(request, name, {"viewer": viewer, "temporal_ui": settings.temporal_ui,
                                                      "temporal_workflows": workflows, **context},
                                      status_code=status_code)


async def _client(request: Request | FastAPI) -> Any:
    """The API process's one Temporal client (regatta/temporal/connect.py), for the pages."""
    app = request.app if isinstance(request, Request) else request
    return await connect(app.state.settings)


IN_FLIGHT_SECONDS = 5.0  # how long one listing of running operations serves the pages


async def _in_flight(app: FastAPI) -> dict[str, tuple[str, str]]:
    """Cluster → the operation running on it (id, type), from Temporal's list of running workflows,
    read at most every few seconds (a wave of a thousand upgrades lists a thousand)."""
    cached = app.state.__dict__.get("in_flight")
    if cached is not None and time.monotonic() - cached[0] < IN_FLIGHT_SECONDS:
        return dict(cached[1])
    found: dict[str, tuple[str, str]] = {}
    try:
        client = await _client(app)
        async for execution in client.list_workflows('ExecutionStatus="Running"'):
            cluster = execution.typed_search_attributes.get(CLUSTER) if execution.typed_search_attributes else None
            if cluster and execution.workflow_type != WorkflowName.CLUSTER_HOLD:
                found.setdefault(cluster, (execution.id, execution.workflow_type))
    except (TemporalUnreachable, RuntimeError):
        app.state.__dict__.get("temporal_for_pages", {}).pop("client", None)
    app.state.in_flight = (time.monotonic(), found)  # Temporal down: no operations, asked again later
    return found


async def _fleet(request: Request) -> tuple[list[ClusterRecord], float]:
    """Every cluster (regatta/web/fleet_cache.py), and how many seconds old the read is."""
    cache = request.app.state.__dict__.setdefault("fleet_cache", FleetCache())
    return await cache.clusters(inventory_of(request))


WARM_TEMPORAL_SECONDS = 3.0  # how long readiness waits for Temporal's answers; the pages ask again later


async def warm(app: FastAPI) -> None:
    """Read what the fleet view's first page would otherwise wait for — every cluster (over a second
    at 10,000), the operations in flight and the patch schedules — so that a process says it is
    ready (/readyz) only once its first page answers as fast as the next: a rolling deploy or a load
    balancer sends nobody to a process still reading. Temporal is asked for a few seconds at most:
    the API serves without it."""
    cache = app.state.__dict__.setdefault("fleet_cache", FleetCache())

    async def from_temporal() -> None:
        try:
            await asyncio.wait_for(asyncio.gather(_in_flight(app), _scheduled(app)), WARM_TEMPORAL_SECONDS)
        except Exception:  # slow, refusing (an RPC error), a schedule it cannot decode: never holds readiness back
            log.warning("the fleet view's first reads of Temporal failed; its pages ask again", exc_info=True)

    for name in ("login.html", "fleet.html"):  # compiled once, here rather than on someone's first page
        templates.get_template(name)
    await asyncio.gather(cache.clusters(app.state.inventory), from_temporal())


SCHEDULES_SECONDS = 60.0  # how long one reading of the patch schedules serves the pages


async def _scheduled(app: FastAPI) -> list[tuple[str, PatchWaveInput]]:
    """The waves the running patch schedules start (schedule id, wave), read at most once a minute:
    their windows say when each cluster's next maintenance window opens."""
    cached = app.state.__dict__.get("scheduled")
    if cached is not None and time.monotonic() - cached[0] < SCHEDULES_SECONDS:
        return list(cached[1])
    found: list[tuple[str, PatchWaveInput]] = []
    try:
        client = await _client(app)
        async for entry in await client.list_schedules():
            if not entry.id.startswith("patch-"):
                continue
            described = await client.get_schedule_handle(entry.id).describe()
            action = described.schedule.action
            if described.schedule.state.paused or not isinstance(action, ScheduleActionStartWorkflow) or not action.args:
                continue
            wave = action.args[0]
            if not isinstance(wave, PatchWaveInput):
                [wave] = await client.data_converter.decode(list(action.args)[:1], [PatchWaveInput])
            found.append((entry.id, wave))
    except (TemporalUnreachable, RuntimeError, ValidationError):
        app.state.__dict__.get("temporal_for_pages", {}).pop("client", None)
    app.state.scheduled = (time.monotonic(), found)
    return found


def _visible(viewer: session.Viewer, environment: str) -> bool:
    scope = set(viewer.token.environments)
    return access.ALL_ENVIRONMENTS in scope or environment in scope


# ------------------------------------------------------------------ sign-in


def _next(wanted: str) -> str:
    """Where a sign-in returns to: a page of the fleet view, never another site (`//host`, `/\\host`)."""
    return wanted if wanted.startswith("/ui") and not wanted.startswith(("/ui/login", "/ui//", "/ui/\\")) else "/ui"


def _login_page(request: Request, next: str, status_code: int = 200, error: str | None = None) -> Response:
    guard = secrets.token_urlsafe(24)
    identity: IdentityProvider | None = request.app.state.identity
    response = _page(request, "login.html", None, status_code, guard=guard, next=_next(next), error=error,
                     identity=identity.config.display_name if identity is not None else None,
                     oidc_start="/ui/login/oidc?" + urlencode({"next": _next(next)}))
    session.set_cookie(request, response, session.LOGIN_COOKIE, guard, max_age=600)
    return response


def _access_record(inventory: Any, *, person: str, action: str, outcome: str, detail: str) -> None:
    inventory.append_audit(OperationRecord(operation_id="-", operation="access", cluster="-", requested_by=person,
                                           action=action, outcome=outcome, detail=detail))


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/ui") -> Response:
    return _login_page(request, next)


@router.post("/login")
async def login(request: Request, token: str = Form(""), csrf: str = Form(""), next: str = Form("/ui")) -> Response:
    try:
        session.check_csrf(request.cookies.get(session.LOGIN_COOKIE, ""), csrf)
    except session.CsrfRefused:
        return _page(request, "login.html", None, 403, guard="", next="/ui",
                     error="the sign-in form has expired or did not come from this site; load it again")
    found = authenticate(inventory_of(request), token.strip()) if token.strip() else None
    if found is None:
        return _login_page(request, next, 401, error="that token is unknown or revoked; `regatta token create` makes one")
    response = RedirectResponse(_next(next), status_code=303)
    session.start(inventory_of(request), request, response, found)
    await asyncio.to_thread(_access_record, inventory_of(request), person=found.name, action="sign in", outcome="succeeded",
                            detail=f"the fleet view, with API token {found.name} ({found.role})")
    return response


def _callback_url(request: Request, identity: IdentityProvider) -> str:
    return identity.config.redirect_url or str(request.base_url).rstrip("/") + "/ui/login/oidc/callback"


@router.get("/login/oidc")
async def oidc_sign_in(request: Request, next: str = "/ui") -> Response:
    """Off to the identity provider (authorization code with PKCE); what the return needs is kept in a cookie for
    ten minutes: the state, the nonce, the code verifier and the page to come back to."""
    identity: IdentityProvider | None = request.app.state.identity
    if identity is None:
        raise ApiError(404, "this Regatta has no identity provider (REGATTA_OIDC_FILE); sign in with an API token")
    try:
        started = await identity.start_sign_in(_callback_url(request, identity))
    except ProviderUnreachable as error:
        log.warning("cannot start a sign-in: %s", error)
        return _login_page(request, next, 503, error=f"{identity.config.display_name} cannot be reached; try again,"
                                                      " or sign in with an API token")
    kept = ".".join((started.state, started.nonce, started.verifier,
                     base64.urlsafe_b64encode(_next(next).encode()).decode().rstrip("=")))
    response = RedirectResponse(started.url, status_code=303)
    # Lax, not Strict: the provider's redirect back is a navigation from another site, and must carry it.
    session.set_cookie(request, response, session.SIGN_IN_COOKIE, kept, max_age=600, samesite="lax",
                       path="/ui/login/oidc")
    return response


@router.get("/login/oidc/callback")
async def oidc_callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    """The provider sends the browser back: the state must be this browser's, the code is exchanged, the ID token
    checked and its groups mapped; a session starts, and a page on this site leads on (a session cookie that is
    SameSite=Strict is not sent on a navigation that another site began)."""
    identity: IdentityProvider | None = request.app.state.identity
    if identity is None:
        raise ApiError(404, "this Regatta has no identity provider (REGATTA_OIDC_FILE); sign in with an API token")
    inventory = inventory_of(request)
    parts = request.cookies.get(session.SIGN_IN_COOKIE, "").split(".")
    try:
        _, nonce, verifier, wanted = parts
        next = _next(base64.urlsafe_b64decode(wanted + "=" * (-len(wanted) % 4)).decode(errors="replace"))
    except ValueError:  # no cookie, or one this API did not write
        nonce = verifier = next = ""
    if not (state and nonce and verifier and hmac.compare_digest(parts[0].encode(), state.encode())):
        response = _login_page(request, "/ui", 403, error="this sign-in did not start in this browser, or it took longer"
                                                         " than ten minutes; sign in again")
        response.delete_cookie(session.SIGN_IN_COOKIE, path="/ui/login/oidc")
        return response
    if error or not code:
        response = _login_page(request, next, 401, error=f"{identity.config.display_name} did not sign you in"
                                                        f" ({(error or 'no code')[:60]}); sign in again")
        response.delete_cookie(session.SIGN_IN_COOKIE, path="/ui/login/oidc")
        return response
    try:
        person = await identity.finish_sign_in(code=code, verifier=verifier, nonce=nonce,
                                               redirect_url=_callback_url(request, identity))
    except ProviderUnreachable as failure:
        log.warning("cannot finish a sign-in: %s", failure)
        return _login_page(request, next, 503, error=f"{identity.config.display_name} cannot be reached; try again")
    except TokenRefused as refused:
        if refused.person is not None:
            await asyncio.to_thread(_access_record, inventory, person=refused.person, action="sign in", outcome="refused",
                                    detail=f"the fleet view, through {identity.config.issuer}: {refused.reason}")
        response = _login_page(request, next, refused.status, error=refused.reason)
        response.delete_cookie(session.SIGN_IN_COOKIE, path="/ui/login/oidc")
        return response
    response = _page(request, "signed_in.html", None, person=person, next=next)
    session.start(inventory, request, response, person)
    response.delete_cookie(session.SIGN_IN_COOKIE, path="/ui/login/oidc")
    await asyncio.to_thread(_access_record, inventory, person=person.name, action="sign in", outcome="succeeded",
                            detail=f"the fleet view, through {identity.config.issuer}: group {person.group} gives"
                                   f" {person.role} in {', '.join(person.environments)}")
    return response


@router.post("/logout")
async def logout(request: Request, csrf: str = Form("")) -> Response:
    viewer = session.viewer(inventory_of(request), request)
    session.check_csrf(viewer.csrf, csrf)
    response = RedirectResponse("/ui/login", status_code=303)
    session.end(inventory_of(request), request, response)
    return response


# ------------------------------------------------------------------ the fleet


def _query(request: Request) -> FleetQuery:
    params = request.query_params
    labels = {}
    for pair in params.getlist("label"):
        key, sep, value = pair.partition("=")
        if pair and (not sep or not key):
            raise ApiError(422, f"label {pair!r}: give key=value, e.g. team=payments")
        if key:
            labels[key] = value
    try:
        return FleetQuery(labels=labels, provider=params.get("provider", ""), region=params.get("region", ""),
                          environment=params.get("environment", ""), compliance=params.get("compliance", ""),
                          sort=params.get("sort", "name"), descending=params.get("desc") == "1",
                          page=int(params.get("page", "1") or 1), per_page=int(params.get("per_page", "50") or 50))
    except (ValidationError, ValueError) as error:
        raise ApiError(422, f"the fleet query does not fit: {error}") from None


@router.get("", response_class=HTMLResponse)
async def fleet(request: Request) -> Response:
    viewer = session.viewer(inventory_of(request), request)
    query = _query(request)
    if query.sort not in SORTABLE:
        raise ApiError(422, f"sort by one of {', '.join(SORTABLE)}, not {query.sort!r}")
    inventory = inventory_of(request)
    everything, stale = await _fleet(request)
    clusters = [c for c in everything if _visible(viewer, c.environment)]
    clusters.sort(key=lambda c: c.name)
    states, violations, drifts = fleet_reads.fleet_facts(inventory)
    now = datetime.now(UTC)
    facts = fleet_view.FleetViewFacts(prices=fleet_data.price_list(), calendar=fleet_data.support_calendar(),
                                      today=now.date(), now=now, compliance=states, violations=violations, drifts=drifts,
                                      operations=await _in_flight(request.app), scheduled=await _scheduled(request.app),
                                      readiness=fleet_reads.readiness_counts(inventory))
    rows, total = fleet_view.page_of(clusters, query, facts)
    pages = max(1, -(-total // query.per_page))

    def link(**change: Any) -> str:
        params: list[tuple[str, str]] = [("label", f"{k}={v}") for k, v in query.labels.items()]
        values = {"provider": query.provider, "region": query.region, "environment": query.environment,
                  "compliance": query.compliance, "sort": query.sort, "desc": "1" if query.descending else "",
                  "page": str(query.page), "per_page": str(query.per_page)}
        values.update({k: str(v) for k, v in change.items()})
        params += [(k, v) for k, v in values.items() if v]
        return "/ui?" + urlencode(params)

    return _page(request, "fleet.html", viewer, query=query, rows=rows, total=total, pages=pages, link=link, stale=stale,
                 columns=SORTABLE, monthly=sum(r.monthly_cost for r in rows),
                 choices={"provider": sorted({c.provider for c in clusters}), "region": sorted({c.region for c in clusters}),
                          "environment": sorted({c.environment for c in clusters})})


@router.get("/clusters/{name}", response_class=HTMLResponse)
async def cluster(request: Request, name: str) -> Response:
    viewer = session.viewer(inventory_of(request), request)
    inventory = inventory_of(request)
    record = _gate(request, viewer).cluster_for(name, "read", verb="read")  # another environment's: as if none
    now = datetime.now(UTC)
    states, violations, drifts = fleet_reads.fleet_facts(inventory)
    facts = fleet_view.FleetViewFacts(prices=fleet_data.price_list(), calendar=fleet_data.support_calendar(),
                                      today=now.date(), now=now, compliance=states, violations=violations, drifts=drifts,
                                      operations=await _in_flight(request.app), scheduled=await _scheduled(request.app),
                                      readiness=fleet_reads.readiness_counts(inventory))
    readiness = next(iter(inventory.readiness_reports(cluster=name)), None)
    placed = [(d.app, d.share(name)) for d in inventory.placements() if any(d.share(name).values())]
    return _page(request, "cluster.html", viewer, record=record, row=fleet_view.row(record, facts),
                 bundles=inventory.compliance(cluster=name), drifts=[d for d, _ in inventory.drifts(cluster=name)],
                 placed=placed, audit=list(reversed(inventory.audit(cluster=name)))[:30], readiness=readiness)


@router.get("/readiness", response_class=HTMLResponse)
async def readiness(request: Request) -> Response:
    """Each cluster's readiness for its next minor, as the last fleet sweep read it: not ready first."""
    viewer = session.viewer(inventory_of(request), request)
    inventory = inventory_of(request)
    known = {c.name: c.environment for c in inventory.list_clusters()}
    reports = [r for r in inventory.readiness_reports() if r.cluster in known and _visible(viewer, known[r.cluster])]
    reports.sort(key=lambda r: (r.ready, r.cluster))
    read = {r.cluster for r in reports}
    return _page(request, "readiness.html", viewer, reports=reports,
                 unread=sorted(name for name, environment in known.items() if _visible(viewer, environment)
                               and name not in read))


# ------------------------------------------------------------------ rehearsals


def _sees_all(viewer: session.Viewer, clusters: list[str], known: dict[str, str]) -> bool:
    """A rehearsal is shown to a viewer who sees every cluster it holds (one gone from the inventory, or none named:
    prod's rules)."""
    return all(_visible(viewer, known.get(name, "prod")) for name in clusters or [""])


@router.get("/rehearsals", response_class=HTMLResponse)
async def rehearsals_page(request: Request) -> Response:
    """The rehearsals kept, newest first, with how each held against the real run when last looked at."""
    viewer = session.viewer(inventory_of(request), request)
    inventory = inventory_of(request)
    known = {c.name: c.environment for c in inventory.list_clusters()}
    kept = [r for r in rehearsal_records.listing(inventory) if _sees_all(viewer, r.clusters, known)]
    return _page(request, "rehearsals.html", viewer, rehearsals=kept)


@router.get("/rehearsals/{rehearsal_id}", response_class=HTMLResponse)
async def rehearsal_page(request: Request, rehearsal_id: str) -> Response:
    """One rehearsal: what it predicted per cluster (and per stage, for a wave), held against the real run since."""
    viewer = session.viewer(inventory_of(request), request)
    inventory = inventory_of(request)
    known = {c.name: c.environment for c in inventory.list_clusters()}
    record = rehearsal_records.get(inventory, rehearsal_id) if len(rehearsal_id) <= 40 else None
    if record is None or not _sees_all(viewer, record.clusters, known):
        raise ApiError(404, f"no rehearsal {rehearsal_id}")
    record = rehearsal_records.check(inventory, record)
    accuracy = {c.cluster: c for c in record.accuracy.clusters} if record.accuracy else {}
    return _page(request, "rehearsal.html", viewer, record=record, accuracy=accuracy)


# ------------------------------------------------------------------ operations


@router.get("/operations", response_class=HTMLResponse)
async def operations(request: Request) -> Response:
    viewer = session.viewer(inventory_of(request), request)
    try:
        found = await list_operations(await _client(request), limit=100)
    except (TemporalUnreachable, RuntimeError) as error:
        raise ApiError(503, f"Temporal does not answer: {error}") from None
    known = {c.name: c.environment for c in inventory_of(request).list_clusters()}
    # A fleet-wide operation (a wave, a rollout) is listed by its name to every reader; its page says which
    # clusters it holds only to a token that covers every one of them.
    visible = [o for o in found if o["cluster"] is None or _visible(viewer, known.get(o["cluster"], ""))]
    running = [o for o in visible if o["status"] == "RUNNING"]
    # COMPLETED says only that its code ran to the end: a halted rollout is not green
    recent = [{**o, "verdict": outcomes.verdict(o["status"], o["outcome"])} for o in visible if o["status"] != "RUNNING"][:50]
    return _page(request, "operations.html", viewer, running=running, recent=recent)


def _rehearsal_of(inventory: Any, found: dict, progress: dict) -> Any:
    """The rehearsal a wave attached when it started; else the rehearsal of this wave (by its name) or upgrade (by its
    cluster) taken last before it started, if any: what its page links to, to be held against it."""
    if isinstance(attached := progress.get("rehearsal_id"), str) and len(attached) <= 40:
        return rehearsal_records.get(inventory, attached)
    entry = operation_catalog.by_workflow(found.get("workflow_type"))
    named_by = {"wave": "wave", "upgrade": "cluster"}.get(entry.kind) if entry else None  # only these are rehearsed
    subject = progress.get(named_by) if named_by else None
    if entry is None or not subject:
        return None
    record = rehearsal_records.latest_of(inventory, kind=entry.kind, subject=str(subject))
    started = found.get("started")
    if record is None or (isinstance(started, datetime) and record.rehearsed_at > started):
        return None
    return record


@router.get("/operations/{operation_id}", response_class=HTMLResponse)
async def operation(request: Request, operation_id: str) -> Response:
    viewer = session.viewer(inventory_of(request), request)
    gate = _gate(request, viewer)
    try:
        found = await described(gate, operation_id)
    except TemporalUnreachable as error:
        raise ApiError(503, str(error)) from None
    where = environments_of(found, gate, reading=True)
    gate.in_scope("read", where, verb="read", what=f"operation {operation_id}", operation_id=operation_id)
    acting = environments_of(found, gate)
    entry = operation_catalog.by_workflow(found.get("workflow_type"))
    allowed = [c for c in CONTROLS if entry is not None and c in entry.controls and access.refusal(
        token=viewer.token.name, role=viewer.token.role, scope=viewer.token.environments,
        action="approve" if c == "approve" else "control", environments=acting) is None]
    progress = found.get("progress") or {}
    forecast = None
    if found.get("workflow_type") == WorkflowName.PATCH_WAVE and found.get("status") == "RUNNING":
        try:
            forecast = await query(settings_of(request), operation_id, "forecast")
        except (OperationRefused, TemporalUnreachable):
            forecast = None
    rehearsed = _rehearsal_of(inventory_of(request), found, progress)
    return _page(request, "operation.html", viewer, found=found, progress=progress, forecast=forecast,
                 rehearsed=rehearsed, controls=allowed if found.get("status") == "RUNNING" else [],
                 raw=json.dumps(found, indent=2, default=str), message=request.query_params.get("message", ""))


@router.post("/operations/{operation_id}/{control}")
async def steer(request: Request, operation_id: str, control: str, csrf: str = Form(""), reason: str = Form(""),
                stage: str = Form("")) -> Response:
    """A control from the operation's page, sent as the API sends it (`send_control`: the same checks and audit
    lines); the answer, accepted or refused, is said on the page."""
    viewer = session.viewer(inventory_of(request), request)
    session.check_csrf(viewer.csrf, csrf)
    if control not in CONTROLS:
        raise ApiError(404, f"no control {control!r}; the controls are {', '.join(CONTROLS)}")
    gate = _gate(request, viewer)
    gate.may("approve" if control == "approve" else "control", verb=control, operation_id=operation_id)  # the role first
    try:
        body = ControlRequest(reason=reason if control != "approve" else "", comment=reason if control == "approve" else "",
                              stage=stage or None)
    except ValidationError as error:
        raise ApiError(422, readable(error)) from None
    try:
        await send_control(gate, operation_id, control, body, said_from="from the fleet view")
        message = f"{control}: accepted"
    except ApiError as error:
        if error.status_code != 409:
            raise
        message = f"{control} refused: {error.message}"
    return RedirectResponse(f"/ui/operations/{operation_id}?" + urlencode({"message": message}), status_code=303)


# ------------------------------------------------------------------ time-bound access (the same rules as /v1/access)


@router.get("/access", response_class=HTMLResponse)
async def access_page(request: Request, message: str = "") -> Response:
    viewer = session.viewer(inventory_of(request), request)
    gate = _gate(request, viewer)
    visible = [c for c in inventory_of(request).list_clusters() if _visible(viewer, c.environment)]
    askable = [c.name for c in visible if gate.scope_refusal("start", {c.environment}) is None]
    grants = await access_grants.list_access(the=gate, cluster=None, person=None)
    for grant in grants:
        grant["mine"] = access.same_person(viewer.token.name, grant["person"])
        grant["may_approve"] = not grant["mine"] and gate.scope_refusal("approve", {grant["environment"]}) is None
        grant["may_revoke"] = grant["mine"] or gate.scope_refusal("control", {grant["environment"]}) is None
    return _page(request, "access.html", viewer, grants=grants, clusters=sorted(askable), may_ask=bool(askable),
                 message=message[:500])


@router.post("/access")
async def ask_for_access(request: Request, csrf: str = Form(""), cluster: str = Form(""), role: str = Form("view"),
                         duration: str = Form("1h"), reason: str = Form(""), ticket: str = Form("")) -> Response:
    viewer = session.viewer(inventory_of(request), request)
    session.check_csrf(viewer.csrf, csrf)
    asked = {"cluster": cluster, "role": role, "duration": duration, "reason": reason, "ticket": ticket or None}
    try:  # the same route as the API's: the role first, then the form judged
        started = await access_grants.request_access(asked, the=_gate(request, viewer))
    except ApiError as error:
        if error.status_code in (403, 404):
            raise
        return RedirectResponse("/ui/access?" + urlencode({"message": f"not asked: {error.message}"}), status_code=303)
    said = "it waits for a second person's approval" if started["needs_approval"] else "it is being granted"
    return RedirectResponse("/ui/access?" + urlencode({"message": f"asked: {started['grant_id']}; {said}"}), status_code=303)


@router.post("/access/{grant_id}/{control}")
async def steer_access(request: Request, grant_id: str, control: str, csrf: str = Form("")) -> Response:
    viewer = session.viewer(inventory_of(request), request)
    session.check_csrf(viewer.csrf, csrf)
    gate = _gate(request, viewer)
    try:
        if control == "approve":
            await access_grants.approve_access(grant_id, None, the=gate)
        elif control == "revoke":
            await access_grants.revoke_access(grant_id, access_grants.RevokeRequest(reason="from the fleet view"), the=gate)
        elif control == "kubeconfig":
            answered = Response()
            handed = await access_grants.hand_out(grant_id, answered, the=gate)
            return Response(handed["kubeconfig"], media_type="application/yaml", headers={
                "Cache-Control": "no-store",
                "Content-Disposition": f'attachment; filename="{access_grants_rules.account_name(grant_id)}.kubeconfig"'})
        else:
            raise ApiError(404, f"no control {control!r}; the controls are approve, revoke, kubeconfig")
    except ApiError as error:
        if error.status_code != 409:
            raise
        return RedirectResponse("/ui/access?" + urlencode({"message": f"{control} refused: {error.message}"}), status_code=303)
    return RedirectResponse("/ui/access?" + urlencode({"message": f"{control}: accepted"}), status_code=303)


def install(app: FastAPI) -> None:
    """The pages, and how they answer a visitor with no session, a forged form or a refusal."""
    app.include_router(router)

    @app.exception_handler(session.SignInNeeded)
    async def sign_in(request: Request, _: Exception) -> Response:
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/ui/login?" + urlencode({"next": wanted}), status_code=303)

    @app.exception_handler(ApiError)
    async def refused(request: Request, error: ApiError) -> Response:
        if not request.url.path.startswith("/ui") or request.url.path.startswith("/ui/codec/"):  # the API's own answer: JSON
            return JSONResponse({"error": error.message}, status_code=error.status_code)
        return _page(request, "error.html", None, error.status_code, status=error.status_code, message=error.message)

    @app.exception_handler(session.CsrfRefused)
    async def forged(request: Request, _: Exception) -> Response:
        return _page(request, "error.html", None, 403, status=403,
                     message="this form did not carry this session's CSRF token: nothing was done. Load the page again.")
