"""Secrets by reference, against a real implementation of AWS Secrets Manager's API (moto's server on
127.0.0.1): a setting naming a secret is read in the process that uses it, a rotation is in use
without a restart once the kept copy is older than REGATTA_SECRET_CACHE_SECONDS, and what cannot be
read is refused saying what to fix, never with the value."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from regatta.api.app import create_app
from regatta.clouds.secret_stores import SecretStoreError, StoredSecret, resolve
from regatta.rules import signing
from tests.shared_http import http


@pytest.fixture(scope="module")
def secrets_manager():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def store(secrets_manager, monkeypatch):
    """A Secrets Manager client, with this process's environment pointed at the same server as Regatta would be."""
    for variable, value in {"AWS_ENDPOINT_URL_SECRETS_MANAGER": secrets_manager, "AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(variable, value)
    for variable in ("AWS_PROFILE", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable, raising=False)
    return boto3.client("secretsmanager", region_name="eu-west-1", endpoint_url=secrets_manager)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_reference_is_read_from_the_store_and_a_rotation_is_used_once_the_kept_copy_is_old(store):
    name = f"regatta/webhook-{uuid.uuid4().hex[:6]}"
    store.create_secret(Name=name, SecretString="first-value")
    clock = Clock()
    secret = StoredSecret(f"aws-secretsmanager:{name}", name="REGATTA_WEBHOOK_SECRET", keep_seconds=60, clock=clock)
    assert secret.value() == "first-value"
    store.put_secret_value(SecretId=name, SecretString="rotated-value")
    clock.now = 59
    assert secret.value() == "first-value"  # kept a minute: the store is not asked on every signature
    clock.now = 61
    assert secret.value() == "rotated-value"  # no restart


def test_a_key_of_a_json_secret_an_arn_and_a_plain_value(store, monkeypatch):
    name = f"regatta/prod-{uuid.uuid4().hex[:6]}"
    arn = store.create_secret(Name=name, SecretString=json.dumps({"webhook": "from-json", "other": "x"}))["ARN"]
    assert resolve(f"aws-secretsmanager:{name}#webhook") == "from-json"
    monkeypatch.delenv("AWS_REGION")  # the ARN carries its region
    assert json.loads(resolve(f"aws-secretsmanager:{arn}")) == {"webhook": "from-json", "other": "x"}
    assert resolve("just-a-secret") == "just-a-secret"  # a setting that is no reference is the secret itself


def test_what_cannot_be_read_is_refused_with_what_to_fix_and_never_the_value(store, monkeypatch):
    name = f"regatta/doc-{uuid.uuid4().hex[:6]}"
    store.create_secret(Name=name, SecretString=json.dumps({"webhook": "do-not-show-me"}))
    binary = f"regatta/bin-{uuid.uuid4().hex[:6]}"
    store.create_secret(Name=binary, SecretBinary=b"do-not-show-\xe9-me")
    refusals = {
        f"aws-secretsmanager:regatta/missing-{uuid.uuid4().hex[:6]}": "ResourceNotFoundException",
        f"aws-secretsmanager:{name}#absent": "has no text under key 'absent'",
        f"aws-secretsmanager:{binary}": "holds no text (a SecretString, or a SecretBinary in UTF-8)",
        "azure-keyvault:webhook": "is not a secret's name: write azure-keyvault:VAULT/SECRET",
    }
    for setting, says in refusals.items():
        with pytest.raises(SecretStoreError) as refused:
            StoredSecret(setting, name="REGATTA_WEBHOOK_SECRET").value()
        assert says in str(refused.value) and refused.value.retryable is False, str(refused.value)
        assert str(refused.value).startswith("REGATTA_WEBHOOK_SECRET: ") and "do-not-show" not in str(refused.value)
        assert refused.value.__context__ is None or "do-not-show" not in repr(refused.value.__context__)
    monkeypatch.setenv("AWS_REGION", "")
    with pytest.raises(SecretStoreError, match="names no region: give the secret's ARN, or set AWS_REGION"):
        resolve(f"aws-secretsmanager:{name}")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:9")  # nothing listens: the store is down
    import regatta.clouds.secret_stores as secret_stores
    monkeypatch.setattr(secret_stores, "_CLIENTS", {})  # a client made now, for the store's new address
    with pytest.raises(SecretStoreError) as down:
        resolve(f"aws-secretsmanager:{name}")
    assert down.value.retryable  # a store that cannot be reached for now is asked again, not a refusal


@pytest.mark.parametrize("setting", [
    "aws-secretsmanager:", "aws-secretsmanager:name#", "aws-secretsmanager:#key", "aws-secretsmanager:a#b#c",
    "AWS-SECRETSMANAGER:regatta/webhook", "aws-secretsmanager:regatta/web hook", "Vault:", "gcp-secretmanager:x"])
def test_a_setting_that_starts_like_a_reference_is_never_taken_for_the_secret_itself(setting):
    """An unset ${NAME} or a typo in a reference must not make a guessable HMAC key."""
    with pytest.raises(SecretStoreError) as refused:
        StoredSecret(setting, name="REGATTA_WEBHOOK_SECRET").value()
    assert refused.value.retryable is False
    assert any(words in str(refused.value) for words in ("is not one: write aws-secretsmanager:",
                                                         "is not a secret's name: write gcp-secretmanager:"))


def test_a_failed_read_is_answered_from_memory_for_a_while_and_the_last_value_outlives_an_outage(monkeypatch):
    reads: list[str] = []
    answers = iter([SecretStoreError("throttled", retryable=True), "v1", SecretStoreError("store down", retryable=True),
                    SecretStoreError("gone", retryable=False)])

    def read(setting: str) -> str:
        reads.append(setting)
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = Clock()
    secret = StoredSecret("aws-secretsmanager:regatta/x", name="REGATTA_WEBHOOK_SECRET", keep_seconds=60,
                          clock=clock, read=read)
    for _ in range(20):  # a caller sending request after request: one read, the rest answered from memory
        with pytest.raises(SecretStoreError, match="throttled"):
            secret.value()
    assert len(reads) == 1
    clock.now = 6
    assert secret.value() == "v1" and len(reads) == 2
    clock.now = 70
    assert secret.value() == "v1" and len(reads) == 3  # the store is down: the value read before stays in use
    clock.now = 76
    with pytest.raises(SecretStoreError, match="gone"):  # the secret is gone for good: said, not papered over
        secret.value()
    monkeypatch.setenv("REGATTA_SECRET_CACHE_SECONDS", "60s")
    with pytest.raises(SecretStoreError, match="REGATTA_SECRET_CACHE_SECONDS must be seconds from 0 to 86400, not '60s'"):
        StoredSecret("aws-secretsmanager:regatta/y", name="REGATTA_WEBHOOK_SECRET", read=read).value()
    assert StoredSecret("plain", name="REGATTA_WEBHOOK_SECRET").value() == "plain"  # a plain secret needs no setting


def test_the_worker_refuses_a_callback_whose_secret_is_gone_and_retries_one_whose_store_is_down(store, monkeypatch):
    from temporalio.exceptions import ApplicationError

    from activities.callbacks import CallbackActivities

    missing = CallbackActivities(f"aws-secretsmanager:regatta/missing-{uuid.uuid4().hex[:6]}")
    with pytest.raises(ApplicationError) as refused:
        missing._key("callbacks are only sent signed")
    assert refused.value.non_retryable and refused.value.type == "NoWebhookSecret"
    assert "ResourceNotFoundException" in refused.value.message
    name = f"regatta/worker-{uuid.uuid4().hex[:6]}"
    store.create_secret(Name=name, SecretString="worker-secret")
    assert CallbackActivities(f"aws-secretsmanager:{name}")._key("callbacks are only sent signed") == b"worker-secret"
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:9")
    import regatta.clouds.secret_stores as secret_stores
    monkeypatch.setattr(secret_stores, "_CLIENTS", {})
    down = CallbackActivities(f"aws-secretsmanager:regatta/other-{uuid.uuid4().hex[:6]}")
    with pytest.raises(SecretStoreError) as retried:  # not a refusal: Temporal asks the activity again
        down._key("callbacks are only sent signed")
    assert retried.value.retryable


async def test_the_api_checks_ticket_webhooks_with_the_secret_the_store_holds_and_its_rotation(
        store, queue_settings, inventory, monkeypatch):
    monkeypatch.setenv("REGATTA_SECRET_CACHE_SECONDS", "0.3")
    name = f"regatta/api-{uuid.uuid4().hex[:6]}"
    store.create_secret(Name=name, SecretString="the-first-secret")
    settings = dataclasses.replace(queue_settings, webhook_secret=f"aws-secretsmanager:{name}")
    event = json.dumps({"event": "approved", "ticket": f"CHG-never-{uuid.uuid4().hex[:6]}", "by": "alice"}).encode()

    def signed(secret: str) -> dict[str, str]:
        at = int(time.time())
        return {"Content-Type": "application/json", signing.TIMESTAMP_HEADER: str(at),
                signing.SIGNATURE_HEADER: signing.sign(secret.encode(), at, event)}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, inventory)),
                                 base_url="http://regatta.test") as api:
        async def status_with(secret: str) -> int:
            return (await api.post("/v1/webhooks/ticket-events", content=event, headers=signed(secret))).status_code

        # 404: the signature held and the ticket started nothing; 401: the signature did not hold
        assert await status_with("the-first-secret") == 404
        assert await status_with(f"aws-secretsmanager:{name}") == 401  # the reference is not the secret
        store.put_secret_value(SecretId=name, SecretString="the-rotated-secret")
        time.sleep(0.4)
        assert await status_with("the-rotated-secret") == 404
        assert await status_with("the-first-secret") == 401
        store.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        time.sleep(0.4)
        gone = await api.post("/v1/webhooks/ticket-events", content=event, headers=signed("the-rotated-secret"))
        assert gone.status_code == 503 and "could not be read from its store" in gone.json()["error"]
        assert name not in gone.text and "ResourceNotFound" not in gone.text  # the details go to the log, not the caller


