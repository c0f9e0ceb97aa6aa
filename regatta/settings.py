"""Where each piece of Regatta finds the others: the REGATTA_* environment, read once per process.

Called by the CLI, the worker, the activities and the simulator; never by workflows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from regatta.rules.outbound import OutboundRules, parse_allow_list

if TYPE_CHECKING:
    from regatta.inventory.audit_files import AuditKeys

DEFAULT_TEMPORAL_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"
DEFAULT_TASK_QUEUE = "regatta"


@dataclass(frozen=True)
class Settings:
    home: Path
    temporal_address: str
    namespace: str
    task_queue: str
    database_url: str
    sim_url: str | None
    # The traffic manager's adapter (the JSON of regatta/sim/traffic_api.py); the simulator's when unset.
    traffic_url: str | None = None
    # Signs callbacks and checks inbound webhooks (regatta/rules/signing.py). A secret: never in as_env.
    webhook_secret: str | None = None
    # Where the CLI finds the HTTP API, and the token it acts as there (a secret: never in as_env).
    api_url: str | None = None
    api_token: str | None = None
    # Hosts and networks that callbacks, owner webhooks and Prometheus checks may reach
    # (regatta/rules/outbound.py); empty: any but link-local and cloud metadata addresses.
    outbound_allow: tuple[str, ...] = ()
    # Whether those may be loopback or private addresses without an allow-list entry naming their network:
    # REGATTA_OUTBOUND_PRIVATE=deny turns them off (the production deployment does); allowed by default,
    # for the dev stack and a receiver on the same machine.
    outbound_private: bool = True
    # Where people open the Temporal UI (links from the CLI and the fleet view); unset: port 8233 of
    # the Temporal address's host, as the dev server serves it.
    temporal_ui_url: str | None = None
    # Temporal beyond the dev server (a Temporal cluster of your own, or Temporal Cloud): TLS with the
    # system's roots (`temporal_tls`) or a CA file, a client certificate and key for mTLS, the name the
    # server's certificate carries when it differs from the address, and an API key (Temporal Cloud;
    # a secret: never in as_env). Paths, so the certificates themselves stay in files.
    temporal_tls: bool = False
    temporal_tls_ca: str | None = None
    temporal_tls_cert: str | None = None
    temporal_tls_key: str | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: str | None = None
    # The audit trail's key file (HMAC keys, one per line: the first signs) and the file its signed
    # checkpoints are appended to (regatta/inventory/audit_files.py). Paths: the key stays in its file.
    audit_key_file: str | None = None
    # The fleet view's session cookie is Secure whatever scheme the API sees (REGATTA_COOKIE_SECURE=1): set
    # it wherever people reach the API over HTTPS, a TLS-terminating proxy in front of it included.
    cookie_secure: bool = False
    # Images a health check's smoke test may run (names, or prefixes ending in `*`); empty: any image.
    smoke_test_images: tuple[str, ...] = ()
    audit_checkpoints: str | None = None
    # Requests per second each cloud account takes, held across every worker (regatta/rules/rate_limits.py):
    # `eks/default=10,gke/prod=20`; unset: no limit of Regatta's own.
    cloud_rate_limits: str | None = None
    # The sign-in file (regatta/models/sign_in.py, examples/oidc.yaml): people sign in through the company's
    # identity provider, in the fleet view and with its tokens on the API. A path; the client secret is
    # REGATTA_OIDC_CLIENT_SECRET, read only by the API process.
    oidc_file: str | None = None
    # Worker Versioning (docs/operations.md): the build this worker is (REGATTA_BUILD_ID, the release's) in the
    # worker deployment REGATTA_DEPLOYMENT ("regatta"); unset: an unversioned worker, as before.
    build_id: str | None = None
    deployment: str = "regatta"
    # A rehearsal's private worker (regatta/rehearsal.py): it reaches the simulator only, never a kubeconfig or a
    # credential a secrets store holds. Never read from the environment.
    simulated_only: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home = Path(env.get("REGATTA_HOME") or Path.home() / ".regatta").expanduser()
        database_url = env.get("REGATTA_DATABASE_URL") or f"sqlite:///{home / 'regatta.db'}"
        return cls(
            home=home,
            temporal_address=env.get("REGATTA_TEMPORAL_ADDRESS") or DEFAULT_TEMPORAL_ADDRESS,
            namespace=env.get("REGATTA_NAMESPACE") or DEFAULT_NAMESPACE,
            task_queue=env.get("REGATTA_TASK_QUEUE") or DEFAULT_TASK_QUEUE,
            database_url=database_url,
            sim_url=(env.get("REGATTA_SIM_URL") or None),
            traffic_url=(env.get("REGATTA_TRAFFIC_URL") or None),
            webhook_secret=(env.get("REGATTA_WEBHOOK_SECRET") or None),
            api_url=(env.get("REGATTA_API_URL") or None),
            api_token=(env.get("REGATTA_TOKEN") or None),
            outbound_allow=parse_allow_list(env.get("REGATTA_OUTBOUND_ALLOW")),
            outbound_private=(env.get("REGATTA_OUTBOUND_PRIVATE") or "allow").strip().lower() not in ("deny", "0", "false", "no", "off"),
            temporal_ui_url=(env.get("REGATTA_TEMPORAL_UI_URL") or None),
            temporal_tls=(env.get("REGATTA_TEMPORAL_TLS") or "").strip().lower() in ("1", "true", "yes", "on"),
            temporal_tls_ca=(env.get("REGATTA_TEMPORAL_TLS_CA") or None),
            temporal_tls_cert=(env.get("REGATTA_TEMPORAL_TLS_CERT") or None),
            temporal_tls_key=(env.get("REGATTA_TEMPORAL_TLS_KEY") or None),
            temporal_tls_server_name=(env.get("REGATTA_TEMPORAL_TLS_SERVER_NAME") or None),
            temporal_api_key=(env.get("REGATTA_TEMPORAL_API_KEY") or None),
            cloud_rate_limits=(env.get("REGATTA_CLOUD_RATE_LIMITS") or None),
            audit_key_file=(env.get("REGATTA_AUDIT_KEY_FILE") or None),
            cookie_secure=(env.get("REGATTA_COOKIE_SECURE") or "").strip().lower() in ("1", "true", "yes", "on"),
            smoke_test_images=parse_allow_list(env.get("REGATTA_SMOKE_TEST_IMAGES")),
            audit_checkpoints=(env.get("REGATTA_AUDIT_CHECKPOINTS") or None),
            oidc_file=(env.get("REGATTA_OIDC_FILE") or None),
            build_id=(env.get("REGATTA_BUILD_ID") or None),
            deployment=(env.get("REGATTA_DEPLOYMENT") or "regatta"),
        )

    def audit_keys(self) -> AuditKeys:
        """The audit keys of REGATTA_AUDIT_KEY_FILE (none when unset); AuditKeyError when the file is unusable."""
        from regatta.inventory.audit_files import AuditKeys

        return AuditKeys.from_file(self.audit_key_file) if self.audit_key_file else AuditKeys()

    @property
    def outbound(self) -> OutboundRules:
        return OutboundRules(allowed=self.outbound_allow, private_allowed=self.outbound_private)

    @property
    def traffic_endpoint(self) -> str | None:
        if self.traffic_url:
            return self.traffic_url.rstrip("/")
        return f"{self.sim_url.rstrip('/')}/traffic/v1" if self.sim_url else None

    @property
    def temporal_ui(self) -> str:
        return (self.temporal_ui_url or f"http://{self.temporal_address.rsplit(':', 1)[0]}:8233").rstrip("/")

    def as_env(self) -> dict[str, str]:
        """The variables a separate worker or CLI call needs to join this installation."""
        env = {
            "REGATTA_HOME": str(self.home),
            "REGATTA_TEMPORAL_ADDRESS": self.temporal_address,
            "REGATTA_NAMESPACE": self.namespace,
            "REGATTA_TASK_QUEUE": self.task_queue,
            "REGATTA_DATABASE_URL": self.database_url,
        }
        if self.sim_url:
            env["REGATTA_SIM_URL"] = self.sim_url
        if self.traffic_url:
            env["REGATTA_TRAFFIC_URL"] = self.traffic_url
        if self.outbound_allow:
            env["REGATTA_OUTBOUND_ALLOW"] = ",".join(self.outbound_allow)
        if not self.outbound_private:
            env["REGATTA_OUTBOUND_PRIVATE"] = "deny"
        if self.smoke_test_images:
            env["REGATTA_SMOKE_TEST_IMAGES"] = ",".join(self.smoke_test_images)
        if self.temporal_ui_url:
            env["REGATTA_TEMPORAL_UI_URL"] = self.temporal_ui_url
        if self.cloud_rate_limits:
            env["REGATTA_CLOUD_RATE_LIMITS"] = self.cloud_rate_limits
        if self.audit_key_file:
            env["REGATTA_AUDIT_KEY_FILE"] = self.audit_key_file
        if self.audit_checkpoints:
            env["REGATTA_AUDIT_CHECKPOINTS"] = self.audit_checkpoints
        if self.oidc_file:
            env["REGATTA_OIDC_FILE"] = self.oidc_file
        if self.build_id:
            env["REGATTA_BUILD_ID"] = self.build_id
        if self.deployment != "regatta":
            env["REGATTA_DEPLOYMENT"] = self.deployment
        if self.temporal_tls:
            env["REGATTA_TEMPORAL_TLS"] = "1"
        for name, value in (("CA", self.temporal_tls_ca), ("CERT", self.temporal_tls_cert), ("KEY", self.temporal_tls_key),
                            ("SERVER_NAME", self.temporal_tls_server_name)):
            if value:
                env[f"REGATTA_TEMPORAL_TLS_{name}"] = value
        return env
