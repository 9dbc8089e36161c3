"""What staff type on the command line: free text is cleaned on the way in (one line, no
control or bidi characters, a maximum length), days lie in a sensible range, a NUL never
reaches the database, and stored text never drives the terminal. On SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from flexnet.db import Database
from flexnet.models import Practice, Token, User
from flexnet.textrules import REASON_MAX_LENGTH
from tests.functional.test_cli_lifecycle import (
    BSNR,
    KEY,
    add_practice,
    field,
    key,
    key_out,
    show,
    terminate,
    today,
)
from tests.support.cli import Invoke, ok, refused, snapshot
from tests.support.pdf import page_texts
from tests.support.yubikeys import SimulatedKey

__all__ = ["key", "key_out"]  # fixtures used here

ESC_TITLE = "\x1b]0;gehackt\x07"  # sets an xterm's window title
BIDI = "Grund \u202eTXT.EXE"
# The longest practice name, in wide capitals: the worst case for a letter's layout.
LONGEST_NAME = ("MÜLLER-WOLKENSTEIN-LÜDENSCHEIDT " * 7)[:200].strip()
LONGEST_REASON = ("Verdacht auf Weitergabe der Zugangsdaten " * 10)[:REASON_MAX_LENGTH]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("lock", "user", "emuster", "--reason", ESC_TITLE), "Grund enthält ein Steuerzeichen"),
        (("lock", "key", KEY, "--reason", BIDI), "Grund enthält ein unsichtbares Formatzeichen"),
        (("lock", "practice", BSNR, "--reason", "x" * 301), "höchstens 300"),
        (
            (
                "practice",
                "terminate",
                BSNR,
                "--by",
                "extraordinary",
                "--notice-date",
                "2026-11-23",
                "--reason",
                ESC_TITLE,
            ),
            "Grund enthält ein Steuerzeichen (U+001B)",
        ),
        (
            (
                "exception",
                "grant",
                "--practice",
                BSNR,
                "--until",
                "2027-12-31",
                "--reason",
                "ok",
                "--ref",
                "Az 1",
                "--decided-by",
                BIDI,
            ),
            "Entschieden von enthält ein unsichtbares Formatzeichen (U+202E)",
        ),
        (
            ("yubikey", "return", KEY, "--condition", "good", "--note", ESC_TITLE),
            "Anmerkung enthält ein Steuerzeichen",
        ),
        (("user", "add", "neu", "--practice", BSNR, "--kind", "staff", "--name", BIDI), "Name"),
    ],
)
def test_control_and_bidi_characters_are_refused_naming_the_field(
    invoke: Invoke, key: SimulatedKey, database: Database, args: tuple[str, ...], message: str
) -> None:
    ok(invoke("lock", "key", KEY, "--reason", "Sperre vor der Rückgabe"))
    before = snapshot(database)

    refused(invoke(*args), message)

    assert snapshot(database) == before


def test_a_reason_over_several_lines_is_kept_as_one_line(invoke: Invoke, key: SimulatedKey) -> None:
    reason = "Meldung der Praxis\r\nvom Vormittag:\n\n\tKey verloren  "

    ok(invoke("lock", "user", "emuster", "--reason", reason))

    assert field(show(invoke, "user", "emuster"), "Status") == (
        "gesperrt – Meldung der Praxis vom Vormittag: Key verloren"
    )


def test_lock_letters_stay_one_page_with_the_longest_name_and_reason(
    invoke: Invoke, tmp_path: Path
) -> None:
    """Several lock letters and a notice, each with the longest name and reason allowed;
    an 80-line reason (three pages before) becomes one line."""
    practices = [add_practice(invoke, f"88123470{n}", LONGEST_NAME) for n in range(5)]
    eighty_lines = "".join(f"{n}\n" for n in range(80))
    for bsnr, reason in zip(practices[:3], (LONGEST_REASON, eighty_lines, "x"), strict=True):
        ok(invoke("lock", "practice", bsnr, "--reason", reason))
    ok(terminate(invoke, practices[3], "extraordinary", "2026-11-23", "--reason", LONGEST_REASON))
    notice = today().isoformat()  # two weeks: within the eight weeks of the notice letter
    ok(terminate(invoke, practices[4], "member", notice, "--reason", LONGEST_REASON))
    ok(invoke("lifecycle", "run"))

    printed = ok(invoke("letters", "run", "--out", str(tmp_path / "run.pdf")))
    pages = page_texts((tmp_path / "run.pdf").read_bytes())

    assert "5 Briefe" in printed.stdout
    assert len(pages) == 5  # one page each
    assert sum("Sperrung Ihres Zugangs" in page for page in pages) == 4
    assert sum("Ankündigung" in page for page in pages) == 1
    assert any("Grund: 0 1 2 3 4 5" in " ".join(page.split()) for page in pages)


@pytest.mark.parametrize(
    "args",
    [
        ("practice", "terminate", BSNR, "--by", "member", "--notice-date", "9999-12-25"),
        (
            "practice",
            "terminate",
            BSNR,
            "--by",
            "association",
            "--notice-date",
            "2026-11-23",
            "--requested-date",
            "9999-12-31",
        ),
        ("practice", "end", BSNR, "--date", "9999-12-31"),
        (
            "exception",
            "grant",
            "--practice",
            BSNR,
            "--until",
            "9999-12-31",
            "--reason",
            "r",
            "--ref",
            "Az 1",
            "--decided-by",
            "Vorstand",
        ),
        ("terms", "accept", BSNR, "--version", "2.0", "--channel", "paper", "--date", "1900-01-01"),
        ("lifecycle", "run", "--today", "9999-12-31"),
        ("letters", "due", "--today", "9999-12-31"),
        ("yubikey", "return", KEY, "--condition", "good", "--date", "0001-01-01"),
    ],
)
def test_days_outside_the_range_are_refused_and_change_nothing(
    invoke: Invoke, key: SimulatedKey, database: Database, args: tuple[str, ...]
) -> None:
    before = snapshot(database)

    refused(invoke(*args), "außerhalb des möglichen Zeitraums (01.01.2000 bis 31.12.2099)")

    assert snapshot(database) == before


@pytest.mark.parametrize(
    "args",
    [
        ("yubikey", "show", f"{KEY}\x00"),
        ("user", "show", "emuster\x00"),
        ("lock", "user", "emuster", "--reason", "Meldung\x00"),
        ("nas", "disable", "vpn\x00"),
        ("api-client", "disable", "portal\x00"),
        ("wsapi-client", "disable", "portal\x00"),
        (
            "practice",
            "add",
            "--bsnr",
            "881234599",
            "--name",
            "Praxis\x00",
            "--street",
            "Weg 1",
            "--zip",
            "39104",
            "--city",
            "Halle",
        ),
    ],
)
def test_a_nul_in_an_argument_is_refused_before_the_database(
    invoke: Invoke, key: SimulatedKey, database: Database, args: tuple[str, ...]
) -> None:
    before = snapshot(database)

    refused(invoke(*args), "enthält ein NUL-Zeichen")

    assert snapshot(database) == before


def test_stored_text_never_drives_the_terminal(
    invoke: Invoke, key_out: SimulatedKey, database: Database
) -> None:
    """Rows written before these rules may hold escape sequences: shown, not obeyed."""
    ok(invoke("lock", "practice", BSNR, "--reason", "Beitragsrückstand"))
    with database.session() as session:
        session.execute(
            update(Practice).values(name=f"Praxis {ESC_TITLE}", lock_reason=f"Grund {BIDI}")
        )
        session.execute(update(User).values(name=f"Erika {ESC_TITLE}"))
        session.execute(
            update(Token).where(Token.serial == KEY).values(lock_reason=f"\x1b[2J{BIDI}")
        )

    outputs = [
        show(invoke, "practice", BSNR),
        show(invoke, "user", "emuster"),
        show(invoke, "yubikey", KEY),
        ok(invoke("yubikey", "overdue", "--days", "0")).stdout,
        ok(invoke("letters", "due")).stdout,
        ok(invoke("lifecycle", "run", "--dry-run")).stdout,
    ]

    for output in outputs:
        assert not {"\x1b", "\x07", "\u202e"} & set(output), output
    assert "Praxis \\x1b]0;gehackt\\x07" in outputs[0]
    assert "Grund \\u202eTXT.EXE" in field(outputs[0], "Status")
    assert "\\x1b[2J" in outputs[2]
