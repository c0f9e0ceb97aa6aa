"""Shared fixtures: one real Temporal dev server and one fleet simulator for the session,
a fresh inventory, and per-test clusters with unique names so tests never see each other."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from regatta.devstack import temporal_binary
from regatta.formats.fleet_file import FleetSpec
from regatta.inventory import Inventory
from regatta.inventory.sweep import records_from_fleet
from regatta.models.search_attributes import SEARCH_ATTRIBUTES
from regatta.settings import Settings
from regatta.sim.server import BackgroundSimulator
from regatta.sim.world import World
from tests.shared_http import http


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("regatta-home")


@pytest.fixture(scope="session")
def simulator() -> Iterator[BackgroundSimulator]:
    with BackgroundSimulator(World(time_scale=0)) as sim:
        yield sim


@pytest.fixture(scope="session")
async def temporal(simulator: BackgroundSimulator) -> AsyncIterator[WorkflowEnvironment]:
    """The session's Temporal dev server. When the session ends, every history it holds is
    searched for a credential (DESIGN rule 1, over what the tests actually did): one found fails
    the run at this fixture's teardown, naming the workflow."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=pydantic_data_converter,
        search_attributes=list(SEARCH_ATTRIBUTES),
        dev_server_log_level="error",
        # Three test processes start their servers at once on two cores: the SDK's 5 s is not enough then.
        dev_server_startup_timeout=timedelta(seconds=60),
    )
    yield env
    try:
        leaks = await credentials_in_histories(env.client, simulator)
    finally:
        await env.shutdown()
    assert leaks == [], f"credentials in workflow histories: {leaks}"


LEAK_PROBE = "leak-probe-"  # the one workflow that carries a credential on purpose: the search's own test


async def credentials_in_histories(client: Client, simulator: BackgroundSimulator, *, probes: bool = False) -> list[str]:
    """Every history on the server searched for the simulator's API token, which every activity
    that touched a cluster used, and for the webhook secret the callback tests sign with (the
    search's own probe is left out unless asked for)."""
    from tests.callback_receiver import SECRET as WEBHOOK_SECRET

    secrets = {"the simulator's API token": simulator.world.api_token, "the webhook secret": WEBHOOK_SECRET,
               **{f"site {site}'s API token": token for site, token in simulator.world.site_tokens.items()},
               # every token the simulated clouds hand out (they expire, and are renewed) begins so
               "an API token the simulated clouds handed out": "simtok-",
               # every service account token a TokenRequest handed out (a grant's kubeconfig) begins so
               "a service account's token": "simsa-"}
    assert all(len(value) >= 16 or value in ("simtok-", "simsa-") for value in secrets.values())
    leaks = []
    async for execution in client.list_workflows():
        if execution.id.startswith(LEAK_PROBE) and not probes:
            continue
        history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        # The raw protobuf: payload data as the data converter wrote it (the JSON form base64s it).
        raw = b"".join(event.SerializeToString() for event in history.events)
        leaks += [f"{execution.workflow_type} {execution.id}: {what}" for what, value in secrets.items() if value.encode() in raw]
    return leaks


@pytest.fixture(scope="session")
def settings(state_dir: Path, simulator: BackgroundSimulator, temporal: WorkflowEnvironment) -> Settings:
    return Settings(
        home=state_dir,
        temporal_address=temporal.client.service_client.config.target_host,
        namespace="default",
        task_queue="regatta-tests",
        database_url=f"sqlite:///{state_dir / 'inventory.db'}",
        sim_url=simulator.url,
    )


@pytest.fixture(scope="session")
def inventory(settings: Settings) -> Inventory:
    return Inventory(settings.database_url)


@pytest.fixture
def client(temporal: WorkflowEnvironment) -> Client:
    return temporal.client


