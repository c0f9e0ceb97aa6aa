"""Secrets by reference: a setting may hold, instead of a secret, where the company's secrets store keeps it.

    REGATTA_WEBHOOK_SECRET=aws-secretsmanager:regatta/webhook              the secret's whole string
    REGATTA_WEBHOOK_SECRET=aws-secretsmanager:regatta/prod#webhook         one key of a JSON secret
    REGATTA_WEBHOOK_SECRET=aws-secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:regatta-AbCdEf

The process that uses the secret reads it when it uses it (`StoredSecret.value`), through the store's own
SDK and this process's own credentials (for AWS: boto3's chain, the region from the ARN or AWS_REGION, and
AWS_ENDPOINT_URL_SECRETS_MANAGER where the store is served elsewhere), and keeps it for
REGATTA_SECRET_CACHE_SECONDS (60 by default): a rotation in the store is in use within that, with no restart.
The value is never put in a workflow's input or history, a log line or an error; only the reference is named.

A setting that is no reference is the secret itself, as before; one that starts like a reference (a store's
name and a colon, in any case, spaces around it) is read as one or refused, never used as the secret itself.
Four stores are read: AWS Secrets Manager (boto3), Google Secret Manager (`gcp-secretmanager:projects/P/secrets/S
[/versions/V]`, its REST API with Application Default Credentials) and HashiCorp Vault's KV version 2
(`vault:MOUNT/PATH`, VAULT_ADDR and VAULT_TOKEN) and Azure Key Vault (`azure-keyvault:VAULT/SECRET[/VERSION]`, with
DefaultAzureCredential). A store that cannot be reached leaves the value last read in use; a
failed read is not tried again for a few seconds (FAILED_KEEP_SECONDS), and only one caller reads at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, ParamValidationError

AWS = "aws-secretsmanager"
GCP = "gcp-secretmanager"
VAULT = "vault"
AZURE = "azure-keyvault"
READ = (AWS, GCP, VAULT, AZURE)
GCP_ENDPOINT = "https://secretmanager.googleapis.com"
# Anything that starts like a reference is one: read as one, or refused; never taken for the secret itself.
_LOOKS_LIKE = re.compile(rf"^\s*({'|'.join(READ)}):", re.IGNORECASE)
_AZURE_NAME = re.compile(r"^(?P<vault>[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9])/(?P<secret>[A-Za-z0-9-]{1,127})(/(?P<version>[0-9a-f]{32}))?$")
AZURE_VAULT_SCOPE = "https://vault.azure.net/.default"
AZURE_KNOWN_AUTHORITIES = ("login.microsoftonline.com", "login.chinacloudapi.cn", "login.microsoftonline.us")
_AZURE_LOCK = threading.Lock()
_AZURE_CREDENTIAL: dict[str, Any] = {}
_REFERENCE = re.compile(rf"^(?P<store>{'|'.join(READ)}):(?P<name>[^#\s]+)(?:#(?P<key>[^#\s]+))?$")
_GCP_NAME = re.compile(r"^projects/[A-Za-z0-9_-]+/secrets/[A-Za-z0-9_-]+(/versions/([0-9]+|latest))?$")
_VAULT_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+$")
# What Secrets Manager answers that no retry changes (botocore's service model lists each).
_FINAL = {"ResourceNotFoundException", "AccessDeniedException", "InvalidParameterException", "InvalidRequestException",
          "DecryptionFailure", "UnrecognizedClientException", "InvalidSignatureException"}
FAILED_KEEP_SECONDS = 5.0  # a failed read is answered from memory this long: a caller cannot make each request a read
_CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 2})
_log = logging.getLogger(__name__)


class SecretStoreError(RuntimeError):
    """A referenced secret that could not be read: what was asked, and what to fix. Never the value."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


def is_reference(setting: str | None) -> bool:
    """Whether a setting names a secret in a store (or starts as if it did) rather than holding it."""
    return bool(setting) and _LOOKS_LIKE.match(setting or "") is not None


def _region(name: str) -> str:
    if name.startswith("arn:"):
        parts = name.split(":")
        if len(parts) > 3 and parts[3]:
            return parts[3]
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise SecretStoreError(f"{AWS}:{name} names no region: give the secret's ARN, or set AWS_REGION", retryable=False)
    return region


_CLIENTS: dict[str, object] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(region: str):
    with _CLIENTS_LOCK:  # one client a region for the process: a new one costs a tenth of a second of CPU
        if region not in _CLIENTS:
            _CLIENTS[region] = boto3.session.Session().client("secretsmanager", region_name=region, config=_CLIENT_CONFIG)
        return _CLIENTS[region]


