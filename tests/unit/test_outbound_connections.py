"""Where the outbound policy is enforced: on the address connected to. A name is resolved once and
the connection goes to the address that was judged (a DNS answer that changes in between, rebinding,
is never asked for); redirects are answered, not followed; what a receiver says stays with it; git
is pinned the same way and speaks http(s) only."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

from regatta import outbound_connections
from regatta.outbound_connections import OutboundRefused, destination, git_clone, git_environment, send
from regatta.rules.outbound import OutboundRules


class Receiver(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def do_GET(self):
        Receiver.seen.append((self.path, self.headers.get("Host", "")))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Receiver.seen = []
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def dns(monkeypatch):
    """A resolver whose answers the test sets: each call takes the next answer (a rebinding attacker's)."""
    answers: list[str] = []
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if not host.endswith(".test"):  # an address (what the connection itself resolves): no DNS asked
            return real(host, port, *args, **kwargs)
        asked.append(host)
        address = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(outbound_connections.socket, "getaddrinfo", getaddrinfo)
    return answers, asked


def test_a_name_is_resolved_once_and_the_checked_address_is_the_one_connected_to(receiver, dns):
    answers, asked = dns
    answers += ["127.0.0.1", "169.254.169.254"]  # a rebinding resolver: harmless first, the metadata service next
    response = send("GET", f"http://hooks.example.test:{receiver}/note", OutboundRules(), what="the callback URL")
    assert response.status_code == 200 and asked == ["hooks.example.test"]
    assert Receiver.seen == [("/note", f"hooks.example.test:{receiver}")]  # its own name in Host, to the checked address


def test_a_name_that_resolves_to_the_metadata_service_is_refused_before_any_connection(receiver, dns):
    answers, _ = dns
    answers += ["169.254.169.254"]
    with pytest.raises(OutboundRefused, match="cloud metadata address"):
        send("GET", f"http://hooks.example.test:{receiver}/", OutboundRules(allowed=("hooks.example.test",)), what="x")
    answers[:] = ["::ffff:169.254.169.254"]
    with pytest.raises(OutboundRefused, match="never calls"):
        destination("http://hooks.example.test/", OutboundRules(), what="x")
    answers[:] = ["10.0.0.7"]
    with pytest.raises(OutboundRefused, match="REGATTA_OUTBOUND_PRIVATE"):
        destination("http://hooks.example.test/", OutboundRules(private_allowed=False), what="x")
    assert Receiver.seen == []


def test_a_redirect_is_an_answer_not_a_second_request(receiver):
    response = send("GET", f"http://127.0.0.1:{receiver}/redirect", OutboundRules(), what="x")
    assert response.status_code == 302 and [path for path, _ in Receiver.seen] == ["/redirect"]


def test_git_speaks_only_https_or_http_pinned_to_the_checked_address(tmp_path, dns):
    answers, _ = dns
    answers += ["203.0.113.10"]
    env = git_environment("https://git.example.test/org/bundles.git", OutboundRules(), what="source.git.url")
    config = {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))}
    assert config["protocol.allow"] == "never" and config["protocol.https.allow"] == "always"
    assert config["http.curloptResolve"] == "git.example.test:443:203.0.113.10"
    assert config["http.followRedirects"] == "false" and env["GIT_ALLOW_PROTOCOL"] == "https"
    # git itself refuses what the policy does not name, even when asked directly in that environment
    local = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(local)], check=True)
    refused = subprocess.run(["git", "clone", "-q", f"file://{local}", str(tmp_path / "copy")], env=env,
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "transport 'file' not allowed" in refused.stderr
    with pytest.raises(OutboundRefused, match="not an http"):
        git_clone(str(local), str(tmp_path / "copy2"), OutboundRules(), what="source.git.url", timeout=5)