async def test_codec_keys_kept_in_the_store_and_rotated_there_are_in_use_without_a_restart(store, monkeypatch):
    import base64
    import os

    from temporalio.api.common.v1 import Payload

    from regatta.temporal.codec import KEY_ID, codec_from_env

    monkeypatch.setenv("REGATTA_SECRET_CACHE_SECONDS", "0.3")
    first, second = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
    name = f"regatta/codec-{uuid.uuid4().hex[:6]}"
    store.create_secret(Name=name, SecretString=f"k1 {first}\n")
    codec = codec_from_env({"REGATTA_CODEC_KEYS": f"aws-secretsmanager:{name}"})
    assert codec is not None
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"cluster": "eks-prod-use1"}')
    (old,) = await codec.encode([plain])
    assert old.metadata[KEY_ID] == b"k1" and b"eks-prod" not in old.data
    store.put_secret_value(SecretId=name, SecretString=f"k2:{second},k1:{first}")  # a new first key, the old kept
    time.sleep(1.1)  # the store's copy kept 0.3 s, and the codec asks at most once a second
    (new,) = await codec.encode([plain])
    assert new.metadata[KEY_ID] == b"k2"  # the rotation is in use in this process, which was not restarted
    assert [p.data for p in await codec.decode([old, new])] == [plain.data, plain.data]
    store.put_secret_value(SecretId=name, SecretString="not keys at all")
    time.sleep(1.1)  # the store's copy kept 0.3 s, and the codec asks at most once a second
    (still,) = await codec.encode([plain])  # a secret that no longer reads as keys leaves the held ones in use
    assert still.metadata[KEY_ID] == b"k2"


