"""The secrets a production deployment is set up with (`regatta deploy secrets DIR`, docs/production.md),
made once on the operator's machine, one directory per service that mounts it (read-only), so each
service holds only its own:

- `ca/`: the deployment's own CA (its key is never mounted anywhere);
- `temporal/`: Temporal's server certificate, for its frontend and between its services; Temporal
  requires a client certificate signed by the CA (mTLS), so nothing else on the network talks to it;
- `temporal-ui/`, `admin-tools/`: their client certificates;
- `regatta/`: the client certificate of Regatta's processes, the API's HTTPS certificate (`api.pem`;
  replace it with one your browsers trust), the payload encryption key (`codec.keys`: every payload
  Temporal stores is ciphertext, and a worker refuses a plaintext one) and the audit trail's key
  (`audit.key`);
- `clouds/` (the workers' cloud credentials) and `prometheus/` (its token) are made empty, for you
  to fill.

ECDSA P-256, the CA for ten years, the others for `days`. Each file is made only where it is missing,
so running it again is harmless and a rotation is deleting the file and running it again. Keys are
written with mode 0600 (the containers run as their own users: give each directory to its user).
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


def _leaf(directory: Path, name: str, *, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, names: list[str],
          server: bool, days: int) -> list[Made]:
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    if cert_path.exists() and key_path.exists():
        return [Made(cert_path, False), Made(key_path, False)]
    key = _key()
    cert = _certificate(subject=names[0], key=key, issuer=ca, issuer_key=ca_key, days=days, names=names, server=server)
    cert_path.unlink(missing_ok=True)
    key_path.unlink(missing_ok=True)
    return [Made(key_path, _write(key_path, _pem_key(key), secret=True)),
            Made(cert_path, _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), secret=False))]


def make_secrets(directory: str | Path, *, temporal_names: tuple[str, ...] = ("temporal", "localhost", "127.0.0.1"),
                 api_names: tuple[str, ...] = ("regatta-api", "localhost", "127.0.0.1"), days: int = 365) -> list[Made]:
    """Everything a deployment needs in `directory` that is not there yet; what was made and what kept."""
    root = Path(directory)
    made: list[Made] = []
    ca_cert_path, ca_key_path = root / "ca" / "ca.pem", root / "ca" / "ca.key"
    if ca_cert_path.exists() and ca_key_path.exists():
        loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{ca_key_path} is not an ECDSA key")
        ca_key, ca = loaded, x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        made += [Made(ca_cert_path, False), Made(ca_key_path, False)]
    else:
        ca_key = _key()
        ca = _certificate(subject="Regatta deployment CA", key=ca_key, issuer=None, issuer_key=ca_key, days=CA_DAYS,
                          names=[], server=False)
        made.append(Made(ca_key_path, _write(ca_key_path, _pem_key(ca_key), secret=True)))
        made.append(Made(ca_cert_path, _write(ca_cert_path, ca.public_bytes(serialization.Encoding.PEM), secret=False)))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    services = {"temporal": [("server", list(temporal_names), True)],
                "temporal-ui": [("client", ["temporal-ui"], False)],
                "admin-tools": [("client", ["admin-tools"], False)],
                "regatta": [("client", ["regatta"], False), ("api", list(api_names), True)]}
    for service, leaves in services.items():
        here = root / service
        made.append(Made(here / "ca.pem", _write(here / "ca.pem", ca_pem, secret=False)))
        for name, names, server in leaves:
            made += _leaf(here, name, ca=ca, ca_key=ca_key, names=names, server=server, days=days)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m")
    codec = root / "regatta" / "codec.keys"
    made.append(Made(codec, _write(codec, (new_key_line(stamp) + "\n").encode(), secret=True)))
    audit = root / "regatta" / "audit.key"
    made.append(Made(audit, make_key_file(audit)))
    for empty, note in (("clouds", "The workers' cloud credentials (docs/real-clouds.md), mounted at /run/secrets/clouds"
                                    " in the workers only.\n"),
                        ("prometheus", "regatta-token: a viewer token for every environment, for Prometheus to scrape"
                                       " /metrics with (docs/production.md).\n")):
        readme = root / empty / "README"
        made.append(Made(readme, _write(readme, note.encode(), secret=False)))
    return made
