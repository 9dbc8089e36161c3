"""Retention: every category of personal data ends when its time is up, and not before,
and the audit trail stays verifiable through every purge (docs/DATA_PROTECTION.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.accounts import servicerequests
from flexnet.audit import Actor, AuditTag
from flexnet.lifecycle import job, locks
from flexnet.lifecycle.rules import BERLIN, start_of_day
from flexnet.models import (
    AuditEntry,
    AuthEvent,
    ChallengeKind,
    Letter,
    LockCause,
    NasClient,
    PasswordHistory,
    Practice,
    RadiusChallenge,
    RequestKind,
    ServiceRequest,
    StaffAccount,
    StaffRole,
    StaffSession,
    Takeover,
    TerminationBy,
    TermsVersion,
    User,
    UserKind,
    UserStatus,
    VpnSession,
)
from flexnet.staff import accounts as staff_accounts
from flexnet.staff import signin
from tests.conftest import NOW, STAFF

SETTINGS = job.JobSettings()
HOUR = timedelta(hours=1)
FORM_ADDRESS = "203.0.113.9"
LOGIN_ADDRESS = "198.51.100.23"
STAFF_ADDRESS = "192.0.2.44"
ADDRESSES = (FORM_ADDRESS, LOGIN_ADDRESS, STAFF_ADDRESS)


def run_on(session: Session, day: date, settings: job.JobSettings = SETTINGS) -> job.JobReport:
    return job.run(session, now=start_of_day(day), settings=settings, actor=Actor.system("t"))


def day_after(instant: datetime, days: int = 0, **period: int) -> date:
    return (instant.astimezone(BERLIN) + relativedelta(days=days, **period)).date()


def addresses_anywhere(session: Session) -> int:
    """Rows of every table that names one of the addresses, in any column."""
    found = 0
    for model in (AuditEntry, AuthEvent, VpnSession, StaffSession, ServiceRequest):
        columns = [cast(column, String) for column in model.__table__.columns]
        matches = or_(*(column.contains(a) for column in columns for a in ADDRESSES))
        found += session.scalar(select(func.count()).select_from(model).where(matches)) or 0
    return found


@dataclass
class Traffic:
    nas: NasClient
    request: ServiceRequest
    live: VpnSession  # started with the rest, still sending Interim-Updates


@pytest.fixture
def traffic(session: Session, make_user: Callable[..., User]) -> Traffic:
    """A day's connection data at NOW: a login, VPN sessions, a staff sign-in, a request."""
    user = make_user()
    nas = NasClient(name="vpn-1", address="192.0.2.10", secret=b"x")
    session.add(nas)
    session.add(
        AuthEvent(
            at=NOW,
            channel="radius",
            username=user.username,
            user_id=user.id,
            client="vpn-1",
            source_ip=LOGIN_ADDRESS,
            outcome="accept",
            reason="ok",
        )
    )

    def vpn(
        acct: str, stopped: datetime | None, updated: datetime, station: str = LOGIN_ADDRESS
    ) -> VpnSession:
        row = VpnSession(
            nas=nas,
            acct_session_id=acct,
            username=user.username,
            user_id=user.id,
            framed_ip="10.8.0.7",
            calling_station=station,
            started_at=NOW,
            updated_at=updated,
            stopped_at=stopped,
        )
        session.add(row)
        return row

    vpn("stopped", NOW + timedelta(hours=2), NOW + timedelta(hours=2))
    vpn("never-stopped", None, NOW)  # the concentrator rebooted: no Stop ever came
    live = vpn("live", None, NOW + timedelta(days=29), station="198.51.100.99")
    staff_accounts.add_staff(
        session, username="anna", role=StaffRole.HELPDESK, password="x" * 16, actor=STAFF, now=NOW
    )
    signin.open_session(
        session, username="anna", password="wrong", source_ip=STAFF_ADDRESS, now=NOW
    )
    signin.open_session(
        session, username="anna", password="x" * 16, source_ip=STAFF_ADDRESS, now=NOW
    )
    request = servicerequests.file_request(
        session,
        bsnr=user.practice.bsnr,
        usernames=user.username,
        kind=RequestKind.NEW_PASSWORD,
        contact_person="Frau Muster",
        phone="0391 1234567",
        message="Kennwort vergessen",
        source_ip=FORM_ADDRESS,
        now=NOW,
    )
    session.flush()
    return Traffic(nas, request, live)


def test_connection_data_ends_after_31_days_and_not_before(
    session: Session, traffic: Traffic
) -> None:
    kept = run_on(session, day_after(NOW, 31))
    assert kept.purged["auth_events"] == 0
    assert addresses_anywhere(session) > 0

    purged = run_on(session, day_after(NOW, 32))

    assert session.scalar(select(func.count()).select_from(AuthEvent)) == 0
    assert list(session.scalars(select(VpnSession.acct_session_id))) == ["live"]
    assert session.scalar(select(func.count()).select_from(StaffSession)) == 0
    assert session.get_one(ServiceRequest, traffic.request.id).source_ip is None
    assert addresses_anywhere(session) == 0
    assert purged.purged["vpn_sessions"] == 2
    assert audit.verify_chain(session).ok


