"""The pieces of RADIUS over TLS that need no connection: fingerprints as an operator
copies them, and a server context that demands a client certificate and TLS 1.2+."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import pytest

from flexnet.clients.nas import parse_fingerprint
from flexnet.errors import ValidationError
from flexnet.radius.tls import TlsConfig, fingerprint, server_context
from tests.support.radsec import make_pki

DIGITS = hashlib.sha256(b"certificate").hexdigest()


@pytest.mark.parametrize(
    "typed",
    [
        DIGITS,
        DIGITS.upper(),
        "sha256 Fingerprint=" + ":".join(DIGITS.upper()[i : i + 2] for i in range(0, 64, 2)),
        "SHA256 Fingerprint=" + ":".join(DIGITS[i : i + 2] for i in range(0, 64, 2)) + "\n",
    ],
)
def test_a_fingerprint_is_stored_as_64_lower_case_hex_digits(typed: str) -> None:
    assert parse_fingerprint(typed) == DIGITS


@pytest.mark.parametrize(
    "typed",
    ["", DIGITS[:-2], DIGITS + "00", "sha1 Fingerprint=AB:CD", DIGITS[:-1] + "g"],
)
def test_anything_but_a_sha256_fingerprint_is_refused(typed: str) -> None:
    with pytest.raises(ValidationError):
        parse_fingerprint(typed)


def test_the_fingerprint_of_a_certificate_matches_the_stored_form() -> None:
    assert fingerprint(b"certificate") == DIGITS


def test_the_server_demands_a_client_certificate_and_tls_1_2(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    context = server_context(TlsConfig(0, str(pki.server.cert), str(pki.server.key), str(pki.ca)))

    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


def test_a_key_that_does_not_fit_the_certificate_is_refused_at_start(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    with pytest.raises(ssl.SSLError):
        server_context(TlsConfig(0, str(pki.server.cert), str(pki.pinned.key), str(pki.ca)))
