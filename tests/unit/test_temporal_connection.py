"""How the REGATTA_TEMPORAL_* settings become a connection: what each combination asks of the
server, and the settings that are refused before anything is tried."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from regatta.settings import Settings
from regatta.temporal.connect import TemporalSettingsRefused, connection_options, describe_security


def settings(**env: str) -> Settings:
    return Settings.from_env({"REGATTA_HOME": "/tmp/regatta-unit", **env})


def test_the_dev_server_default_is_plaintext_without_a_key():
    assert connection_options(settings()) == {"tls": False, "api_key": None}
    assert describe_security(settings()) == "plaintext"


def test_an_api_key_travels_over_tls_with_the_systems_roots_and_stays_out_of_the_env_a_worker_is_given():
    cloud = settings(REGATTA_TEMPORAL_ADDRESS="ns.a1b2c.tmprl.cloud:7233", REGATTA_TEMPORAL_API_KEY="key-123")
    assert connection_options(cloud) == {"tls": True, "api_key": "key-123"}
    assert "key-123" not in str(cloud.as_env())
    assert describe_security(cloud) == "TLS and an API key"


def test_mtls_reads_the_ca_certificate_and_key_from_their_files(tmp_path: Path):
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_bytes(f"-----{name}-----".encode())
    given = settings(REGATTA_TEMPORAL_TLS_CA=str(tmp_path / "ca.pem"), REGATTA_TEMPORAL_TLS_CERT=str(tmp_path / "client.pem"),
                     REGATTA_TEMPORAL_TLS_KEY=str(tmp_path / "client.key"), REGATTA_TEMPORAL_TLS_SERVER_NAME="temporal.internal")
    tls = connection_options(given)["tls"]
    assert isinstance(tls, TLSConfig)
    assert (tls.server_root_ca_cert, tls.client_cert, tls.client_private_key, tls.domain) == (
        b"-----ca.pem-----", b"-----client.pem-----", b"-----client.key-----", "temporal.internal")
    # a separate worker or CLI call is told where the files are, never what they hold
    assert given.as_env()["REGATTA_TEMPORAL_TLS_KEY"] == str(tmp_path / "client.key")
    assert describe_security(given) == "mTLS"


@pytest.mark.parametrize("given, missing", [("CERT", "KEY"), ("KEY", "CERT")])
def test_half_of_a_client_certificate_is_refused(tmp_path: Path, given: str, missing: str):
    (tmp_path / "half.pem").write_text("x")
    with pytest.raises(TemporalSettingsRefused, match=f"REGATTA_TEMPORAL_TLS_{given} is set but REGATTA_TEMPORAL_TLS_{missing}"):
        connection_options(settings(**{f"REGATTA_TEMPORAL_TLS_{given}": str(tmp_path / "half.pem")}))


def test_a_file_that_cannot_be_read_is_named(tmp_path: Path):
    with pytest.raises(TemporalSettingsRefused, match=r"REGATTA_TEMPORAL_TLS_CA=.*nope.pem: cannot read it"):
        connection_options(settings(REGATTA_TEMPORAL_TLS_CA=str(tmp_path / "nope.pem")))


def test_tls_can_be_asked_for_alone():
    assert connection_options(settings(REGATTA_TEMPORAL_TLS="true"))["tls"] is True
    assert connection_options(settings(REGATTA_TEMPORAL_TLS="0"))["tls"] is False
