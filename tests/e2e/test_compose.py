"""docker-compose.yml and the Dockerfile, checked without a Docker engine: a real compose
implementation (Debian's docker-compose, installed by `make test`) validates the file against the
compose schema and interpolates the environment; the test then holds what it resolved to against
the code it runs: every Regatta role is a command the image's `regatta` accepts, every REGATTA_*
variable is one Regatta reads, Prometheus scrapes the ports the API and workers listen on, the
search attributes are the ones operations are tagged with, every file mounted exists."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from regatta.models.search_attributes import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]
# What the documented set-up step makes (`regatta deploy secrets`), once for this module, and the passwords.
MADE = Path(tempfile.mkdtemp(prefix="regatta-compose-secrets-"))
SECRETS = {"POSTGRES_PASSWORD": "not-a-real-password", "GRAFANA_ADMIN_PASSWORD": "not-a-real-password-either",
           "TEMPORAL_DB_PASSWORD": "not-temporals-password", "REGATTA_DB_PASSWORD": "not-regattas-password",
           "REGATTA_SECRETS_DIR": str(MADE)}
ONE_SHOTS = {"temporal-schema", "temporal-setup", "regatta-migrate"}


def compose_binary() -> str:
    found = shutil.which("docker-compose")
    if not found:
        reason = "docker-compose is not installed (`make test` installs Debian's where apt-get may run)"
        if os.environ.get("REGATTA_REQUIRE_COMPOSE") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def compose(*args: str, env: dict[str, str] | None = None, file: Path = ROOT / "docker-compose.yml",
            ) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("REGATTA_", "POSTGRES_", "GRAFANA_"))}
    return subprocess.run([compose_binary(), "--project-directory", str(ROOT), "-f", str(file), *args],
                          env={**clean, **(env if env is not None else SECRETS)}, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


@pytest.fixture(scope="module", autouse=True)
def secrets_made():
    """The set-up step, run as an operator would: every file a service mounts is then there."""
    done = subprocess.run([sys.executable, "-m", "regatta.cli", "deploy", "secrets", str(MADE)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    yield MADE
    shutil.rmtree(MADE, ignore_errors=True)


@pytest.fixture(scope="module")
def resolved(secrets_made) -> dict:
    done = compose("--profile", "site-agent", "config")
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_the_compose_file_is_valid_and_refuses_to_start_without_its_secrets():
    assert compose("config", "-q").returncode == 0
    missing = compose("config", "-q", env={"GRAFANA_ADMIN_PASSWORD": "x"})
    assert missing.returncode != 0
    assert "set POSTGRES_PASSWORD (see deploy/compose.env.example)" in missing.stderr


def test_a_mistake_in_the_file_is_caught_by_the_validator(tmp_path: Path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text((ROOT / "docker-compose.yml").read_text().replace("healthcheck:", "healthchek:", 1))
    done = compose("config", "-q", file=broken)
    assert done.returncode != 0 and "healthchek" in done.stderr


def test_every_piece_of_production_is_there_with_health_checks(resolved: dict):
    services = resolved["services"]
    assert set(services) >= {"postgresql", "temporal-schema", "temporal", "temporal-setup", "temporal-ui", "regatta-migrate",
                             "regatta-api", "regatta-worker", "regatta-site-agent", "prometheus", "grafana", "otel-collector"}
    for name, service in services.items():
        if name not in ONE_SHOTS and name != "otel-collector" and name != "temporal-ui":
            assert "healthcheck" in service, f"{name} has no health check"
    # Temporal starts on a schema that exists; Regatta on a Temporal that has its search attributes and an inventory migrated.
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    for role in ("regatta-api", "regatta-worker"):
        assert services[role]["depends_on"]["regatta-migrate"]["condition"] == "service_completed_successfully"
        assert services[role]["depends_on"]["temporal-setup"]["condition"] == "service_completed_successfully"
    assert set(resolved["volumes"]) >= {"postgresql-data", "prometheus-data", "grafana-data"}


def bind_mounts(service: dict) -> dict[str, str]:
    """Target → host path of a service's bind mounts (docker-compose 1.x writes `source:target[:mode]`)."""
    found = {}
    for volume in service.get("volumes") or []:
        source, target = (volume["source"], volume["target"]) if isinstance(volume, dict) else volume.split(":")[:2]
        if source.startswith(("/", ".")):
            found[target] = source
    return found


