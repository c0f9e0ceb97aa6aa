"""The fleet simulator's HTTP server: one process standing in for every cloud control plane
and every cluster's API server, plus `/sim/*` to load clusters, inject faults and read the
invariant report. Started by `regatta sim`, `regatta dev`, the tests and the benchmarks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import tempfile
import threading
import time
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from regatta.formats.fleet_file import FleetSpec
from regatta.sim import (
    aks_api,
    api_versions,
    ec2_api,
    eks_api,
    entra,
    gke_api,
    google_oauth,
    kube_access,
    kube_api,
    kube_discovery,
    kube_objects,
    secret_stores,
    traffic_api,
)
from regatta.sim.world import Cluster, Faults, SimError, World


class FaultRequest(BaseModel):
    """Body of POST /sim/faults: the faults one cluster has from now on (replacing what it had)."""

    model_config = ConfigDict(extra="forbid")
    cluster: str
    error_rate: float = 0.0
    error_codes: list[int] = [429, 500, 503]
    fail_times: int = 0
    fail_operation: str | None = None
    fail_status: int = 500
    api: str = "any"
    hang: bool = False
    node_never_ready: bool = False
    blocking_pdbs: list[str] = []
    unreachable: bool = False
    job_failure: str | None = None


class CloudRateLimit(BaseModel):
    """Body of POST /sim/cloud-rate-limits."""

    model_config = ConfigDict(extra="forbid")
    provider: Literal["eks", "gke", "aks"]
    requests_per_second: float | None = Field(default=None, gt=0)
    burst: float | None = Field(default=None, ge=1, description="requests it takes at once after a quiet spell;"
                                " default one second's worth")


class Ec2Denied(BaseModel):
    """Body of POST /sim/ec2-denied."""

    model_config = ConfigDict(extra="forbid")
    denied: bool


class RegionOutage(BaseModel):
    """Body of POST /sim/regions."""

    model_config = ConfigDict(extra="forbid")
    region: str
    unreachable: bool = True


class BackupRequest(BaseModel):
    """Body of POST /sim/backups."""

    model_config = ConfigDict(extra="forbid")
    cluster: str
    name: str | None = None


class TokenLifetime(BaseModel):
    """Body of POST /sim/token-lifetime."""

    model_config = ConfigDict(extra="forbid")
    seconds: float | None = Field(default=None, gt=0)
    revoke: bool = False


class OutsideOperation(BaseModel):
    """Body of POST /sim/busy: an operation on a cluster (or one pool) that Regatta did not start."""

    model_config = ConfigDict(extra="forbid")
    cluster: str
    node_pool: str | None = None
    seconds: float = Field(default=600, ge=0, description="simulated seconds it runs for")
    then: int = Field(default=0, ge=0, le=20, description="as many more, each starting the moment the one before ends")


class ClockChange(BaseModel):
    """Body of POST /sim/clock: move the fleet's calendar clock forward, or set it (or back to the wall clock)."""

    model_config = ConfigDict(extra="forbid")
    advance_seconds: float | None = None
    now: datetime | None = None
    wall_clock: bool = False


# How often a workflow that waits on the simulated clock reads it again: it may jump at any time.
CLOCK_RECHECK_SECONDS = 1.0
STOP_GRACE_SECONDS = 1


def _not_the_cut_watches(record: logging.LogRecord) -> bool:
    """uvicorn says it cut what was still open when it stopped, as an error: here that is the plan (STOP_GRACE_SECONDS)."""
    return "timeout graceful shutdown exceeded" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_not_the_cut_watches)
KEEP_ALIVE_SECONDS = 120


# The simulator's refusals in the names EKS gives them, so botocore retries what it would retry.
AWS_ERROR_CODES = {
    "NotFound": "ResourceNotFoundException",
    "TooManyRequests": "TooManyRequestsException",
    "InternalError": "ServerException",
    "ServiceUnavailable": "ServiceUnavailableException",
}


