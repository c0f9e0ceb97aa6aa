"""The HTTP API: what change-ticket systems and portals call to start and steer operations
(`regatta api`, port 8700; OpenAPI at /docs).

- `POST /v1/operations` starts an upgrade, wave, provision, decommission, failover, policy rollout
  or evacuation from the same input models the workflows take, under the change ticket (the
  idempotency key).
- `GET /v1/operations/{id}` says where it stands; `POST /v1/operations/{id}/pause|resume|abort|
  approve` are the workflow's Updates; `GET /v1/operations/{id}/forecast` is a wave's forecast.
- `GET /v1/clusters` lists the inventory the token may see; `POST /v1/clusters/{name}/hold|release`.
- `GET /v1/policy/compliance` and `GET /v1/placements[/{app}]`: compliance, and where each placed
  application runs and why.
- `GET /v1/readiness[?to=X.Y&blocking=true]`: each cluster's readiness for its next minor, as the
  last fleet sweep read it.
- `GET /v1/rehearsals[/{id}]`: the rehearsals kept, and one held against the real run since.
- `POST /v1/webhooks/ticket-events` takes a ticket system's signed approval or cancellation.
- `/v1/access`: time-bound access to a cluster: ask, list, approve, revoke, and the kubeconfig once
  (regatta/api/access_grants.py).
- `GET /metrics`: the fleet for Prometheus (regatta/api/metrics.py); no token, like any exporter.
- `/ui`: the fleet view (regatta/web/), signed in with a token exchanged for a session cookie.

Every call carries `Authorization: Bearer <token>`: an API token, or a token of the company's identity
provider (REGATTA_OIDC_FILE; regatta/api/identity_provider.py) whose groups give a role. The role and
environments decide (regatta/rules/access.py), and the name is who asked. `/` leads a browser to the fleet view.

`create_app` puts the settings, the inventory and the payload codec on `app.state`; every router
reaches them through the dependencies in `gate.py`, so each can be tested on its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from regatta.api import (
    access_grants,
    clusters,
    codec,
    identity_provider,
    metrics,
    operations,
    placement,
    policy,
    readiness,
    rehearsals,
    webhooks,
)
from regatta.api.errors import install_error_handlers
from regatta.api.front_door import FrontDoor
from regatta.inventory import Inventory
from regatta.inventory.audit_files import append_checkpoint, create_checkpoint_file
from regatta.settings import Settings
from regatta.telemetry import trace_requests
from regatta.web import pages

CHECKPOINT_SECONDS = 60.0


class CodecCors:
    """Cross-origin requests (the Temporal UI's, from REGATTA_CODEC_CORS_ORIGINS) for the codec's paths
    only: the rest of the API and the fleet view answer no other origin, with or without credentials."""

    def __init__(self, app: ASGIApp, origins: list[str]):
        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=origins, allow_methods=["POST"],
                                   allow_headers=["Authorization", "Content-Type", "X-Namespace"], allow_credentials=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(codec.CODEC_PATHS):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def checkpoint_audit(inventory: Inventory, path: str) -> None:
    """Every CHECKPOINT_SECONDS, the audit trail's head signed and appended to `path` (when it moved). The file is
    there from the start, empty while the trail is: `regatta audit verify` reads a missing file as one removed, and
    a trail's first records came a minute before their first checkpoint."""
    last: int | None = None
    try:
        await asyncio.to_thread(create_checkpoint_file, path)
    except OSError:
        log.exception("could not create the audit checkpoint file %s", path)
    while True:
        try:
            point = await asyncio.to_thread(inventory.audit_checkpoint)
            if point is not None and point.last_id != last:
                await asyncio.to_thread(append_checkpoint, path, point)
                last = point.last_id
        except Exception:
            log.exception("could not write an audit checkpoint to %s", path)
        await asyncio.sleep(CHECKPOINT_SECONDS)

log = logging.getLogger(__name__)
READ_AGAIN_SECONDS = 5.0


async def become_ready(app: FastAPI) -> None:
    """Warm the fleet view (regatta/web/pages.py) and then answer /readyz; an inventory that cannot
    be read is tried again every few seconds, /readyz saying why meanwhile."""
    while True:
        try:
            await pages.warm(app)
            app.state.not_ready = None
            return
        except Exception as error:
            # /readyz takes no token: the kind of error only; its words (hosts, users, SQL) go to the log
            app.state.not_ready = f"cannot read the inventory ({type(error).__name__}); the API's log says why"
            log.exception("could not read the fleet; trying again in %ss", READ_AGAIN_SECONDS)
            await asyncio.sleep(READ_AGAIN_SECONDS)


DOCS_ASSETS = "/docs-assets"


def serve_the_api_docs(app: FastAPI) -> None:
    """/docs: Swagger UI from files in the installed package (fastapi-offline's copy), not from a CDN, so the API's
    documentation renders on a machine without internet as the README promises. No /redoc: ReDoc fetches its logo
    from a CDN whatever it is told."""
    import fastapi_offline
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount(DOCS_ASSETS, StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Regatta API",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png")


def create_app(settings: Settings, inventory: Inventory | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(become_ready(app))]
        if settings.audit_checkpoints and app.state.inventory.audit_keys.current is not None:
            tasks.append(asyncio.create_task(checkpoint_audit(app.state.inventory, settings.audit_checkpoints)))
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # ended here, not by the collector later

    app = FastAPI(title="Regatta", version="1", description=__doc__, lifespan=lifespan, docs_url=None, redoc_url=None)
    serve_the_api_docs(app)
    app.state.settings = settings
    app.state.inventory = inventory or Inventory(settings.database_url, audit_keys=settings.audit_keys())
    app.state.codec = codec.codec_from_env()
    app.state.identity = identity_provider.from_settings(settings.oidc_file)  # None without REGATTA_OIDC_FILE
    # inside CORS: a token and a size before any route
    app.add_middleware(FrontDoor, inventory=app.state.inventory, identity=app.state.identity)
    origins = os.environ.get("REGATTA_CODEC_CORS_ORIGINS", "http://127.0.0.1:8233,http://localhost:8233")
    app.add_middleware(CodecCors, origins=[o.strip() for o in origins.split(",") if o.strip()])
    install_error_handlers(app)

    app.state.not_ready = "starting: reading the fleet"

    @app.get("/", include_in_schema=False)
    async def front_page() -> RedirectResponse:
        """A browser that opens the API's address lands on the fleet view (its sign-in when it has no session)."""
        return RedirectResponse("/ui", status_code=303)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, bool]:
        """Alive: the process answers (a liveness probe)."""
        return {"ok": True}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Ready: the fleet is read and the first page answers in time (a readiness probe); 503 and why not yet."""
        if app.state.not_ready:
            return JSONResponse({"ready": False, "reason": app.state.not_ready}, status_code=503)
        return JSONResponse({"ready": True})

    trace_requests(app)
    pages.install(app)  # the fleet view, under /ui
    for router in (operations.router, clusters.router, policy.router, placement.router, readiness.router, rehearsals.router, webhooks.router,
                   codec.router, metrics.router, access_grants.router):
        app.include_router(router)
    return app
