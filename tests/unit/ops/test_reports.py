"""The management's reports at a stated instant, with concrete dates: the next quarter's
locks by the § 10.3 and § 10.2 dates (quarter boundaries, exceptions moving a lock into
or out of it, a member's own end), practices by status and kind, keys out, fees open,
terms versions; the CSV reads back exactly with German settings."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from flexnet.lifecycle import locks
from flexnet.lifecycle.rules import start_of_day
from flexnet.models import (
    LockException,
    Practice,
    PracticeKind,
    TerminationBy,
    Token,
    TokenStatus,
    User,
    UserKind,
)
from flexnet.ops import reports
from flexnet.provisioning import fees
from tests.conftest import NOW, STAFF
from tests.support.seed import lanr
from tests.support.yubikeys import SimulatedKey

AT = start_of_day(date(2026, 12, 15))  # Q4 2026: the next quarter is 01.01.–31.03.2027


def ended(practice: Practice, on: date, until: date | None = None) -> Practice:
    practice.activity_ended_on = on
    if until is not None:
        practice.lock_exception = LockException(
            until=until, reason="Vertretung", decision_ref=f"AZ-{practice.bsnr[-2:]}",
            decided_by="Vorstand", created_at=NOW,
        )  # fmt: skip
    return practice


def test_locks_in_the_next_quarter_follow_the_dates_and_the_exceptions(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
) -> None:
    first_day = ended(make_practice(name="Erster Tag"), date(2025, 12, 20))  # → 01.01.2027
    ended(make_practice(name="Schon gesperrt"), date(2025, 9, 30))  # → 01.10.2026, past
    ended(make_practice(name="Ausnahme hinaus"), date(2025, 12, 20), until=date(2027, 3, 31))
    moved_in = ended(make_practice(name="Ausnahme hinein"), date(2025, 3, 31), date(2027, 2, 15))
    after = make_practice(name="Kündigung 31.03.")
    quarter_end = make_practice(name="Kündigung 31.12.")
    for practice, by, notice in (
        (after, TerminationBy.MEMBER, date(2027, 3, 17)),  # last day 31.03.2027
        (quarter_end, TerminationBy.ASSOCIATION, date(2026, 10, 20)),  # last day 31.12.2026
    ):
        locks.terminate(
            session, bsnr=practice.bsnr, by=by, notice_date=notice, actor=STAFF, now=NOW
        )
    shared = make_practice(name="Gemeinschaftspraxis")
    leaving = make_user(practice=shared, kind=UserKind.MEMBER, lanr=lanr(1), username="geht")
    make_user(practice=shared, kind=UserKind.MEMBER, lanr=lanr(2), username="bleibt")
    leaving.activity_ended_on = date(2025, 11, 10)  # → 01.01.2027, the member alone
    session.flush()

    made = reports.make(session, "locks-next-quarter", now=AT, quarters=4)

    assert made.title == "Sperren im nächsten Quartal (01.01.2027–31.03.2027)"
    assert [
        (row["practice"], row["username"], row["locked_from"], row["exception_until"])
        for row in made.rows
    ] == sorted(
        [
            ("Erster Tag", None, date(2027, 1, 1), None),
            ("Kündigung 31.12.", None, date(2027, 1, 1), None),
            ("Gemeinschaftspraxis", "geht", date(2027, 1, 1), None),
            ("Ausnahme hinein", None, date(2027, 2, 16), date(2027, 2, 15)),
        ],
        key=lambda row: (row[2], _bsnr(made.rows, row[0])),
    )
    reasons = {row["practice"]: row["reason"] for row in made.rows}
    assert "§ 10.3" in reasons["Erster Tag"] and "§ 10.2" in reasons["Kündigung 31.12."]
    assert first_day.bsnr in {row["bsnr"] for row in made.rows}
    assert moved_in.lock_exception is not None


def _bsnr(rows: list[dict[str, object]], name: str) -> str:
    return str(next(row["bsnr"] for row in rows if row["practice"] == name))


def test_practices_keys_fees_and_terms_and_the_csv_reads_back(
    session: Session,
    make_practice: Callable[..., Practice],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
) -> None:
    members = [make_practice() for _ in range(3)]
    make_practice(kind=PracticeKind.THIRD_PARTY)
    make_practice(terms=False)
    ended(members[0], date(2025, 3, 31))  # locked by § 10.3 since 01.04.2026
    active, _ = make_yubikey(practice=members[1])
    locked, _ = make_yubikey(practice=members[2])
    lost, _ = make_yubikey(practice=members[2], status=TokenStatus.LOST)
    make_yubikey(status=TokenStatus.STOCK)
    locks.lock_key(
        session, serial=locked.serial, cause=locks.LockCause.MISUSE, reason="Anruf",
        actor=STAFF, now=NOW,
    )  # fmt: skip
    owed = fees.record_loss(session, lost, amount_cents=123450, actor=STAFF, now=NOW)
    paid_key, _ = make_yubikey(practice=members[1], status=TokenStatus.LOST)
    paid = fees.record_loss(session, paid_key, amount_cents=6000, actor=STAFF, now=NOW)
    assert owed is not None and paid is not None
    fees.pay(session, fee_id=paid.id, on=NOW.date(), actor=STAFF, now=NOW)

    made = {name: reports.make(session, name, now=AT, quarters=4) for name in reports.REPORTS}

    assert [(r["kind"], r["status"], r["count"]) for r in made["practices"].rows] == [
        ("Mitglied", "aktiv", 2),
        ("Mitglied", "wartet", 1),
        ("Mitglied", "gesperrt", 1),
        ("Dritte (§ 1.1)", "aktiv", 1),
    ]
    assert [(r["serial"], r["expected_back"]) for r in made["keys-out"].rows] == sorted(
        [(active.serial, "nein"), (locked.serial, "ja")]
    )
    assert [(r["serial"], r["amount_cents"]) for r in made["fees"].rows] == [(lost.serial, 123450)]
    assert made["terms"].rows[-1] == {
        "version": "keine", "effective_on": None, "accept_by": None, "practices": 1,
    }  # fmt: skip
    text = made["fees"].as_csv()
    assert text.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(text.decode("utf-8-sig")), delimiter=";"))
    assert [(r["Stand"], r["Yubikey"], r["Betrag (EUR)"], r["Fällig seit"]) for r in rows] == [
        ("15.12.2026 00:00", lost.serial, "1234,50", "23.11.2026")
    ]
    assert made["fees"].as_json()["as_of"] == AT.isoformat()
    assert datetime.fromisoformat(str(made["fees"].as_json()["as_of"])).astimezone(UTC)