def test_telling_one_codec_setting_from_another_reads_no_store():
    """connect() runs on the event loop for every API request: where the keys live in a store, its client is known by
    the reference, and the store is read by the codec itself, in a thread."""
    from regatta.temporal.codec import codec_identity

    reference = "aws-secretsmanager:regatta/codec-nowhere"  # no store is reachable for it: a read would fail
    assert codec_identity({"REGATTA_CODEC_KEYS": reference}) == (reference,)


def test_a_kubeconfig_cluster_reached_through_a_kubeconfig_the_store_holds_and_rotated_without_a_restart(
        store, monkeypatch, add_cluster, simulator, tmp_path):
    """A cluster Regatta reaches by kubeconfig, whose kubeconfig is a secret (credential_ref
    `aws-secretsmanager:NAME`): read in the process that uses it, its client made again when the secret changes."""
    import yaml
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    from regatta.clouds import CloudError
    from regatta.clouds.base import simulator_kubeconfig
    from regatta.kube.connect import ClusterConnections
    from regatta.models import ClusterRef

    monkeypatch.setenv("REGATTA_SECRET_CACHE_SECONDS", "0")  # read on every use: the rotation shows at once
    name = add_cluster("byref")
    real = simulator_kubeconfig(simulator.url, ClusterRef(name=name, provider="eks", region="us-east-1"))
    secret = f"regatta/kubeconfig-{uuid.uuid4().hex[:6]}"
    store.create_secret(Name=secret, SecretString=yaml.safe_dump(real))
    ref = ClusterRef(name=name, provider="kubeconfig", region="us-east-1", credential_ref=f"aws-secretsmanager:{secret}")
    connections = ClusterConnections(sim_url=simulator.url)
    try:
        nodes = k8s.CoreV1Api(connections.api_client(ref)).list_node().items
        assert nodes and all(n.metadata.name for n in nodes)
        first = connections.api_client(ref)
        assert connections.api_client(ref) is first  # unchanged: the same client

        stale = json.loads(json.dumps(real))
        stale["users"][0]["user"]["token"] = "simtok-revoked-0000000000000000"
        store.put_secret_value(SecretId=secret, SecretString=yaml.safe_dump(stale))
        with pytest.raises(ApiException) as refused:
            k8s.CoreV1Api(connections.api_client(ref)).list_node()
        assert refused.value.status == 401  # the rotated kubeconfig is the one in use, no restart
        store.put_secret_value(SecretId=secret, SecretString=yaml.safe_dump(real))
        assert k8s.CoreV1Api(connections.api_client(ref)).list_node().items

        store.put_secret_value(SecretId=secret, SecretString="token: simtok-not-a-kubeconfig-123456")
        with pytest.raises(CloudError) as unusable:
            connections.api_client(ref)
        assert not unusable.value.retryable and "does not hold a kubeconfig" in str(unusable.value)
        assert "simtok-not-a-kubeconfig" not in str(unusable.value) and unusable.value.__context__ is None

        # whoever can write the secret must not be able to run a command, or read a file, in the worker
        for user in ({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/sh",
                               "args": ["-c", f"touch {tmp_path}/pwned"]}},
                     {"tokenFile": "/etc/hostname"}, {"auth-provider": {"name": "oidc"}}):
            hostile = json.loads(json.dumps(real))
            hostile["users"][0]["user"] = user
            store.put_secret_value(SecretId=secret, SecretString=yaml.safe_dump(hostile))
            with pytest.raises(CloudError, match="may hold only a server"):
                connections.api_client(ref)
        assert not (tmp_path / "pwned").exists()
    finally:
        connections.close()