def read_aws(name: str) -> str:
    """The current version of a Secrets Manager secret, as text."""
    refusal: SecretStoreError | None = None
    try:
        answer = _client(_region(name)).get_secret_value(SecretId=name)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        refusal = SecretStoreError(
            f"{AWS}:{name} could not be read ({code}: {error.response.get('Error', {}).get('Message', '')}): check that"
            " the secret exists in that region and that this process's AWS credentials may call"
            " secretsmanager:GetSecretValue on it", retryable=code not in _FINAL)
    except (NoCredentialsError, NoRegionError, ParamValidationError) as error:
        refusal = SecretStoreError(f"{AWS}:{name} could not be asked for: {error}", retryable=False)
    except BotoCoreError as error:
        refusal = SecretStoreError(f"{AWS}:{name} could not be read: {error}", retryable=True)
    if refusal is not None:
        raise refusal  # raised here, not inside the except: the chain holds nothing of the store's answer
    text = answer.get("SecretString")
    if isinstance(text, str):
        return text
    binary = answer.get("SecretBinary")
    if isinstance(binary, bytes | bytearray):
        try:
            return bytes(binary).decode()
        except UnicodeDecodeError:
            pass
    raise SecretStoreError(f"{AWS}:{name} holds no text (a SecretString, or a SecretBinary in UTF-8)", retryable=False)


def read_gcp(name: str) -> str:
    """A Google Secret Manager secret's version (`projects/P/secrets/S[/versions/V]`, the latest when none is named),
    through `…/versions/V:access` with this process's Application Default Credentials; REGATTA_GCP_SECRETMANAGER_ENDPOINT
    where the API is served elsewhere."""
    import base64

    import google.auth
    import google.auth.exceptions
    import google.auth.transport.requests
    import requests

    if _GCP_NAME.match(name) is None:
        raise SecretStoreError(f"{GCP}:{name} is not a secret's name: write {GCP}:projects/PROJECT/secrets/SECRET"
                               "[/versions/VERSION]", retryable=False)
    version = name if "/versions/" in name else f"{name}/versions/latest"
    endpoint = (os.environ.get("REGATTA_GCP_SECRETMANAGER_ENDPOINT") or GCP_ENDPOINT).rstrip("/")
    refusal: SecretStoreError | None = None
    try:
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        session = google.auth.transport.requests.AuthorizedSession(credentials)
        answer = session.get(f"{endpoint}/v1/{version}:access", timeout=(3, 5))
    except google.auth.exceptions.DefaultCredentialsError as error:
        refusal = SecretStoreError(f"{GCP}:{name} could not be asked for: {error}", retryable=False)
    except google.auth.exceptions.RefreshError as error:
        refusal = SecretStoreError(f"{GCP}:{name}: Google refused this process's credentials ({type(error).__name__})",
                                   retryable=bool(getattr(error, "retryable", False)))
    except (requests.RequestException, google.auth.exceptions.TransportError) as error:
        refusal = SecretStoreError(f"{GCP}:{name} could not be read: {type(error).__name__}", retryable=True)
    if refusal is not None:
        raise refusal
    if answer.status_code != 200:
        status = ""
        try:
            status = str(answer.json().get("error", {}).get("status", ""))
        except ValueError:
            pass
        raise SecretStoreError(
            f"{GCP}:{name} could not be read ({answer.status_code} {status}): check that the secret and version exist"
            " and that this process's Google credentials may call secretmanager.versions.access on it",
            retryable=answer.status_code == 429 or answer.status_code >= 500)
    text: str | None = None
    try:
        text = base64.b64decode(answer.json()["payload"]["data"]).decode()
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        pass
    if text is None:  # raised out here: the payload stays out of the exception's chain
        raise SecretStoreError(f"{GCP}:{name} holds no text (a payload in UTF-8)", retryable=False)
    return text


