"""Temporal beyond the dev server: Regatta's processes reach a server over TLS and mTLS exactly as
they would a Temporal cluster of their own or Temporal Cloud, from the REGATTA_TEMPORAL_TLS_*
settings. The dev server speaks plaintext only, so a TLS terminator (the test's own, with a CA
made for the test by trustme) stands in front of it, as an ingress or Temporal's frontend would:
it demands a client certificate, and a client without one is turned away."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import replace
from pathlib import Path

import pytest
import trustme
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from regatta.settings import Settings
from regatta.temporal.connect import TemporalUnreachable, connect
from tests.conftest import sim_report
from tests.integration.conftest import start_upgrade
from workers.main import build_worker

SERVER_NAME = "temporal.regatta.test"


class TlsTerminator:
    """Accepts TLS (HTTP/2 by ALPN, as gRPC asks) on 127.0.0.1, checks the client's certificate
    against the CA, and relays the plaintext to the dev server."""

    def __init__(self, *, upstream: str, context: ssl.SSLContext):
        self.upstream_host, port = upstream.rsplit(":", 1)
        self.upstream_port = int(port)
        self.context = context
        self.handshakes_refused = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pki(authority: trustme.CA, tmp_path: Path) -> dict[str, str]:
    """The files an operator would hand Regatta: the CA, and a client certificate and key."""
    client = authority.issue_cert("regatta-worker@example.com")
    files = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "client.pem", "key": tmp_path / "client.key"}
    authority.cert_pem.write_to_path(str(files["ca"]))
    client.cert_chain_pems[0].write_to_path(str(files["cert"]))
    client.private_key_pem.write_to_path(str(files["key"]))
    return {name: str(path) for name, path in files.items()}


def server_context(authority: trustme.CA, *, require_client_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(SERVER_NAME).configure_cert(context)
    context.set_alpn_protocols(["h2"])
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        authority.configure_trust(context)
    return context


async def test_a_worker_and_a_client_on_mtls_run_an_upgrade_and_a_client_without_a_certificate_is_turned_away(
        settings: Settings, authority: trustme.CA, pki: dict[str, str], add_cluster, simulator, task_queue: str):
    cluster = add_cluster("tls", pools=1, nodes=2)
    async with TlsTerminator(upstream=settings.temporal_address,
                             context=server_context(authority, require_client_cert=True)) as address:
        mtls = replace(settings, temporal_address=address, task_queue=task_queue, temporal_tls_ca=pki["ca"],
                       temporal_tls_cert=pki["cert"], temporal_tls_key=pki["key"], temporal_tls_server_name=SERVER_NAME)
        client = await connect(mtls)
        async with build_worker(client, mtls):
            handle = await start_upgrade(client, task_queue, cluster)
            result = await handle.result()
        assert (result.outcome, result.control_plane_version) == ("succeeded", "1.31")
        assert sim_report(simulator, cluster)["pdb_violations"] == []

        # The same server without the client certificate: the handshake fails and the error says how it tried.
        with pytest.raises(TemporalUnreachable, match="over TLS"):
            await connect(replace(mtls, temporal_tls_cert=None, temporal_tls_key=None))
        # Trusting the wrong CA fails too: the server's certificate is checked, not just encrypted to.
        other = trustme.CA()
        wrong_ca = Path(pki["ca"]).with_name("other-ca.pem")
        other.cert_pem.write_to_path(str(wrong_ca))
        with pytest.raises(TemporalUnreachable, match="over mTLS"):
            await connect(replace(mtls, temporal_tls_ca=str(wrong_ca)))


async def test_plain_tls_with_the_servers_ca_connects_and_plaintext_to_a_tls_port_does_not(
        settings: Settings, authority: trustme.CA, pki: dict[str, str]):
    async with TlsTerminator(upstream=settings.temporal_address,
                             context=server_context(authority, require_client_cert=False)) as address:
        tls = replace(settings, temporal_address=address, temporal_tls_ca=pki["ca"], temporal_tls_server_name=SERVER_NAME)
        client = await connect(tls)
        described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=settings.namespace))
        assert described.namespace_info.name == settings.namespace  # a real answer, through the TLS terminator
        with pytest.raises(TemporalUnreachable, match="over plaintext"):
            await connect(replace(settings, temporal_address=address))
