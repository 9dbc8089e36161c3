"""A realistic admin UI to look at: ~30 practices with long names and umlauts, ~70 users,
40 Yubikeys in every state, letters, runs, requests of every kind, live and ended VPN
sessions, a week of logins, staff and clients; made through the domain services, as
staff would have made them (a few rows the RADIUS server writes are inserted directly).

Used by the page-by-page checks (axe-core scan, English words) and the screenshots.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import Flask
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from flexnet.accounts import practices, servicerequests, users
from flexnet.accounts.identifiers import lanr_check_digit
from flexnet.audit import Actor
from flexnet.clients import apiclients, nas
from flexnet.db import utcnow
from flexnet.lifecycle import lock_exceptions, locks, returns
from flexnet.lifecycle.locks import LockTarget
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    AuthEvent,
    LockCause,
    MailRun,
    NasClient,
    PracticeKind,
    ReturnCondition,
    StaffRole,
    TerminationBy,
    TermsChannel,
    Token,
    TokenStatus,
    User,
    UserKind,
    VpnSession,
)
from flexnet.otp import importer, wsapi
from flexnet.provisioning import issuance, mailruns
from flexnet.staff import accounts as staff_accounts
from flexnet.web import state
from tests.conftest import BOX
from tests.functional.test_cli_keys import ykman_line
from tests.support.admin import PASSWORD
from tests.support.yubikeys import SimulatedKey

ANNA = Actor.staff("anna")
CITIES = [
    ("39104", "Magdeburg"),
    ("06108", "Halle (Saale)"),
    ("38855", "Wernigerode"),
    ("06886", "Lutherstadt Wittenberg"),
    ("06484", "Quedlinburg"),
    ("39218", "Schönebeck (Elbe)"),
    ("06366", "Köthen (Anhalt)"),
    ("29410", "Salzwedel"),
]
NAMES = [
    "Gemeinschaftspraxis Dr. med. Müller-Lüdenscheidt & Kollegen – Fachärzte für Allgemeinmedizin",
    "Praxis Dr. Weiß",
    "Hausarztpraxis Jörg Schäfer",
    "Kinder- und Jugendarztpraxis Dr. Özdemir-Großmann",
    "MVZ Börde Gesundheitszentrum GmbH – Standort Haldensleben",
    "Psychotherapeutische Praxis Dipl.-Psych. Käthe Fröhlich",
    "Augenarztpraxis Dr. Bäuerle",
    "Praxis für Orthopädie und Unfallchirurgie Dr. Süßmilch",
]


@dataclass
class World:
    """What the seed made, for tests to visit."""

    bsnrs: list[str] = field(default_factory=list)
    usernames: list[str] = field(default_factory=list)
    serials: list[str] = field(default_factory=list)
    run_ids: list[int] = field(default_factory=list)
    request_ids: list[int] = field(default_factory=list)
    session_ids: list[int] = field(default_factory=list)
    locked_bsnr: str = ""
    member: str = ""


def _lanr(number: int) -> str:
    first = f"{100000 + number:06d}"
    return f"{first}{lanr_check_digit(first)}01"


def seed(app: Flask, *, practices_count: int = 30) -> World:
    world = World()
    now = utcnow()
    today = now.astimezone(BERLIN).date()
    quarters = state(app).settings.lock_after_quarters
    with state(app).database.session() as db:
        _staff(db, now)
        serials = _stock(db, now)
        _clients(db, now)
        for number in range(practices_count):
            _practice(db, world, number, serials, now, today, quarters)
        world.serials = serials
    _states(app, world, now, today, quarters)
    _runs(app, world, now, today)
    with state(app).database.session() as db:
        _requests(db, world, now)
        _sessions_and_logins(db, world, now)
    return world


def _staff(db: Session, now: datetime) -> None:
    for name, role, full in (
        ("anna", StaffRole.ADMIN, "Anna Schäfer"),
        ("bernd", StaffRole.HELPDESK, "Bernd Großkopf"),
        ("carla", StaffRole.AUDITOR, "Carla Müller-Weiß"),
        ("dieter", StaffRole.ADMIN, "Dieter Nüßlein"),
    ):
        account = staff_accounts.add_staff(
            db, username=name, role=role, password=PASSWORD, name=full, actor=ANNA, now=now
        )
        account.must_change_password = False


def _stock(db: Session, now: datetime) -> list[str]:
    serials = [str(7_100_001 + i) for i in range(40)]
    data = "".join(ykman_line(serial, SimulatedKey.random()) for serial in serials)
    importer.import_keys(db, importer.parse(data.encode()), box=BOX, actor=ANNA, now=now)
    return serials


def _clients(db: Session, now: datetime) -> None:
    for name, address in (("asa-magdeburg-1", "192.0.2.10"), ("asa-halle-2", "192.0.2.20")):
        nas.add_nas(
            db,
            name=name,
            address=address,
            secret="ein-langes-gemeinsames-Geheimnis-1",
            box=BOX,
            actor=ANNA,
            now=now,
        )
    db.scalars(select(NasClient)).first().coa_port = 3799  # type: ignore[union-attr]
    apiclients.add_client(
        db, name="KVSAonline", role=StaffRole.HELPDESK, require_otp=True, actor=ANNA, now=now
    )
    wsapi.add_client(db, name="BD-Online", box=BOX, actor=ANNA, now=now)


def _practice(
    db: Session,
    world: World,
    number: int,
    serials: list[str],
    now: datetime,
    today: date,
    quarters: int,
) -> None:
    bsnr = f"88{number + 1000:07d}"
    zip_code, city = CITIES[number % len(CITIES)]
    third = number % 10 == 9
    practices.add_practice(
        db,
        bsnr=bsnr,
        name=f"{NAMES[number % len(NAMES)]}{'' if number < len(NAMES) else f' {number}'}",
        street=f"Otto-von-Guericke-Straße {number + 1}",
        zip_code=zip_code,
        city=city,
        address_extra="z. Hd. Frau Lüdecke" if number % 4 == 0 else None,
        kind=PracticeKind.THIRD_PARTY if third else PracticeKind.MEMBER,
        actor=ANNA,
        now=now,
    )
    world.bsnrs.append(bsnr)
    if number % 7 == 6:
        return  # waits for its terms
    practices.accept_terms(
        db,
        bsnr=bsnr,
        version="2026-1" if number % 3 else "2024-2",
        channel=TermsChannel.PAPER if number % 2 else TermsChannel.PORTAL,
        accepted_on=today - timedelta(days=30 + number),
        actor=ANNA,
        now=now,
    )
    kinds = (
        [UserKind.THIRD_PARTY]
        if third
        else [UserKind.MEMBER, UserKind.STAFF, UserKind.PRACTICE_ACCESS]
    )
    for kind in kinds:
        username = f"p{number:02d}-{kind.value.replace('_', '-')}"
        issuance.add_user(
            db,
            username=username,
            bsnr=bsnr,
            kind=kind,
            name="Dr. med. Jürgen Käßmann-Überall" if kind is UserKind.MEMBER else None,
            lanr=_lanr(number) if kind is UserKind.MEMBER else None,
            actor=ANNA,
            now=now,
            quarters=quarters,
        )
        world.usernames.append(username)
        if kind is UserKind.MEMBER and not world.member:
            world.member = username
    if number < 24:
        issuance.issue_key(
            db, serial=serials[number], bsnr=bsnr, actor=ANNA, now=now, quarters=quarters
        )


def _states(app: Flask, world: World, now: datetime, today: date, quarters: int) -> None:
    """Keys in use, locked, lost and back; a lock, terminations, ends, an exception."""
    with state(app).database.session() as db:
        for token in db.scalars(select(Token).where(Token.serial.in_(world.serials[:14]))):
            if token.practice_id is not None:
                token.status, token.last_used_at = TokenStatus.ACTIVE, now - timedelta(hours=3)
        for user in db.scalars(select(User).where(User.username.like("p0%"))):
            user.status, user.last_login_at = user.status.ACTIVE, now - timedelta(days=1)
            user.password_set_at = now - timedelta(days=20)
        failing = db.scalar(select(User).where(User.username == world.usernames[1]))
        assert failing is not None
        failing.failed_logins = 3
        bsnr = world.bsnrs
        locks.lock(
            db,
            what=LockTarget.PRACTICE,
            identifier=bsnr[2],
            cause=LockCause.MISUSE,
            reason="Verdacht auf Weitergabe der Zugangsdaten; Rückruf am Montag",
            all_practice_credentials=False,
            actor=ANNA,
            now=now,
        )
        world.locked_bsnr = bsnr[2]
        locks.lock(
            db,
            what=LockTarget.KEY,
            identifier=world.serials[3],
            cause=LockCause.LOSS,
            reason="Verlust telefonisch gemeldet (Frau Öztürk)",
            all_practice_credentials=False,
            loss_fee_cents=6000,
            actor=ANNA,
            now=now,
        )
        locks.terminate(
            db,
            bsnr=bsnr[4],
            by=TerminationBy.MEMBER,
            notice_date=today - timedelta(days=3),
            requested=None,
            reason="Praxisaufgabe zum Quartalsende",
            actor=ANNA,
            now=now,
        )
        practices.end_activity(
            db, bsnr=bsnr[5], ended_on=today - timedelta(days=370), actor=ANNA, now=now
        )
        practices.end_activity(
            db, bsnr=bsnr[8], ended_on=today - timedelta(days=340), actor=ANNA, now=now
        )
        lock_exceptions.grant(
            db,
            bsnr=bsnr[8],
            until=today + timedelta(days=200),
            reason="Nachfolge in Aussicht; Übergabe an Praxisnachfolgerin geplant",
            decision_ref="IT-2026/117",
            decided_by="Vorstand, Beschluss vom 12.10.",
            actor=ANNA,
            now=now,
            quarters=quarters,
        )
        returns.record_return(
            db,
            serial=world.serials[3],
            received_on=today,
            condition=ReturnCondition.DAMAGED,
            note="Gehäuse gebrochen",
            actor=ANNA,
            now=now,
        )


def _runs(app: Flask, world: World, now: datetime, today: date) -> None:
    """The key letters went out a week ago, the credentials letters today; a new-password
    letter is printed and waits for its dispatch to be confirmed."""
    week_ago = today - timedelta(days=7)
    for dispatched_on in (week_ago, today):
        run_id = _produce(app, now, today)
        with state(app).database.session() as db:
            mailruns.confirm_dispatch(
                db, run_id=run_id, dispatched_on=today, today=today, actor=ANNA, now=now
            )
            run = db.get_one(MailRun, run_id)
            run.run_date = run.dispatched_on = dispatched_on
        world.run_ids.append(run_id)
    with state(app).database.session() as db:
        issuance.reissue_password(
            db, username=world.usernames[0], at_once=True, actor=ANNA, now=now
        )
    world.run_ids.append(_produce(app, now, today))


def _produce(app: Flask, now: datetime, today: date) -> int:
    settings = state(app).settings
    with state(app).database.session() as db:
        produced = mailruns.produce_run(
            db,
            today=today,
            out=io.BytesIO(),
            templates=mailruns.templates_for(settings),
            settings=settings,
            actor=ANNA,
            now=now,
        )
        assert produced is not None
        return produced.run.id


def _requests(db: Session, world: World, now: datetime) -> None:
    for index, kind in enumerate(servicerequests.FORM_KINDS):
        filed = servicerequests.file_request(
            db,
            bsnr=world.bsnrs[index],
            usernames=world.usernames[index],
            kind=kind,
            contact_person="Frau Dr. Sabine Müller-Lüdenscheidt",
            phone="0391 1234567",
            message="Bitte dringend zurückrufen.\nWir sind ab 14 Uhr in der Praxis.",
            source_ip=f"198.51.100.{index + 1}",
            now=now - timedelta(hours=index),
        )
        world.request_ids.append(filed.id)
    servicerequests.verify(
        db, request_id=world.request_ids[1], note="Rückruf erfolgt", actor=ANNA, now=now
    )
    servicerequests.reject(
        db, request_id=world.request_ids[2], note="keine Praxis", actor=ANNA, now=now
    )


def _sessions_and_logins(db: Session, world: World, now: datetime) -> None:
    nas_ids = list(db.scalars(select(NasClient.id)))
    results = [None, "sending", "ack", "nak", "timeout", "no_coa_port"]
    for index, username in enumerate(world.usernames[:8]):
        user = users.get_user(db, username)
        live = VpnSession(
            nas_id=nas_ids[index % 2],
            acct_session_id=f"sitzung-{index}",
            username=username,
            user_id=user.id,
            framed_ip=f"10.20.0.{index + 2}",
            calling_station=f"203.0.113.{index + 5}",
            started_at=now - timedelta(minutes=30 * (index + 1)),
            updated_at=now,
            input_octets=1024 * index,
            output_octets=2048 * index,
        )
        db.add(live)
        db.flush()
        world.session_ids.append(live.id)
        if 0 < index < len(results):
            live.disconnect_requested_at = now
            live.disconnect_result = results[index]
    ids = dict(db.execute(select(User.username, User.id)).all())
    reasons = [
        ("accept", "ok"),
        ("reject", "password_wrong"),
        ("reject", "otp_replayed"),
        ("reject", "user_locked_misuse"),
        ("reject", "user_unknown"),
        ("challenge", "password_expired"),
        ("reject", "source_throttled"),
    ]
    rows = []
    for hour in range(7 * 24):
        for index in range(hour % 5 + 1):
            outcome, reason = reasons[(hour + index) % len(reasons)]
            username = world.usernames[(hour + index) % len(world.usernames)]
            rows.append(
                {
                    "at": now - timedelta(hours=hour, minutes=index * 7),
                    "channel": ("radius", "self_service", "api")[index % 3],
                    "username": username if reason != "user_unknown" else "unbekannt-xy",
                    "user_id": ids[username] if reason != "user_unknown" else None,
                    "bsnr": world.bsnrs[(hour + index) % len(world.bsnrs)]
                    if reason != "user_unknown"
                    else None,
                    "client": "asa-magdeburg-1",
                    "source_ip": f"203.0.113.{(hour + index) % 200 + 1}",
                    "outcome": outcome,
                    "reason": reason,
                }
            )
    db.execute(insert(AuthEvent), rows)
