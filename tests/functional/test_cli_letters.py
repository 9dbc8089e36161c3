"""CLI for letters and mail runs: the split shipment as staff run it, read back from the PDF."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from flexnet.authn import passwords
from flexnet.db import Database
from flexnet.models import User
from tests.functional.test_cli_keys import ykman_line
from tests.support.cli import Invoke, ok, refused, snapshot
from tests.support.pdf import page_texts, printed_credentials
from tests.support.yubikeys import SimulatedKey

# Wednesday; Friday 31 October 2025 is Reformationstag, a holiday in Sachsen-Anhalt.
KEY_DAY = "2025-10-29"


@pytest.fixture
def onboarded(invoke: Invoke, practice_with_terms: str, tmp_path: Path) -> str:
    keys = tmp_path / "keys.csv"
    keys.write_text(ykman_line("5000001", SimulatedKey.random()))
    ok(invoke("yubikey", "import", str(keys)))
    assigned = ok(invoke("yubikey", "assign", "5000001", "--practice", practice_with_terms))
    added = ok(
        invoke("user", "add", "emuster", "--practice", practice_with_terms, "--kind", "staff")
    )
    assert "Begleitschreiben FN-000001 vorgemerkt" in assigned.output
    assert "wartet auf den Zugangsdaten-Brief FN-000002" in added.output
    return practice_with_terms


def test_split_shipment_from_the_command_line(
    invoke: Invoke, onboarded: str, database: Database, tmp_path: Path
) -> None:
    before = ok(invoke("letters", "due", "--today", KEY_DAY)).output
    first = ok(invoke("letters", "run", "--out", str(tmp_path / "1.pdf"), "--today", KEY_DAY))
    sent = ok(invoke("letters", "dispatched", "1", "--date", KEY_DAY)).output
    waiting = ok(invoke("letters", "due", "--today", "2025-11-03")).output
    second = ok(invoke("letters", "run", "--out", str(tmp_path / "2.pdf"), "--today", "2025-11-04"))

    assert "FN-000001  Begleitschreiben Yubikey" in before
    assert "FN-000002" in before and "noch nicht versandt (§ 3.2)" in before
    assert first.output.splitlines()[-1] == "1"
    assert "Seiten 1–1: Briefpapier" in first.output
    assert "1 Briefe versandt am 29.10.2025" in sent
    assert "frühestens am 04.11.2025" in waiting and "0 fällig, 1 zurückgehalten" in waiting
    assert second.output.splitlines()[-1] == "2"
    assert "Sicherheitspapier" in second.output
    key_pdf, credentials_pdf = (tmp_path / "1.pdf").read_bytes(), (tmp_path / "2.pdf").read_bytes()
    assert "5000001" in page_texts(key_pdf)[0] and printed_credentials(key_pdf) == {}
    password = printed_credentials(credentials_pdf)["emuster"]
    with database.session() as session:
        user = session.scalars(select(User)).one()
        assert passwords.verify(password, user.password_hash).ok
    assert (tmp_path / "2.pdf").stat().st_mode & 0o077 == 0  # it holds passwords
    assert password not in first.output + second.output


def test_every_page_renders_as_an_image(invoke: Invoke, onboarded: str, tmp_path: Path) -> None:
    ok(invoke("letters", "run", "--out", str(tmp_path / "run.pdf"), "--today", KEY_DAY))

    subprocess.run(
        ["/usr/bin/pdftoppm", "-png", "-r", "40", str(tmp_path / "run.pdf"), str(tmp_path / "p")],
        check=True,
        capture_output=True,
    )

    assert len(list(tmp_path.glob("p*.png"))) == len(
        page_texts((tmp_path / "run.pdf").read_bytes())
    )


def test_reprint_and_cancel(
    invoke: Invoke, onboarded: str, database: Database, tmp_path: Path
) -> None:
    ok(invoke("letters", "run", "--out", str(tmp_path / "1.pdf"), "--today", KEY_DAY))
    ok(invoke("letters", "dispatched", "1", "--date", KEY_DAY))
    ok(invoke("letters", "run", "--out", str(tmp_path / "2.pdf"), "--today", "2025-11-04"))
    printed = printed_credentials((tmp_path / "2.pdf").read_bytes())["emuster"]

    again = ok(invoke("letters", "reprint", "FN-000002", "--out", str(tmp_path / "re.pdf")))
    reprinted = printed_credentials((tmp_path / "re.pdf").read_bytes())["emuster"]
    cancelled = ok(invoke("letters", "cancel", "2")).output

    assert "das bisherige Kennwort gilt nicht mehr" in again.output
    assert reprinted != printed
    assert "Versandlauf 2 verworfen" in cancelled
    with database.session() as session:
        user = session.scalars(select(User)).one()
        assert user.password_hash is None  # neither printed password works now
    refused(invoke("letters", "dispatched", "2"), "bereits abgeschlossen")


def test_refusals_change_nothing(
    invoke: Invoke,
    onboarded: str,
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    existing = tmp_path / "old.pdf"
    existing.write_bytes(b"%PDF-1.4 earlier run")
    broken = tmp_path / "letters"
    broken.mkdir()
    (broken / "layout.toml").write_text("this is = not [ toml")
    before = snapshot(database)

    refused(
        invoke("letters", "run", "--out", str(existing), "--today", KEY_DAY), "existiert bereits"
    )
    refused(invoke("letters", "dispatched", "99"), "Keinen Versandlauf 99")
    refused(
        invoke("letters", "run", "--out", str(tmp_path / "f.pdf"), "--today", "2099-01-01"),
        "künftigen Tag",
    )
    refused(
        invoke("letters", "reprint", "FN-000001", "--out", str(tmp_path / "x.pdf")), "noch nicht"
    )
    refused(
        invoke("letters", "reprint", "12x", "--out", str(tmp_path / "x.pdf")), "keine Briefnummer"
    )
    monkeypatch.setenv("FLEXNET_LETTERS_DIR", str(broken))
    refused(
        invoke("letters", "run", "--out", str(tmp_path / "new.pdf"), "--today", KEY_DAY),
        "layout.toml",
    )

    assert snapshot(database) == before
    assert existing.read_bytes() == b"%PDF-1.4 earlier run"
    assert sorted(p.name for p in tmp_path.glob("*.pdf")) == ["old.pdf"]
    assert not list(tmp_path.glob(".*partial"))


def test_nothing_due_makes_no_run(invoke: Invoke, practice_with_terms: str, tmp_path: Path) -> None:
    result = ok(invoke("letters", "run", "--out", str(tmp_path / "none.pdf")))

    assert "Keine Briefe fällig" in result.stderr and result.stdout == ""
    assert not (tmp_path / "none.pdf").exists()


def test_cancel_returns_every_letter_of_a_large_run(
    invoke: Invoke, database: Database, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.csv"
    keys.write_text("".join(ykman_line(f"60000{n:02d}", SimulatedKey.random()) for n in range(8)))
    ok(invoke("yubikey", "import", str(keys)))
    for n in range(8):
        bsnr = f"8812346{n:02d}"
        address = ("--street", "Hauptstraße 1", "--zip", "39104", "--city", "Magdeburg")
        ok(invoke("practice", "add", "--bsnr", bsnr, "--name", f"Praxis {n}", *address))
        ok(invoke("terms", "accept", bsnr, "--version", "1.0", "--channel", "paper"))
        ok(invoke("yubikey", "assign", f"60000{n:02d}", "--practice", bsnr))
        for who in ("a", "b"):
            ok(invoke("user", "add", f"{who}nutzer{n}", "--practice", bsnr, "--kind", "staff"))
    pdf = str(tmp_path / "run.pdf")

    ok(invoke("letters", "run", "--out", pdf, "--today", KEY_DAY))
    ok(invoke("letters", "cancel", "1"))
    keys_again = ok(invoke("letters", "due", "--today", KEY_DAY)).output
    Path(pdf).unlink()
    ok(invoke("letters", "run", "--out", pdf, "--today", KEY_DAY))
    ok(invoke("letters", "dispatched", "2", "--date", KEY_DAY))
    Path(pdf).unlink()
    ok(invoke("letters", "run", "--out", pdf, "--today", "2025-11-04"))
    printed = printed_credentials(Path(pdf).read_bytes())
    ok(invoke("letters", "cancel", "3"))
    credentials_again = ok(invoke("letters", "due", "--today", "2025-11-04")).output

    assert "8 fällig, 16 zurückgehalten" in keys_again
    assert len(printed) == 16
    assert "16 fällig, 0 zurückgehalten" in credentials_again
    with database.session() as session:
        hashes = {user.username: user.password_hash for user in session.scalars(select(User))}
    assert sorted(hashes) == sorted(printed) and set(hashes.values()) == {None}


def test_show_tells_a_letter_the_next_run_carries_from_one_that_waits(
    invoke: Invoke, onboarded: str
) -> None:
    practice = ok(invoke("practice", "show", onboarded)).output
    user = ok(invoke("user", "show", "emuster")).output

    waiting = (
        "FN-000002 Zugangsdaten emuster: wartet: Begleitschreiben mit dem Yubikey noch nicht "
        "versandt (§ 3.2)"
    )
    assert "FN-000001 Begleitschreiben Yubikey: fällig für den nächsten Versandlauf" in practice
    assert waiting in practice and waiting in user
    assert "FN-000002 Zugangsdaten emuster: fällig" not in practice + user


def test_a_returned_key_letter_waits_for_the_corrected_address_and_restarts_the_clock(
    invoke: Invoke, onboarded: str, tmp_path: Path
) -> None:
    ok(invoke("letters", "run", "--out", str(tmp_path / "1.pdf"), "--today", KEY_DAY))
    ok(invoke("letters", "dispatched", "1", "--date", KEY_DAY))

    back = ok(invoke("letters", "returned", "FN-000001", "--date", "2025-11-03")).output
    holding = ok(invoke("letters", "due", "--today", "2025-11-04")).output
    refused(invoke("letters", "returned", "FN-000001"), "bereits als unzustellbar")
    ok(invoke("practice", "edit", onboarded, "--street", "Hauptstraße 11"))
    resent = ok(invoke("letters", "run", "--out", str(tmp_path / "2.pdf"), "--today", "2025-11-04"))
    ok(invoke("letters", "dispatched", "2", "--date", "2025-11-04"))
    waiting = ok(invoke("letters", "due", "--today", "2025-11-06")).output
    shown = ok(invoke("practice", "show", onboarded)).output

    assert "Brief FN-000001 (Begleitschreiben Yubikey) als unzustellbar erfasst" in back
    assert "Yubikey 5000001 ist wieder im Haus" in back and "FN-000003 vorgemerkt" in back
    assert "0 fällig, 2 zurückgehalten" in holding and "Anschrift unzustellbar" in holding
    assert resent.output.splitlines()[-1] == "2"
    page = page_texts((tmp_path / "2.pdf").read_bytes())[0]
    assert "5000001" in page and "Hauptstraße 11" in page
    # Three working days after the re-sent letter's dispatch, not the first one's.
    assert "frühestens am 07.11.2025" in waiting
    assert "FN-000001 Begleitschreiben Yubikey: unzustellbar zurück am 03.11.2025" in shown
