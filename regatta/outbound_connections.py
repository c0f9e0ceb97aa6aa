"""Every outbound connection an operator's input names (a callback URL, an owner webhook, a health
check's Prometheus, a bundle's git source) is made here, under the one policy of
regatta/rules/outbound.py (DESIGN rule 13), on the address that was checked:

- the host is resolved once; every address it resolves to is judged, and the connection goes to
  the first of them, by address (the Host header and TLS's server name stay the host's own, so its
  certificate is still verified against its name): a DNS answer that changes between the check and the
  connection (rebinding) is never asked for;
- redirects are not followed (a redirect to the metadata service would be a second, unchecked URL),
  and no proxy from the environment is used (it would resolve the name again);
- git is run with every protocol but http(s) forbidden, its resolution pinned to the checked address
  (`http.curloptResolve`), redirects off and a time limit;
- a refusal is `OutboundRefused`; what a third party answers is never copied into a message a reader
  sees: its status code only.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from regatta.rules.outbound import OutboundRules

MAX_ANSWER_BYTES = 1024 * 1024  # the most of an answer a worker reads


class OutboundRefused(Exception):
    """The policy forbids the connection: no retry will change that."""


class OutboundUnreachable(Exception):
    """The host could not be resolved or reached: worth another try."""


@dataclass(frozen=True)
class Destination:
    """A URL's host, port, and the checked address a connection to it goes to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str

    @property
    def pinned_netloc(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


def destination(url: str, rules: OutboundRules, *, what: str) -> Destination:
    """Resolve `url`'s host once and judge every address it resolves to; the first is connected to."""
    if (problem := rules.problem(url, what=what)) is not None:  # scheme, literal addresses, metadata names
        raise OutboundRefused(problem)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise OutboundUnreachable(f"{what}: cannot resolve {host}: {error.strerror or error}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise OutboundUnreachable(f"{what}: {host} resolves to no address")
    if (problem := rules.problem(url, resolved=addresses, what=what)) is not None:
        raise OutboundRefused(problem)
    return Destination(url=url, scheme=parts.scheme, host=host, port=port, address=addresses[0])


def send(method: str, url: str, rules: OutboundRules, *, what: str, timeout: float = 10,
         headers: Mapping[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    """One HTTP request to the address `destination` checked; redirects are answered as they are."""
    target = destination(url, rules, what=what)
    parts = urlsplit(url)
    pinned = urlunsplit((parts.scheme, target.pinned_netloc, parts.path or "/", parts.query, ""))
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    if ":" in (parts.hostname or "") and parts.port is None:
        host_header = f"[{parts.hostname}]"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client, client.stream(
                method, pinned, headers={**(headers or {}), "Host": host_header or target.host}, extensions=extensions,
                **kwargs) as streamed:
            body = bytearray()
            for chunk in streamed.iter_raw():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:  # a receiver cannot make a worker hold more than this
                    raise OutboundUnreachable(f"{what}: {target.host} answered with more than {MAX_ANSWER_BYTES} bytes")
            return httpx.Response(streamed.status_code, headers=streamed.headers, content=bytes(body),
                                  request=streamed.request)
    except httpx.HTTPError as error:
        raise OutboundUnreachable(f"{what}: {target.host} did not answer: {type(error).__name__}") from None


def git_environment(url: str, rules: OutboundRules, *, what: str) -> dict[str, str]:
    """The environment a `git clone` of `url` runs in: only http(s) (file://, ext::, ssh and local paths
    refused by git itself), resolution pinned to the checked address, no redirects, no prompts, no
    configuration but this (the machine's own credential helpers and proxies are not used)."""
    target = destination(url, rules, what=what)
    address = f"[{target.address}]" if ":" in target.address else target.address
    config = {
        "protocol.allow": "never",
        f"protocol.{target.scheme}.allow": "always",
        "http.followRedirects": "false",
        "http.curloptResolve": f"{target.host}:{target.port}:{address}",
        "http.lowSpeedLimit": "1000",
        "http.lowSpeedTime": "20",
        "credential.helper": "",
        "core.askPass": "",
    }
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_ALLOW_PROTOCOL": target.scheme, "GIT_CONFIG_COUNT": str(len(config))})
    for index, (key, value) in enumerate(config.items()):
        env[f"GIT_CONFIG_KEY_{index}"], env[f"GIT_CONFIG_VALUE_{index}"] = key, value
    return env


def git_clone(url: str, into: str, rules: OutboundRules, *, what: str, timeout: float) -> None:
    """`git clone --no-checkout` under git_environment, killed at `timeout` seconds. A failure says git's
    own `fatal:` line, never what the remote sent (`remote:` lines)."""
    env = git_environment(url, rules, what=what)
    with tempfile.TemporaryFile() as said:  # git's words to a file, of which the first 64 KiB are read
        try:
            done = subprocess.run(["git", "clone", "--no-checkout", "--quiet", "--", url, into], env=env, timeout=timeout,
                                  stdout=subprocess.DEVNULL, stderr=said, check=False)
        except subprocess.TimeoutExpired:
            raise OutboundUnreachable(f"{what}: git did not finish cloning {url} within {timeout:.0f}s") from None
        said.seek(0)
        lines = said.read(64 * 1024).decode(errors="replace").splitlines()
    if done.returncode != 0:
        # git's own verdict, not what the server sent (`remote:` lines, "remote error: ..." are the server's words)
        fatal = next((line for line in lines if line.startswith("fatal:") and "remote" not in line.lower()),
                     "fatal: the server refused or did not answer")
        raise OutboundUnreachable(f"{what}: git cannot clone {url}: {fatal[:200]}")