def test_an_eks_clusters_access_key_kept_in_the_store_signs_its_calls_and_a_rotation_is_used_without_a_restart(
        store, monkeypatch, add_cluster, simulator):
    """credential_ref naming a Secrets Manager secret that holds the account's access key: the cloud calls are signed
    with it (the simulator records the SigV4 key id each call was signed with), and with the new one once rotated."""
    from regatta.clouds import CloudError
    from regatta.kube.connect import ClusterConnections
    from regatta.models import ClusterRef

    monkeypatch.setenv("REGATTA_SECRET_CACHE_SECONDS", "0")
    name = add_cluster("eksref")
    secret = f"regatta/eks-keys-{uuid.uuid4().hex[:6]}"
    store.create_secret(Name=secret, SecretString=json.dumps({"aws_access_key_id": "AKIAREGATTAFIRSTKEY1",
                                                              "aws_secret_access_key": "first-secret-value"}))
    ref = ClusterRef(name=name, provider="eks", region="us-east-1", credential_ref=f"aws-secretsmanager:{secret}")
    connections = ClusterConnections(sim_url=simulator.url)

    def signed_with() -> list[str]:
        found = http.get(f"{simulator.url}/sim/requests", params={"cloud": "eks", "path_contains": name}, timeout=10).json()
        return [r.get("access_key_id") for r in found["requests"]]

    try:
        assert connections.provider(ref).describe_control_plane(ref).version
        assert signed_with()[-1] == "AKIAREGATTAFIRSTKEY1"
        store.put_secret_value(SecretId=secret, SecretString=json.dumps({
            "aws_access_key_id": "AKIAREGATTAROTATED02", "aws_secret_access_key": "rotated-secret-value"}))
        connections.provider(ref).describe_control_plane(ref)
        assert signed_with()[-1] == "AKIAREGATTAROTATED02"  # no restart
        store.put_secret_value(SecretId=secret, SecretString=json.dumps({"aws_access_key_id": "AKIAONLYHALFOFAKEY3"}))
        with pytest.raises(CloudError) as refused:
            connections.provider(ref).describe_control_plane(ref)
        assert not refused.value.retryable and "does not hold an AWS access key" in str(refused.value)
        assert "AKIAONLYHALFOFAKEY3" not in str(refused.value) and refused.value.__context__ is None
    finally:
        connections.close()


