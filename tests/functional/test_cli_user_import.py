"""Users taken over from the previous system, from the command line: one with its old
password on stdin, many with their old hashes from a CSV file (all or nothing). Either
way the policy (§ 5.4) holds before the password opens the VPN."""

from __future__ import annotations

from pathlib import Path

from click.testing import Result
from passlib.hash import argon2, bcrypt, sha512_crypt
from sqlalchemy import select

from flexnet.authn import passwords
from flexnet.db import Database
from flexnet.models import Letter, LetterKind, TakenOverPassword, User
from tests.support.cli import Invoke, ok, snapshot

BSNR = "881234500"  # the practice of the ``practice_with_terms`` fixture
GOOD = "Sommer-Regen-2026!"
HEADER = "username,bsnr,kind,name,lanr,password_hash\n"


def add_with_password(invoke: Invoke, username: str, password: str) -> str:
    args = ("user", "add", username, "--practice", BSNR, "--kind", "staff", "--password-stdin")
    return ok(invoke(*args, input=f"{password}\n")).stdout


def refused_import(result: Result, *lines: str) -> None:
    """Exit non-zero, each refused line named on stderr, and the one 'flexnet:' line last."""
    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert errors[-1].startswith("flexnet: Import abgebrochen, nichts übernommen")
    for line in lines:
        assert any(error.startswith(line) for error in errors[:-1]), (line, errors)


def taken_over(database: Database) -> dict[str, TakenOverPassword | None]:
    with database.reader() as session:
        return {user.username: user.taken_over_password for user in session.scalars(select(User))}


def test_a_weak_password_on_stdin_is_taken_over_as_one_to_change(
    invoke: Invoke, practice_with_terms: str, database: Database
) -> None:
    weak = add_with_password(invoke, "altabc", "abc")
    good = add_with_password(invoke, "altgut", GOOD)
    shown = ok(invoke("user", "show", "altabc")).stdout

    assert "Benutzer altabc angelegt: aktiv (Kennwort übernommen)" in weak
    assert "verletzt die Kennwortrichtlinie (§ 5.4): es muss bei der ersten Anmeldung" in weak
    assert "Kennwortrichtlinie" not in good
    assert "abc" not in weak.replace("altabc", "") and GOOD not in good
    assert "verletzt die Kennwortrichtlinie, muss bei der nächsten Anmeldung" in shown
    assert taken_over(database) == {"altabc": TakenOverPassword.WEAK, "altgut": None}


def test_a_file_of_users_with_their_old_hashes(
    invoke: Invoke, practice_with_terms: str, database: Database, tmp_path: Path
) -> None:
    rows = [
        f"bcrypt1,{BSNR},staff,Erika Muster,,{bcrypt.hash('abc')}",
        f"sha1,{BSNR},staff,,,{sha512_crypt.hash(GOOD)}",
        f'argon1,{BSNR},staff,,,"{argon2.hash(GOOD)}"',  # its parameters hold commas
        f"mitglied,{BSNR},member,Dr. Max Müller,123456601,{bcrypt.hash(GOOD)}",
        f"ohne,{BSNR},staff,Neue Kraft,,",
        "",
        f"praxis,{BSNR},practice,,,{bcrypt.hash(GOOD)}",
    ]
    path = tmp_path / "benutzer.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")

    out = ok(invoke("user", "import", str(path))).stdout
    shown = ok(invoke("user", "show", "bcrypt1")).stdout

    assert "6 Benutzer angelegt" in out
    assert "Kennwörter übernommen: 5; ob sie der Kennwortrichtlinie (§ 5.4) genügen" in out
    assert "Ohne Kennwort, Zugangsdaten-Brief vorgemerkt: 1" in out
    assert "übernommen, wird bei der ersten Anmeldung gegen die Kennwortrichtlinie" in shown
    states = taken_over(database)
    assert states.pop("ohne") is None
    assert set(states.values()) == {TakenOverPassword.UNCHECKED} and len(states) == 5
    with database.reader() as session:
        letters = session.scalars(select(Letter)).all()
        assert [(letter.kind, letter.user and letter.user.username) for letter in letters] == [
            (LetterKind.CREDENTIALS, "ohne")
        ]
        member = session.scalars(select(User).where(User.username == "mitglied")).one()
        assert member.lanr == "123456601" and passwords.verify(GOOD, member.password_hash).ok