def read_vault(name: str) -> str:
    """A HashiCorp Vault KV version 2 secret (`MOUNT/PATH`: `GET $VAULT_ADDR/v1/MOUNT/data/PATH` with $VAULT_TOKEN and,
    for Vault Enterprise, $VAULT_NAMESPACE), as the JSON of its data (one key: that key's value)."""
    import httpx

    if _VAULT_NAME.match(name) is None or ".." in name.split("/"):
        raise SecretStoreError(f"{VAULT}:{name} is not a KV secret's path: write {VAULT}:MOUNT/PATH[#KEY], e.g."
                               f" {VAULT}:secret/regatta/webhook#value", retryable=False)
    address, token = os.environ.get("VAULT_ADDR"), os.environ.get("VAULT_TOKEN")
    if not address or not token:
        raise SecretStoreError(f"{VAULT}:{name} could not be asked for: set VAULT_ADDR and VAULT_TOKEN for this process",
                               retryable=False)
    mount, _, path = name.partition("/")
    headers = {"X-Vault-Token": token, **({"X-Vault-Namespace": os.environ["VAULT_NAMESPACE"]}
                                         if os.environ.get("VAULT_NAMESPACE") else {})}
    failure = ""
    try:
        answer = httpx.get(f"{address.rstrip('/')}/v1/{mount}/data/{path}", headers=headers, timeout=httpx.Timeout(5.0, connect=3.0),
                           follow_redirects=False)
    except httpx.HTTPError as error:
        failure = type(error).__name__
    if failure:  # raised out here: the request (and its token) stays out of the exception's chain
        raise SecretStoreError(f"{VAULT}:{name} could not be read: {failure}", retryable=True)
    if answer.status_code != 200:
        raise SecretStoreError(
            f"{VAULT}:{name} could not be read ({answer.status_code}): check that the secret exists in KV version 2 at"
            " that mount and that this process's token may read it",
            retryable=answer.status_code == 429 or answer.status_code >= 500)
    data: Any = None
    try:
        data = answer.json()["data"]["data"]
    except (ValueError, KeyError, TypeError):
        pass
    if not isinstance(data, dict) or not data:
        raise SecretStoreError(f"{VAULT}:{name} holds no data (a deleted or destroyed version?)", retryable=False)
    return json.dumps(data)  # its keys: `#KEY` picks one; without it, a secret of one key is that key's value


def read_azure(name: str) -> str:
    """An Azure Key Vault secret (`VAULT/SECRET[/VERSION]`, the current version unless one is named): `GET
    https://VAULT.vault.azure.net/secrets/SECRET/VERSION?api-version=7.5` with a token of this process's Azure credential
    (DefaultAzureCredential; AZURE_AUTHORITY_HOST for a sovereign or private cloud); REGATTA_AZURE_KEYVAULT_ENDPOINT
    (`https://HOST/PATH`, the vault's name appended) where Key Vault is served elsewhere."""
    import requests
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import CredentialUnavailableError, DefaultAzureCredential

    found = _AZURE_NAME.match(name)
    if found is None:
        raise SecretStoreError(f"{AZURE}:{name} is not a secret's name: write {AZURE}:VAULT/SECRET[/VERSION]",
                               retryable=False)
    override = os.environ.get("REGATTA_AZURE_KEYVAULT_ENDPOINT")
    base = f"{override.rstrip('/')}/{found['vault']}" if override else f"https://{found['vault']}.vault.azure.net"
    url = f"{base}/secrets/{found['secret']}/{found['version'] or ''}".rstrip("/")
    authority = os.environ.get("AZURE_AUTHORITY_HOST", "")
    private = bool(authority) and not any(known in authority for known in AZURE_KNOWN_AUTHORITIES)
    refusal: SecretStoreError | None = None
    try:
        with _AZURE_LOCK:  # one credential for the process: it keeps its token until it is due
            key = (authority, os.environ.get("AZURE_CLIENT_ID", ""),
                   hashlib.sha256(os.environ.get("AZURE_CLIENT_SECRET", "").encode()).hexdigest())
            if _AZURE_CREDENTIAL.get("key") != key:
                _AZURE_CREDENTIAL.update(key=key, credential=DefaultAzureCredential(
                    **({"disable_instance_discovery": True} if private else {})))
            credential = _AZURE_CREDENTIAL["credential"]
        token = credential.get_token(AZURE_VAULT_SCOPE).token
        answer = requests.get(url, params={"api-version": "7.5"}, headers={"Authorization": f"Bearer {token}"},
                              timeout=(3, 5), allow_redirects=False)
    except CredentialUnavailableError as error:
        refusal = SecretStoreError(f"{AZURE}:{name}: this process has no Azure credential ({type(error).__name__})",
                                   retryable=False)
    except ClientAuthenticationError as error:
        # Entra's own refusal (400 or 401: an unknown application, a wrong secret) is final; anything else about
        # getting a token (IMDS timing out, the network) may pass
        refused = getattr(error, "status_code", None) in (400, 401) or "AADSTS" in str(error)
        refusal = SecretStoreError(f"{AZURE}:{name}: Entra ID refused this process's credentials ({type(error).__name__})"
                                   if refused else f"{AZURE}:{name}: no token for Key Vault yet ({type(error).__name__})",
                                   retryable=not refused)
    except requests.RequestException as error:
        refusal = SecretStoreError(f"{AZURE}:{name} could not be read: {type(error).__name__}", retryable=True)
    if refusal is not None:
        raise refusal
    if answer.status_code != 200:
        code = ""
        try:
            code = str(answer.json().get("error", {}).get("code", ""))
        except ValueError:
            pass
        raise SecretStoreError(
            f"{AZURE}:{name} could not be read ({answer.status_code} {code}): check that the secret exists and that this"
            " process's Azure identity may get secrets in that vault", retryable=answer.status_code == 429
            or answer.status_code >= 500)
    try:
        return str(answer.json()["value"])
    except (ValueError, KeyError, TypeError):
        raise SecretStoreError(f"{AZURE}:{name} holds no value", retryable=False) from None


