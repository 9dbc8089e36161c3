"""`flexnet nas add/set --tls-fingerprint`: the client certificate a NAS presents over
RADIUS over TLS, pinned per NAS and audited like its other properties."""

from __future__ import annotations

import json

from sqlalchemy import select

from flexnet.db import Database
from flexnet.models import AuditEntry, NasClient
from tests.support.cli import Invoke, ok

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