def cloud_of(path: str) -> str | None:
    """Which cloud's API a request to the simulator is for (None: a cluster's API or the simulator's own)."""
    if path.startswith(("/k8s/", "/sim/", "/traffic/", "/version", "/openapi", "/docs")):
        return None
    if path.startswith("/v1/projects/"):
        return "gke"
    if path.startswith("/subscriptions/"):
        return "aks"
    if path == "/":  # EC2's query API beside EKS's (regatta/sim/ec2_api.py)
        return "ec2"
    return "eks"


GOOGLE_CANONICAL = {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE", "UNAUTHENTICATED", "PERMISSION_DENIED",
                    "NOT_FOUND", "ABORTED", "ALREADY_EXISTS", "RESOURCE_EXHAUSTED", "CANCELLED", "INTERNAL", "UNAVAILABLE",
                    "DEADLINE_EXCEEDED", "UNIMPLEMENTED"}
GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED",
                 500: "INTERNAL", 503: "UNAVAILABLE"}
ARM_ERROR_CODES = {"NotFound": "NotFound", "TooManyRequests": "TooManyRequests", "InternalError": "InternalServerError",
                   "ServiceUnavailable": "ServiceUnavailable", "InvalidParameterException": "BadRequest",
                   "ResourceInUseException": "OperationNotAllowed"}


SIGV4_KEY_ID = re.compile(r"Credential=([A-Za-z0-9]+)/")


def principal_of(world: World, provider: str, authorization: str) -> str | None:
    bearer = authorization.removeprefix("Bearer ")
    if provider == "gke":
        return google_oauth.principal(world, bearer)
    if provider == "aks":
        return entra.principal(world, bearer)
    return None


class CloudRequestLog:
    """Every request to a simulated cloud's API as it arrived (method, path, query, JSON body), before any
    token or retry is merged, and the status it was answered: what GET /sim/requests reads, so a test can
    hold a request body against the cloud SDK's own model, or count what was asked twice. The last
    REQUEST_LOG_SIZE are kept, and every request that may change something (not GET or HEAD) besides."""

    def __init__(self, app, *, world: World):
        self.app, self.world = app, world

    async def __call__(self, scope, receive, send) -> None:
        provider = cloud_of(scope["path"]) if scope["type"] == "http" else None
        if provider is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        headers = {key.decode().lower(): value.decode() for key, value in scope.get("headers") or []}
        signed = SIGV4_KEY_ID.search(headers.get("authorization", ""))
        entry = {"cloud": provider, "method": scope["method"], "path": scope["path"],
                 "query": scope["query_string"].decode(), "body": None, "at": time.time(),
                 **({"if_match": headers["if-match"]} if "if-match" in headers else {}),
                 # which AWS access key signed it (SigV4's Credential=KEYID/...: an id, never the secret)
                 **({"access_key_id": signed[1]} if signed else {}),
                 # which Google service account or Entra application a bearer token stands for
                 **({"principal": who} if (who := principal_of(self.world, provider, headers.get("authorization", "")))
                    else {})}
        self.world.request_log.append(entry)  # throttled ones too: it is what arrived
        if scope["method"] not in ("GET", "HEAD") and provider != "ec2":  # EC2 POSTs its reads (DescribeSubnets)
            self.world.cloud_changes.append(entry)

        async def recorded():
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body") and chunks != [b""]:
                    raw = b"".join(chunks)
                    try:
                        entry["body"] = json.loads(raw)
                    except ValueError:
                        entry["body"] = raw.decode(errors="replace")
            return message

        async def answered(message):
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        await self.app(scope, recorded, answered)