def test_a_gke_clusters_service_account_key_kept_in_the_store_is_who_calls_and_a_rotated_key_is_used_without_a_restart(
        store, monkeypatch, add_cluster, simulator):
    """credential_ref naming a secret that holds a Google service account key: the GKE calls carry a token the
    (simulated) Google token endpoint gave that account for an assertion signed with its key; a key rotated in the
    store is used at once; a key Google does not know is refused for good, without its words."""
    from regatta.clouds import CloudError
    from regatta.kube.connect import ClusterConnections
    from regatta.models import ClusterRef

    monkeypatch.setenv("REGATTA_SECRET_CACHE_SECONDS", "0")

    def service_account_key(email: str, *, known: bool = True) -> str:
        return google_service_account_key(simulator, email, known=known)

    name = add_cluster("gkeref", provider="gke")
    secret = f"regatta/gke-key-{uuid.uuid4().hex[:6]}"
    store.create_secret(Name=secret, SecretString=service_account_key("first@regatta-sim.iam.gserviceaccount.com"))
    ref = ClusterRef(name=name, provider="gke", region="us-east-1", credential_ref=f"aws-secretsmanager:{secret}")
    connections = ClusterConnections(sim_url=simulator.url)

    def called_as() -> str | None:
        found = http.get(f"{simulator.url}/sim/requests", params={"cloud": "gke", "path_contains": name}, timeout=10).json()
        return found["requests"][-1].get("principal")

    try:
        assert connections.provider(ref).describe_control_plane(ref).version
        assert called_as() == "first@regatta-sim.iam.gserviceaccount.com"
        store.put_secret_value(SecretId=secret, SecretString=service_account_key("rotated@regatta-sim.iam.gserviceaccount.com"))
        connections.provider(ref).describe_control_plane(ref)
        assert called_as() == "rotated@regatta-sim.iam.gserviceaccount.com"  # no restart
        unknown = service_account_key("stranger@regatta-sim.iam.gserviceaccount.com", known=False)
        store.put_secret_value(SecretId=secret, SecretString=unknown)
        with pytest.raises(CloudError) as refused:
            connections.provider(ref).describe_control_plane(ref)
        assert not refused.value.retryable and "invalid authentication credentials" in str(refused.value)
        assert "PRIVATE KEY" not in str(refused.value)
        store.put_secret_value(SecretId=secret, SecretString='{"type": "service_account"}')
        with pytest.raises(CloudError, match="does not hold a service account key") as unusable:
            connections.provider(ref).describe_control_plane(ref)
        assert unusable.value.__context__ is None
    finally:
        connections.close()