def test_semicolons_as_a_spreadsheet_writes_them(
    invoke: Invoke, practice_with_terms: str, database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "benutzer.csv"
    path.write_bytes(
        (
            "\ufeffusername;bsnr;kind;password_hash\r\n"
            f"eins;{BSNR};staff;{argon2.hash(GOOD)}\r\n"
            f"zwei;{BSNR};staff;\r\n"
        ).encode()
    )

    out = ok(invoke("user", "import", str(path))).stdout

    assert "2 Benutzer angelegt" in out
    assert taken_over(database) == {"eins": TakenOverPassword.UNCHECKED, "zwei": None}


def test_one_bad_row_changes_nothing_and_every_bad_row_is_named(
    invoke: Invoke, practice_with_terms: str, database: Database, tmp_path: Path
) -> None:
    ok(invoke("user", "add", "vorhanden", "--practice", BSNR, "--kind", "staff"))
    rows = [
        f"gut1,{BSNR},staff,,,{bcrypt.hash(GOOD)}",
        f"gut2,{BSNR},staff,,,{bcrypt.hash(GOOD)}",
        f"md5,{BSNR},staff,,,$1$saltsalt$abcdefghijklmnopqrstuv",  # line 4
        f"gut3,{BSNR},staff,,,",
        f"vorhanden,{BSNR},staff,,,",  # line 6
        f"fremd,999999999,staff,,,{bcrypt.hash(GOOD)}",  # line 7
        f"gut1,{BSNR},staff,,,",  # line 8: twice in the file
        f"kaputt,{BSNR},chef,,,",  # line 9
        f"kurz,{BSNR},staff",  # line 10
    ]
    path = tmp_path / "benutzer.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    before = snapshot(database)

    parsing = invoke("user", "import", str(path))
    rows = [row for row in rows if ",chef," not in row and not row.startswith("kurz,")]
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    adding = invoke("user", "import", str(path))

    refused_import(parsing, "Zeile 9: kind muss", "Zeile 10: 3 Felder statt 6")
    refused_import(
        adding,
        "Zeile 4 (md5): Kein Kennwort-Hash in einem Format, das flexnet prüfen kann",
        "Zeile 6 (vorhanden): Der Benutzername 'vorhanden' ist bereits vergeben",
        "Zeile 7 (fremd): Keine Betriebsstätte mit BSNR 999999999",
        "Zeile 8 (gut1): Der Benutzername 'gut1' ist bereits vergeben",
    )
    assert "$1$saltsalt" not in adding.stderr
    assert snapshot(database) == before


def test_a_file_that_is_no_user_list_is_refused(
    invoke: Invoke, practice_with_terms: str, database: Database, tmp_path: Path
) -> None:
    before = snapshot(database)
    keys = tmp_path / "keys.csv"
    keys.write_text("1234567,vvccccbdthji,0a1b2c3d4e5f,00112233445566778899aabbccddeeff,,,\n")
    empty = tmp_path / "leer.csv"
    empty.write_text(HEADER)
    latin = tmp_path / "latin1.csv"
    latin.write_bytes((HEADER + f"müller,{BSNR},staff,,,\n").encode("latin-1"))

    refused_import(invoke("user", "import", str(keys)), "Zeile 1: Kopfzeile mit den Spalten")
    refused_import(invoke("user", "import", str(empty)), "Die Datei enthält keine Benutzer")
    refused_import(invoke("user", "import", str(latin)), "Die Datei ist nicht in UTF-8")
    assert snapshot(database) == before
