"""Clients for clusters that present a CA certificate: one file per certificate, however often the
client is rebuilt, and none left behind once the connections close."""

from __future__ import annotations

import base64

from regatta.clouds import KubeEndpoint
from regatta.kube.connect import ClusterConnections

PEM = b"-----BEGIN CERTIFICATE-----\nMIIBsimulated\n-----END CERTIFICATE-----\n"


def test_a_rebuilt_client_reuses_its_ca_file_and_closing_removes_it():
    connections = ClusterConnections(sim_url=None)
    endpoint = KubeEndpoint(host="https://127.0.0.1:6443", bearer_token="t", ca_data=base64.b64encode(PEM).decode())
    paths = {connections.client_for(endpoint).configuration.ssl_ca_cert for _ in range(5)}
    assert len(paths) == 1 and list(connections.ca_dir.iterdir())[0].read_bytes() == PEM
    other = KubeEndpoint(host="https://127.0.0.2:6443", bearer_token="t", ca_data=base64.b64encode(PEM + b"\n").decode())
    connections.client_for(other)
    assert len(list(connections.ca_dir.iterdir())) == 2
    connections.close()
    assert not connections.ca_dir.exists()
