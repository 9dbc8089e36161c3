"""CLI for the end of access: terminations, locks and unlocks, the nightly lifecycle run,
and Yubikeys coming back (§ 7.2, § 10.1–10.3), as staff run them.

Commands that take ``--today`` run on fixed days; the others (``lock``, ``yubikey return``,
``yubikey overdue``) act at the real clock, so their dates are computed from today.

A key is expected back only if the practice had it: its key letter went out (the
``key_out`` fixture) or it was used.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result

from flexnet.db import Database
from flexnet.lifecycle.rules import BERLIN
from tests.functional.test_cli_keys import ykman_line
from tests.support.cli import Invoke, ok, refused, snapshot
from tests.support.pdf import page_texts
from tests.support.yubikeys import SimulatedKey

BSNR = "881234500"  # the practice of the ``practice_with_terms`` fixture
KEY, SPARE = "5000001", "5000002"
ADDRESS = "Praxis Dr. Müller, Hauptstraße 1, 39104 Magdeburg"
ENDED = "2026-05-15"  # Q2 2026: § 10.3 locks four quarters later, from 01.07.2027 00:00

# For tests about settings or letter bookkeeping rather than the database: SQLite suffices.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


# --- helpers ------------------------------------------------------------------------


def today() -> date:
    """Today in Europe/Berlin, the day the CLI's own clock stamps on locks and returns."""
    return datetime.now(BERLIN).date()


def add_practice(invoke: Invoke, bsnr: str, name: str = "Praxis Neu") -> str:
    ok(
        invoke(
            "practice",
            "add",
            "--bsnr",
            bsnr,
            "--name",
            name,
            "--street",
            "Breiter Weg 7",
            "--zip",
            "39104",
            "--city",
            "Magdeburg",
        )
    )
    ok(invoke("terms", "accept", bsnr, "--version", "1.0", "--channel", "paper"))
    return bsnr


def import_keys(invoke: Invoke, path: Path, *keys: tuple[str, SimulatedKey]) -> str:
    path.write_text("".join(ykman_line(serial, key) for serial, key in keys))
    return ok(invoke("yubikey", "import", str(path))).stdout


def import_fresh(invoke: Invoke, path: Path, *serials: str) -> Result:
    """Import new secrets for these serials; the result may be a refusal."""
    path.write_text("".join(ykman_line(serial, SimulatedKey.random()) for serial in serials))
    return invoke("yubikey", "import", str(path))


def terminate(invoke: Invoke, bsnr: str, by: str, notice: str, *extra: str) -> Result:
    return invoke("practice", "terminate", bsnr, "--by", by, "--notice-date", notice, *extra)


def lifecycle_run(invoke: Invoke, day: str, *flags: str) -> str:
    return ok(invoke("lifecycle", "run", "--today", day, *flags)).stdout


def section(report: str, title: str) -> list[str]:
    """The entries under ``title: N`` in a lifecycle report; N must match their number."""
    lines = report.splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith(f"{title}: "))
    entries = []
    for line in lines[heading + 1 :]:
        if not line.startswith("  "):
            break
        entries.append(line.strip())
    assert lines[heading] == f"{title}: {len(entries)}", report
    return entries


def field(shown: str, label: str) -> str:
    """One ``Label: value`` row of ``flexnet … show``."""
    prefix = f"  {label}:"
    row = next(line for line in shown.splitlines() if line.startswith(prefix))
    return row[len(prefix) :].strip()


def show(invoke: Invoke, what: str, identifier: str) -> str:
    return ok(invoke(what, "show", identifier)).stdout


def lock_practice(invoke: Invoke, bsnr: str = BSNR, reason: str = "Beitragsrückstand") -> None:
    locked = ok(invoke("lock", "practice", bsnr, "--reason", reason)).stdout
    assert f"BSNR {bsnr} mit allen Zugängen gesperrt; Sperrbrief vorgemerkt" in locked


def due_letters(invoke: Invoke, day: str) -> tuple[list[str], list[str]]:
    """(due, held back) lines of ``flexnet letters due``."""
    lines = ok(invoke("letters", "due", "--today", day)).stdout.splitlines()[:-1]
    return (
        [line for line in lines if "  wartet: " not in line],
        [line for line in lines if "  wartet: " in line],
    )


