"""Mistakes undone on the command line: a termination corrected or withdrawn, before and
after it took effect (only the lock it caused is lifted); an unlock that cannot lift a
lock (an extraordinary termination) says why and the way, and changes nothing; a key
locked for misuse or by the practice itself unlocked after a false alarm (a lost one
never); exceptions listed with their end and ended early."""

from __future__ import annotations

from datetime import date

from flexnet.db import Database
from tests.functional.test_cli_lifecycle import (  # noqa: F401 - fixtures
    BSNR,
    KEY,
    add_practice,
    due_letters,
    field,
    key,
    key_out,
    kinds,
    lifecycle_run,
    lock_practice,
    section,
    show,
    terminate,
    today,
)
from tests.support.cli import Invoke, ok, refused, snapshot
from tests.support.yubikeys import SimulatedKey

OTHER = "881234601"


def status(invoke: Invoke, bsnr: str = BSNR) -> str:
    return field(show(invoke, "practice", bsnr), "Status")


def test_an_extraordinary_termination_is_not_lifted_by_an_unlock(
    invoke: Invoke,
    key_out: SimulatedKey,  # noqa: F811
    database: Database,
) -> None:
    ok(terminate(invoke, BSNR, "extraordinary", "2026-11-30", "--reason", "Weitergabe"))
    before = snapshot(database)

    unlock = invoke("unlock", "practice", BSNR, "--reason", "Irrtum")

    refused(unlock, f"BSNR {BSNR} bleibt gesperrt (außerordentliche Kündigung (§ 10.2)")
    refused(unlock, f"flexnet termination withdraw {BSNR} --reason")
    assert snapshot(database) == before
    assert status(invoke).startswith("gesperrt – außerordentliche Kündigung")


def test_a_withdrawn_extraordinary_termination_lifts_its_lock_only(
    invoke: Invoke,
    key_out: SimulatedKey,  # noqa: F811
) -> None:
    ok(invoke("user", "add", "kmeier", "--practice", BSNR, "--kind", "staff"))
    ok(invoke("lock", "user", "kmeier", "--cause", "misuse", "--reason", "Anruf"))
    ok(terminate(invoke, BSNR, "extraordinary", "2026-11-30", "--reason", "Weitergabe"))

    withdrawn = ok(invoke("termination", "withdraw", BSNR, "--reason", "falsche BSNR"))

    assert f"Kündigung der BSNR {BSNR} zurückgenommen" in withdrawn.stdout
    assert status(invoke) == "aktiv"
    assert field(show(invoke, "user", "emuster"), "Status") != "gesperrt"
    assert field(show(invoke, "user", "kmeier"), "Status").startswith("gesperrt – Anruf")
    assert field(show(invoke, "yubikey", KEY), "Status") == "versandt"
    due, waiting = due_letters(invoke, today().isoformat())
    assert ("Sperrung/Kündigung", BSNR) not in kinds(due + waiting)


def test_a_termination_is_corrected_and_withdrawn_before_and_after_it_took_effect(
    invoke: Invoke,
    key: SimulatedKey,  # noqa: F811
    database: Database,
) -> None:
    add_practice(invoke, OTHER)
    # Before: the association's notice was received on 04.02.2027, not 23.11.2026.
    ok(terminate(invoke, OTHER, "association", "2026-11-23"))
    corrected = ok(
        invoke(
            "termination", "correct", OTHER, "--notice-date", "2027-02-04", "--reason", "Tippfehler"
        )
    )
    # After: the member's termination took effect on 16.10.2026 and was made durable;
    # the member asked for 31.12.2026 in the same letter.
    ok(terminate(invoke, BSNR, "member", "2026-10-01"))
    assert len(section(lifecycle_run(invoke, "2026-11-20"), "Jetzt gesperrt")) == 1
    later = ok(
        invoke(
            "termination",
            "correct",
            BSNR,
            "--requested-date",
            "2026-12-31",
            "--reason",
            "Wunschtermin übersehen",
        )
    )
    before = snapshot(database)
    nothing = invoke("termination", "withdraw", "881234602", "--reason", "x")
    no_reason = invoke("termination", "withdraw", BSNR, "--reason", " ")

    assert "letzter Tag mit Zugang 30.06.2027" in corrected.stdout
    assert "letzter Tag mit Zugang 31.12.2026" in later.stdout
    refused(nothing, "881234602")
    refused(no_reason, "Bitte einen Grund angeben")
    assert snapshot(database) == before
    assert status(invoke) == "aktiv"  # the lock is lifted: access until 31.12.2026
    assert "zum 31.12.2026 (§ 10.2)" in field(show(invoke, "practice", BSNR), "Kündigung")
    assert "zum 30.06.2027 (§ 10.2)" in field(show(invoke, "practice", OTHER), "Kündigung")

    ok(invoke("termination", "withdraw", OTHER, "--reason", "Kündigung beruhte auf Irrtum"))
    shown = show(invoke, "practice", OTHER)
    assert "  Kündigung:" not in shown and status(invoke, OTHER) == "aktiv"


