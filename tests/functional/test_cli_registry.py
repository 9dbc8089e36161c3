"""``flexnet registry import FILE.csv [--dry-run]`` as the nightly job and staff run it:
the diff it prints, a dry run that changes nothing, a second run that finds nothing, a
bad file refused whole."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from flexnet.db import Database
from flexnet.models import AuditEntry
from tests.support.cli import Invoke, ok, snapshot

BSNR = "881234500"  # the ``practice_with_terms`` fixture: Hauptstraße 1, 39104 Magdeburg
HEADER = "BSNR;Praxis;Adresszusatz;Strasse;PLZ;Ort;Telefon;LANR;Name;Beginn;Ende\n"
FIRST = (
    HEADER
    + f"{BSNR};Praxis Dr. Müller;;Hauptstraße 1;39104;Magdeburg;;123456601;Dr. Max Müller;;\n"
    + f"{BSNR};Praxis Dr. Müller;;Hauptstraße 1;39104;Magdeburg;;234567701;Dr. Eva Berg;;\n"
    + "881234600;MVZ Nord;Haus 2;Lübecker Str. 3;39124;Magdeburg;0391 555;;;;\n"
)
SECOND = (
    HEADER + f"{BSNR};Praxis Dr. Müller;;Hauptstraße 1;39104;Magdeburg;;123456601;Dr. Max Müller;;"
    "31.03.2027\n"
    + f"{BSNR};Praxis Dr. Müller;;Hauptstraße 1;39104;Magdeburg;;234567701;Dr. Eva Berg-Lang;;\n"
    + "881234600;MVZ Nord;;Lübecker Str. 5;39124;Magdeburg;;;;;\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_import_prints_what_it_does_as_a_diff(
    invoke: Invoke, database: Database, practice_with_terms: str, tmp_path: Path
) -> None:
    first = write(tmp_path, "register-1.csv", FIRST)
    second = write(tmp_path, "register-2.csv", SECOND)

    created = ok(invoke("registry", "import", str(first)))
    again = ok(invoke("registry", "import", str(first))).output
    before = snapshot(database)
    dry = ok(invoke("registry", "import", str(second), "--dry-run")).output
    unchanged = snapshot(database)
    applied = ok(invoke("registry", "import", str(second))).output

    assert created.output.splitlines() == [
        "Neu: Betriebsstätte 881234600 MVZ Nord, Haus 2, Lübecker Str. 3, 39124 Magdeburg",
        f"Neu: Mitglied LANR 123456601 Dr. Max Müller bei BSNR {BSNR}, Benutzer mmueller",
        f"Neu: Mitglied LANR 234567701 Dr. Eva Berg bei BSNR {BSNR}, Benutzer eberg",
        "Unverändert: 1 Betriebsstätten, 0 Mitglieder",
        "Übernommen: 1 Betriebsstätten neu, 0 geändert; 2 Mitglieder neu, 0 geändert",
    ]
    assert "Register" not in created.stderr  # no progress bar outside a terminal
    assert again.splitlines()[-2:] == [
        "Unverändert: 2 Betriebsstätten, 2 Mitglieder",
        "Nichts zu ändern",
    ]
    expected = [
        "Geändert: Betriebsstätte 881234600: Straße: Lübecker Str. 3 → Lübecker Str. 5; "
        "Adresszusatz: Haus 2 → –",
        f"Geändert: Mitglied LANR 123456601 Dr. Max Müller bei BSNR {BSNR} (mmueller): "
        "Ende der Tätigkeit: – → 31.03.2027",
        f"Geändert: Mitglied LANR 234567701 Dr. Eva Berg-Lang bei BSNR {BSNR} (eberg): "
        "Name: Dr. Eva Berg → Dr. Eva Berg-Lang",
        "Unverändert: 1 Betriebsstätten, 0 Mitglieder",
    ]
    assert dry.splitlines() == [
        *expected,
        "Probelauf, nichts geändert: 0 Betriebsstätten neu, 1 geändert; 0 Mitglieder neu, "
        "2 geändert",
    ]
    assert unchanged == before
    assert applied.splitlines() == [
        *expected,
        "Übernommen: 0 Betriebsstätten neu, 1 geändert; 0 Mitglieder neu, 2 geändert",
    ]
    shown = ok(invoke("practice", "show", "881234600")).output
    assert "Lübecker Str. 5, 39124 Magdeburg" in shown and "0391 555" in shown  # kept
    with database.session() as session:
        actors = set(
            session.scalars(
                select(AuditEntry.actor).where(AuditEntry.tag == "registry:import:apply")
            )
        )
    assert actors == {"helpdesk-test"}


def test_a_bad_file_changes_nothing_and_names_every_bad_row(
    invoke: Invoke, database: Database, practice_with_terms: str, tmp_path: Path
) -> None:
    bad = write(
        tmp_path,
        "register.csv",
        FIRST.replace("123456601", "123456701").replace(";39124;", ";3912;"),
    )
    before = snapshot(database)

    result = invoke("registry", "import", str(bad))

    assert result.exit_code != 0
    assert result.stderr.splitlines() == [
        "Zeile 2: LANR 123456701 ist ungültig: die Prüfziffer (7. Stelle) stimmt nicht",
        "Zeile 4: Postleitzahl '3912' ist ungültig: erwartet werden 5 Ziffern",
        "flexnet: Import abgebrochen, nichts geändert (2 Fehler)",
    ]
    assert snapshot(database) == before


def test_a_file_in_another_encoding_is_named_as_such(
    invoke: Invoke, database: Database, tmp_path: Path
) -> None:
    latin = tmp_path / "register.csv"
    latin.write_bytes(FIRST.encode("cp1252"))

    result = invoke("registry", "import", str(latin))

    assert result.exit_code != 0
    assert "Zeile 2: die Datei ist nicht in UTF-8 geschrieben" in result.stderr
