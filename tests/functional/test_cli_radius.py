"""CLI for NAS clients, access profiles, API clients and the VPN sessions shown per user."""

from __future__ import annotations

import json

from sqlalchemy import select

from flexnet.accounts import vpn
from flexnet.clients import apiclients, nas
from flexnet.db import Database
from flexnet.models import AuditEntry, NasClient, User, VpnSession
from tests.conftest import BOX, NOW
from tests.functional.test_cli_keys import NAS_SECRET, add_nas
from tests.support.cli import Invoke, ok, refused, snapshot


def test_nas_add_and_its_refusals(invoke: Invoke, database: Database) -> None:
    ok(
        invoke(
            "nas",
            "add",
            "vpn-1",
            "--address",
            "192.0.2.0/28",
            "--secret-stdin",
            "--coa-port",
            "3799",
            input="ein-langes-gemeinsames-geheimnis\n",
        )
    )
    before = snapshot(database)

    refused(
        invoke(
            "nas",
            "add",
            "alle",
            "--address",
            "0.0.0.0/0",
            "--secret-stdin",
            input="ein-langes-gemeinsames-geheimnis\n",
        ),
        "nicht erlaubt",
    )
    refused(
        invoke("nas", "add", "kurz", "--address", "192.0.2.99", "--secret-stdin", input="kurz\n"),
        "mindestens 16 Zeichen",
    )
    refused(
        invoke(
            "nas",
            "add",
            "vpn-2",
            "--address",
            "192.0.2.0/28",
            "--secret-stdin",
            input="ein-langes-gemeinsames-geheimnis\n",
        ),
        "schon",
    )

    assert snapshot(database) == before
    with database.reader() as session:
        stored = session.scalars(select(NasClient)).one()
    assert stored.address == "192.0.2.0/28" and stored.coa_port == 3799
    assert b"geheimnis" not in stored.secret


def test_nas_set_secret_disable_and_enable(invoke: Invoke, database: Database) -> None:
    new_secret = "ein-neues-langes-geheimnis-2"
    add_nas(invoke)

    changed = ok(invoke("nas", "set-secret", "vpn-1", "--secret-stdin", input=new_secret + "\n"))
    disabled = ok(invoke("nas", "disable", "vpn-1"))
    with database.reader() as session:
        loaded_while_disabled = nas.load_active(session, BOX)
    before = snapshot(database)
    refused(invoke("nas", "disable", "vpn-1"), "NAS 'vpn-1' ist bereits deaktiviert")
    refused(
        invoke("nas", "set-secret", "vpn-1", "--secret-stdin", input="kurz\n"),
        "mindestens 16 Zeichen",
    )
    refused(
        invoke("nas", "set-secret", "vpn-1", "--secret-stdin", input=new_secret + "\n"),
        "ist das bisherige",
    )
    refused(
        invoke("nas", "set-secret", "vpn-9", "--secret-stdin", input=new_secret + "\n"),
        "Kein NAS-Client 'vpn-9'",
    )
    refused(invoke("nas", "enable", "vpn-9"), "Kein NAS-Client 'vpn-9'")
    assert snapshot(database) == before
    enabled = ok(invoke("nas", "enable", "vpn-1"))

    assert "Geheimnis von NAS vpn-1 geändert" in changed.output
    assert NAS_SECRET not in changed.output and new_secret not in changed.output
    assert "NAS vpn-1 deaktiviert" in disabled.output and loaded_while_disabled == []
    assert "NAS vpn-1 wieder aktiv" in enabled.output
    with database.reader() as session:
        (entry,) = nas.load_active(session, BOX)
    assert entry.secret == new_secret.encode()


