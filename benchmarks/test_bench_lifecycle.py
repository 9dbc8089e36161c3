"""The nightly lifecycle job over 50,000 practices and 150,000 users (issue 7).

The population is the association's size: 50,000 practices with three users and a
Yubikey each. Of them 5,000 practices ended their activity in Q3 2025 (§ 10.3: locked
from 2026-10-01, a backlog the job makes durable today), 100 of those hold an
exception until the end of 2026, 1,000 practices ended in Q4 2025 (locked from
2027-01-01, within the eight-week warning) and 1,000 members ended on their own in
Q3 2025. 100,000 authentication log rows are older than 31 days. Each run is a
separate ``flexnet lifecycle run`` process on PostgreSQL (fsync on).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import URL

from benchmarks.report import machine, write_section
from benchmarks.test_bench_letters import flexnet, flexnet_env
from flexnet.accounts.folding import search_key
from flexnet.db import Database
from flexnet.models import (
    AuthEvent,
    Letter,
    LetterKind,
    LockException,
    Practice,
    PracticeKind,
    PracticeStatus,
    TermsAcceptance,
    TermsChannel,
    Token,
    TokenKind,
    TokenStatus,
    User,
    UserKind,
    UserStatus,
)
from tests.conftest import NOW

PRACTICES = 50_000
LOCKING = 5_000  # ended 2025-08-15: locked from 2026-10-01
EXCEPTED = 100  # of those, an exception until 2026-12-31
UPCOMING = 1_000  # ended 2025-11-15: locked from 2027-01-01 (within eight weeks)
MEMBERS_ENDING = 1_000  # the only member's own end, 2025-08-15: the practice follows (§ 1.2)
OLD_AUTH_EVENTS = 100_000
TODAY = date(2026, 11, 23)


def _ended_on(n: int) -> date | None:
    if n < LOCKING:
        return date(2025, 8, 15)
    if n < LOCKING + UPCOMING:
        return date(2025, 11, 15)
    return None


# Cities and names with umlauts, in both spellings, for staff's search.
CITIES = (
    "Magdeburg",
    "Halle (Saale)",
    "Köthen (Anhalt)",
    "Weißenfels",
    "Dessau-Roßlau",
    "Lutherstadt Wittenberg",
    "Quedlinburg",
    "Zörbig",
)
NAMES = ("Jürgen Groß", "Erika Müller", "Juergen Gross", "Hans Mueller", "Änne Schäfer")


def seed(url: URL) -> None:
    """Bulk inserts (no mapper events): the search keys are set here as the models'
    event would set them."""
    database = Database.from_url(url)
    with database.session() as session:
        session.execute(
            insert(Practice),
            [
                {
                    "bsnr": f"88{n:07d}",
                    "name": f"Praxis Dr. Beispiel {n}",
                    "street": "Doctor-Eisenbart-Ring 2",
                    "zip_code": "39120",
                    "city": CITIES[n % len(CITIES)],
                    "search_key": search_key(f"Praxis Dr. Beispiel {n}", CITIES[n % len(CITIES)]),
                    "kind": PracticeKind.MEMBER,
                    "access_profile": "full",
                    "activity_ended_on": _ended_on(n),
                    "status": PracticeStatus.ACTIVE,
                    "created_at": NOW,
                }
                for n in range(PRACTICES)
            ],
        )
        ids = list(session.scalars(select(Practice.id).order_by(Practice.bsnr)))
        session.execute(
            insert(TermsAcceptance),
            [
                {
                    "practice_id": pid,
                    "version": "1.0",
                    "accepted_on": date(2024, 1, 2),
                    "channel": TermsChannel.PAPER,
                }
                for pid in ids
            ],
        )
        kinds = (UserKind.MEMBER, UserKind.STAFF, UserKind.PRACTICE_ACCESS)
        session.execute(
            insert(User),
            [
                {
                    "username": f"u{n}-{i}",
                    "name": f"{NAMES[(n + i) % len(NAMES)]} {n}",
                    "search_key": search_key(f"{NAMES[(n + i) % len(NAMES)]} {n}"),
                    "practice_id": pid,
                    "kind": kinds[i],
                    "lanr": f"{n:07d}51" if i == 0 else None,
                    "status": UserStatus.ACTIVE,
                    "first_login_at": NOW,
                    "activity_ended_on": (
                        date(2025, 8, 15)
                        if i == 0 and LOCKING + UPCOMING <= n < LOCKING + UPCOMING + MEMBERS_ENDING
                        else None
                    ),
                    "created_at": NOW,
                }
                for n, pid in enumerate(ids)
                for i in range(3)
            ],
        )
        session.execute(
            insert(Token),
            [
                {
                    "serial": f"{20_000_000 + n}",
                    "kind": TokenKind.YUBICO_OTP,
                    "remote_validation": True,
                    "status": TokenStatus.ACTIVE,
                    "practice_id": pid,
                    "created_at": NOW,
                }
                for n, pid in enumerate(ids)
            ],
        )
        session.execute(
            insert(LockException),
            [
                {
                    "practice_id": pid,
                    "until": date(2026, 12, 31),
                    "reason": "Praxisabwicklung",
                    "decision_ref": f"V-{n}",
                    "decided_by": "Vorstand",
                }
                for n, pid in enumerate(ids[:EXCEPTED])
            ],
        )
        old = NOW - timedelta(days=40)
        session.execute(
            insert(AuthEvent),
            [
                {
                    "at": old + timedelta(seconds=n),
                    "channel": "radius",
                    "username": f"u{n % PRACTICES}-1",
                    "client": "asa-1",
                    "source_ip": "192.0.2.10",
                    "outcome": "accept",
                    "reason": "ok",
                }
                for n in range(OLD_AUTH_EVENTS)
            ],
        )
    database.dispose()


def _count(url: URL) -> dict[str, int]:
    database = Database.from_url(url)
    with database.session() as session:
        counts = {
            "locked practices": session.scalar(
                select(func.count())
                .select_from(Practice)
                .where(Practice.status == PracticeStatus.LOCKED)
            )
            or 0,
            "locked users": session.scalar(
                select(func.count()).select_from(User).where(User.status == UserStatus.LOCKED)
            )
            or 0,
            "lock letters": session.scalar(
                select(func.count()).select_from(Letter).where(Letter.kind == LetterKind.LOCK)
            )
            or 0,
            "notice letters": session.scalar(
                select(func.count())
                .select_from(Letter)
                .where(Letter.kind == LetterKind.LOCK_NOTICE)
            )
            or 0,
        }
    database.dispose()
    return counts


@pytest.mark.postgres
def test_lifecycle_run_over_50000_practices(pg_url: URL, tmp_path: Path) -> None:
    seed(pg_url)
    env = flexnet_env(pg_url, tmp_path)
    del env["FLEXNET_ACTOR"]  # the nightly timer names nobody: the job acts as the system
    run = ("lifecycle", "run", "--today", f"{TODAY}")
    dry = flexnet(env, *run, "--dry-run")
    first = flexnet(env, *run)
    counts = _count(pg_url)
    again = flexnet(env, *run)

    locking = LOCKING - EXCEPTED + MEMBERS_ENDING  # a practice follows its last member
    assert counts["locked practices"] == locking, counts
    assert counts["locked users"] == 3 * locking
    assert counts["lock letters"] == locking  # one for the practice, none more for its member
    assert counts["notice letters"] == UPCOMING + EXCEPTED  # the exceptions end 2026-12-31
    assert "Jetzt gesperrt: 0" in again.stdout
    rows = "\n".join(
        f"| {name} | {measured.seconds:.1f} s | {measured.peak_mb:.0f} MB |"
        for name, measured in (
            ("dry run (report only)", dry),
            (
                f"first run: {locking:,} practices and {3 * locking:,} users "
                f"locked, {UPCOMING + EXCEPTED:,} notices, {OLD_AUTH_EVENTS:,} log rows purged",
                first,
            ),
            ("second run the same day (nothing to do)", again),
        )
    )
    verdict = "met" if max(dry.seconds, first.seconds, again.seconds) <= 10 else "NOT met"
    write_section(
        "lifecycle",
        f"""## Lifecycle job (issue 7)

`flexnet lifecycle run --today {TODAY}` as a separate process on PostgreSQL (fsync on)
over {PRACTICES:,} practices and {3 * PRACTICES:,} users (three per practice, one key
each). {LOCKING:,} practices ended in Q3 2025 (locked from 2026-10-01; {EXCEPTED} of them
hold an exception), {UPCOMING:,} ended in Q4 2025 (locked from 2027-01-01, warned now),
{MEMBERS_ENDING:,} practices' only members ended on their own in Q3 2025 (the practices
follow them). Machine: {machine()}.
Command: `make bench` (`benchmarks/test_bench_lifecycle.py`).

| run | time | peak memory |
| --- | --- | --- |
{rows}

| target | this run |
| --- | --- |
| each run ≤ 10 s | {verdict} |
""",
    )