def google_service_account_key(simulator, email: str, *, known: bool = True) -> str:
    """A service account key's JSON, as `gcloud iam service-accounts keys create` writes it, whose token_uri is the
    simulated Google token endpoint; `known`: registered as IAM would (Google keeps its public half)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = uuid.uuid4().hex
    if known:
        public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        http.post(f"{simulator.url}/sim/google/service-account-keys", json={
            "client_email": email, "private_key_id": kid, "public_key_pem": public}, timeout=10).raise_for_status()
    return json.dumps({
        "type": "service_account", "project_id": "regatta-sim", "private_key_id": kid, "client_email": email,
        "private_key": private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode(),
        "client_id": "1", "token_uri": f"{simulator.url}/sim/google/token"})


def test_google_secret_manager_is_read_with_the_processs_google_credentials_and_a_new_version_is_used(
        simulator, monkeypatch, tmp_path):
    """A reference to Google Secret Manager, read through its REST API (the simulator's stand-in, from the API's
    reference) with Application Default Credentials: a service account key file, whose token the simulated Google
    token endpoint issues."""
    key_file = tmp_path / "sa.json"
    key_file.write_text(google_service_account_key(simulator, "reader@regatta-sim.iam.gserviceaccount.com"))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    monkeypatch.setenv("REGATTA_GCP_SECRETMANAGER_ENDPOINT", f"{simulator.url}/sim/google/secretmanager")
    name = f"projects/regatta-sim/secrets/webhook-{uuid.uuid4().hex[:6]}"

    def add(text: str) -> None:
        http.post(f"{simulator.url}/sim/google/secretmanager/versions", json={"secret": name, "data": text},
                   timeout=10).raise_for_status()

    add("first-value")
    clock = Clock()
    secret = StoredSecret(f"gcp-secretmanager:{name}", name="REGATTA_WEBHOOK_SECRET", keep_seconds=60, clock=clock)
    assert secret.value() == "first-value"
    add(json.dumps({"webhook": "rotated-value"}))
    clock.now = 61
    assert json.loads(secret.value()) == {"webhook": "rotated-value"}  # the latest version, no restart
    assert resolve(f"gcp-secretmanager:{name}#webhook") == "rotated-value"
    assert resolve(f"gcp-secretmanager:{name}/versions/1") == "first-value"

    with pytest.raises(SecretStoreError) as missing:
        resolve("gcp-secretmanager:projects/regatta-sim/secrets/no-such-secret")
    assert not missing.value.retryable and "404 NOT_FOUND" in str(missing.value)
    with pytest.raises(SecretStoreError, match="is not a secret's name"):
        resolve("gcp-secretmanager:webhook")
    key_file.write_text(google_service_account_key(simulator, "stranger@regatta-sim.iam.gserviceaccount.com", known=False))
    with pytest.raises(SecretStoreError) as refused:
        resolve(f"gcp-secretmanager:{name}")
    assert not refused.value.retryable and "refused this process's credentials" in str(refused.value)
    assert "PRIVATE KEY" not in str(refused.value)


def test_vault_kv_version_2_is_read_with_the_processs_token_and_a_new_version_is_used(simulator, monkeypatch):
    """A reference to HashiCorp Vault's KV version 2 (the simulator's stand-in, from Vault's API reference),
    written through Vault's own API and read with VAULT_ADDR and VAULT_TOKEN."""
    root = http.get(f"{simulator.url}/sim/vault/root-token", timeout=10).json()["token"]
    address = f"{simulator.url}/sim/vault"
    monkeypatch.setenv("VAULT_ADDR", address)
    monkeypatch.setenv("VAULT_TOKEN", root)
    path = f"regatta/webhook-{uuid.uuid4().hex[:6]}"

    def write(data: dict) -> None:
        http.post(f"{address}/v1/secret/data/{path}", json={"data": data}, headers={"X-Vault-Token": root},
                   timeout=10).raise_for_status()

    write({"value": "first-value"})
    clock = Clock()
    secret = StoredSecret(f"vault:secret/{path}", name="REGATTA_WEBHOOK_SECRET", keep_seconds=60, clock=clock)
    assert secret.value() == "first-value"  # one key: its value
    assert resolve(f"vault:secret/{path}#value") == "first-value"  # or named
    write({"value": "rotated-value"})
    clock.now = 61
    assert secret.value() == "rotated-value"  # no restart
    write({"webhook": "with-a-second-key", "other": "x"})
    assert resolve(f"vault:secret/{path}#webhook") == "with-a-second-key"
    with pytest.raises(SecretStoreError, match=r"holds 2 keys \(other, webhook\): name the one to use"):
        resolve(f"vault:secret/{path}")  # never a silent change from a value to a JSON of several

    with pytest.raises(SecretStoreError) as missing:
        resolve("vault:secret/regatta/nothing-here")
    assert not missing.value.retryable and "(404)" in str(missing.value)
    with pytest.raises(SecretStoreError, match="is not a KV secret's path"):
        resolve("vault:secret/../sys/raw")
    monkeypatch.setenv("VAULT_TOKEN", "hvs.not-a-token")
    with pytest.raises(SecretStoreError) as refused:
        resolve(f"vault:secret/{path}")
    assert not refused.value.retryable and "(403)" in str(refused.value) and "hvs.not-a-token" not in str(refused.value)
    monkeypatch.delenv("VAULT_ADDR")
    with pytest.raises(SecretStoreError, match="set VAULT_ADDR and VAULT_TOKEN"):
        resolve(f"vault:secret/{path}")