def test_a_key_locked_for_misuse_is_unlocked_after_a_false_alarm_a_lost_one_never(
    invoke: Invoke,
    key_out: SimulatedKey,  # noqa: F811
    database: Database,
) -> None:
    ok(invoke("lock", "key", KEY, "--cause", "misuse", "--reason", "Anruf: Key verschwunden"))
    unlocked = ok(invoke("unlock", "key", KEY, "--reason", "Key lag in der Schublade"))
    after_unlock = field(show(invoke, "yubikey", KEY), "Status")
    ok(invoke("lock", "key", KEY, "--cause", "manual", "--reason", "Verstoß"))
    manual = invoke("unlock", "key", KEY, "--reason", "x")
    before = snapshot(database)

    refused(manual, "Nur eine Sperre wegen Missbrauchsverdacht oder eine Selbstsperre")
    assert snapshot(database) == before
    assert unlocked.stdout.strip() == f"Yubikey {KEY} entsperrt"
    assert after_unlock == "versandt"


def test_a_lost_key_or_one_locked_with_its_practice_stays_locked(
    invoke: Invoke,
    key_out: SimulatedKey,  # noqa: F811
    database: Database,
) -> None:
    lock_practice(invoke)
    with_practice = invoke("unlock", "key", KEY, "--reason", "Irrtum")
    ok(invoke("unlock", "practice", BSNR, "--reason", "Irrtum"))
    ok(invoke("lock", "key", KEY, "--cause", "loss", "--reason", "Verlust gemeldet"))
    before = snapshot(database)
    lost = invoke("unlock", "key", KEY, "--reason", "wiedergefunden")

    refused(with_practice, f"flexnet unlock practice {BSNR}")
    refused(lost, f"Yubikey {KEY} ist als verloren gemeldet und bleibt ausgemustert")
    assert snapshot(database) == before
    assert field(show(invoke, "yubikey", KEY), "Status") == "verloren"


def test_exceptions_are_listed_with_their_end_and_ended_early(
    invoke: Invoke,
    key: SimulatedKey,  # noqa: F811
) -> None:
    add_practice(invoke, OTHER)
    until = date(today().year + 1, 6, 30)
    for who in (("--practice", OTHER), ("--user", "emuster")):
        ok(
            invoke(
                "exception",
                "grant",
                *who,
                "--until",
                until.isoformat(),
                "--reason",
                "Vertretung",
                "--ref",
                "AZ-9",
                "--decided-by",
                "Vorstand",
            )
        )
    listed = ok(invoke("exception", "list")).stdout.splitlines()
    ok(invoke("exception", "end", "--user", "emuster", "--reason", "Vertretung beendet"))
    after = ok(invoke("exception", "list")).stdout.splitlines()

    assert listed[0] == "Ausnahmen: 2"
    assert f"  BSNR {OTHER} Praxis Neu: bis {until:%d.%m.%Y} (Az. AZ-9, Vorstand): Vertretung" in (
        listed
    )
    assert any(line.startswith("  emuster (BSNR 881234500): bis") for line in listed)
    assert after[0] == "Ausnahmen: 1" and "emuster" not in "\n".join(after)


def test_a_terminated_practice_takes_part_again_with_new_terms_key_and_passwords(
    invoke: Invoke,
    key_out: SimulatedKey,  # noqa: F811
    database: Database,
) -> None:
    from tests.functional.test_cli_lifecycle import SPARE

    ok(invoke("user", "add", "kmeier", "--practice", BSNR, "--kind", "staff"))
    ok(invoke("lock", "user", "kmeier", "--cause", "misuse", "--reason", "Anruf"))
    ok(terminate(invoke, BSNR, "member", "2026-10-01"))  # last day 15.10.2026
    add_practice(invoke, OTHER)
    ok(terminate(invoke, OTHER, "association", "2026-11-23"))  # not yet in effect
    assert len(section(lifecycle_run(invoke, "2026-11-20"), "Jetzt gesperrt")) == 1
    before = snapshot(database)
    too_early = invoke(
        "practice", "reactivate", OTHER, "--terms-version", "1.0", "--channel", "paper",
        "--reason", "neue Teilnahmeerklärung",
    )  # fmt: skip
    no_key = invoke(
        "practice", "reactivate", BSNR, "--terms-version", "1.0", "--channel", "paper",
        "--reason", "neue Teilnahmeerklärung",
    )  # fmt: skip
    refused(too_early, f"flexnet termination withdraw {OTHER}")
    refused(no_key, "bitte einen neuen angeben (--key SERIAL)")
    assert snapshot(database) == before

    again = ok(
        invoke(
            "practice",
            "reactivate",
            BSNR,
            "--terms-version",
            "1.0",
            "--channel",
            "paper",
            "--key",
            SPARE,
            "--reason",
            "neue Teilnahmeerklärung vom 01.12.2026",
        )
    ).stdout

    assert "Neue Zugangsdaten für: emuster" in again
    assert status(invoke) == "aktiv"
    assert "  Kündigung:" not in show(invoke, "practice", BSNR)
    assert field(show(invoke, "user", "emuster"), "Status").startswith("wartet")
    assert field(show(invoke, "user", "kmeier"), "Status").startswith("gesperrt – Anruf")
    assert field(show(invoke, "yubikey", KEY), "Status").startswith("gesperrt – Kündigung")
    due, waiting = due_letters(invoke, today().isoformat())
    assert ("Begleitschreiben Yubikey", BSNR) in kinds(due)
    credentials = [line for line in waiting if "Zugangsdaten" in line and "emuster" in line]
    assert len(credentials) == 1 and "noch nicht versandt (§ 3.2)" in credentials[0]