def kinds(letter_lines: list[str]) -> list[tuple[str, str]]:
    """(kind, BSNR) of each ``letters due`` line, e.g. ("Sperrung/Kündigung", "881234500")."""
    found = [re.match(r"FN-\d+  (.+?)\s+BSNR (\d+)", line) for line in letter_lines]
    return [(match[1], match[2]) for match in found if match]


# --- fixtures -----------------------------------------------------------------------


@pytest.fixture
def key(invoke: Invoke, practice_with_terms: str, tmp_path: Path) -> SimulatedKey:
    """The practice has Yubikey 5000001 (5000002 waits in stock) and user emuster."""
    simulated = SimulatedKey.random()
    import_keys(invoke, tmp_path / "keys.csv", (KEY, simulated), (SPARE, SimulatedKey.random()))
    ok(invoke("yubikey", "assign", KEY, "--practice", practice_with_terms))
    ok(invoke("user", "add", "emuster", "--practice", practice_with_terms, "--kind", "staff"))
    return simulated


@pytest.fixture
def key_out(invoke: Invoke, key: SimulatedKey, tmp_path: Path) -> SimulatedKey:
    """The key letter went out today: the practice has its Yubikey."""
    run = ok(invoke("letters", "run", "--out", str(tmp_path / "keys.pdf"))).stdout
    ok(invoke("letters", "dispatched", run.splitlines()[-1]))
    return key


@pytest.fixture
def locked_by_the_dates(invoke: Invoke, key_out: SimulatedKey) -> None:
    """Activity ended 15.05.2026; the run on 01.07.2027 locked the practice and its key."""
    ended = ok(invoke("practice", "end", BSNR, "--date", ENDED)).stdout
    assert "automatische Sperre ab 01.07.2027 00:00" in ended
    assert section(lifecycle_run(invoke, "2027-07-01"), "Jetzt gesperrt") == [
        f"BSNR {BSNR} Praxis Dr. Müller: automatisch gesperrt ab 01.07.2027, § 10.3 "
        "(Ende der Tätigkeit am 15.05.2026)"
    ]


# --- terminations (§ 10.2) ----------------------------------------------------------


# (by, notice received, requested end or None) -> last day with access
TERMINATIONS = {
    # The association: eight weeks' notice to a quarter end; exactly eight weeks make it.
    ("association", "2026-11-23", None): "31.03.2027",
    ("association", "2027-02-03", None): "31.03.2027",
    ("association", "2027-02-04", None): "30.06.2027",
    # ... and a later requested day is granted as the end of its quarter.
    ("association", "2026-11-23", "2027-08-10"): "30.09.2027",
    # The member: two weeks, or a later requested day.
    ("member", "2026-11-23", None): "07.12.2026",
    ("member", "2026-11-23", "2027-01-31"): "31.01.2027",
}


def test_termination_prints_the_last_day_with_access(invoke: Invoke) -> None:
    printed, shown = {}, {}
    for number, (by, notice, requested) in enumerate(TERMINATIONS):
        bsnr = add_practice(invoke, f"8812346{number:02d}")
        extra = ("--requested-date", requested) if requested else ()
        out = ok(terminate(invoke, bsnr, by, notice, *extra)).stdout
        printed[by, notice, requested] = out.strip().replace(bsnr, "…")
        shown[by, notice, requested] = field(show(invoke, "practice", bsnr), "Kündigung")

    assert printed == {
        case: f"BSNR … gekündigt; letzter Tag mit Zugang {last_day}, "
        "gesperrt ab dem Folgetag 00:00 Uhr"
        for case, last_day in TERMINATIONS.items()
    }
    for case, last_day in TERMINATIONS.items():
        assert f"zum {last_day} (§ 10.2), eingegangen am" in shown[case]