def test_a_session_without_a_stop_goes_31_days_after_its_last_sign_of_life(
    session: Session, traffic: Traffic
) -> None:
    last_update = traffic.live.updated_at

    run_on(session, day_after(last_update, 31))
    kept = session.scalar(select(func.count()).where(VpnSession.acct_session_id == "live"))
    run_on(session, day_after(last_update, 32))
    left = session.scalar(select(func.count()).select_from(VpnSession))

    assert (kept, left) == (1, 0)


def test_every_purge_is_audited_by_counts(session: Session, traffic: Traffic) -> None:
    run_on(session, day_after(NOW, 32))

    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.tag == AuditTag.RETENTION_PURGE.value)
    ).one()
    counts = audit_data(entry)
    assert counts["auth_events"] == 1
    assert counts["vpn_sessions"] == 2
    assert counts["staff_sessions"] == 1
    assert counts["request_addresses"] == 1
    assert counts["audit_addresses"] == 2  # the form and the refused sign-in
    assert not any(address in entry.data for address in ADDRESSES)


def audit_data(entry: AuditEntry) -> dict[str, int]:
    import json

    data: dict[str, int] = json.loads(entry.data)
    return data


def test_closed_requests_end_a_year_after_they_were_closed(
    session: Session, traffic: Traffic
) -> None:
    closed_at = NOW + timedelta(days=1)
    servicerequests.verify(
        session, request_id=traffic.request.id, note="Rückruf", actor=STAFF, now=closed_at
    )
    servicerequests.reject(
        session, request_id=traffic.request.id, note="erledigt", actor=STAFF, now=closed_at
    )
    still_open = servicerequests.file_request(
        session,
        bsnr=traffic.request.bsnr,
        usernames="",
        kind=RequestKind.RESYNC,
        contact_person="Herr Beispiel",
        phone="0391 7654321",
        message="",
        source_ip=None,
        now=NOW,
    )

    run_on(session, day_after(closed_at, years=1))
    kept = session.scalar(select(func.count()).select_from(ServiceRequest))
    run_on(session, day_after(closed_at, 1, years=1))
    left = list(session.scalars(select(ServiceRequest.id)))

    assert kept == 2
    assert left == [still_open.id]
    assert audit.verify_chain(session).ok


@pytest.fixture
def two_practices(
    session: Session, make_practice: Callable[..., Practice], make_user: Callable[..., User]
) -> tuple[Practice, Practice]:
    """One practice terminated extraordinarily at NOW (locked at once), one going on; each
    with a member and a staff user with passwords and letters."""
    ended = make_practice(name="Praxis Dr. Ende", street="Schlussweg 1", city="Halle (Saale)")
    going = make_practice(name="Praxis Dr. Weiter", street="Hauptstraße 5", city="Magdeburg")
    ended.phone, ended.contact_person = "0345 1234567", "Erika Muster"
    # Dr. Weiter once took over a practice whose owner was Dr. Ende (§ 2.3).
    session.add(
        Takeover(
            practice=going,
            predecessor=ended,
            taken_over_on=NOW.date(),
            previous_name="Praxis Dr. Ende",
            recorded_by="it-schmidt",
            recorded_at=NOW,
        )
    )
    for practice, lanr in ((ended, "123456601"), (going, "987654401")):
        make_user(
            practice=practice,
            kind=UserKind.MEMBER,
            lanr=lanr,
            name=f"Dr. {practice.name[9:]}",
            migrated_password="Sommer-Regen-2026!",
        )
        make_user(practice=practice, name="Erika Muster")
    locks.terminate(
        session,
        bsnr=ended.bsnr,
        by=TerminationBy.EXTRAORDINARY,
        notice_date=NOW.date(),
        reason="Praxis an Dr. Nachfolger übergeben",
        actor=STAFF,
        now=NOW,
    )
    session.flush()
    session.expire_all()
    return ended, going


def test_practices_users_and_letters_are_anonymised_ten_years_after_their_end(
    session: Session, two_practices: tuple[Practice, Practice]
) -> None:
    ended, going = two_practices
    assert ended.locked_at is not None
    letters_before = session.scalar(select(func.count()).select_from(Letter))
    keep_the_trail = replace(SETTINGS, audit_years=20)  # no nightly runs in between here

    run_on(session, day_after(ended.locked_at, -1, years=10), keep_the_trail)
    session.expire_all()
    assert ended.name == "Praxis Dr. Ende"

    run_on(session, day_after(ended.locked_at, 1, years=10), keep_the_trail)
    session.expire_all()

    assert (ended.name, ended.street, ended.city) == ("anonymisiert",) * 3
    assert ended.anonymised_at is not None
    assert not ended.bsnr.isdigit() and ended.zip_code == "39000"
    assert ended.phone is None and ended.contact_person is None
    assert [t.previous_name for t in going.taken_over] == ["anonymisiert"]
    assert ended.lock_cause is LockCause.TERMINATION and ended.termination_reason is None
    for user in ended.users:
        assert user.name is None and user.password_hash is None
        assert user.username.startswith("anonym-")
        assert user.lanr in (None, "000000000")
    assert going.name == "Praxis Dr. Weiter" and going.anonymised_at is None
    assert all(user.name for user in going.users)
    assert session.scalar(select(func.count()).select_from(Letter)) == letters_before
    notes = session.scalars(select(Letter.note).where(Letter.practice_id == ended.id))
    assert all(note is None for note in notes)
    ended_users = [user.id for user in ended.users]
    history = select(func.count()).where(PasswordHistory.user_id.in_(ended_users))
    assert session.scalar(history) == 0
    assert audit.verify_chain(session).ok