def test_nas_set_changes_each_property_in_place_and_audits_it(
    invoke: Invoke, database: Database
) -> None:
    """An existing NAS is switched to the old-NAS rule, moved and given a CoA port
    (disabled ones too: a disabled NAS keeps its address, so it cannot be added anew)."""
    add_nas(invoke)
    ok(invoke("nas", "add", "vpn-2", "--address", "192.0.2.99", "--secret-stdin", input=NAS_SECRET))
    ok(invoke("nas", "disable", "vpn-1"))

    admitted = ok(invoke("nas", "set", "vpn-1", "--allow-missing-message-authenticator", "yes"))
    moved = ok(invoke("nas", "set", "vpn-1", "--address", "198.51.100.7", "--coa-port", "3799"))
    before = snapshot(database)
    refused(invoke("nas", "set", "vpn-1"), "mindestens eine Einstellung")
    refused(invoke("nas", "set", "vpn-1", "--coa-port", "3799"), "nichts geändert")
    refused(invoke("nas", "set", "vpn-1", "--address", "192.0.2.99"), "'vpn-2'")
    refused(invoke("nas", "set", "vpn-1", "--address", "0.0.0.0/0"), "nicht erlaubt")
    refused(invoke("nas", "set", "vpn-9", "--coa-port", "1700"), "Kein NAS-Client 'vpn-9'")
    assert snapshot(database) == before
    cleared = ok(
        invoke(
            "nas",
            "set",
            "vpn-1",
            "--coa-port",
            "0",
            "--allow-missing-message-authenticator",
            "no",
        )
    )

    assert "Message-Authenticator darf fehlen" in admitted.output
    assert "Adresse 198.51.100.7/32" in moved.output and "CoA-Port 3799" in moved.output
    assert "CoA-Port keiner" in cleared.output and "Pflicht" in cleared.output
    with database.reader() as session:
        stored = nas.get_nas(session, "vpn-1")
        changes = session.execute(
            select(AuditEntry.data)
            .where(AuditEntry.tag == "radius:nas:change", AuditEntry.subject_id == "vpn-1")
            .order_by(AuditEntry.id)
        ).scalars()
        logged = [json.loads(data) for data in changes]
    assert (stored.address, stored.coa_port, stored.active) == ("198.51.100.7/32", None, False)
    assert not stored.allow_missing_message_authenticator
    assert logged == [
        {"allow_missing_message_authenticator": [False, True]},
        {"address": ["192.0.2.0/28", "198.51.100.7/32"], "coa_port": [None, 3799]},
        {"allow_missing_message_authenticator": [True, False], "coa_port": [3799, None]},
    ]


def test_profiles_are_staff_configurable(invoke: Invoke, database: Database) -> None:
    ok(
        invoke(
            "profile",
            "set",
            "full",
            "--attr",
            "Filter-Id=kv-full",
            "--attr",
            "Session-Timeout=28800",
        )
    )
    listed = ok(invoke("profile", "list")).output

    assert "Filter-Id=kv-full, Session-Timeout=28800" in listed
    assert "restricted" in listed and "password-change" in listed
    before = snapshot(database)
    refused(
        invoke("profile", "set", "full", "--attr", "Session-Timeout=lang"), "erwartet eine Zahl"
    )
    refused(invoke("profile", "set", "full", "--attr", "User-Password=x"), "kein erlaubtes")
    refused(invoke("profile", "set", "full", "--attr", "Gibt-Es-Nicht=1"), "kein erlaubtes")
    assert snapshot(database) == before


def test_api_client_key_is_printed_once(invoke: Invoke) -> None:
    out = ok(invoke("api-client", "add", "KVSAonline")).output.strip()

    assert out.startswith("key=fx_")
    refused(invoke("api-client", "add", "KVSAonline"), "existiert bereits")


def test_api_client_disable_and_enable(invoke: Invoke, database: Database) -> None:
    key = ok(invoke("api-client", "add", "KVSAonline")).output.strip().removeprefix("key=")

    disabled = ok(invoke("api-client", "disable", "KVSAonline")).output
    with database.reader() as session:
        refused_key = apiclients.authenticate_client(session, key)
    before = snapshot(database)
    refused(invoke("api-client", "disable", "KVSAonline"), "ist bereits deaktiviert")
    refused(invoke("api-client", "enable", "Portal"), "Kein API-Client 'Portal'")
    assert snapshot(database) == before
    enabled = ok(invoke("api-client", "enable", "KVSAonline")).output

    assert "API-Client KVSAonline deaktiviert" in disabled and refused_key is None
    assert "API-Client KVSAonline wieder aktiv" in enabled
    with database.reader() as session:
        assert apiclients.authenticate_client(session, key) is not None  # the same key


def test_user_show_lists_sessions_and_disconnects(
    invoke: Invoke, practice_with_terms: str, database: Database
) -> None:
    ok(invoke("user", "add", "emuster", "--practice", practice_with_terms, "--kind", "staff"))
    ok(
        invoke(
            "nas",
            "add",
            "vpn-1",
            "--address",
            "127.0.0.1",
            "--secret-stdin",
            input="ein-langes-gemeinsames-geheimnis\n",
        )
    )
    with database.session() as session:
        user = session.scalars(select(User)).one()
        nas_id = session.scalars(select(NasClient.id)).one()
        session.add(
            VpnSession(
                nas_id=nas_id,
                acct_session_id="s1",
                username="emuster",
                user_id=user.id,
                framed_ip="10.1.2.3",
                started_at=NOW,
                updated_at=NOW,
                input_octets=0,
                output_octets=0,
            )
        )
        session.flush()
        vpn.request_disconnect(session, user_ids=[user.id], now=NOW)

    shown = ok(invoke("user", "show", "emuster")).output

    assert "VPN-Sitzungen:        1" in shown
    assert "vpn-1 10.1.2.3 aktiv, Trennung: angefordert" in shown
