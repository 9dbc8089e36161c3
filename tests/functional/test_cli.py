"""The operations CLI contract: commands, output, exit codes; failures change nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from flexnet.authn import passwords
from flexnet.cli import cli
from flexnet.db import Database
from flexnet.models import AuditEntry, StaffAccount, User
from flexnet.staff import factor
from tests.functional.test_cli_keys import ykman_line
from tests.support.cli import Invoke, ok, refused, snapshot
from tests.support.yubikeys import SimulatedKey


def test_keygen_needs_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEXNET_MASTER_KEY", raising=False)

    result = CliRunner().invoke(cli, ["keygen"])

    assert result.exit_code == 0
    assert len(result.output.strip()) == 44


def test_missing_master_key_stops_with_one_line(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLEXNET_MASTER_KEY")

    refused(invoke("db", "upgrade"), "FLEXNET_MASTER_KEY ist nicht gesetzt")


def test_help_documents_every_command(invoke: Invoke) -> None:
    top = ok(invoke("--help")).output
    for group in ("audit", "db", "keygen", "practice", "serve", "staff", "terms", "user"):
        assert group in top
    assert "--password-stdin" in ok(invoke("user", "add", "--help")).output


def test_onboarding_records_and_show(invoke: Invoke, practice_with_terms: str) -> None:
    ok(
        invoke(
            "user",
            "add",
            "MMueller",
            "--practice",
            practice_with_terms,
            "--kind",
            "member",
            "--lanr",
            "123456601",
            "--name",
            "Dr. Max Müller",
        )
    )
    ok(
        invoke(
            "user",
            "add",
            "praxis-881234500",
            "--practice",
            practice_with_terms,
            "--kind",
            "practice",
        )
    )
    ended = ok(invoke("practice", "end", practice_with_terms, "--date", "2026-05-15")).output

    practice = ok(invoke("practice", "show", practice_with_terms)).output
    user = ok(invoke("user", "show", "mmueller")).output

    assert "automatische Sperre ab 01.07.2027 00:00" in ended
    assert "Praxis Dr. Müller" in practice
    assert "Version 1.0 am 01.11.2026 (Papier)" in practice
    assert "Sperre ab:            01.07.2027 00:00" in practice
    assert "mmueller" in practice and "praxis-881234500" in practice
    assert "LANR 123456601" in user
    assert "wartet auf Zugangsdaten-Brief" in user
    assert "Yubikey der Praxis:   keiner" in user


def test_migrated_password_from_stdin(
    invoke: Invoke, practice_with_terms: str, database: Database
) -> None:
    out = ok(
        invoke(
            "user",
            "add",
            "emuster",
            "--practice",
            practice_with_terms,
            "--kind",
            "staff",
            "--password-stdin",
            input="Altes-Kennwort-2019\n",
        )
    ).output

    with database.session() as session:
        user = session.scalars(select(User).where(User.username == "emuster")).one()
    assert "aktiv" in out
    assert passwords.verify("Altes-Kennwort-2019", user.password_hash).ok
    assert "Altes-Kennwort-2019" not in out


def test_staff_add_with_password_from_stdin(invoke: Invoke, database: Database) -> None:
    ok(
        invoke(
            "staff",
            "add",
            "Anna",
            "--role",
            "helpdesk",
            "--password-stdin",
            input="Helpdesk-Kennwort-1\n",
        )
    )

    with database.session() as session:
        account = session.scalars(select(StaffAccount).where(StaffAccount.username == "anna")).one()
    assert (account.username, account.role.value) == ("anna", "helpdesk")


def test_staff_get_enrolment_codes_from_the_command_line(
    invoke: Invoke, database: Database
) -> None:
    added = ok(
        invoke("staff", "add", "anna", "--role", "admin", "--password-stdin", input=f"{'x' * 16}\n")
    ).output
    again = ok(invoke("staff", "enrolment-code", "anna")).output
    shown = re.findall(
        r"Einrichtungscode für anna \(nur jetzt angezeigt, gültig bis "
        r"\d\d\.\d\d\.\d{4} \d\d:\d\d\): ([A-Z0-9-]{24})$",
        added + again,
        re.M,
    )

    with database.session() as session:
        account = session.scalars(select(StaffAccount).where(StaffAccount.username == "anna")).one()
        tags = session.scalars(select(AuditEntry.tag)).all()
    assert len(shown) == 2 and shown[0] != shown[1]
    assert account.enrolment_code_hash == factor.enrolment_code_hash(shown[1])
    assert tags.count("staff:enrolment-code:issue") == 2


def test_a_staff_members_yubikey_is_no_practice_key_on_the_command_line(
    invoke: Invoke, database: Database, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.csv"
    keys.write_text(ykman_line("7000009", SimulatedKey.random()))
    ok(invoke("staff", "add", "anna", "--role", "admin", "--password-stdin", input=f"{'x' * 16}\n"))
    ok(invoke("yubikey", "import", str(keys)))
    ok(invoke("staff", "yubikey", "anna", "7000009"))
    before = snapshot(database)

    for args in (
        ("lock", "key", "7000009", "--reason", "Versuch"),
        ("lock", "key", "7000009", "--reason", "Versuch", "--cause", "loss"),
        ("yubikey", "return", "7000009", "--condition", "good"),
    ):
        refused(invoke(*args), "der zweite Faktor eines Mitarbeiters")

    assert snapshot(database) == before


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("practice", "show", "999999999"), None, "Keine Betriebsstätte mit BSNR 999999999"),
        (("practice", "end", "999999999", "--date", "2026-05-15"), None, "Keine Betriebsstätte"),
        (("practice", "end", "881234500", "--date", "2026-13-01"), None, "kein gültiges Datum"),
        (("practice", "end", "881234500", "--date", "15.05.2026"), None, "kein gültiges Datum"),
        (
            (
                "practice",
                "add",
                "--bsnr",
                "88123",
                "--name",
                "X",
                "--street",
                "S",
                "--zip",
                "39104",
                "--city",
                "C",
            ),
            None,
            "BSNR '88123' ist ungültig",
        ),
        (
            (
                "practice",
                "add",
                "--bsnr",
                "881234500",
                "--name",
                "X",
                "--street",
                "S",
                "--zip",
                "39104",
                "--city",
                "C",
            ),
            None,
            "bereits angelegt",
        ),
        (
            (
                "user",
                "add",
                "neu",
                "--practice",
                "881234500",
                "--kind",
                "member",
                "--lanr",
                "123456701",
            ),
            None,
            "Prüfziffer",
        ),
        (
            ("user", "add", "neu", "--practice", "999999999", "--kind", "staff"),
            None,
            "Keine Betriebsstätte",
        ),
        (
            ("user", "add", "vorhanden", "--practice", "881234500", "--kind", "staff"),
            None,
            "bereits vergeben",
        ),
        (
            (
                "user",
                "add",
                "neu",
                "--practice",
                "881234500",
                "--kind",
                "staff",
                "--password-stdin",
            ),
            "",
            "kein Kennwort",
        ),
        (("user", "show", "niemand"), None, "Kein Benutzer 'niemand'"),
        (
            ("terms", "accept", "881234500", "--version", "1.0", "--channel", "fax"),
            None,
            "'fax' is not one of",
        ),
        (("staff", "add", "bob", "--role", "admin", "--password-stdin"), "kurz\n", "12 Zeichen"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line_and_changes_nothing(
    invoke: Invoke,
    practice_with_terms: str,
    database: Database,
    args: tuple[str, ...],
    stdin: str | None,
    message: str,
) -> None:
    ok(invoke("user", "add", "vorhanden", "--practice", practice_with_terms, "--kind", "staff"))
    before = snapshot(database)

    refused(invoke(*args, input=stdin), message)

    assert snapshot(database) == before


def test_migrated_password_without_terms_is_refused(invoke: Invoke, database: Database) -> None:
    ok(
        invoke(
            "practice",
            "add",
            "--bsnr",
            "881234501",
            "--name",
            "Neu",
            "--street",
            "S 1",
            "--zip",
            "39104",
            "--city",
            "Magdeburg",
        )
    )
    before = snapshot(database)

    refused(
        invoke(
            "user",
            "add",
            "neu",
            "--practice",
            "881234501",
            "--kind",
            "staff",
            "--password-stdin",
            input="Altes-Kennwort-2019\n",
        ),
        "Nutzungsbedingungen nicht angenommen",
    )

    assert snapshot(database) == before


def test_audit_verify_passes_then_detects_tampering(
    invoke: Invoke, practice_with_terms: str, database: Database
) -> None:
    intact = ok(invoke("audit", "verify")).output
    with database.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE audit_entries SET actor = 'mallory' WHERE id = 2")

    broken = invoke("audit", "verify")

    assert "intakt: 3 Einträge" in intact
    assert broken.exit_code == 1
    assert "GEBROCHEN bei Eintrag 2" in broken.stderr


def test_db_current_reports_head(invoke: Invoke) -> None:
    assert ok(invoke("db", "current")).output.strip()


def test_database_without_schema_is_one_clear_line(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")

    result = CliRunner().invoke(cli, ["practice", "show", "881234500"])

    refused(result, "Datenbankfehler")
    assert "flexnet db upgrade" in result.stderr