def test_terminated_practice_locks_the_day_after_its_last_day(
    invoke: Invoke, key: SimulatedKey, database: Database
) -> None:
    ok(terminate(invoke, BSNR, "association", "2026-11-23"))
    before = snapshot(database)

    refused(
        terminate(invoke, BSNR, "member", "2026-11-24"),
        f"BSNR {BSNR} ist bereits gekündigt",
    )
    assert snapshot(database) == before
    assert field(show(invoke, "practice", BSNR), "Kündigung").startswith(
        "Kündigung durch die KV Sachsen-Anhalt zum 31.03.2027"
    )

    last_day = lifecycle_run(invoke, "2027-03-31")
    first_day_locked = lifecycle_run(invoke, "2027-04-01")

    assert section(last_day, "Jetzt gesperrt") == []
    assert section(last_day, "Sperre innerhalb von 8 Wochen") == [
        f"BSNR {BSNR} Praxis Dr. Müller: gesperrt ab 01.04.2027"
    ]
    assert section(first_day_locked, "Jetzt gesperrt") == [
        f"BSNR {BSNR} Praxis Dr. Müller: Kündigung durch die KV Sachsen-Anhalt zum 31.03.2027 "
        "(§ 10.2)"
    ]
    assert field(show(invoke, "yubikey", KEY), "Status").startswith("gesperrt – Kündigung")


def test_extraordinary_termination_needs_a_reason_and_locks_at_once(
    invoke: Invoke, key: SimulatedKey, database: Database
) -> None:
    before = snapshot(database)
    without_reason = terminate(invoke, BSNR, "extraordinary", "2026-11-23")
    refused(without_reason, "Eine außerordentliche Kündigung braucht --reason")
    refused(
        terminate(invoke, BSNR, "extraordinary", "2026-11-23", "--reason", "   "),
        "braucht --reason",
    )
    refused(
        terminate(invoke, BSNR, "member", "2026-11-23", "--requested-date", "2026-11-01"),
        "Das gewünschte Ende liegt vor dem Eingang der Kündigung",
    )
    refused(terminate(invoke, "999999999", "member", "2026-11-23"), "Keine Betriebsstätte")
    assert without_reason.exit_code == 2  # a usage error, like a missing option
    assert snapshot(database) == before
    assert "Kündigung:" not in show(invoke, "practice", BSNR)

    out = ok(
        terminate(
            invoke,
            BSNR,
            "extraordinary",
            "2026-11-23",
            "--reason",
            "Weitergabe des Zugangs an Dritte",
        )
    ).stdout

    assert out.strip() == f"BSNR {BSNR} außerordentlich gekündigt und sofort gesperrt"
    why = "außerordentliche Kündigung (§ 10.2): Weitergabe des Zugangs an Dritte"
    assert field(show(invoke, "practice", BSNR), "Status") == f"gesperrt – {why}"
    assert field(show(invoke, "user", "emuster"), "Status") == f"gesperrt – {why}"
    assert field(show(invoke, "yubikey", KEY), "Status") == f"gesperrt – {why}"
    due, _ = due_letters(invoke, today().isoformat())
    assert ("Sperrung/Kündigung", BSNR) in kinds(due)


def test_a_practice_whose_access_has_ended_is_issued_nothing(
    invoke: Invoke, key: SimulatedKey, database: Database
) -> None:
    # Two weeks' notice from 2 January 2020: locked since 17 January, the job never ran.
    ok(terminate(invoke, BSNR, "member", "2020-01-02"))
    before = snapshot(database)

    for command in (
        ("user", "add", "neu", "--practice", BSNR, "--kind", "staff"),
        ("user", "add", "alt", "--practice", BSNR, "--kind", "staff", "--password-stdin"),
        ("yubikey", "assign", SPARE, "--practice", BSNR),
        ("yubikey", "replace", BSNR, "--new", SPARE, "--defective"),
        ("user", "reissue", "emuster"),
    ):
        refused(
            invoke(*command, input="Sommer-Regen-2026!\n"),
            f"BSNR {BSNR} ist gesperrt (Kündigung durch die Praxis zum 16.01.2020 (§ 10.2)); "
            "dafür werden keine Benutzer, Yubikeys oder Kennwörter ausgegeben",
        )

    assert snapshot(database) == before
    assert field(show(invoke, "yubikey", SPARE), "Status") == "im Lager"
    due, held_back = due_letters(invoke, today().isoformat())
    assert due == []
    assert [line.split("  wartet: ")[1] for line in held_back] == [
        "Betriebsstätte ist gesperrt: Kündigung durch die Praxis zum 16.01.2020 (§ 10.2)"
    ] * 2  # the key letter and emuster's credentials


# --- locks and unlocks by hand (§ 7.2, § 10.1) --------------------------------------


