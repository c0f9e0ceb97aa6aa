"""Secrets by reference: a setting may hold, instead of a secret, where the company's secrets store keeps it.

    REGATTA_WEBHOOK_SECRET=aws-secretsmanager:regatta/webhook              the secret's whole string
    REGATTA_WEBHOOK_SECRET=aws-secretsmanager:regatta/prod#webhook         one key of a JSON secret
    REGATTA_WEBHOOK_SECRET=aws-secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:regatta-AbCdEf

The process that uses the secret reads it when it uses it (`StoredSecret.value`), through the store's own
SDK and this process's own credentials (for AWS: boto3's chain, the region from the ARN or AWS_REGION, and
AWS_ENDPOINT_URL_SECRETS_MANAGER where the store is served elsewhere), and keeps it for
REGATTA_SECRET_CACHE_SECONDS (60 by default): a rotation in the store is in use within that, with no restart.
The value is never put in a workflow's input or history, a log line or an error; only the reference is named.

A setting that is no reference is the secret itself, as before. AWS Secrets Manager is the store read today;
a reference to Google Secret Manager, Azure Key Vault or HashiCorp Vault is refused with what is supported.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable

import boto3
from botocore.exceptions import BotoCoreError, ClientError

AWS = "aws-secretsmanager"
NOT_YET = ("gcp-secretmanager", "azure-keyvault", "vault")
REFERENCE = re.compile(rf"^(?P<store>{AWS}|{'|'.join(NOT_YET)}):(?P<name>[^#]+?)(?:#(?P<key>[^#]+))?$")
# What Secrets Manager answers that no retry changes (botocore's service model lists each).
_FINAL = {"ResourceNotFoundException", "AccessDeniedException", "InvalidParameterException", "InvalidRequestException",
          "DecryptionFailure", "UnrecognizedClientException"}


class SecretStoreError(RuntimeError):
    """A referenced secret that could not be read: what was asked, and what to fix. Never the value."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


def is_reference(setting: str | None) -> bool:
    return bool(setting) and REFERENCE.match(setting or "") is not None


def _region(name: str) -> str:
    if name.startswith("arn:"):
        parts = name.split(":")
        if len(parts) > 3 and parts[3]:
            return parts[3]
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise SecretStoreError(f"{AWS}:{name} names no region: give the secret's ARN, or set AWS_REGION", retryable=False)
    return region


def read_aws(name: str) -> str:
    """The current version of a Secrets Manager secret, as text."""
    try:
        answer = boto3.session.Session().client("secretsmanager", region_name=_region(name)).get_secret_value(SecretId=name)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        raise SecretStoreError(
            f"{AWS}:{name} could not be read ({code}: {error.response.get('Error', {}).get('Message', '')}): check that"
            " the secret exists in that region and that this process's AWS credentials may call"
            " secretsmanager:GetSecretValue on it", retryable=code not in _FINAL) from None
    except BotoCoreError as error:
        raise SecretStoreError(f"{AWS}:{name} could not be read: {error}", retryable=True) from None
    if "SecretString" in answer:
        return str(answer["SecretString"])
    return bytes(answer["SecretBinary"]).decode()


def resolve(setting: str) -> str:
    """The secret a setting holds: itself, or what its reference names, read now."""
    found = REFERENCE.match(setting)
    if found is None:
        return setting
    store, name, key = found["store"], found["name"], found["key"]
    if store != AWS:
        raise SecretStoreError(f"{store}:… is not a store Regatta reads yet: keep the secret in AWS Secrets Manager"
                               f" ({AWS}:NAME[#KEY]) or give the value itself", retryable=False)
    text = read_aws(name)
    if key is None:
        return text
    try:
        document = json.loads(text)
    except ValueError:
        raise SecretStoreError(f"{AWS}:{name}#{key} names a key, but the secret is not a JSON object: drop #{key}"
                               " to use the whole secret", retryable=False) from None
    if not isinstance(document, dict) or not isinstance(document.get(key), str):
        keys = ", ".join(sorted(document)) if isinstance(document, dict) else "none"
        raise SecretStoreError(f"{AWS}:{name} has no text under key {key!r} (its keys: {keys})", retryable=False)
    return str(document[key])


class StoredSecret:
    """A setting that holds a secret or a reference to one (`setting`, named `name` in what it says), read when
    used and kept `keep_seconds`."""

    def __init__(self, setting: str | None, *, name: str, keep_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic, read: Callable[[str], str] = resolve):
        self.setting, self.name, self.clock, self.read = setting or None, name, clock, read
        self.keep_seconds = keep_seconds if keep_seconds is not None else float(
            os.environ.get("REGATTA_SECRET_CACHE_SECONDS", "60"))
        self._kept: tuple[float, str] | None = None
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return self.setting is not None

    def value(self) -> str:
        if self.setting is None:
            raise SecretStoreError(f"{self.name} is not set", retryable=False)
        with self._lock:
            if self._kept is not None and self.clock() - self._kept[0] < self.keep_seconds:
                return self._kept[1]
        try:
            secret = self.read(self.setting)
        except SecretStoreError as error:
            raise SecretStoreError(f"{self.name}: {error}", retryable=error.retryable) from None
        with self._lock:
            self._kept = (self.clock(), secret)
        return secret


_SHARED: dict[tuple[str, str | None], StoredSecret] = {}
_SHARED_LOCK = threading.Lock()


def stored(setting: str | None, *, name: str) -> StoredSecret:
    """The process's one StoredSecret for this setting: every user of it shares what was read."""
    with _SHARED_LOCK:
        return _SHARED.setdefault((name, setting), StoredSecret(setting, name=name))
