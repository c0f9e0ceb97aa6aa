"""The secrets a production deployment is set up with (`regatta deploy secrets DIR`, docs/production.md),
made once on the operator's machine and mounted read-only into the services that need them:

- `tls/`: a CA of the deployment's own, Temporal's server certificate (for its frontend and between
  its services), and a client certificate for each of Regatta's processes, the Temporal UI and the
  admin tools; Temporal requires a client certificate signed by that CA (mTLS), so nothing else on
  the network can talk to it. ECDSA P-256, the CA for ten years, the others for `days`.
- `codec.keys`: the payload encryption key (`regatta codec new-key`'s line): every payload Temporal
  stores is ciphertext, and a worker refuses a plaintext one.
- `audit.key`: the audit trail's HMAC key (regatta/inventory/audit_files.py).

Each file is made only where it is missing, so running it again is harmless and a rotation is
deleting the file and running it again. Keys are written with mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from regatta.inventory.audit_files import make_key_file
from regatta.temporal.codec import new_key_line

# Who gets a client certificate, and the name Temporal's server certificate answers to.
CLIENTS = ("regatta", "temporal-ui", "admin-tools")
CA_DAYS = 3650


@dataclass(frozen=True)
class Made:
    path: Path
    made: bool


def _write(path: Path, data: bytes, *, secret: bool) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600 if secret else 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    return True


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _certificate(*, subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
                 issuer_key: ec.EllipticCurvePrivateKey, days: int, names: list[str], server: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Regatta deployment"),
                      x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days)))
    if issuer is None:  # the CA
        builder = (builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False, data_encipherment=False,
                                                key_agreement=False, encipher_only=False, decipher_only=False), critical=True))
    else:
        alternative: list[x509.GeneralName] = []
        for entry in names:
            try:
                alternative.append(x509.IPAddress(ipaddress.ip_address(entry)))
            except ValueError:
                alternative.append(x509.DNSName(entry))
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH] if server \
            else [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = (builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
                   .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                                crl_sign=False, content_commitment=False, data_encipherment=False,
                                                key_agreement=False, encipher_only=False, decipher_only=False), critical=True))
    return builder.sign(issuer_key, hashes.SHA256())


def make_secrets(directory: str | Path, *, temporal_names: tuple[str, ...] = ("temporal", "localhost", "127.0.0.1"),
                 days: int = 365) -> list[Made]:
    """Everything a deployment needs in `directory` that is not there yet; what was made and what kept."""
    root = Path(directory)
    tls = root / "tls"
    made: list[Made] = []
    ca_cert_path, ca_key_path = tls / "ca.pem", tls / "ca.key"
    if ca_cert_path.exists() and ca_key_path.exists():
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey), f"{ca_key_path} is not an ECDSA key"
        ca = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        made += [Made(ca_cert_path, False), Made(ca_key_path, False)]
    else:
        ca_key = _key()
        ca = _certificate(subject="Regatta deployment CA", key=ca_key, issuer=None, issuer_key=ca_key, days=CA_DAYS,
                          names=[], server=False)
        made.append(Made(ca_key_path, _write(ca_key_path, _pem_key(ca_key), secret=True)))
        made.append(Made(ca_cert_path, _write(ca_cert_path, ca.public_bytes(serialization.Encoding.PEM), secret=False)))
    leaves = [("temporal", list(temporal_names), True)] + [(client, [client], False) for client in CLIENTS]
    for subject, names, server in leaves:
        cert_path, key_path = tls / f"{subject}.pem", tls / f"{subject}.key"
        if cert_path.exists() and key_path.exists():
            made += [Made(cert_path, False), Made(key_path, False)]
            continue
        key = _key()
        cert = _certificate(subject=subject, key=key, issuer=ca, issuer_key=ca_key, days=days, names=names, server=server)
        cert_path.unlink(missing_ok=True)
        key_path.unlink(missing_ok=True)
        made.append(Made(key_path, _write(key_path, _pem_key(key), secret=True)))
        made.append(Made(cert_path, _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), secret=False)))
    codec = root / "codec.keys"
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m")
    made.append(Made(codec, _write(codec, (new_key_line(stamp) + "\n").encode(), secret=True)))
    audit = root / "audit.key"
    made.append(Made(audit, make_key_file(audit)))
    return made