def test_user_lock_shows_with_its_reason_and_unlocks(
    invoke: Invoke, key: SimulatedKey, database: Database
) -> None:
    ok(invoke("user", "add", "bbeispiel", "--practice", BSNR, "--kind", "staff"))
    before = snapshot(database)

    refused(invoke("lock", "user", "emuster"), "Missing option '--reason'")
    refused(invoke("lock", "user", "emuster", "--reason", "  "), "Bitte einen Grund angeben")
    refused(
        invoke("unlock", "user", "emuster", "--reason", "geklärt"), "emuster ist nicht gesperrt"
    )
    refused(invoke("lock", "user", "niemand", "--reason", "x"), "Kein Benutzer 'niemand'")
    assert snapshot(database) == before
    assert field(show(invoke, "user", "emuster"), "Status").startswith("wartet")

    locked = ok(
        invoke("lock", "user", "emuster", "--reason", "Kennwort weitergegeben", "--cause", "misuse")
    ).stdout
    assert locked.strip() == "gesperrt: emuster"
    assert field(show(invoke, "user", "emuster"), "Status") == "gesperrt – Kennwort weitergegeben"
    assert field(show(invoke, "user", "bbeispiel"), "Status").startswith("wartet")
    assert re.search(r"emuster\s+Praxispersonal\s+gesperrt", show(invoke, "practice", BSNR))

    unlocked = ok(invoke("unlock", "user", "emuster", "--reason", "Kennwort geändert")).stdout
    assert unlocked.strip() == "emuster entsperrt"
    assert field(show(invoke, "user", "emuster"), "Status").startswith("wartet")
    refused(invoke("unlock", "user", "emuster", "--reason", "nochmal"), "ist nicht gesperrt")


def test_lock_with_all_practice_credentials(invoke: Invoke, key: SimulatedKey) -> None:
    ok(invoke("user", "add", "bbeispiel", "--practice", BSNR, "--kind", "staff"))
    why = ("--reason", "Verdacht auf Missbrauch", "--cause", "misuse", "--all-practice-credentials")

    by_user = ok(invoke("lock", "user", "emuster", *why)).stdout
    users_locked = [
        field(show(invoke, "user", name), "Status") for name in ("emuster", "bbeispiel")
    ]
    key_after_user_lock = field(show(invoke, "yubikey", KEY), "Status")
    for username in ("emuster", "bbeispiel"):
        ok(invoke("unlock", "user", username, "--reason", "geklärt"))
    ok(invoke("lock", "key", KEY, *why))
    users_locked_by_key = [
        field(show(invoke, "user", name), "Status") for name in ("emuster", "bbeispiel")
    ]

    assert by_user.strip() == "gesperrt: bbeispiel, emuster"  # by username
    assert users_locked == ["gesperrt – Verdacht auf Missbrauch"] * 2
    assert key_after_user_lock == "zugewiesen"  # a user lock leaves the key alone
    assert field(show(invoke, "yubikey", KEY), "Status") == "gesperrt – Verdacht auf Missbrauch"
    assert users_locked_by_key == ["gesperrt – Verdacht auf Missbrauch"] * 2
    assert field(show(invoke, "practice", BSNR), "Status") == "aktiv"  # the practice itself not


def test_practice_lock_and_unlock(invoke: Invoke, key: SimulatedKey, database: Database) -> None:
    lock_practice(invoke, reason="Beitragsrückstand")
    before = snapshot(database)

    refused(
        invoke("lock", "practice", BSNR, "--reason", "nochmal"), f"BSNR {BSNR} ist bereits gesperrt"
    )
    assert snapshot(database) == before
    shown = show(invoke, "practice", BSNR)
    assert field(shown, "Status") == "gesperrt – Beitragsrückstand"
    assert field(shown, "Yubikey") == f"{KEY} (gesperrt, {key.public_id})"
    assert field(show(invoke, "user", "emuster"), "Status") == "gesperrt – Beitragsrückstand"

    unlocked = ok(invoke("unlock", "practice", BSNR, "--reason", "Beitrag bezahlt")).stdout
    shown = show(invoke, "practice", BSNR)
    assert unlocked.strip() == f"BSNR {BSNR} entsperrt"
    assert field(shown, "Status") == "aktiv"
    assert field(shown, "Yubikey") == f"{KEY} (zugewiesen, {key.public_id})"
    assert field(show(invoke, "user", "emuster"), "Status").startswith("wartet")
    refused(invoke("unlock", "practice", BSNR, "--reason", "nochmal"), "ist nicht gesperrt")