def test_one_image_whose_command_chooses_the_role_and_every_role_is_a_real_command(resolved: dict):
    regatta = {name: s for name, s in resolved["services"].items() if name.startswith("regatta-")}
    assert {s["image"] for s in regatta.values()} == {"regatta:latest"}
    assert {Path(s["build"]["context"]).resolve() for s in regatta.values()} == {ROOT}
    for name, service in regatta.items():
        help_run = subprocess.run([sys.executable, "-m", "regatta.cli", *service["command"], "--help"], capture_output=True,
                                  text=True, timeout=60)
        assert help_run.returncode == 0, f"{name}: `regatta {' '.join(service['command'])}` is refused: {help_run.stderr}"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["regatta"]' in dockerfile
    default = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert default is not None and yaml.safe_load(default.group(1)) == ["api", "--host", "0.0.0.0"]
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which does not exist"
    assert "-c constraints.txt" in dockerfile  # the versions the tests ran


def test_every_regatta_variable_is_one_regatta_reads(resolved: dict):
    read = "\n".join(path.read_text() for path in (ROOT / "regatta").rglob("*.py"))
    for name, service in resolved["services"].items():
        for variable in service.get("environment") or {}:
            if variable.startswith("REGATTA_") and name.startswith("regatta-"):
                assert f'"{variable}"' in read, f"{name} sets {variable}, which no Regatta code reads"
    api = resolved["services"]["regatta-api"]["environment"]
    assert api["REGATTA_DATABASE_URL"] == f"postgresql+psycopg://regatta:{SECRETS['REGATTA_DB_PASSWORD']}@postgresql:5432/regatta"
    assert api["REGATTA_TEMPORAL_ADDRESS"] == "temporal:7233"


def test_the_environment_chooses_the_worker_count_and_where_temporal_is():
    done = compose("config", env={**SECRETS, "REGATTA_WORKERS": "4", "REGATTA_TEMPORAL_ADDRESS": "ns.a1b2c.tmprl.cloud:7233"})
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert services["regatta-worker"]["deploy"]["replicas"] == 4
    assert services["regatta-worker"]["environment"]["REGATTA_TEMPORAL_ADDRESS"] == "ns.a1b2c.tmprl.cloud:7233"