READERS: dict[str, Callable[[str], str]] = {AWS: read_aws, GCP: read_gcp, VAULT: read_vault, AZURE: read_azure}


def resolve(setting: str) -> str:
    """The secret a setting holds: itself, or what its reference names, read now."""
    if not is_reference(setting):
        return setting
    found = _REFERENCE.match(setting.strip())
    if found is None:
        raise SecretStoreError("the setting starts like a reference to a secrets store but is not one: write"
                               f" {AWS}:NAME-OR-ARN, {GCP}:projects/P/secrets/S, {VAULT}:MOUNT/PATH or {AZURE}:VAULT/SECRET,"
                               " and #KEY for one key"
                               " of a JSON secret (no spaces, one #, the store's name in lower case)", retryable=False)
    store, name, key = found["store"], found["name"], found["key"]
    text = READERS[store](name)
    if key is None and store == VAULT:  # a KV secret is always keys and values: one key is its value, several need #KEY
        data = json.loads(text)
        if len(data) == 1 and isinstance(next(iter(data.values())), str):
            return str(next(iter(data.values())))
        raise SecretStoreError(f"{VAULT}:{name} holds {len(data)} keys ({', '.join(sorted(data))}): name the one to use,"
                               f" {VAULT}:{name}#KEY", retryable=False)
    if key is None:
        return text
    document = None
    try:
        document = json.loads(text)
    except ValueError:
        pass
    if not isinstance(document, dict):
        raise SecretStoreError(f"{store}:{name}#{key} names a key, but the secret is not a JSON object: drop #{key}"
                               " to use the whole secret", retryable=False)
    if not isinstance(document.get(key), str):
        raise SecretStoreError(f"{store}:{name} has no text under key {key!r}", retryable=False)
    return str(document[key])


def keep_seconds_from_env() -> float:
    """REGATTA_SECRET_CACHE_SECONDS: how long a read secret is kept (60 s unless set; 0 to 86,400)."""
    text = os.environ.get("REGATTA_SECRET_CACHE_SECONDS", "").strip() or "60"
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or not 0 <= seconds <= 86_400:
        raise SecretStoreError(f"REGATTA_SECRET_CACHE_SECONDS must be seconds from 0 to 86400, not {text!r}",
                               retryable=False)
    return seconds


class StoredSecret:
    """A setting that holds a secret or a reference to one (`setting`, named `name` in what it says), read when
    used and kept `keep_seconds` (REGATTA_SECRET_CACHE_SECONDS unless given)."""

    def __init__(self, setting: str | None, *, name: str, keep_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic, read: Callable[[str], str] = resolve):
        self.setting, self.name, self.clock, self.read = setting or None, name, clock, read
        self.keep_seconds = keep_seconds
        self._kept: tuple[float, str] | None = None
        self._failed: tuple[float, SecretStoreError] | None = None
        self._lock = threading.Lock()  # one reader at a time: the others then find what it read

    def __bool__(self) -> bool:
        return self.setting is not None

    def value(self) -> str:
        if self.setting is None:
            raise SecretStoreError(f"{self.name} is not set", retryable=False)
        if not is_reference(self.setting):
            return self.setting
        with self._lock:
            now = self.clock()
            keep = self.keep_seconds if self.keep_seconds is not None else keep_seconds_from_env()
            if self._kept is not None and now - self._kept[0] < keep:
                return self._kept[1]
            if self._failed is not None and now - self._failed[0] < FAILED_KEEP_SECONDS:
                return self._answer_failure(self._failed[1])
            try:
                secret = self.read(self.setting)
            except SecretStoreError as error:
                self._failed = (now, SecretStoreError(f"{self.name}: {error}", retryable=error.retryable))
                return self._answer_failure(self._failed[1])
            self._kept, self._failed = (self.clock(), secret), None
            return secret

    def _answer_failure(self, error: SecretStoreError) -> str:
        """The value last read while the store cannot be reached for now; else the error."""
        if error.retryable and self._kept is not None:
            _log.warning("%s (the value read before stays in use)", error)
            return self._kept[1]
        raise SecretStoreError(str(error), retryable=error.retryable)


_SHARED: dict[tuple[str, str | None], StoredSecret] = {}
_SHARED_LOCK = threading.Lock()


def stored(setting: str | None, *, name: str) -> StoredSecret:
    """The process's one StoredSecret for this setting: every user of it shares what was read."""
    with _SHARED_LOCK:
        return _SHARED.setdefault((name, setting), StoredSecret(setting, name=name))