def test_unlocking_a_terminated_practice_says_it_stays_locked_and_changes_nothing(
    invoke: Invoke, key_out: SimulatedKey, database: Database
) -> None:
    # Two weeks' notice from 2 January 2020: the run on 17 January made the lock durable.
    ok(terminate(invoke, BSNR, "member", "2020-01-02"))
    locked = section(lifecycle_run(invoke, "2020-01-17"), "Jetzt gesperrt")
    overdue_before = overdue(invoke, "0")
    before = snapshot(database)

    unlock = invoke("unlock", "practice", BSNR, "--reason", "Praxis bittet darum")
    user_unlock = invoke("unlock", "user", "emuster", "--reason", "Praxis bittet darum")
    after = snapshot(database)
    overdue_after = overdue(invoke, "0")
    next_run = lifecycle_run(invoke, today().isoformat())

    why = "Kündigung durch die Praxis zum 16.01.2020 (§ 10.2)"
    assert locked == [f"BSNR {BSNR} Praxis Dr. Müller: {why}"]
    refused(unlock, f"BSNR {BSNR} bleibt gesperrt ({why}): eine Entsperrung hebt das nicht auf")
    refused(user_unlock, f"emuster bleibt gesperrt (Betriebsstätte gesperrt: {why})")
    assert after == before
    assert field(show(invoke, "practice", BSNR), "Status") == f"gesperrt – {why}"
    assert overdue_after == overdue_before and len(overdue_before) == 1
    assert section(next_run, "Jetzt gesperrt") == []
    due, _ = due_letters(invoke, today().isoformat())
    assert kinds(due).count(("Sperrung/Kündigung", BSNR)) == 1


def test_lost_key_is_reported_lost_and_never_unlocked(
    invoke: Invoke, key: SimulatedKey, database: Database
) -> None:
    ok(invoke("lock", "key", KEY, "--reason", "Verlust gemeldet", "--cause", "loss"))
    before = snapshot(database)

    no_unlock = invoke("unlock", "key", KEY, "--reason", "wiedergefunden")
    refused(invoke("lock", "key", KEY, "--reason", "nochmal"), f"Yubikey {KEY} ist bereits")
    refused(no_unlock, f"Yubikey {KEY} ist als verloren gemeldet und bleibt ausgemustert")
    assert snapshot(database) == before
    assert field(show(invoke, "yubikey", KEY), "Status") == "verloren"

    lock_practice(invoke)
    ok(invoke("unlock", "practice", BSNR, "--reason", "Beitrag bezahlt"))
    after_unlock = field(show(invoke, "yubikey", KEY), "Status")
    returned = ok(invoke("yubikey", "return", KEY, "--condition", "good")).stdout

    assert after_unlock == "verloren"  # a practice unlock does not bring it back
    assert returned.strip() == f"Yubikey {KEY} eingegangen und ausgemustert"
    assert field(show(invoke, "yubikey", KEY), "Status") == "ausgemustert"


# --- the nightly lifecycle run (§ 10.3) ---------------------------------------------


