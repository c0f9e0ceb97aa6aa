"""A secret sealed to one recipient: what a grant's kubeconfig travels in through Temporal (an Update's result is
kept in the workflow's history), so that only the process that asked for it can read it.

The recipient makes an X25519 key pair for the one hand-out and sends the public half; the sender makes its own
one-time pair, derives an AES-256-GCM key from the shared secret with HKDF-SHA256 (both public keys in its info),
and sends its public half, the nonce and the ciphertext. The same construction as an ECIES / HPKE base mode
sealed box, written on `cryptography`'s primitives (a dependency already) rather than adding PyNaCl for it.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

INFO = b"regatta sealed box v1"
RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


class SealError(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise SealError(f"the {what} is not base64") from None


def new_recipient() -> tuple[X25519PrivateKey, str]:
    """A one-time key pair: the private key to open with, and the public key (base64) to send."""
    private = X25519PrivateKey.generate()
    return private, _b64(private.public_key().public_bytes(*RAW))


def _key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO + ephemeral + recipient).derive(shared)


def check_recipient(recipient_key: str) -> None:
    """SealError unless the key is one a secret can be sealed to (an X25519 public key that is no low-order point)."""
    seal(b"", recipient_key)


def seal(plaintext: bytes, recipient_key: str) -> tuple[str, str, str]:
    """(ephemeral public key, nonce, ciphertext), each base64, that only `recipient_key`'s holder can open."""
    recipient_raw = _unb64(recipient_key, "recipient key")
    if len(recipient_raw) != 32:
        raise SealError("the recipient key is not an X25519 public key (32 bytes, base64)")
    recipient = X25519PublicKey.from_public_bytes(recipient_raw)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = ephemeral.public_key().public_bytes(*RAW)
    try:
        shared = ephemeral.exchange(recipient)
    except ValueError:  # a low-order point: every shared secret would be zero
        raise SealError("the recipient key is not one a secret can be sealed to (a low-order point)") from None
    key = _key(shared, ephemeral_raw, recipient_raw)
    nonce = os.urandom(12)
    return _b64(ephemeral_raw), _b64(nonce), _b64(AESGCM(key).encrypt(nonce, plaintext, INFO))


def open_sealed(private: X25519PrivateKey, ephemeral_key: str, nonce: str, ciphertext: str) -> bytes:
    ephemeral_raw = _unb64(ephemeral_key, "sender's key")
    recipient_raw = private.public_key().public_bytes(*RAW)
    try:
        key = _key(private.exchange(X25519PublicKey.from_public_bytes(ephemeral_raw)), ephemeral_raw, recipient_raw)
        return AESGCM(key).decrypt(_unb64(nonce, "nonce"), _unb64(ciphertext, "ciphertext"), INFO)
    except (InvalidTag, ValueError) as error:
        raise SealError(f"the sealed kubeconfig does not open with this key ({type(error).__name__})") from None