def eks_cluster(name: str, *, version: str = "1.30", pools: int = 2, nodes: int = 3, workloads: list[dict] | None = None,
                provider: str = "eks", env: str = "staging", time_scale: float | None = None,
                pool_version: str | None = None, labels: dict[str, str] | None = None, node_image: str | None = None,
                policy_engines: list[str] | None = None) -> dict:
    """A cluster spec with PDB-protected workloads, as the fleet file writes it."""
    return {
        "name": name, "provider": provider, "region": "us-east-1", "version": version,
        "labels": {"env": env, "team": "tests", **(labels or {})}, "time_scale": time_scale,
        "policy_engines": policy_engines or [],
        "node_pools": [{"name": f"pool{i}", "nodes": nodes, "version": pool_version,
                        "node_image": node_image}
                       for i in range(pools)],
        "workloads": workloads if workloads is not None else [
            {"name": "checkout", "namespace": "shop", "replicas": 3, "pdb": {"min_available": 2}},
            {"name": "payments", "namespace": "shop", "replicas": 4, "pdb": {"max_unavailable": 1}},
            {"name": "catalog", "namespace": "shop", "replicas": 4, "pdb": {"min_available": "50%"}},
            {"name": "batch", "namespace": "jobs", "replicas": 2},
        ],
    }


@pytest.fixture
def add_cluster(simulator: BackgroundSimulator, inventory: Inventory):
    """Load a uniquely named cluster into the simulator and register it in the inventory."""

    def add(prefix: str = "c", **spec) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        fleet = FleetSpec.model_validate({"clusters": [eks_cluster(name, **spec)]})
        http.post(f"{simulator.url}/sim/clusters", json=fleet.model_dump(), timeout=10).raise_for_status()
        for record in records_from_fleet(fleet):
            inventory.upsert_cluster(record)
        return name

    return add


@pytest.fixture
def add_fleet(simulator: BackgroundSimulator, inventory: Inventory):
    """Load clusters written as the fleet file writes them (each name given a unique suffix) with the
    simulated accounts they need, and register them in the inventory; returns the names, in order. The
    accounts are the whole simulator's until the next load: a test that changes them loads them itself."""

    def add(*clusters: dict, accounts: dict | None = None) -> list[str]:
        tag = uuid.uuid4().hex[:6]
        specs = [{**cluster, "name": f"{cluster['name']}-{tag}"} for cluster in clusters]
        fleet = FleetSpec.model_validate({"clusters": specs, **({"accounts": accounts} if accounts else {})})
        http.post(f"{simulator.url}/sim/clusters", json=fleet.model_dump(), timeout=30).raise_for_status()
        for record in records_from_fleet(fleet):
            inventory.upsert_cluster(record)
        return [spec["name"] for spec in specs]

    return add


def sim_report(simulator: BackgroundSimulator, cluster: str) -> dict:
    return http.get(f"{simulator.url}/sim/report", params={"cluster": cluster}, timeout=10).json()


def set_faults(simulator: BackgroundSimulator, cluster: str, **faults) -> None:
    http.post(f"{simulator.url}/sim/faults", json={"cluster": cluster, **faults}, timeout=10).raise_for_status()


@pytest.fixture
def sim_clock(simulator: BackgroundSimulator):
    """Move the simulated fleet's calendar clock (windows, freezes); back on the wall clock afterwards."""

    def move(**change) -> datetime:
        response = http.post(f"{simulator.url}/sim/clock", json=change, timeout=10)
        response.raise_for_status()
        return datetime.fromisoformat(response.json()["now"])

    yield move
    move(wall_clock=True)


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def queue_settings(settings: Settings, task_queue: str) -> Settings:
    return replace(settings, task_queue=task_queue)


@pytest.fixture
async def worker(client: Client, queue_settings: Settings):
    """The real worker, in this process, on this test's own task queue."""
    from workers.main import build_worker

    async with build_worker(client, queue_settings) as running:
        yield running


@contextmanager
def serving(app) -> Iterator[str]:
    """An ASGI app served by uvicorn on a free loopback port: its base URL; stopped when the block ends."""
    import socket
    import threading

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def served_api(queue_settings: Settings, inventory: Inventory) -> Iterator[str]:
    """The API app (and the fleet view) served by uvicorn on a free loopback port: its base URL.
    Stopped when the test ends."""
    from regatta.api.app import create_app

    with serving(create_app(queue_settings, inventory)) as url:
        yield url