class GoogleCredentials:
    """A GKE request that carries credentials the simulated Google does not know (a service account key it never
    created, a token it did not issue) is refused 401 UNAUTHENTICATED, as Google refuses it. One that carries none
    is the simulator's stand-in for Application Default Credentials and passes."""

    def __init__(self, app, *, world: World):
        self.app, self.world = app, world

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and cloud_of(scope["path"]) == "gke":
            authorization = next((v.decode() for k, v in scope.get("headers") or [] if k == b"authorization"), None)
            if authorization is not None and google_oauth.principal(self.world, authorization.removeprefix("Bearer ")) is None:
                body = json.dumps({"error": {"code": 401, "status": "UNAUTHENTICATED", "message":
                                             "Request had invalid authentication credentials. Expected OAuth 2 access token,"
                                             " login cookie or other valid authentication credential."}}).encode()
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


ARM_STAND_IN = "regatta-sim-arm"  # what the simulator's stand-in for DefaultAzureCredential presents (regatta/clouds/aks.py)


class AzureCredentials:
    """An ARM request without a token, or with one Entra did not issue for ARM, is refused 401 as ARM refuses it
    (`InvalidAuthenticationToken`); the token of the simulator's stand-in for DefaultAzureCredential passes."""

    def __init__(self, app, *, world: World):
        self.app, self.world = app, world

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and cloud_of(scope["path"]) == "aks":
            bearer = next((v.decode() for k, v in scope.get("headers") or [] if k == b"authorization"), "").removeprefix("Bearer ")
            issued = self.world.entra_app_tokens.get(bearer)
            if bearer != ARM_STAND_IN and not (entra.principal(self.world, bearer) and issued
                                               and issued[1].rstrip("/") == "https://management.azure.com"):
                body = json.dumps({"error": {"code": "InvalidAuthenticationToken",
                                             "message": "The access token is invalid."}}).encode()
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class CloudRateLimits:
    """A cloud account over its request-rate limit is answered 429 in that cloud's own shape. Plain
    ASGI rather than an `@app.middleware("http")` function, whose per-request task group cost the
    simulator more CPU than the answers it wraps."""

    def __init__(self, app, *, world: World, answer):
        self.app, self.world, self.answer = app, world, answer

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            provider = cloud_of(scope["path"])
            if provider is not None and not self.world.admit_cloud_request(provider):
                response = await self.answer(Request(scope, receive), SimError(
                    429, "TooManyRequests" if provider != "eks" else "ThrottlingException", "Rate exceeded"))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(world: World) -> FastAPI:
    app = FastAPI(title="Regatta fleet simulator", docs_url="/sim/docs", openapi_url="/sim/openapi.json")
    app.state.world = world

    @app.exception_handler(SimError)
    async def sim_error(request: Request, error: SimError):
        if error.delay:  # a request into a cut-off region hangs until the gateway gives up
            await asyncio.sleep(error.delay)
        path = request.url.path
        if path.startswith("/k8s/"):
            if error.status == 429 and not error.causes:
                # API Priority and Fairness: plain text and a Retry-After, never a Status naming a budget.
                return PlainTextResponse("Too many requests, please try again later.\n", status_code=429,
                                         headers={"Retry-After": "1"})
            return JSONResponse(kube_api.status_body(error), status_code=error.status)
        if path.startswith("/v1/projects/"):  # Google's REST error envelope, with the reason its clients match on
            status = error.reason if error.reason in GOOGLE_CANONICAL else GOOGLE_STATUS.get(error.status, "UNKNOWN")
            reason = "".join(word.capitalize() if i else word.lower() for i, word in enumerate(status.split("_")))
            return JSONResponse({"error": {"code": error.status, "message": error.message, "status": status,
                                           "errors": [{"message": error.message, "domain": "global", "reason": reason}]}},
                                status_code=error.status)
        if path.startswith("/subscriptions/"):  # ARM's error envelope
            headers = {"Retry-After": "1"} if error.status == 429 else {}
            return JSONResponse({"error": {"code": ARM_ERROR_CODES.get(error.reason, error.reason), "message": error.message}},
                                status_code=error.status, headers=headers)
        if path == "/":  # EC2's query API (regatta/sim/ec2_api.py) answers in XML
            return ec2_api.error_response(error)
        code = AWS_ERROR_CODES.get(error.reason, error.reason)
        return JSONResponse({"__type": code, "message": error.message}, status_code=error.status,
                            headers={"x-amzn-ErrorType": code})

    app.add_middleware(CloudRateLimits, world=world, answer=sim_error)
    app.add_middleware(GoogleCredentials, world=world)
    app.add_middleware(AzureCredentials, world=world)
    app.add_middleware(CloudRequestLog, world=world)

    @app.exception_handler(StarletteHTTPException)
    async def unserved(request: Request, error: StarletteHTTPException):
        """A path or verb a simulated API server does not serve is a Kubernetes Status, as a real
        one answers (kubectl prints its message); the rest of the simulator keeps FastAPI's form."""
        if not request.url.path.startswith("/k8s/"):
            return JSONResponse({"detail": error.detail}, status_code=error.status_code)
        reason = {404: "NotFound", 405: "MethodNotAllowed"}.get(error.status_code, "BadRequest")
        message = ("the server could not find the requested resource" if error.status_code == 404 else
                   f"the server does not allow this method on the requested resource ({request.method})")
        return JSONResponse(kube_api.status_body(SimError(error.status_code, reason, message)),
                            status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def unreadable(request: Request, error: RequestValidationError):
        if not request.url.path.startswith("/k8s/"):
            return JSONResponse({"detail": error.errors()}, status_code=422)
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return JSONResponse(kube_api.status_body(SimError(400, "BadRequest", f"the request is invalid: {problems}")),
                            status_code=400)

    @app.get("/sim/healthz")
    async def healthz():
        return {"ok": True, "clusters": len(world.clusters)}

    @app.get("/sim/report")
    async def report(cluster: str | None = None):
        return world.report(cluster)

    @app.post("/sim/clusters")
    async def load_clusters(fleet: FleetSpec, replace: bool = False):
        return {"loaded": world.load(fleet, replace=replace)}

    @app.get("/sim/requests")
    async def requests(cloud: str | None = None, path_contains: str | None = None, changes: bool = False):
        """The cloud requests the simulator was sent, oldest first (see CloudRequestLog); with
        `changes=true`, every request that may have changed something since the simulator started."""
        log = world.cloud_changes if changes else world.request_log
        return {"requests": [r for r in log if (cloud is None or r["cloud"] == cloud)
                             and (path_contains is None or path_contains in r["path"])]}

    @app.get("/sim/draining")
    async def draining():
        """The nodes being emptied right now (cordoned, pods still on them), by cluster: what a chaos
        run waits for to kill a worker inside a drain."""
        found = {}
        for cluster in world.clusters.values():
            nodes = sorted(node.name for node in cluster.nodes.values() if node.unschedulable and cluster.pods_on(node.name))
            if nodes:
                found[cluster.name] = nodes
        return {"draining": found}

    @app.get("/sim/objects")
    async def objects(cluster: str):
        """Every object the cluster's API server holds beyond its nodes, pods, budgets and
        deployments (ConfigMaps, policies, roles, custom resources...), whole, as
        `apiVersion/plural/namespace/name` → object: what a run compares with what it meant to write."""
        found = world.clusters.get(cluster)
        if found is None:
            raise SimError(404, "NotFound", f"no simulated cluster {cluster!r}")
        return {"objects": {f"{api}/{plural}/{ns or '-'}/{name}": body for (api, plural, ns, name), body in found.objects.items()}}

    @app.get("/sim/operations")
    async def operations():
        """Every cloud operation ever started (upgrades, node pool changes, creates and deletes): a
        change started twice shows as two, whatever the client's request tokens said."""
        return {"operations": [{"id": u.id, "cluster": u.cluster, "node_pool": u.nodegroup, "type": u.type,
                                "status": u.status, "params": u.params, "created": u.created, "finished": u.finished}
                               for u in world.updates.values()]}

    @app.post("/sim/cloud-rate-limits")
    async def set_cloud_rate_limit(request: CloudRateLimit):
        """Tell a simulated cloud account how many requests a second it answers, with a burst of one
        second's worth (None: no limit); resets its count of throttled requests."""
        world.set_cloud_rate_limit(request.provider, request.requests_per_second, burst=request.burst)
        return {"provider": request.provider, "requests_per_second": request.requests_per_second, "burst": request.burst}

    @app.post("/sim/faults")
    async def set_faults(request: FaultRequest):
        values = request.model_dump(exclude={"cluster"})
        values["error_codes"] = tuple(values["error_codes"])
        values["blocking_pdbs"] = tuple(values["blocking_pdbs"])
        faults = world.faults[request.cluster] = Faults(**{f.name: values[f.name] for f in fields(Faults)})
        cluster = world.clusters.get(request.cluster)  # may not exist yet: faults wait for it
        if cluster is not None:
            cluster.faults = faults
            for (namespace, name), pdb in cluster.pdbs.items():
                pdb.blocked = f"{namespace}/{name}" in faults.blocking_pdbs
        return {"cluster": request.cluster, "faults": values}

    @app.delete("/sim/faults")
    async def clear_faults(cluster: str):
        faults = world.faults[cluster] = Faults()
        if (target := world.clusters.get(cluster)) is not None:
            target.faults = faults
            for pdb in target.pdbs.values():
                pdb.blocked = False
        return {"cluster": cluster, "faults": None}

    @app.post("/sim/busy")
    async def outside_operation(request: OutsideOperation):
        """Start an operation on a cluster as the cloud's own automation or a colleague would (GKE's auto-upgrade,
        an AKS upgrade channel, a console click): the cloud answers changes of it as busy until it ends."""
        cluster = world.cluster(request.cluster)
        update = world.start_outside_operation(cluster, node_pool=request.node_pool, seconds=request.seconds, then=request.then)
        return {"cluster": cluster.name, "operation": update.id}

    @app.post("/sim/clusters/{name}/apiserver-restart")
    async def restart_apiserver(name: str):
        """The cluster's API server restarts (a managed cloud's maintenance, a patch release): its in-memory
        metrics start empty, apiserver_requested_deprecated_apis among them; what it stores stays."""
        cluster = world.cluster(name)
        cluster.requested_deprecated.clear()
        return {"cluster": cluster.name, "restarted": True}

    @app.post("/sim/regions")
    async def set_region(request: RegionOutage):
        """Cut a whole region off (every API of every cluster in it times out) or bring it back."""
        if request.unreachable:
            world.unreachable_regions.add(request.region)
        else:
            world.unreachable_regions.discard(request.region)
        return {"unreachable_regions": sorted(world.unreachable_regions)}

    @app.post("/sim/backups")
    async def take_backup(request: BackupRequest):
        """What the cluster's Velero schedule does on its own: a backup to the shared bucket, now."""
        cluster = world.cluster(request.cluster)
        name = request.name or f"scheduled-{cluster.name}-{next(cluster.seq)}"[:63]
        backup = world.take_backup(cluster, name)
        return {"cluster": cluster.name, "name": name, "completed_at": backup["completed_at"]}

    def clock() -> dict:
        return {"now": world.calendar_now().isoformat(), "offset_seconds": world.clock_offset_seconds,
                "recheck_seconds": CLOCK_RECHECK_SECONDS}

    @app.get("/sim/credentials/{cluster}")
    async def credentials(cluster: str, site: str | None = None, lasting: bool = False):
        """The simulated cloud's answer to `aws eks get-token` / `gcloud auth print-access-token`: a token
        that expires as that cloud's does (`expires_at`, epoch seconds), or with `lasting` the token a
        kubeconfig handed to a person carries. A cluster in a private network's site answers only its
        site's agent (`?site=NAME`), as a kubeconfig kept on a machine inside that network would."""
        found = world.cluster(cluster)
        if found.site is not None and site != found.site:
            raise SimError(403, "Forbidden", f"the credentials of {cluster} are held by the agent of site {found.site}"
                           f" (`regatta worker --site {found.site}`), not by {'site ' + site if site else 'a central worker'}")
        token, expires = (world.token_for(found), None) if lasting else world.issue_token(found)
        return {"cluster": cluster, "token": token, "expires_at": expires, "server": world.api_server(cluster),
                "certificate_authority_data": world.ca_data}

    @app.get("/sim/entra/token")
    async def entra_token(scope: str, site: str | None = None):
        """Microsoft Entra's token endpoint for a workload identity, as DefaultAzureCredential meets it: an
        access token for the application `scope` names (`<application id>/.default`), with its expiry."""
        audience = scope.removesuffix("/.default")
        holder = next((c for c in world.clusters.values() if c.site == site), None)
        if holder is None:
            holder = Cluster(name="-", provider="aks", region="-", labels={}, version="1.0", time_scale=None, site=site)
        token, expires = world.issue_token(holder, audience=audience)
        return {"access_token": token, "expires_on": int(expires), "token_type": "Bearer"}

    @app.post("/sim/token-lifetime")
    async def set_token_lifetime(change: TokenLifetime):
        """How long tokens handed out from now on are accepted (None: each cloud's own, scaled); with
        `revoke`, every token handed out so far stops being accepted at once."""
        world.token_lifetime_seconds = change.seconds
        revoked = world.revoke_tokens() if change.revoke else 0
        return {"seconds": change.seconds, "revoked": revoked}

    @app.post("/sim/ec2-denied")
    async def deny_ec2(change: Ec2Denied):
        """Whether EC2 refuses DescribeSubnets from now on (UnauthorizedOperation), as for a role without the permission."""
        world.ec2_denied = change.denied
        return {"denied": world.ec2_denied}

    @app.get("/sim/clock")
    async def read_clock():
        return clock()

    @app.post("/sim/clock")
    async def move_clock(change: ClockChange):
        """Move the fleet's calendar (maintenance windows, freezes): the wall clock plus an offset."""
        if sum((change.advance_seconds is not None, change.now is not None, change.wall_clock)) != 1:
            raise SimError(400, "InvalidParameterException", "give exactly one of advance_seconds, now or wall_clock: true")
        if change.now is not None and change.now.tzinfo is None:
            raise SimError(400, "InvalidParameterException", "give now with a time zone, e.g. 2026-12-08T01:00:00Z")
        if change.wall_clock:
            world.clock_offset_seconds = 0.0
        elif change.advance_seconds is not None:
            world.clock_offset_seconds += change.advance_seconds
        else:
            assert change.now is not None  # exactly one of the three was given
            world.clock_offset_seconds = (change.now - world.calendar_now()).total_seconds() + world.clock_offset_seconds
        return clock()

    @app.post("/sim/time-scale")
    async def set_time_scale(scale: float):
        world.time_scale = scale
        return {"time_scale": scale}

    app.include_router(kube_discovery.router)
    app.include_router(kube_api.router)
    app.include_router(kube_access.router)
    app.include_router(kube_objects.router)
    app.include_router(api_versions.router)
    app.add_middleware(kube_discovery.TablesForKubectl)
    app.add_middleware(kube_discovery.JsonOnly)
    app.include_router(eks_api.router)
    app.include_router(ec2_api.router)
    app.include_router(gke_api.router)
    app.include_router(google_oauth.router)
    app.include_router(entra.router)
    app.include_router(secret_stores.router)
    app.include_router(aks_api.router)
    app.include_router(traffic_api.router)
    return app


class Listeners:
    """The simulator's two listeners on one event loop and one World: plain HTTP for the cloud
    control planes and `/sim/*` (the port REGATTA_SIM_URL names), and HTTPS for the clusters' API
    servers, with a certificate for 127.0.0.1 and localhost signed by a CA made for this run
    (trustme) and handed out as certificate-authority-data, the way a real cluster's is. The plain
    port answers `/k8s/` too, for the test harness; every Regatta client and kubeconfig uses HTTPS.
    The key and certificate files live in a temporary directory removed when the listeners stop."""

    def __init__(self, world: World, *, host: str = "127.0.0.1", port: int = 0, tls_port: int = 0,
                 log_level: str = "warning"):
        import trustme

        self.world, self.host = world, host
        app = create_app(world)
        authority = trustme.CA(organization_name="Regatta fleet simulator")
        certificate = authority.issue_cert("127.0.0.1", "localhost", "::1")
        self._files = tempfile.TemporaryDirectory(prefix="regatta-sim-tls-")
        key, chain = Path(self._files.name) / "server.key", Path(self._files.name) / "server.pem"
        certificate.private_key_pem.write_to_path(str(key))
        certificate.cert_chain_pems[0].write_to_path(str(chain))
        self.ca_pem = authority.cert_pem.bytes()
        # Idle connections are kept a while, as a cloud's front door and an API server keep them:
        # uvicorn's default of 5 s made clients open a new TLS connection for most requests. When it stops, a watch
        # still open (a client's, up to half an hour) is cut after STOP_GRACE_SECONDS rather than waited for.
        self.plain = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                                                   timeout_keep_alive=KEEP_ALIVE_SECONDS,
                                                   timeout_graceful_shutdown=STOP_GRACE_SECONDS))
        self.tls = uvicorn.Server(uvicorn.Config(app, host=host, port=tls_port, log_level=log_level, access_log=False,
                                                 ssl_keyfile=str(key), ssl_certfile=str(chain),
                                                 timeout_keep_alive=KEEP_ALIVE_SECONDS,
                                                 timeout_graceful_shutdown=STOP_GRACE_SECONDS))

    @property
    def started(self) -> bool:
        return self.plain.started and self.tls.started

    @staticmethod
    def _port(server: uvicorn.Server) -> int:
        return int(server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port(self.plain)}"

    @property
    def kube_url(self) -> str:
        return f"https://{self.host}:{self._port(self.tls)}"

    async def serve(self) -> None:
        async def announce_and_link() -> None:
            while not self.started:
                if self.plain.should_exit or self.tls.should_exit:
                    break
                await asyncio.sleep(0.02)
            else:
                self.world.kube_url = self.kube_url
                self.world.ca_data = base64.b64encode(self.ca_pem).decode()
            while not (self.plain.should_exit or self.tls.should_exit):  # one stopping stops both (signals reach one)
                await asyncio.sleep(0.1)
            self.plain.should_exit = self.tls.should_exit = True

        try:
            await asyncio.gather(self.plain.serve(), self.tls.serve(), announce_and_link())
        finally:
            self._files.cleanup()

    def stop(self) -> None:
        self.plain.should_exit = self.tls.should_exit = True


def serve(world: World, *, host: str = "127.0.0.1", port: int = 8600, tls_port: int = 8643,
          log_level: str = "warning") -> None:
    """Run the simulator in this process until interrupted."""
    asyncio.run(Listeners(world, host=host, port=port, tls_port=tls_port, log_level=log_level).serve())


class BackgroundSimulator:
    """The simulator on a thread of the calling process: what tests and benchmarks use."""

    def __init__(self, world: World, *, host: str = "127.0.0.1", port: int = 0, tls_port: int = 0):
        self.world = world
        self.listeners = Listeners(world, host=host, port=port, tls_port=tls_port)
        self._thread = threading.Thread(target=lambda: asyncio.run(self.listeners.serve()), name="regatta-sim", daemon=True)
        self.url = ""
        self.kube_url = ""

    def __enter__(self) -> BackgroundSimulator:
        self._thread.start()
        while not (self.listeners.started and self.world.kube_url):
            if not self._thread.is_alive():
                raise RuntimeError("the simulator failed to start")
            threading.Event().wait(0.02)
        self.url, self.kube_url = self.listeners.url, self.listeners.kube_url
        return self

    def __exit__(self, *exc: object) -> None:
        self.listeners.stop()
        self._thread.join(timeout=10)
