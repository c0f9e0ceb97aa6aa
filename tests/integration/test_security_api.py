"""The API tried as an attacker would (docs/security.md): a viewer's token, a stranger with no token,
an oversized body, a hostile bundle source. Each case is an attack that worked before authorization
came first, and the answer it gets now: refused before any work, nothing read, nothing called, and a
line in the audit trail where the refusal is an access decision."""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from regatta.api.app import create_app
from regatta.api.front_door import BODY_LIMITS
from regatta.formats import bundle_file
from tests.api_calls import ticket, upgrade

BOMB = """apiVersion: v1
kind: ConfigMap
metadata: {name: bomb, namespace: kube-system}
data:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   check=True, capture_output=True)


class GitServer:
    """A repository over git's dumb HTTP protocol, on 127.0.0.1, counting the requests it is sent."""

    def __init__(self, root: Path):
        self.requests: list[str] = []
        served = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):
                served.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def served_repository(root: Path, files: dict[str, str]) -> str:
    work = root / "work"
    (work / "base").mkdir(parents=True)
    for name, text in files.items():
        (work / "base" / name).write_text(text)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "v1")
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(root / "served" / "bundle.git")], check=True)
    git(root / "served" / "bundle.git", "update-server-info")
    return "bundle.git"


@pytest.fixture
def git_server(tmp_path):
    servers: list[GitServer] = []

    def serve(files: dict[str, str]) -> tuple[GitServer, str]:
        root = tmp_path / uuid.uuid4().hex[:6]
        path = served_repository(root, files)
        servers.append(GitServer(root / "served"))
        return servers[-1], f"{servers[-1].url}/{path}"

    yield serve
    for server in servers:
        server.close()


def policy(tag: str, url: str) -> dict:
    return {"name": f"sec-{tag}", "targets": {"selector": {"labels": {"sec": tag}}}, "stages": [{"name": "all"}],
            "source": {"git": {"url": url, "ref": "main", "path": "base"}}}


CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: kube-system}\ndata: {a: b}\n"


async def test_a_viewer_cannot_make_the_api_clone_anything(api, git_server, add_cluster, inventory):
    tag = uuid.uuid4().hex[:6]
    add_cluster("sec", env="staging", labels={"sec": tag}, pools=1, nodes=1)
    server, url = git_server({"cm.yaml": CONFIG_MAP})
    viewer = api.token("viewer", "*")
    tickets = []
    for target in (url, "file:///etc", "/etc", "http://169.254.169.254/latest/"):
        tickets.append(ticket())
        answer = await api.post("/v1/operations", headers=viewer,
                                json={"kind": "policy", "ticket": tickets[-1], "input": policy(tag, target)})
        assert answer.status_code == 403 and "is a viewer and may not start" in answer.json()["error"], answer.text
    assert server.requests == []  # refused before a byte went out
    refusals = [r.ticket for r in inventory.audit() if r.action == "api start" and r.outcome == "refused"
                and "is a viewer" in r.detail]
    assert sorted(t for t in refusals if t in tickets) == sorted(tickets)  # each refusal is in the trail


async def test_an_operator_reaches_only_what_the_outbound_rules_allow_and_never_hangs_the_api(
        api, git_server, add_cluster, queue_settings, inventory, monkeypatch):
    tag = uuid.uuid4().hex[:6]
    add_cluster("sec", env="staging", labels={"sec": tag}, pools=1, nodes=1)
    operator = api.token("operator", "staging")

    async def start(url: str, client=api) -> httpx.Response:
        return await client.post("/v1/operations", headers=operator,
                                 json={"kind": "policy", "ticket": ticket(), "input": policy(tag, url)})

    for url, says in (("file:///etc", "not an http(s) URL"), ("ext::sh -c touch% /tmp/pwned", "not an http(s) URL"),
                      ("/etc", "not an http(s) URL"), ("http://[::ffff:169.254.169.254]/x.git", "never calls"),
                      ("http://metadata.google.internal/x.git", "never calls")):
        answer = await start(url)
        assert answer.status_code == 422 and says in answer.json()["error"], (url, answer.text)

    bombed, bomb_url = git_server({"bomb.yaml": BOMB})
    answer = await start(bomb_url)
    assert answer.status_code == 422 and "alias bomb" in answer.json()["error"], answer.text

    # A production installation (REGATTA_OUTBOUND_PRIVATE=deny) does not reach the machine's own network.
    served, good_url = git_server({"cm.yaml": CONFIG_MAP})
    production = create_app(dataclasses.replace(queue_settings, outbound_private=False), inventory)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=production), base_url="http://regatta.test") as prod:
        answer = await start(good_url, client=prod)
    assert answer.status_code == 422 and "REGATTA_OUTBOUND_PRIVATE" in answer.json()["error"], answer.text
    assert served.requests == []

    # A source that accepts the connection and never answers: the start is refused in time, and the API
    # answers everyone else meanwhile (the clone runs off the event loop).
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    monkeypatch.setattr(bundle_file, "GIT_SECONDS", 2.0)
    try:
        began = time.monotonic()
        pending = asyncio.ensure_future(start(f"http://127.0.0.1:{silent.getsockname()[1]}/x.git"))
        await asyncio.sleep(0.3)
        health = await api.get("/healthz")
        assert health.status_code == 200 and not pending.done()
        answer = await pending
        assert answer.status_code == 422 and "within 2s" in answer.json()["error"], answer.text
        assert time.monotonic() - began < 20
    finally:
        silent.close()