def test_an_aks_clusters_application_secret_kept_in_the_store_is_who_calls_arm_and_a_rotation_is_used(
        store, monkeypatch, add_cluster, simulator, tmp_path):
    """credential_ref naming a secret that holds an Entra application's client secret (and its subscription and
    resource group): the ARM calls carry the token Entra's client-credentials flow (the simulator's, on its HTTPS
    listener) gave that application; another application's secret rotated in is used at once; a wrong secret is
    refused for good, without its words."""
    import base64

    from regatta.clouds import CloudError
    from regatta.clouds.aks import SIM_RESOURCE_GROUP, SIM_SUBSCRIPTION
    from regatta.kube.connect import ClusterConnections
    from regatta.models import ClusterRef

    monkeypatch.setenv("REGATTA_SECRET_CACHE_SECONDS", "0")
    authority = tmp_path / "sim-ca.pem"  # the simulator's HTTPS listener is signed by its own CA: trusted as a company's
    authority.write_bytes(base64.b64decode(simulator.world.ca_data))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(authority))

    def application(client_id: str, secret: str, *, registered: bool = True) -> str:
        if registered:
            http.post(f"{simulator.url}/sim/entra/applications", json={
                "tenant_id": "contoso", "client_id": client_id, "client_secret": secret}, timeout=10).raise_for_status()
        return json.dumps({"tenant_id": "contoso", "client_id": client_id, "client_secret": secret,
                           "subscription_id": SIM_SUBSCRIPTION, "resource_group": SIM_RESOURCE_GROUP,
                           "authority_host": simulator.kube_url.removeprefix("https://") + "/sim/entra/login"})

    name = add_cluster("aksref", provider="aks")
    secret = f"regatta/aks-app-{uuid.uuid4().hex[:6]}"
    first = f"app-{uuid.uuid4().hex[:8]}"
    store.create_secret(Name=secret, SecretString=application(first, "first-client-secret"))
    ref = ClusterRef(name=name, provider="aks", region="us-east-1", credential_ref=f"aws-secretsmanager:{secret}")
    connections = ClusterConnections(sim_url=simulator.url)

    def called_as() -> str | None:
        found = http.get(f"{simulator.url}/sim/requests", params={"cloud": "aks", "path_contains": name}, timeout=10).json()
        return found["requests"][-1].get("principal")

    try:
        assert connections.provider(ref).describe_control_plane(ref).version
        assert called_as() == first
        rotated = f"app-{uuid.uuid4().hex[:8]}"
        store.put_secret_value(SecretId=secret, SecretString=application(rotated, "rotated-client-secret"))
        connections.provider(ref).describe_control_plane(ref)
        assert called_as() == rotated  # no restart
        store.put_secret_value(SecretId=secret, SecretString=application(rotated, "a-wrong-client-secret", registered=False))
        with pytest.raises(CloudError) as refused:
            connections.provider(ref).describe_control_plane(ref)
        assert not refused.value.retryable and "a-wrong-client-secret" not in str(refused.value)
        store.put_secret_value(SecretId=secret, SecretString='{"tenant_id": "contoso"}')
        with pytest.raises(CloudError, match="does not hold an Azure application's client secret") as unusable:
            connections.provider(ref).describe_control_plane(ref)
        assert unusable.value.__context__ is None
    finally:
        connections.close()


