"""CLI for Yubikeys, master key rotation and validation-protocol clients."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from flexnet.clients import nas
from flexnet.config import OtpSettings, generate_master_key, parse_master_key
from flexnet.db import Database
from flexnet.models import StaffRole, StaffSession, WsapiClient
from flexnet.ops import keyrotation
from flexnet.otp.secrets import SecretBox, wsapi_client_context
from flexnet.otp.verify import OtpReason, verify_yubico_otp
from flexnet.staff import accounts as staff_accounts
from flexnet.staff import factor, signin
from tests.conftest import BOX, NOW, STAFF, TEST_MASTER_KEY
from tests.support.cli import Invoke, ok, refused, snapshot
from tests.support.yubikeys import SimulatedKey

DATA = Path(__file__).parents[1] / "data"


def ykman_line(serial: str, key: SimulatedKey) -> str:
    secrets = f"{key.private_id.hex()},{key.aes_key.hex()}"
    return f"{serial},{key.public_id},{secrets},,2026-11-20T10:00:00,\n"


@pytest.fixture
def key_file(tmp_path: Path) -> tuple[Path, SimulatedKey]:
    key = SimulatedKey.random()
    path = tmp_path / "keys.csv"
    path.write_text(ykman_line("5000001", key) + ykman_line("5000002", SimulatedKey.random()))
    return path, key


def test_import_assign_show(
    invoke: Invoke, practice_with_terms: str, key_file: tuple[Path, SimulatedKey]
) -> None:
    path, key = key_file

    imported = ok(invoke("yubikey", "import", str(path))).output
    assigned = ok(invoke("yubikey", "assign", "5000001", "--practice", practice_with_terms)).output
    shown = ok(invoke("yubikey", "show", "5000001")).output
    practice = ok(invoke("practice", "show", practice_with_terms)).output

    assert "2 Yubikeys importiert (Yubico OTP: 2, OATH-HOTP: 0)" in imported
    assert "5000001 der BSNR 881234500 zugewiesen" in assigned
    assert "zugewiesen" in shown and key.public_id in shown and "881234500" in shown
    assert f"5000001 (zugewiesen, {key.public_id})" in practice
    assert key.aes_key.hex() not in imported + shown + practice


def test_second_key_for_a_practice_is_refused(
    invoke: Invoke,
    practice_with_terms: str,
    key_file: tuple[Path, SimulatedKey],
    database: Database,
) -> None:
    path, _ = key_file
    ok(invoke("yubikey", "import", str(path)))
    ok(invoke("yubikey", "assign", "5000001", "--practice", practice_with_terms))
    before = snapshot(database)

    refused(
        invoke("yubikey", "assign", "5000002", "--practice", practice_with_terms),
        "hat bereits den Yubikey 5000001",
    )
    refused(
        invoke("yubikey", "assign", "5000001", "--practice", practice_with_terms),
        "ist nicht im Lager",
    )
    refused(invoke("yubikey", "show", "999"), "Kein Yubikey mit Seriennummer 999")

    assert snapshot(database) == before


def test_broken_import_lists_every_line_and_imports_nothing(
    invoke: Invoke, tmp_path: Path, database: Database
) -> None:
    path = tmp_path / "broken.csv"
    lines = (DATA / "ykman.csv").read_text().splitlines()
    lines[0] = lines[0].replace("0a1b2c3d4e5f", "0a1b")
    lines[2] = lines[2].replace("vvcccccccccb", "vvccccbdthji")
    path.write_text("\n".join(lines) + "\n")
    before = snapshot(database)

    result = invoke("yubikey", "import", str(path))

    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert errors[0] == "Zeile 1: private ID muss 12 Hex-Zeichen haben"
    assert errors[-1] == "flexnet: Import abgebrochen, nichts übernommen (1 Fehler)"
    assert snapshot(database) == before


def test_an_import_of_many_bad_lines_lists_the_first_and_counts_all(
    invoke: Invoke, tmp_path: Path, database: Database
) -> None:
    path = tmp_path / "broken.csv"
    path.write_text("".join(f"{7_000_000 + n},kaputt\n" for n in range(1200)))
    before = snapshot(database)

    result = invoke("yubikey", "import", str(path))

    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert errors[0].startswith("Zeile 1: ") and errors[49].startswith("Zeile 50: ")
    assert errors[50:] == [
        "flexnet: Import abgebrochen, nichts übernommen (1.200 Fehler, die ersten 50 oben)"
    ]
    assert snapshot(database) == before


def test_resync_from_two_consecutive_otps(
    invoke: Invoke, practice_with_terms: str, key_file: tuple[Path, SimulatedKey]
) -> None:
    path, key = key_file
    ok(invoke("yubikey", "import", str(path)))
    refused(invoke("yubikey", "resync", "5000001", key.otp(), key.otp()), "key_not_assigned")
    ok(invoke("yubikey", "assign", "5000001", "--practice", practice_with_terms))
    first, second, third = key.otp(), key.otp(), key.otp()

    refused(invoke("yubikey", "resync", "5000001", first, third), "Resynchronisierung")
    ok(invoke("yubikey", "resync", "5000001", first, second))
    shown = ok(invoke("yubikey", "show", "5000001")).output

    assert "1 / Sitzung 3" in shown


NAS_SECRET = "ein-langes-gemeinsames-geheimnis"


def add_nas(invoke: Invoke) -> None:
    ok(
        invoke(
            "nas",
            "add",
            "vpn-1",
            "--address",
            "192.0.2.0/28",
            "--secret-stdin",
            input=NAS_SECRET + "\n",
        )
    )


def enrolling_and_idle_sessions(database: Database) -> tuple[int, int]:
    """Two live sessions of a staff member: one showing an enrolment seed (sealed under
    the master key), one that has not got that far."""
    with database.session() as session:
        staff_accounts.add_staff(
            session,
            username="anna",
            role=StaffRole.HELPDESK,
            password="Lange-Dienst-Kennwort-42",
            actor=STAFF,
            now=NOW,
        )
        opened = [
            signin.open_session(
                session,
                username="anna",
                password="Lange-Dienst-Kennwort-42",
                source_ip=None,
                now=NOW,
            )
            for _ in range(2)
        ]
        enrolling, idle = (o.record for o in opened if isinstance(o, signin.Opened))
        factor.enrolment_seed(enrolling, box=BOX)
        return enrolling.id, idle.id


def test_master_key_rotation(
    invoke: Invoke,
    practice_with_terms: str,
    key_file: tuple[Path, SimulatedKey],
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, key = key_file
    ok(invoke("yubikey", "import", str(path)))
    ok(invoke("yubikey", "assign", "5000001", "--practice", practice_with_terms))
    ok(invoke("wsapi-client", "add", "KVSAonline"))
    add_nas(invoke)
    enrolling, idle = enrolling_and_idle_sessions(database)
    new_key = generate_master_key()

    rotated = ok(invoke("keys", "rotate", "--new-key-stdin", input=new_key + "\n")).output

    assert (
        "2 Token-, 1 Client-, 0 Mitarbeiter-Geheimnisse (zweiter Faktor) und "
        "1 NAS-Geheimnisse neu verschlüsselt. 1 laufende Einrichtung(en)" in rotated
    )
    for master, expected in ((TEST_MASTER_KEY, OtpReason.BACKEND_ERROR), (new_key, OtpReason.OK)):
        with database.session() as session:
            result = verify_yubico_otp(
                session,
                key.otp(),
                box=SecretBox(parse_master_key(master)),
                settings=OtpSettings(),
                now=NOW,
            )
        assert result.reason is expected
    with database.reader() as session:
        # What the RADIUS server loads at start: with the new key, not with the old one.
        (entry,) = nas.load_active(session, SecretBox(parse_master_key(new_key)))
        assert entry.secret == NAS_SECRET.encode()
        assert nas.load_active(session, BOX) == []  # under the old key it does not open
        ended, live = session.get_one(StaffSession, enrolling), session.get_one(StaffSession, idle)
        assert ended.ended_at is not None and ended.enrol_secret is None
        assert ended.end_reason == keyrotation.ENROLMENT_ENDED_BY_ROTATION
        assert live.ended_at is None
    monkeypatch.setenv("FLEXNET_MASTER_KEY", new_key)
    refused(invoke("keys", "rotate", "--new-key-stdin", input="kaputt\n"), "Der neue Schlüssel")


@pytest.mark.parametrize("holder", ["token", "nas"])
def test_rotation_with_the_wrong_current_key_changes_nothing(
    invoke: Invoke,
    key_file: tuple[Path, SimulatedKey],
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    holder: str,
) -> None:
    if holder == "token":
        ok(invoke("yubikey", "import", str(key_file[0])))
    else:
        add_nas(invoke)  # the only secret: rotation must not skip it
    monkeypatch.setenv("FLEXNET_MASTER_KEY", generate_master_key())
    before = snapshot(database)

    refused(
        invoke("keys", "rotate", "--new-key-stdin", input=generate_master_key() + "\n"),
        "nichts geändert",
    )

    assert snapshot(database) == before
    with database.reader() as session:
        assert [e.secret for e in nas.load_active(session, BOX)] == (
            [NAS_SECRET.encode()] if holder == "nas" else []
        )


def test_wsapi_client_add_prints_id_and_key_once(invoke: Invoke) -> None:
    lines = ok(invoke("wsapi-client", "add", "BD-Online")).output.splitlines()

    assert lines[0] == "id=1"
    assert lines[1].startswith("key=")
    assert len(base64.b64decode(lines[1][4:])) == 20
    refused(invoke("wsapi-client", "add", "BD-Online"), "existiert bereits")


def test_wsapi_client_regenerate_disable_enable(invoke: Invoke, database: Database) -> None:
    created = ok(invoke("wsapi-client", "add", "BD-Online")).output.splitlines()

    by_name = ok(invoke("wsapi-client", "regenerate", "BD-Online")).output.splitlines()
    by_id = ok(invoke("wsapi-client", "regenerate", "1")).output.splitlines()
    disabled = ok(invoke("wsapi-client", "disable", "1")).output
    before = snapshot(database)
    refused(invoke("wsapi-client", "disable", "BD-Online"), "ist bereits deaktiviert")
    refused(invoke("wsapi-client", "regenerate", "KVSAonline"), "Kein Prüfdienst-Client")
    assert snapshot(database) == before
    enabled = ok(invoke("wsapi-client", "enable", "BD-Online")).output

    assert by_name[0] == by_id[0] == "id=1"
    assert len({created[1], by_name[1], by_id[1]}) == 3  # each time a new key
    with database.reader() as session:
        stored = session.get_one(WsapiClient, 1)
        assert BOX.open(stored.api_key, context=wsapi_client_context(1)) == base64.b64decode(
            by_id[1].removeprefix("key=")
        )
        assert stored.active
    assert "Prüfdienst-Client BD-Online (id=1) deaktiviert" in disabled
    assert "Prüfdienst-Client BD-Online (id=1) wieder aktiv" in enabled