def test_lifecycle_run_warns_notices_once_then_locks_once(
    invoke: Invoke, key: SimulatedKey, database: Database
) -> None:
    ok(invoke("practice", "end", BSNR, "--date", ENDED))

    eve = lifecycle_run(invoke, "2027-06-30")
    eve_again = lifecycle_run(invoke, "2027-06-30")
    before = snapshot(database)
    dry = lifecycle_run(invoke, "2027-07-01", "--dry-run")
    after_dry = snapshot(database)
    status_after_dry = field(show(invoke, "practice", BSNR), "Status")
    day = lifecycle_run(invoke, "2027-07-01")
    day_again = lifecycle_run(invoke, "2027-07-01")

    assert section(eve, "Jetzt gesperrt") == []
    assert section(eve, "Sperre innerhalb von 8 Wochen") == [
        f"BSNR {BSNR} Praxis Dr. Müller: gesperrt ab 01.07.2027"
    ]
    assert "Ankündigungsbriefe vorgemerkt: 1" in eve.splitlines()
    assert "Ankündigungsbriefe vorgemerkt: 0" in eve_again.splitlines()

    locked = (
        f"BSNR {BSNR} Praxis Dr. Müller: automatisch gesperrt ab 01.07.2027, § 10.3 "
        "(Ende der Tätigkeit am 15.05.2026)"
    )
    assert dry.startswith("Probelauf, nichts geändert zum 01.07.2027")
    assert section(dry, "Jetzt gesperrt") == [locked]
    assert after_dry == before
    assert status_after_dry == "aktiv"

    assert day.startswith("Lebenszyklus-Lauf zum 01.07.2027")
    assert section(day, "Jetzt gesperrt") == [locked]
    assert section(day_again, "Jetzt gesperrt") == []
    assert "Ankündigungsbriefe vorgemerkt: 0" in day_again.splitlines()
    assert field(show(invoke, "practice", BSNR), "Status") == f"gesperrt – {locked.split(': ')[1]}"
    assert field(show(invoke, "yubikey", KEY), "Status").startswith("gesperrt – automatisch")

    due, held_back = due_letters(invoke, "2027-07-01")
    # The notice, not yet printed, lapsed with the lock: the lock letter says it all.
    assert kinds(due) == [("Sperrung/Kündigung", BSNR)]
    assert any(
        "emuster  wartet: Betriebsstätte ist gesperrt: automatisch gesperrt ab 01.07.2027" in line
        for line in held_back
    )


def test_lifecycle_run_reminds_of_an_unreturned_key_once(
    invoke: Invoke, locked_by_the_dates: None
) -> None:
    exactly_28_days = lifecycle_run(invoke, "2027-07-29")
    dry = lifecycle_run(invoke, "2027-07-30", "--dry-run")
    reminded = lifecycle_run(invoke, "2027-07-30")
    next_day = lifecycle_run(invoke, "2027-07-31")
    due, _ = due_letters(invoke, "2027-07-31")

    reminder = "Yubikey nicht zurückgegeben, Erinnerung vorgemerkt"
    assert section(exactly_28_days, reminder) == []  # more than 28 days, not 28
    assert section(dry, reminder) == [f"Yubikey {KEY}, BSNR {BSNR}"]
    assert section(reminded, reminder) == [f"Yubikey {KEY}, BSNR {BSNR}"]
    assert section(next_day, reminder) == []
    assert kinds(due).count(("Erinnerung Yubikey-Rückgabe", BSNR)) == 1