def test_search_attributes_prometheus_targets_and_grafana_match_the_code(resolved: dict):
    services = resolved["services"]
    registered = services["temporal-setup"]["environment"]["REGATTA_SEARCH_ATTRIBUTES"].split()
    assert registered == [key.name for key in SEARCH_ATTRIBUTES]

    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["regatta-api"]["static_configs"][0]["targets"] == ["regatta-api:8700"]
    assert "8700" in services["regatta-api"]["command"]
    worker_port = services["regatta-worker"]["command"][services["regatta-worker"]["command"].index("--metrics-port") + 1]
    assert jobs["regatta-worker"]["dns_sd_configs"][0] == {"names": ["regatta-worker"], "type": "A", "port": int(worker_port)}

    mounts = bind_mounts(services["grafana"])
    assert Path(mounts["/var/lib/grafana/dashboards/fleet.json"]).resolve() == ROOT / "deploy/grafana/fleet.json"
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/regatta.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_every_file_the_services_mount_exists(resolved: dict):
    for name, service in resolved["services"].items():
        for source in bind_mounts(service).values():
            assert Path(source).exists(), f"{name} mounts {source}, which does not exist"
    for script in ("setup-schema.sh", "setup-namespace.sh"):
        done = subprocess.run(["sh", "-n", str(ROOT / "deploy/temporal" / script)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def mounted(service: dict, target: str) -> Path:
    """The host file behind a path a service reads, through its bind mounts (a file or a mounted directory)."""
    for inside, host in sorted(bind_mounts(service).items(), key=lambda item: -len(item[0])):
        if target == inside or target.startswith(inside.rstrip("/") + "/"):
            return Path(host) / target[len(inside):].lstrip("/") if target != inside else Path(host)
    raise AssertionError(f"{target} is not mounted")


def test_temporal_is_reached_only_over_mtls_by_the_services_of_this_file(resolved: dict):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    services = resolved["services"]
    temporal = services["temporal"]
    assert not temporal.get("ports"), "Temporal publishes a port: anyone on the host's network could reach it"
    env = temporal["environment"]
    assert env["TEMPORAL_TLS_REQUIRE_CLIENT_AUTH"] == "true"
    ca = x509.load_pem_x509_certificate(mounted(temporal, env["TEMPORAL_TLS_CLIENT1_CA_CERT"]).read_bytes())
    server = x509.load_pem_x509_certificate(mounted(temporal, env["TEMPORAL_TLS_FRONTEND_CERT"]).read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "temporal" in names

    def signed_by_ca(path: Path) -> None:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))

    signed_by_ca(mounted(temporal, env["TEMPORAL_TLS_FRONTEND_CERT"]))
    for name in ("regatta-api", "regatta-worker", "regatta-site-agent", "regatta-migrate"):
        client = services[name]["environment"]
        assert client["REGATTA_TEMPORAL_ADDRESS"] == "temporal:7233" and client["REGATTA_TEMPORAL_TLS_SERVER_NAME"] in names
        signed_by_ca(mounted(services[name], client["REGATTA_TEMPORAL_TLS_CERT"]))
        assert mounted(services[name], client["REGATTA_TEMPORAL_TLS_KEY"]).stat().st_mode & 0o077 == 0
    ui = services["temporal-ui"]["environment"]
    signed_by_ca(mounted(services["temporal-ui"], ui["TEMPORAL_TLS_CERT"]))
    assert ui["TEMPORAL_TLS_SERVER_NAME"] in names and ui["TEMPORAL_TLS_ENABLE_HOST_VERIFICATION"] == "true"
    setup = services["temporal-setup"]
    signed_by_ca(mounted(setup, setup["environment"]["TEMPORAL_TLS_DIR"] + "/client.pem"))
    assert "--tls-cert-path" in (ROOT / "deploy/temporal/setup-namespace.sh").read_text()
    secret_mounts = [Path(p).resolve() for s in services.values() for p in bind_mounts(s).values()
                     if Path(p).resolve().is_relative_to(MADE.resolve())]
    assert secret_mounts and all(p != MADE.resolve() and not p.is_relative_to(MADE.resolve() / "ca")
                                 for p in secret_mounts), "the secrets directory or the CA's key is mounted into a service"


def test_the_ui_is_read_only_and_local_and_the_other_consoles_local_too(resolved: dict):
    services = resolved["services"]
    assert services["temporal-ui"]["environment"]["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"
    for name in ("temporal-ui", "prometheus", "grafana"):
        for port in services[name].get("ports") or []:
            host = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]  # 1.x: "ip:host:container"
            assert host == "127.0.0.1", f"{name} publishes {port} beyond the host"
    assert services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"].endswith("/ui/codec")


def test_payloads_are_encrypted_and_cloud_credentials_reach_the_workers_only(resolved: dict):
    from regatta.temporal.codec import keys_from_env

    services = resolved["services"]
    for name, service in services.items():
        if not name.startswith("regatta-"):
            continue
        env = service["environment"]
        keys = keys_from_env({"REGATTA_CODEC_KEY_FILE": str(mounted(service, env["REGATTA_CODEC_KEY_FILE"]))})
        assert len(keys) == 1, name
        assert env.get("REGATTA_OUTBOUND_PRIVATE") == "deny", name
        holds_clouds = any(inside == "/run/secrets/clouds" for inside in bind_mounts(service))
        assert holds_clouds == (name in ("regatta-worker", "regatta-site-agent")), f"{name}: cloud credentials"
    api = services["regatta-api"]
    assert api["environment"]["REGATTA_COOKIE_SECURE"] == "1"
    assert mounted(api, api["environment"]["REGATTA_API_TLS_CERT"]).exists()
    assert "https://127.0.0.1:8700/readyz" in " ".join(api["healthcheck"]["test"])  # ready: the fleet is read
    assert api["healthcheck"]["start_period"] in ("1m", "60s", "1m0s")  # a large fleet's first read is not a failure


def test_temporal_and_regatta_each_have_a_database_role_of_their_own(resolved: dict):
    services = resolved["services"]
    assert services["temporal"]["environment"]["POSTGRES_USER"] == "temporal"
    assert services["temporal-schema"]["environment"]["SQL_USER"] == "temporal"
    assert services["regatta-api"]["environment"]["REGATTA_DATABASE_URL"].startswith("postgresql+psycopg://regatta:")
    roles = mounted(services["postgresql"], "/docker-entrypoint-initdb.d/10-roles.sh").read_text()
    assert "CREATE DATABASE regatta OWNER regatta" in roles and "CREATE DATABASE temporal OWNER temporal" in roles
    assert subprocess.run(["sh", "-n", str(ROOT / "deploy/postgresql/roles.sh")]).returncode == 0
    missing = compose("config", "-q", env={k: v for k, v in SECRETS.items() if k != "REGATTA_DB_PASSWORD"})
    assert missing.returncode != 0 and "set REGATTA_DB_PASSWORD" in missing.stderr