@pytest.fixture
def served_api_signing_in(queue_settings: Settings, inventory: Inventory, oidc_provider, tmp_path: Path,
                          monkeypatch) -> Iterator[str]:
    """The API served on loopback, its people signing in through `oidc_provider` (a confidential client)."""
    from regatta.api.app import create_app

    monkeypatch.setenv("REGATTA_OIDC_CLIENT_SECRET", "regatta-client-secret")
    app = create_app(replace(queue_settings, oidc_file=oidc_provider.sign_in_file(tmp_path)), inventory)
    with serving(app) as url:
        yield url


class OidcProvider:
    """A real OpenID Connect provider on 127.0.0.1 (oidc-provider-mock: Authlib's authorization server with a
    sign-in form, discovery, JWKS, the authorization code flow), for the sign-in tests. Two test-only routes are
    added to it: `/_rotate` replaces its signing key (the old one is no longer published), and `/_mint` signs
    claims the test chooses with its current key (an expired token: the provider's own lifetime is an hour)."""

    def __init__(self, url: str, jwks_reads: list[float]):
        self.url, self.jwks_reads = url, jwks_reads

    def sign_in_file(self, directory: Path, **extra) -> str:
        """A sign-in file (REGATTA_OIDC_FILE) trusting this provider: platform-admins are admins everywhere, sre
        operators and engineering viewers in staging."""
        import yaml

        path = directory / "oidc.yaml"
        path.write_text(yaml.safe_dump({
            "issuer": self.url, "client_id": "regatta", "display_name": "Test SSO", "leeway_seconds": 0,
            "roles": [{"group": "platform-admins", "role": "admin", "environments": ["*"]},
                      {"group": "sre", "role": "operator", "environments": ["staging"]},
                      {"group": "engineering", "role": "viewer", "environments": ["staging"]}], **extra}))
        return str(path)

    def user(self, sub: str, **claims) -> None:
        answer = http.put(f"{self.url}/users/{sub}", json={"email": sub, **claims}, timeout=10)
        assert answer.status_code == 204, answer.text

    def id_token(self, sub: str, *, client_id: str = "regatta", nonce: str = "n") -> str:
        """An ID token for `sub`, by the authorization code flow as a browser and a client would run it."""
        redirect = "http://127.0.0.1/callback"
        authorize = http.post(f"{self.url}/oauth2/authorize", params={
            "client_id": client_id, "redirect_uri": redirect, "response_type": "code", "scope": "openid email",
            "nonce": nonce, "state": "s"}, data={"sub": sub}, timeout=10)
        assert authorize.status_code == 302, authorize.text
        code = httpx.URL(authorize.headers["location"]).params["code"]
        token = http.post(f"{self.url}/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                              "redirect_uri": redirect},
                           auth=(client_id, "any"), timeout=10)
        assert token.status_code == 200, token.text
        return token.json()["id_token"]

    def rotate(self) -> None:
        assert http.post(f"{self.url}/_rotate", timeout=10).status_code == 204

    def mint(self, claims: dict) -> str:
        answer = http.post(f"{self.url}/_mint", json=claims, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.text


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    import threading
    import time

    import flask
    import oidc_provider_mock
    import werkzeug.serving
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    app = oidc_provider_mock.app(require_nonce=True)
    app.debug = False
    jwks_reads: list[float] = []

    @app.post("/_rotate")
    def rotate():
        from authlib import jose

        flask.g.oidc_provider_mock_storage.jwk = jose.RSAKey.generate_key(is_private=True)
        return "", 204

    @app.post("/_mint")
    def mint():
        key = RSAKey.import_key(flask.g.oidc_provider_mock_storage.jwk.as_dict(is_private=True))
        return jwt.encode({"alg": "RS256", "kid": key.kid}, flask.request.get_json(), key)

    @app.before_request
    def count():
        if flask.request.path == "/jwks":
            jwks_reads.append(time.monotonic())

    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield OidcProvider(f"http://127.0.0.1:{server.server_port}", jwks_reads)
    finally:
        server.shutdown()
        thread.join(timeout=10)


# The `regatta` command pip installed beside this interpreter: the end-to-end tests run it as an
# operator does (its entry point flushes and exits with the promised code), not `python -m`.
REGATTA = str(Path(sys.executable).with_name("regatta"))

POSTGRES_URL = os.environ.get("REGATTA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pytest_configure(config):
    from tests.run_times import register

    register(config)  # a run of the whole suite writes its figures to test-results/times.json


def pytest_addoption(parser):
    parser.addoption("--record-histories", action="store_true", help="save fresh ClusterUpgrade histories for replay tests")


class WorkerProcess:
    """`regatta worker` in a child process, for tests that kill it the way a node failure would."""

    def __init__(self, settings: Settings):
        import subprocess

        self.process = subprocess.Popen(
            [REGATTA, "worker", "--metrics-port", "0"],
            env={**os.environ, **settings.as_env()}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    async def polling(self, client, task_queue: str, *, timeout: float = 60) -> None:
        """Until this worker polls `task_queue` for workflow tasks (Temporal lists it among the queue's pollers by its
        identity, pid@host): a worker process takes seconds to start, more on a loaded machine."""
        import asyncio

        from temporalio.api.enums.v1 import TaskQueueType
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            described = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
            if any(poller.identity.startswith(f"{self.process.pid}@") for poller in described.pollers):
                return
            assert self.process.poll() is None, f"the worker exited with {self.process.returncode} before it polled"
            assert asyncio.get_running_loop().time() < deadline, f"the worker never polled {task_queue}"
            await asyncio.sleep(0.2)

    def sigkill(self) -> None:
        import signal

        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


# The longest files first, by their seconds in a full run (`files` in test-results/times.json, 2026-12-08): a long file
# begun late is the run's tail, one process working alone for minutes. `make test` runs pytest-xdist with --dist
# loadfile --no-loadscope-reorder: it hands each process two files at the start, round robin in this order, and the
# next file whenever one has fewer than two waiting (without --no-loadscope-reorder it orders files by how many tests
# they hold, and the tour, two tests, began five minutes in). So: the seven longest first, one to each of the seven
# processes; then the unit tests, short, second in each queue, so that no long file waits behind another; then the
# rest longest first, each to the process that frees first.
LONGEST_FIRST = ("tests/e2e/test_tour.py", "tests/integration/test_patch_wave.py", "tests/e2e/test_dev_persist.py",
                 "tests/e2e/test_rehearsals.py", "tests/e2e/test_kubectl.py", "tests/e2e/test_dev.py",
                 "tests/integration/test_replay.py")
THEN_LONGEST = ("tests/integration/test_decommission.py", "tests/e2e/test_cli.py", "tests/e2e/test_fleet_view_browser.py",
                "tests/integration/test_own_hardware.py", "tests/e2e/test_policy_cli.py", "tests/integration/test_inventory.py",
                "tests/integration/test_placement.py", "tests/integration/test_disaster_recovery.py",
                "tests/e2e/test_access_grant_expiry.py", "tests/e2e/test_cli_lifecycle.py",
                "tests/integration/test_policy_rollout.py", "tests/integration/test_temporal_work.py",
                "tests/integration/test_upgrade_refusals.py", "tests/e2e/test_cli_waves.py",
                "tests/integration/test_upgrade_several_minors.py", "tests/integration/test_site_agents.py",
                "tests/integration/test_window_resume.py", "tests/integration/test_inventory_backup.py",
                "tests/integration/test_api.py", "tests/integration/test_api_schema.py")


def _turn(path: str) -> int:
    if path in LONGEST_FIRST:
        return LONGEST_FIRST.index(path)
    if path.startswith("tests/unit/"):
        return len(LONGEST_FIRST)
    if path in THEN_LONGEST:
        return len(LONGEST_FIRST) + 1 + THEN_LONGEST.index(path)
    return len(LONGEST_FIRST) + 1 + len(THEN_LONGEST)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: _turn(item.nodeid.split("::")[0]))  # stable: within a turn, files keep their order


# Fixtures written beside the helpers they go with, shared by every test module under this directory (imported last:
# those modules import from this one).
from tests.api_calls import api  # noqa: E402, F401
from tests.browsing import browser  # noqa: E402, F401
from tests.callback_receiver import receiver  # noqa: E402, F401
from tests.kubectl_runs import kube  # noqa: E402, F401