def test_azure_key_vault_is_read_with_the_processs_azure_credential_and_a_new_version_is_used(
        simulator, monkeypatch, tmp_path):
    """A reference to Azure Key Vault (the simulator's stand-in, from Key Vault's REST reference, on its HTTPS
    listener), read with DefaultAzureCredential: an application's client secret in the environment, whose token the
    simulated Entra ID issues for Key Vault."""
    import base64

    from azure.identity import ClientSecretCredential

    authority_file = tmp_path / "sim-ca.pem"
    authority_file.write_bytes(base64.b64decode(simulator.world.ca_data))
    host = simulator.kube_url.removeprefix("https://") + "/sim/entra/login"
    client_id = f"reader-{uuid.uuid4().hex[:8]}"
    http.post(f"{simulator.url}/sim/entra/applications", json={
        "tenant_id": "contoso", "client_id": client_id, "client_secret": "reader-secret"}, timeout=10).raise_for_status()
    for variable, value in {"REQUESTS_CA_BUNDLE": str(authority_file), "AZURE_TENANT_ID": "contoso",
                            "AZURE_CLIENT_ID": client_id, "AZURE_CLIENT_SECRET": "reader-secret",
                            "AZURE_AUTHORITY_HOST": host,
                            "REGATTA_AZURE_KEYVAULT_ENDPOINT": f"{simulator.kube_url}/sim/keyvault"}.items():
        monkeypatch.setenv(variable, value)
    writer = ClientSecretCredential("contoso", client_id, "reader-secret", authority=host, disable_instance_discovery=True)
    name = f"webhook-{uuid.uuid4().hex[:6]}"

    def set_secret(value: str) -> str:  # Key Vault's SetSecret, as `az keyvault secret set` calls it
        answer = httpx.put(f"{simulator.kube_url}/sim/keyvault/regatta-kv/secrets/{name}", params={"api-version": "7.5"},
                           json={"value": value}, verify=str(authority_file), timeout=10,
                           headers={"Authorization": f"Bearer {writer.get_token('https://vault.azure.net/.default').token}"})
        answer.raise_for_status()
        return answer.json()["id"].rsplit("/", 1)[1]

    first = set_secret("first-value")
    clock = Clock()
    secret = StoredSecret(f"azure-keyvault:regatta-kv/{name}", name="REGATTA_WEBHOOK_SECRET", keep_seconds=60, clock=clock)
    assert secret.value() == "first-value"
    set_secret(json.dumps({"webhook": "rotated-value"}))
    clock.now = 61
    assert json.loads(secret.value()) == {"webhook": "rotated-value"}  # the current version, no restart
    assert resolve(f"azure-keyvault:regatta-kv/{name}#webhook") == "rotated-value"
    assert resolve(f"azure-keyvault:regatta-kv/{name}/{first}") == "first-value"

    with pytest.raises(SecretStoreError) as missing:
        resolve("azure-keyvault:regatta-kv/no-such-secret")
    assert not missing.value.retryable and "404 SecretNotFound" in str(missing.value)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "a-wrong-secret")
    with pytest.raises(SecretStoreError) as refused:
        resolve(f"azure-keyvault:regatta-kv/{name}")
    assert not refused.value.retryable and "refused this process's credentials" in str(refused.value)
    assert "a-wrong-secret" not in str(refused.value)