def test_a_user_locked_for_ten_years_is_anonymised_while_the_practice_goes_on(
    session: Session, make_user: Callable[..., User]
) -> None:
    leaving, staying = make_user(name="Max Weg"), make_user(name="Lisa Bleibt")
    locks.lock_user(
        session,
        username=leaving.username,
        cause=LockCause.MANUAL,
        reason="Max Weg hat die Praxis verlassen",
        actor=STAFF,
        now=NOW,
    )

    run_on(session, day_after(NOW, 1, years=10))
    session.expire_all()

    assert leaving.name is None and leaving.lock_reason == "anonymisiert"
    assert leaving.status is UserStatus.LOCKED
    assert staying.name == "Lisa Bleibt"


def test_a_departed_staff_member_is_anonymised_ten_years_after_deactivation(
    session: Session,
) -> None:
    for name in ("berta", "carl"):
        staff_accounts.add_staff(
            session,
            username=name,
            name=name.title(),
            role=StaffRole.HELPDESK,
            password="y" * 16,
            actor=STAFF,
            now=NOW,
        )
    staff_accounts.deactivate_staff(session, username="berta", actor=STAFF, now=NOW)
    session.add(
        TermsVersion(
            version="2027-01",
            effective_on=date(2027, 1, 1),
            accept_by=date(2027, 3, 31),
            published_by="berta",
            published_at=NOW,
        )
    )

    run_on(session, day_after(NOW, -1, years=10))
    kept = session.scalar(select(StaffAccount.name).where(StaffAccount.username == "berta"))
    run_on(session, day_after(NOW, 1, years=10))

    names = dict(session.execute(select(StaffAccount.id, StaffAccount.name)).all())
    usernames = set(session.scalars(select(StaffAccount.username)))
    assert kept == "Berta"
    assert sorted(n or "-" for n in names.values()) == ["-", "Carl"]
    assert "berta" not in usernames and "carl" in usernames
    assert session.scalar(select(TermsVersion.published_by)) != "berta"


def test_the_nightly_job_through_ten_years_keeps_the_audit_trail_verifiable(
    session: Session, traffic: Traffic, two_practices: tuple[Practice, Practice]
) -> None:
    """A month at a time through eleven years: the trail verifies after every run, and
    what each category holds shrinks exactly when its time is up."""
    ended, _ = two_practices
    day = NOW.astimezone(BERLIN).date()
    seen: dict[str, date] = {}
    while day < NOW.date() + relativedelta(years=11):
        day += timedelta(days=30)
        report = run_on(session, day)
        assert audit.verify_chain(session).ok, day
        for name, count in report.purged.items():
            if count and name not in seen:
                seen[name] = day
    assert seen["auth_events"] == day_after(NOW, 60)
    assert seen["practices"] == seen["users"] <= day_after(ended.locked_at, 30, years=10)
    assert seen["practices"] > day_after(ended.locked_at, years=10)
    assert seen["audit_entries"] > day_after(NOW, years=10)
    assert addresses_anywhere(session) == 0
    assert session.scalar(select(func.count()).where(Practice.anonymised_at.is_not(None))) == 1


def test_expired_radius_challenges_go_with_the_nightly_job(session: Session) -> None:
    """A challenge holds a username, an address and the first round's password (sealed):
    an expired one goes even when no further challenge comes to sweep it away."""
    nas = NasClient(name="vpn-1", address="192.0.2.10", secret=b"x")
    session.add(nas)
    session.flush()
    night = day_after(NOW, 1)
    job_now = start_of_day(night)
    for name, expires in (("expired", job_now - timedelta(seconds=1)), ("open", job_now + HOUR)):
        session.add(
            RadiusChallenge(
                state_hash=name.ljust(64, "0"), kind=ChallengeKind.OTP, username="emuster",
                nas_id=nas.id, source="198.51.100.23", sealed=b"\x00", expires_at=expires,
            )
        )  # fmt: skip
    session.flush()

    report = run_on(session, night)

    left = session.scalars(select(RadiusChallenge.state_hash)).all()
    assert [state[:4] for state in left] == ["open"]
    assert report.purged["radius_challenges"] == 1