async def test_a_stranger_learns_nothing_and_cannot_make_the_api_read_a_large_body(api):
    no_token = await api.post("/v1/operations", content=b"{not json")
    assert no_token.status_code == 401  # not 422: how the body would be judged is for callers with a token
    unknown = await api.post("/v1/operations", content=b"{}", headers={"Authorization": "Bearer rgt_guess"})
    assert unknown.status_code == 401

    limit = dict(BODY_LIMITS)["/v1/webhooks/"]
    huge = await api.post("/v1/webhooks/ticket-events", content=b"x" * (limit + 1))
    assert huge.status_code == 413 and "at most" in huge.json()["error"]

    async def streamed():  # no Content-Length: cut off at the limit as it arrives
        for _ in range(40):
            yield b"x" * (64 * 1024)

    operator = api.token("operator", "*")
    chunked = await api.post("/v1/operations", content=streamed(), headers=operator)
    assert chunked.status_code == 413, chunked.text


async def test_names_outside_a_tokens_environments_are_answered_as_if_they_did_not_exist(api, add_cluster, inventory):
    prod = add_cluster("secprod", env="prod", pools=1, nodes=1)
    staging = add_cluster("secstage", env="staging", pools=1, nodes=1)
    operator = api.token("operator", "staging")
    hidden = await api.post("/v1/operations", headers=operator, json={"kind": "upgrade", "ticket": ticket(),
                                                                       "input": upgrade(prod)})
    missing = await api.post("/v1/operations", headers=operator, json={"kind": "upgrade", "ticket": ticket(),
                                                                        "input": upgrade("no-such-cluster")})
    assert hidden.status_code == missing.status_code == 404
    for answer in (hidden, missing):
        assert prod not in answer.json()["error"].replace(f"'{prod}'", "") and staging not in answer.text
    assert hidden.json()["error"].replace(prod, "X") == missing.json()["error"].replace("no-such-cluster", "X")
    held = await api.post(f"/v1/clusters/{prod}/hold", headers=operator, json={"until": "2030-01-01T00:00:00Z",
                                                                                "reason": "probe"})
    assert held.status_code == 404
    operation = await api.get(f"/v1/operations/cluster-{prod}", headers=operator)
    assert operation.status_code == 404 and prod not in operation.json()["error"].replace(f"cluster-{prod}", "")
    trail = [r for r in inventory.audit() if r.outcome == "refused" and prod in r.detail + r.cluster]
    assert trail, "a refusal is an access decision: the trail keeps it"

    def wave(*names: str) -> dict:
        return {"kind": "wave", "ticket": ticket(), "input": {
            "name": f"probe-{uuid.uuid4().hex[:6]}", "target_version": "1.31",
            "stages": [{"name": "all", "selector": {"clusters": list(names)}}]}}

    by_name = await api.post("/v1/operations", headers=operator, json=wave(prod))
    by_nothing = await api.post("/v1/operations", headers=operator, json=wave("no-such-cluster"))
    assert by_name.status_code == by_nothing.status_code == 404  # a wave's selector is no oracle either
    assert by_name.json()["error"].replace(prod, "X") == by_nothing.json()["error"].replace("no-such-cluster", "X")
    labels = await api.post("/v1/operations", headers=operator, json={"kind": "wave", "ticket": ticket(), "input": {
        "name": f"probe-{uuid.uuid4().hex[:6]}", "target_version": "1.31", "stages": [{"name": "all"}]}})
    assert labels.status_code == 403 and "prod" not in labels.json()["error"], labels.text


