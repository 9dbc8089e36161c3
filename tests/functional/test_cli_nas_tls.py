"""`flexnet nas add/set --tls-fingerprint`: the client certificate a NAS presents over
RADIUS over TLS, pinned per NAS and audited like its other properties."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from flexnet.db import Database
from flexnet.models import AuditEntry, NasClient
from tests.support.cli import Invoke, ok
from tests.support.radsec import make_pki

SECRET_LINE = "ein-langes-gemeinsames-geheimnis\n"
DIGITS = "ab" * 32
AS_OPENSSL_PRINTS = "sha256 Fingerprint=" + ":".join(["AB"] * 32)


def pinned(database: Database) -> dict[str, str | None]:
    with database.reader() as session:
        return {n.name: n.tls_fingerprint for n in session.scalars(select(NasClient))}


def changes(database: Database) -> list[dict[str, object]]:
    with database.reader() as session:
        return [
            json.loads(e.data)
            for e in session.scalars(
                select(AuditEntry)
                .where(AuditEntry.tag == "radius:nas:change")
                .order_by(AuditEntry.id)
            )
        ]


def test_nas_add_pins_a_certificate_as_openssl_prints_it(
    invoke: Invoke, database: Database
) -> None:
    ok(
        invoke(
            "nas", "add", "vpn-tls", "--address", "192.0.2.10", "--secret-stdin",
            "--tls-fingerprint", AS_OPENSSL_PRINTS, input=SECRET_LINE,
        )
    )  # fmt: skip

    assert pinned(database) == {"vpn-tls": DIGITS}


def test_nas_set_pins_changes_and_removes_a_certificate_audited(
    invoke: Invoke, database: Database
) -> None:
    ok(
        invoke(
            "nas", "add", "vpn-1", "--address", "192.0.2.10", "--secret-stdin", input=SECRET_LINE
        )
    )
    shown = ok(invoke("nas", "set", "vpn-1", "--tls-fingerprint", DIGITS)).output
    ok(invoke("nas", "set", "vpn-1", "--tls-fingerprint", "cd" * 32))
    ok(invoke("nas", "set", "vpn-1", "--tls-fingerprint", "none"))

    assert DIGITS in shown
    assert pinned(database) == {"vpn-1": None}
    assert changes(database) == [
        {"tls_fingerprint": [None, DIGITS]},
        {"tls_fingerprint": [DIGITS, "cd" * 32]},
        {"tls_fingerprint": ["cd" * 32, None]},
    ]


def test_a_fingerprint_that_is_none_or_taken_is_refused(invoke: Invoke, database: Database) -> None:
    for name, address in (("vpn-1", "192.0.2.10"), ("vpn-2", "192.0.2.11")):
        ok(invoke("nas", "add", name, "--address", address, "--secret-stdin", input=SECRET_LINE))
    ok(invoke("nas", "set", "vpn-1", "--tls-fingerprint", DIGITS))

    short = invoke("nas", "set", "vpn-2", "--tls-fingerprint", "abcd")
    taken = invoke("nas", "set", "vpn-2", "--tls-fingerprint", AS_OPENSSL_PRINTS)

    assert short.exit_code != 0 and "64 Hexadezimalziffern" in short.output
    assert taken.exit_code != 0 and "vpn-1" in taken.output
    assert pinned(database) == {"vpn-1": DIGITS, "vpn-2": None}


def test_flexnet_radius_refuses_a_tls_port_without_certificates_or_with_a_wrong_key(
    invoke: Invoke, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path)
    files = ["--tls-cert", str(pki.server.cert), "--tls-ca", str(pki.ca)]

    missing = invoke("radius", "--tls-port", "2083", *files)
    wrong_key = invoke("radius", "--tls-port", "2083", *files, "--tls-key", str(pki.pinned.key))
    without_port = invoke("radius", *files, "--tls-key", str(pki.server.key))

    assert missing.exit_code == 2 and "--tls-key" in missing.output
    assert wrong_key.exit_code == 1 and "nicht verwendbar" in wrong_key.output
    assert "PRIVATE KEY" not in wrong_key.output
    assert without_port.exit_code == 2 and "nur mit --tls-port" in without_port.output