@SQLITE_ONLY
def test_return_reminder_days_come_from_the_settings(
    invoke: Invoke, locked_by_the_dates: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEXNET_RETURN_REMINDER_DAYS", "7")

    reminded = lifecycle_run(invoke, "2027-07-09")

    assert section(reminded, "Yubikey nicht zurückgegeben, Erinnerung vorgemerkt") == [
        f"Yubikey {KEY}, BSNR {BSNR}"
    ]


# --- Yubikeys coming back (§ 10.2) --------------------------------------------------


def overdue(invoke: Invoke, days: str) -> list[str]:
    """The entries of ``flexnet yubikey overdue --days DAYS``."""
    out = ok(invoke("yubikey", "overdue", "--days", days)).stdout
    header, *entries = out.splitlines()
    assert header.endswith(f"Tagen): {len(entries)}"), out
    return [entry.strip() for entry in entries]


def test_locked_key_is_overdue_until_it_comes_back(
    invoke: Invoke, key_out: SimulatedKey, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = key_out
    day = today()
    before = snapshot(database)
    refused(
        invoke("yubikey", "return", KEY, "--date", day.isoformat(), "--condition", "good"),
        f"Yubikey {KEY} ist versandt, nicht gesperrt",
    )
    assert snapshot(database) == before
    assert overdue(invoke, "0") == []

    lock_practice(invoke)
    listed = overdue(invoke, "0")
    by_default = ok(invoke("yubikey", "overdue")).stdout
    monkeypatch.setenv("FLEXNET_RETURN_REMINDER_DAYS", "5")
    by_setting = ok(invoke("yubikey", "overdue")).stdout
    refused(
        invoke("yubikey", "return", KEY, "--date", "2099-01-01", "--condition", "good"),
        "Das Eingangsdatum liegt in der Zukunft",
    )
    returned = ok(
        invoke(
            "yubikey",
            "return",
            KEY,
            "--date",
            day.isoformat(),
            "--condition",
            "good",
            "--note",
            "unversehrt",
        )
    ).stdout

    assert listed == [f"{KEY}  BSNR {BSNR} {ADDRESS}; gesperrt am {day:%d.%m.%Y}"]
    assert by_default.strip() == "Nicht zurückgegeben (gesperrt seit mindestens 28 Tagen): 0"
    assert by_setting.strip() == "Nicht zurückgegeben (gesperrt seit mindestens 5 Tagen): 0"
    assert returned.startswith(f"Yubikey {KEY} eingegangen; zurück ins Lager erst nach")
    assert overdue(invoke, "0") == []
    assert field(show(invoke, "yubikey", KEY), "Status") == "zurückgegeben"
    assert (
        field(show(invoke, "practice", BSNR), "Yubikey")
        == f"{KEY} (zurückgegeben, {key.public_id})"
    )
    refused(
        invoke("yubikey", "return", KEY, "--condition", "good"),
        f"ist bereits am {day:%d.%m.%Y} eingegangen",
    )


def test_returned_key_is_reprogrammed_into_stock(
    invoke: Invoke, key: SimulatedKey, database: Database, tmp_path: Path
) -> None:
    lock_practice(invoke)
    ok(invoke("yubikey", "return", KEY, "--condition", "good"))
    # The spare key is in stock, not returned: a file with it imports nothing at all.
    before = snapshot(database)
    mixed = import_fresh(invoke, tmp_path / "mixed.csv", KEY, SPARE)
    assert mixed.exit_code == 1
    assert f"Seriennummer {SPARE} ist bereits im Bestand" in mixed.stderr
    assert snapshot(database) == before
    assert field(show(invoke, "yubikey", KEY), "Status") == "zurückgegeben"

    new = SimulatedKey.random()
    imported = import_keys(invoke, tmp_path / "again.csv", (KEY, new))
    shown = show(invoke, "yubikey", KEY)
    other = add_practice(invoke, "881234501")
    assigned = ok(invoke("yubikey", "assign", KEY, "--practice", other)).stdout

    assert imported.strip() == (
        "1 Yubikeys importiert (Yubico OTP: 1, OATH-HOTP: 0); "
        "davon 1 zurückgegeben und neu programmiert"
    )
    assert field(shown, "Status") == "im Lager"
    assert field(shown, "Öffentliche ID") == new.public_id
    assert field(shown, "Betriebsstätte") == "–"
    assert field(show(invoke, "practice", BSNR), "Yubikey") == "keiner"
    assert f"{KEY} der BSNR {other} zugewiesen" in assigned
    assert snapshot(database)["tokens"] == before["tokens"]  # no second row for the key


def test_damaged_key_is_retired_and_cannot_be_reprogrammed(
    invoke: Invoke, key: SimulatedKey, database: Database, tmp_path: Path
) -> None:
    lock_practice(invoke)

    returned = ok(
        invoke("yubikey", "return", KEY, "--condition", "damaged", "--note", "Gehäuse gebrochen")
    ).stdout
    before = snapshot(database)
    again = import_fresh(invoke, tmp_path / "again.csv", KEY)

    assert returned.strip() == f"Yubikey {KEY} eingegangen und ausgemustert"
    assert field(show(invoke, "yubikey", KEY), "Status") == "ausgemustert"
    assert overdue(invoke, "0") == []
    assert again.exit_code == 1
    assert "neu programmieren lässt sich nur ein zurückgegebener Yubikey" in again.stderr
    assert again.stderr.strip().endswith("Import abgebrochen, nichts übernommen (1 Fehler)")
    assert snapshot(database) == before


# --- letters about a key's former life ---------------------------------------------


@SQLITE_ONLY
def test_reminder_for_a_key_returned_meanwhile_is_not_printed(
    invoke: Invoke, key_out: SimulatedKey, tmp_path: Path
) -> None:
    """The nightly run queued a return reminder; the key arrived before the next mail
    run: the receipt cancels the reminder, and the run prints without it."""
    lock_practice(invoke)
    reminded = lifecycle_run(invoke, (today() + timedelta(days=29)).isoformat())
    assert section(reminded, "Yubikey nicht zurückgegeben, Erinnerung vorgemerkt") == [
        f"Yubikey {KEY}, BSNR {BSNR}"
    ]
    ok(invoke("yubikey", "return", KEY, "--condition", "good"))

    run = invoke("letters", "run", "--out", str(tmp_path / "run.pdf"))

    assert run.exit_code == 0, run.output
    printed = "\n".join(page_texts((tmp_path / "run.pdf").read_bytes()))
    assert "Erinnerung: Rückgabe Ihres Yubikeys" not in printed


@SQLITE_ONLY
def test_reprogrammed_key_keeps_the_split_shipment_at_its_new_practice(
    invoke: Invoke, key: SimulatedKey, tmp_path: Path
) -> None:
    """§ 3.2: a key that went out to one practice, came back and was reprogrammed, is
    assigned to another practice. The new practice's password letter waits until its
    own key letter has gone out, as for any new key (the old practice's dispatched key
    letter does not count there)."""
    sent = (today() - timedelta(days=21)).isoformat()  # well past the 3 working days
    ok(invoke("letters", "run", "--out", str(tmp_path / "first.pdf"), "--today", sent))
    ok(invoke("letters", "dispatched", "1", "--date", sent))  # the key went out
    lock_practice(invoke)
    ok(invoke("yubikey", "return", KEY, "--condition", "good"))
    import_keys(invoke, tmp_path / "again.csv", (KEY, SimulatedKey.random()))
    other = add_practice(invoke, "881234501")
    ok(invoke("yubikey", "assign", KEY, "--practice", other))
    ok(invoke("user", "add", "neu", "--practice", other, "--kind", "staff"))

    due, held_back = due_letters(invoke, today().isoformat())

    assert ("Zugangsdaten", other) not in kinds(due), due
    assert any(
        "neu  wartet: Begleitschreiben mit dem Yubikey noch nicht versandt" in line
        for line in held_back
    )


@SQLITE_ONLY
def test_key_letter_of_a_practice_the_key_left_is_not_sent(
    invoke: Invoke, key: SimulatedKey, tmp_path: Path
) -> None:
    """The practice is locked before its key letter went out; the key comes back, is
    reprogrammed and assigned to another practice: the old practice's key letter lapses
    (it would announce a key that belongs to someone else)."""
    lock_practice(invoke)
    ok(invoke("yubikey", "return", KEY, "--condition", "good"))
    import_keys(invoke, tmp_path / "again.csv", (KEY, SimulatedKey.random()))
    other = add_practice(invoke, "881234501")
    ok(invoke("yubikey", "assign", KEY, "--practice", other))

    due, _ = due_letters(invoke, today().isoformat())

    assert [bsnr for kind, bsnr in kinds(due) if kind == "Begleitschreiben Yubikey"] == [other]


# --- exceptions (§ 10.3 sentence 2) -----------------------------------------------------


def test_an_exception_lifts_the_date_lock_and_ending_it_brings_it_back(
    invoke: Invoke, locked_by_the_dates: None
) -> None:
    usage = invoke("exception", "grant", "--until", "2099-12-31", "--reason", "x", "--ref", "1")
    granted = ok(
        invoke(
            "exception",
            "grant",
            "--practice",
            BSNR,
            "--until",
            "2099-12-31",
            "--reason",
            "Praxisabwicklung",
            "--ref",
            "V-2027-17",
            "--decided-by",
            "Vorstand",
        )
    ).stdout
    shown = show(invoke, "practice", BSNR)
    ended = ok(invoke("exception", "end", "--practice", BSNR, "--reason", "erledigt")).stdout

    assert usage.exit_code == 2
    assert granted.strip() == f"Ausnahme für {BSNR} bis einschließlich 31.12.2099"
    assert field(shown, "Status") == "aktiv"
    assert field(shown, "Ausnahme").startswith("bis 31.12.2099: Praxisabwicklung (Az. V-2027-17")
    assert ended.strip() == f"Ausnahme für {BSNR} beendet"
    assert field(show(invoke, "practice", BSNR), "Sperre ab").startswith("01.07.2027 00:00")
    assert len(section(lifecycle_run(invoke, "2027-07-02"), "Jetzt gesperrt")) == 1