async def test_a_non_ascii_signature_or_csrf_token_is_a_refusal_not_a_crash(queue_settings, inventory):
    from tests.browsing import Browser

    app = create_app(dataclasses.replace(queue_settings, webhook_secret="s3cret"), inventory)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://regatta.test") as api:
        signed = await api.post("/v1/webhooks/ticket-events", content=b"{}",
                                headers={"X-Regatta-Signature": "sha256=\u00e9t\u00e9".encode("latin-1"),
                                         "X-Regatta-Timestamp": str(int(time.time()))})
        assert signed.status_code == 401 and "does not match" in signed.json()["error"]
    browser = Browser(app, inventory)
    await browser.sign_in("operator", "*")
    forged = await browser.http.post("/ui/operations/cluster-x/pause", data={"csrf": "\u00e9t\u00e9", "reason": "x"})
    assert forged.status_code == 403 and "CSRF" in forged.text


def test_git_reaches_the_checked_address_through_the_pin_and_nothing_else(git_server, tmp_path, monkeypatch):
    """The clone goes to the address the policy judged: `git.example.test` resolves nowhere but in the
    pin (curl never asks DNS), and a name judged to a forbidden address is never cloned at all."""
    from regatta import outbound_connections
    from regatta.outbound_connections import OutboundRefused, git_clone
    from regatta.rules.outbound import OutboundRules

    server, url = git_server({"cm.yaml": CONFIG_MAP})
    port = server.server.server_address[1]
    answers = {"git.example.test": "127.0.0.1", "meta.example.test": "169.254.169.254"}
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], args[0] if args else 0))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(outbound_connections.socket, "getaddrinfo", getaddrinfo)
    git_clone(f"http://git.example.test:{port}/bundle.git", str(tmp_path / "copy"), OutboundRules(), what="x", timeout=30)
    assert (tmp_path / "copy" / ".git").is_dir() and server.requests
    before = len(server.requests)
    with pytest.raises(OutboundRefused, match="cloud metadata address"):
        git_clone(f"http://meta.example.test:{port}/bundle.git", str(tmp_path / "other"), OutboundRules(), what="x",
                  timeout=30)
    assert len(server.requests) == before and not (tmp_path / "other").exists()


async def test_a_start_cannot_hand_a_wave_the_state_it_would_carry_into_its_next_run(api, add_cluster):
    """`carried` is what a wave hands its own next run: given by a starter, it would skip the plan, and with it the
    scope check, and name clusters (prod's) or a rehearsal the token may not touch."""
    prod = add_cluster("carprod", env="prod", pools=1, nodes=1)
    staging = add_cluster("carstage", env="staging", pools=1, nodes=1)
    operator = api.token("operator", "staging")
    name = f"carried-{uuid.uuid4().hex[:6]}"
    carried = {"wave": name, "target_version": "1.31", "rehearsal_id": "rehearsal-000000000000",
               "stages": [{"name": "all", "concurrency": 1, "soak_seconds": 0, "approval_required": False,
                           "clusters": [{"name": prod}]}]}
    refused = await api.post("/v1/operations", headers=operator, json={"kind": "wave", "ticket": ticket(), "input": {
        "name": name, "target_version": "1.31", "stages": [{"name": "all", "selector": {"clusters": [staging]}}],
        "carried": carried}})
    assert refused.status_code == 422 and "input.carried" in refused.json()["error"], refused.text
    assert (await api.get(f"/v1/operations/wave-{name}", headers=operator)).status_code == 404  # nothing started


async def test_the_api_takes_a_label_selector_as_kubectl_writes_it_and_refuses_a_broken_one(api, add_cluster):
    tag = uuid.uuid4().hex[:6]
    plain = add_cluster("selplain", env="staging", labels={"sel": tag})
    pci = add_cluster("selpci", env="staging", labels={"sel": tag, "pci": "yes"})
    viewer = api.token("viewer", "staging")
    found = await api.get("/v1/clusters", headers=viewer, params={"selector": f"sel in ({tag}),!pci"})
    assert found.status_code == 200 and [c["name"] for c in found.json()] == [plain], found.text
    both = await api.get("/v1/clusters", headers=viewer, params={"selector": f"sel={tag}"})
    assert sorted(c["name"] for c in both.json()) == sorted([plain, pci])
    broken = await api.get("/v1/clusters", headers=viewer, params={"selector": "sel in"})
    assert broken.status_code == 422 and "is not a label requirement" in broken.json()["error"]
