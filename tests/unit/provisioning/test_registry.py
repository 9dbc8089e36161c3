"""The registry import at real size (4,000 practices, 6,000 members) and in detail: new
records, changed addresses and names, a new and a cleared end of activity, the same
file twice, a bad row that changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flexnet.lifecycle.rules import BERLIN
from flexnet.lifecycle.status import State, user_status
from flexnet.models import (
    AuditEntry,
    Letter,
    LetterKind,
    Practice,
    PracticeStatus,
    User,
    UserKind,
    UserStatus,
)
from flexnet.otp.importer import ImportFailed
from flexnet.provisioning import registry, registry_file
from flexnet.provisioning.registry import derive_username
from tests.conftest import STAFF
from tests.support.seed import lanr

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=BERLIN)
HEADER = "BSNR;Praxis;Adresszusatz;Strasse;PLZ;Ort;Telefon;LANR;Name;Beginn;Ende\n"


def csv_of(rows: list[str], header: str = HEADER) -> bytes:
    return (header + "".join(f"{row}\n" for row in rows)).encode("utf-8")


def big_file(practices: int = 4000, ended: dict[int, str] | None = None) -> bytes:
    """``practices`` practices, every second one with two members (6,000 members for
    4,000 practices: 2,000 with two and 2,000 with one); ``ended``: member number → end date."""
    ended = ended or {}
    rows, member = [], 0
    for n in range(practices):
        practice = f"{700000000 + n};Praxis {n};;Breiter Weg {n % 200 + 1};39104;Magdeburg;;"
        for _ in range(2 if n % 2 == 0 else 1):
            member += 1
            rows.append(
                f"{practice}{lanr(member)};Dr. Person {member};01.04.2010;{ended.get(member, '')}"
            )
    return csv_of(rows)


def run(session: Session, data: bytes, now: datetime = NOW) -> registry.Plan:
    planned = registry.plan(session, registry_file.parse(data), now=now)
    registry.apply(session, planned, actor=STAFF, now=now)
    return planned


def count(session: Session, model: type[object]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0  # type: ignore[arg-type]


def test_thousands_of_practices_come_in_once_and_a_second_import_changes_nothing(
    session: Session,
) -> None:
    first = run(session, big_file())
    entries = count(session, AuditEntry)
    again = registry.plan(session, registry_file.parse(big_file()), now=NOW)
    registry.apply(session, again, actor=STAFF, now=NOW)

    assert len(first.practices) == 4000 and len(first.members) == 6000
    assert count(session, Practice) == 4000 and count(session, User) == 6000
    assert (
        session.scalar(select(func.count()).where(Letter.kind == LetterKind.CREDENTIALS)) == 6000
    )  # each waits for the practice's terms (§ 1.3)
    assert (
        session.scalar(select(func.count()).where(Practice.status == PracticeStatus.PENDING))
        == 4000
    )
    assert again.steps == 0 and again.unchanged_practices == 4000
    assert again.unchanged_members == 6000
    assert count(session, AuditEntry) == entries  # not even an entry: nothing happened
    searched = session.scalars(select(Practice.search_key).where(Practice.bsnr == "700000007"))
    assert searched.one() == "praxis 7\nmagdeburg"


def test_a_changed_address_a_new_end_and_a_cleared_end_are_applied_with_audit(
    session: Session,
) -> None:
    run(session, big_file(ended={3: "30.06.2026"}))
    changed = big_file(ended={1: "2027-02-15"}).replace(
        b"700000005;Praxis 5;;Breiter Weg 6;39104;Magdeburg",
        b"700000005;Praxis 5;Haus B;Leipziger Str. 44;39112;Magdeburg",
    )

    planned = run(session, changed, now=datetime(2027, 3, 2, 9, 0, tzinfo=BERLIN))

    assert planned.steps == 3 and planned.unchanged_practices == 3999
    moved = session.scalars(select(Practice).where(Practice.bsnr == "700000005")).one()
    assert (moved.address_extra, moved.street, moved.zip_code) == (
        "Haus B",
        "Leipziger Str. 44",
        "39112",
    )
    first = session.scalars(select(User).where(User.lanr == lanr(1))).one()
    third = session.scalars(select(User).where(User.lanr == lanr(3))).one()
    assert first.activity_ended_on == date(2027, 2, 15)
    assert third.activity_ended_on is None  # the registry cleared it
    tags = list(
        session.execute(
            select(AuditEntry.tag, AuditEntry.subject_id, AuditEntry.data)
            .where(
                AuditEntry.tag.in_(
                    ("practice:record:edit", "account:activity:end", "account:activity:clear")
                )
            )
            .order_by(AuditEntry.id)
        )
    )
    assert [(tag, subject) for tag, subject, _ in tags][-3:] == [
        ("practice:record:edit", "700000005"),
        ("account:activity:end", first.username),
        ("account:activity:clear", third.username),
    ]
    assert json.loads(tags[-1][2])["previous"] == "2026-06-30"
    assert "Register" in json.loads(tags[-1][2])["reason"]


def test_a_member_ending_locks_by_the_dates_and_the_practice_follows_its_last(
    session: Session,
) -> None:
    run(session, big_file(practices=4, ended={5: "15.05.2026"}))

    member = session.scalars(select(User).where(User.lanr == lanr(5))).one()
    assert member.activity_ended_on == date(2026, 5, 15)
    assert user_status(member, datetime(2027, 7, 1, tzinfo=BERLIN)).lock_at == datetime(
        2027, 7, 1, tzinfo=BERLIN
    )


def test_one_bad_row_changes_nothing_and_every_bad_row_is_named(session: Session) -> None:
    rows = big_file(practices=3).decode().splitlines()[1:]
    rows[1] = rows[1].replace(";39104;", ";3910;")
    rows[2] = rows[2].replace(lanr(3), "123456701")
    rows.append("700000099;Praxis X;;Weg 1;39104;Magdeburg;;;;;31.12.2026")

    with pytest.raises(ImportFailed) as failed:
        registry_file.parse(csv_of(rows))

    assert failed.value.errors == [
        "Zeile 3: Postleitzahl '3910' ist ungültig: erwartet werden 5 Ziffern",
        "Zeile 4: LANR 123456701 ist ungültig: die Prüfziffer (7. Stelle) stimmt nicht",
        "Zeile 7: Angaben zu einem Mitglied ohne LANR",
    ]
    assert count(session, Practice) == 0


def test_rows_that_contradict_each_other_or_the_database_are_refused(
    session: Session, make_practice: Callable[..., Practice], make_user: Callable[..., User]
) -> None:
    existing = make_practice(bsnr="700000001")
    make_user(practice=existing, kind=UserKind.MEMBER, name="Dr. Anna Alt", lanr=lanr(9))
    data = csv_of(
        [
            f"700000001;Praxis 1;;Weg 1;39104;Magdeburg;;{lanr(1)};Dr. Eins;;",
            f"700000001;Praxis Eins;;Weg 1;39104;Magdeburg;;{lanr(2)};Dr. Zwei;;",
            f"700000002;Praxis 2;;Weg 2;39104;Magdeburg;;{lanr(9)};Dr. Bert Neu;;",
        ]
    )

    with pytest.raises(ImportFailed) as contradicting:
        registry_file.parse(data)
    rows = registry_file.parse(data.replace(b"Praxis Eins", b"Praxis 1"))
    with pytest.raises(ImportFailed) as against_database:
        registry.plan(session, rows, now=NOW)

    assert contradicting.value.errors == ["Zeile 3: BSNR 700000001: name anders als in Zeile 2"]
    assert against_database.value.errors == [
        f"Zeile 4: LANR {lanr(9)} gehört bereits Dr. Anna Alt (Benutzer user1, BSNR 700000001); "
        "eine LANR gehört genau einer Person"
    ]


def test_spreadsheet_exports_with_a_bom_commas_and_both_kinds_of_dates(session: Session) -> None:
    header = "\ufeffbsnr,praxis,straße,plz,ort,lanr,name,beginn,ende,benutzername\n"
    data = csv_of(
        [
            f"700000001,Praxis Müller-Lüdenscheid,Weg 1,39104,Köthen (Anhalt),{lanr(1)},"
            "Dr. med. Jürgen Weiß,01.04.2010,2027-12-31,",
            f"700000001,Praxis Müller-Lüdenscheid,Weg 1,39104,Köthen (Anhalt),{lanr(2)},"
            "Dr. Anna Groß,2011-01-01,,agross-mvz",
        ],
        header=header,
    )

    run(session, data)

    people = {u.lanr: u for u in session.scalars(select(User))}
    assert people[lanr(1)].username == "jweiss" and people[lanr(1)].name == "Dr. med. Jürgen Weiß"
    assert people[lanr(1)].activity_ended_on == date(2027, 12, 31)
    assert people[lanr(2)].username == "agross-mvz"
    assert all(u.status is UserStatus.PENDING for u in people.values())
    assert user_status(people[lanr(2)], NOW).state is State.PENDING  # terms first (§ 1.3)


def test_a_member_long_gone_gets_no_account_and_a_known_one_keeps_his(
    session: Session, make_practice: Callable[..., Practice], make_user: Callable[..., User]
) -> None:
    practice = make_practice(bsnr="700000001", name="Praxis 1", street="Weg 1", zip_code="39104")
    known = make_user(practice=practice, kind=UserKind.MEMBER, name="Dr. Eins", lanr=lanr(1))
    data = csv_of(
        [
            f"700000001;Praxis 1;;Weg 1;39104;Magdeburg;;{lanr(1)};Dr. Eins;;",
            f"700000001;Praxis 1;;Weg 1;39104;Magdeburg;;{lanr(2)};Dr. Zwei;;31.12.2024",
        ]
    )

    planned = run(session, data)

    assert planned.unchanged_practices == 1 and planned.unchanged_members == 1
    assert [(row.lanr, why) for row, why in planned.skipped] == [
        (lanr(2), "Tätigkeit endete am 31.12.2024: kein Zugang mehr (§ 10.3)")
    ]
    assert [u.username for u in session.scalars(select(User))] == [known.username]


@pytest.mark.parametrize(
    ("name", "taken", "username"),
    [
        ("Dr. med. Anna Schmidt-Berger", set(), "aschmidt-berger"),
        ("Dr. med. Anna Schmidt-Berger", {"aschmidt-berger"}, "aschmidt-berger2"),
        ("Prof. Dr. Jürgen Weiß", set(), "jweiss"),
        ("Dipl.-Psych. Ève Ô", set(), "eo-mitglied"),
    ],
)
def test_usernames_come_from_names(name: str, taken: set[str], username: str) -> None:
    assert derive_username(name, set(taken)) == username
