"""Webhook signatures against a vector made outside Regatta: the wire format docs/api.md promises,
`X-Regatta-Signature: sha256=HMAC-SHA256(secret, "<X-Regatta-Timestamp>.<body>")`, computed with
OpenSSL (`printf '1700000000.{...}' | openssl dgst -sha256 -hmac shared-secret`), whose HMAC the same
command shows matching RFC 4231's test case 2 (key "Jefe", "what do ya want for nothing?":
5bdcc146...3843). A signer and a checker written from one module would agree even if both were wrong."""

from __future__ import annotations

from regatta.rules import signing

SECRET = b"shared-secret"
TIMESTAMP = 1700000000
BODY = b'{"event":"approved","ticket":"CHG-1","by":"alice"}'
VECTOR = "sha256=594732eba7455fa86fa475898fcbe9b039607363a47e8af6f28a597c2c690c22"  # openssl, by hand


def test_a_signature_is_the_documented_hmac():
    assert signing.sign(SECRET, TIMESTAMP, BODY) == VECTOR


def test_the_vector_is_accepted_in_its_window_and_nothing_else_is():
    check = dict(secret=SECRET, timestamp=str(TIMESTAMP), body=BODY)
    assert signing.verification_problem(signature=VECTOR, now=TIMESTAMP + 299, **check) is None
    assert "outside the 300s window" in signing.verification_problem(signature=VECTOR, now=TIMESTAMP + 301, **check)
    assert "does not match" in signing.verification_problem(signature=VECTOR, now=TIMESTAMP, secret=SECRET,
                                                            timestamp=str(TIMESTAMP), body=BODY + b" ")
    assert "does not match" in signing.verification_problem(signature=VECTOR.replace("5947", "5948"), now=TIMESTAMP,
                                                            **check)
    assert "does not match" in signing.verification_problem(signature="sha256=\u00e9", now=TIMESTAMP, **check)
