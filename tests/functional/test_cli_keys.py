"""CLI for Yubikeys, master key rotation and validation-protocol clients."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from flexnet.config import OtpSettings, generate_master_key, parse_master_key
from flexnet.db import Database
from flexnet.otp.secrets import SecretBox
from flexnet.otp.verify import OtpReason, verify_yubico_otp
from tests.conftest import NOW, TEST_MASTER_KEY
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
    new_key = generate_master_key()

    rotated = ok(invoke("keys", "rotate", "--new-key-stdin", input=new_key + "\n")).output

    assert "2 Token-, 1 Client- und 0 Mitarbeiter-Geheimnisse" in rotated
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
    monkeypatch.setenv("FLEXNET_MASTER_KEY", new_key)
    refused(invoke("keys", "rotate", "--new-key-stdin", input="kaputt\n"), "Der neue Schlüssel")


def test_rotation_with_the_wrong_current_key_changes_nothing(
    invoke: Invoke,
    key_file: tuple[Path, SimulatedKey],
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ok(invoke("yubikey", "import", str(key_file[0])))
    monkeypatch.setenv("FLEXNET_MASTER_KEY", generate_master_key())
    before = snapshot(database)

    refused(
        invoke("keys", "rotate", "--new-key-stdin", input=generate_master_key() + "\n"),
        "nichts geändert",
    )

    assert snapshot(database) == before


def test_wsapi_client_add_prints_id_and_key_once(invoke: Invoke) -> None:
    lines = ok(invoke("wsapi-client", "add", "BD-Online")).output.splitlines()

    assert lines[0] == "id=1"
    assert lines[1].startswith("key=")
    assert len(base64.b64decode(lines[1][4:])) == 20
    refused(invoke("wsapi-client", "add", "BD-Online"), "existiert bereits")
