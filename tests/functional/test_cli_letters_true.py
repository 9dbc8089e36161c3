"""Letters that say what is true when they are printed: a lock letter of a lock lifted
before the run is not printed; a lock letter names the day the access ended, not the
day the nightly job ran; a notice names its own legal ground and offers an exception
(§ 10.3 sentence 2) only for the automatic lock; a new-password letter in the weeks a
key is replaced does not claim the Yubikey stays the same."""

from __future__ import annotations

from pathlib import Path

from flexnet.db import Database
from tests.functional.test_cli_lifecycle import (  # noqa: F401 - fixtures
    BSNR,
    KEY,
    SPARE,
    add_practice,
    due_letters,
    key,
    key_out,
    kinds,
    lifecycle_run,
    lock_practice,
    locked_by_the_dates,
    section,
    terminate,
    today,
)
from tests.support.cli import Invoke, ok
from tests.support.pdf import page_texts
from tests.support.yubikeys import SimulatedKey

OTHER = "881234601"


def printed(invoke: Invoke, path: Path) -> list[str]:
    """The pages of a run made today."""
    ok(invoke("letters", "run", "--out", str(path)))
    return page_texts(path.read_bytes())


def test_lock_letters_of_locks_lifted_before_the_run_are_not_printed(
    invoke: Invoke,
    locked_by_the_dates: None,  # noqa: F811
    database: Database,
) -> None:
    add_practice(invoke, OTHER)
    lock_practice(invoke, OTHER)
    ok(invoke("unlock", "practice", OTHER, "--reason", "Irrtum: falsche BSNR"))
    ok(
        invoke(
            "exception",
            "grant",
            "--practice",
            BSNR,
            "--until",
            "2027-12-31",
            "--reason",
            "Praxis wird bis Jahresende fortgeführt",
            "--ref",
            "AZ-17",
            "--decided-by",
            "Vorstand",
        )
    )

    due, waiting = due_letters(invoke, "2027-07-02")

    assert [k for k in kinds(due + waiting) if k[0] == "Sperrung/Kündigung"] == []


def test_a_lock_letter_names_the_day_the_access_ended_not_the_run(
    invoke: Invoke,
    key: SimulatedKey,  # noqa: F811
    tmp_path: Path,
) -> None:
    add_practice(invoke, OTHER)
    # Last days 15.10.2026 and 30.09.2026; the nightly job ran again only on 20.11.2026.
    ok(terminate(invoke, BSNR, "member", "2026-10-01"))
    ok(terminate(invoke, OTHER, "association", "2026-08-01"))
    locked = section(lifecycle_run(invoke, "2026-11-20"), "Jetzt gesperrt")

    letters = [" ".join(text.split()) for text in printed(invoke, tmp_path / "run.pdf")]

    assert len(locked) == 2
    lock_letters = [text for text in letters if "Sperrung Ihres Zugangs" in text]
    first = next(text for text in lock_letters if f"BSNR {BSNR}" in text)
    second = next(text for text in lock_letters if f"BSNR {OTHER}" in text)
    assert "mit Wirkung vom 16.10.2026" in first
    assert "mit Wirkung vom 01.10.2026" in second
    assert "20.11.2026" not in first + second


def test_each_notice_names_its_legal_ground_and_only_the_dates_offer_an_exception(
    invoke: Invoke,
    key: SimulatedKey,  # noqa: F811
    tmp_path: Path,
) -> None:
    add_practice(invoke, OTHER)
    ok(terminate(invoke, BSNR, "association", "2026-10-20"))  # last day 31.12.2026
    ok(invoke("practice", "end", OTHER, "--date", "2025-12-15"))  # § 10.3: from 01.01.2027
    assert "Ankündigungsbriefe vorgemerkt: 2" in lifecycle_run(invoke, "2026-11-20")

    notices = [
        " ".join(text.split())
        for text in printed(invoke, tmp_path / "run.pdf")
        if "Ankündigung: Ende Ihres Zugangs" in text
    ]

    termination = next(text for text in notices if f"BSNR {BSNR}" in text)
    automatic = next(text for text in notices if f"BSNR {OTHER}" in text)
    assert "§ 10 Abs. 3 Satz 2" not in termination
    assert "Rechtsgrundlage: § 10 Abs. 2 der Nutzungsbedingungen (Kündigung)" in termination
    assert "§ 10 Abs. 3 Satz 2" in automatic
    assert "Rechtsgrundlage: § 10 Abs. 3 der Nutzungsbedingungen" in automatic
