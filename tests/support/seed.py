"""Committed seed data for tests and benchmarks that need their own database."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flexnet.accounts import identifiers, practices, users
from flexnet.audit import Actor
from flexnet.db import Database, utcnow
from flexnet.models import (
    Practice,
    PracticeKind,
    TermsChannel,
    Token,
    TokenKind,
    TokenStatus,
    UserKind,
)
from flexnet.otp.secrets import SecretBox, YubicoSecret, token_context
from tests.support.yubikeys import SimulatedKey

SEEDER = Actor.system("seed")


def lanr(n: int) -> str:
    """A LANR with a correct check digit (six digits from ``n``, specialty group 01)."""
    first_six = f"{n:06d}"
    return f"{first_six}{identifiers.lanr_check_digit(first_six)}01"


def add_login(
    session: Session,
    box: SecretBox,
    *,
    bsnr: str = "881234500",
    username: str | None = None,
    password: str | None = None,
    practice_kind: PracticeKind = PracticeKind.MEMBER,
    user_kind: UserKind = UserKind.STAFF,
    serial: str | None = None,
    now: datetime | None = None,
    key: SimulatedKey | None = None,
) -> SimulatedKey:
    """A practice with accepted terms (created on first use), optionally a user with a
    password, and an active Yubikey of that practice (``key``, or a random one); returns
    the key's simulator."""
    now = now or utcnow()
    practice = session.scalar(select(Practice).where(Practice.bsnr == bsnr))
    if practice is None:
        practice = practices.add_practice(
            session,
            bsnr=bsnr,
            name="Praxis",
            street="Weg 1",
            zip_code="39104",
            city="Halle",
            kind=practice_kind,
            actor=SEEDER,
            now=now,
        )
        practices.accept_terms(
            session,
            bsnr=bsnr,
            version="1.0",
            channel=TermsChannel.PAPER,
            accepted_on=date(2026, 11, 1),
            actor=SEEDER,
            now=now,
        )
    if username is not None:
        users.create_user(
            session,
            username=username,
            bsnr=bsnr,
            kind=user_kind,
            migrated_password=password,
            actor=SEEDER,
            now=now,
        )
    key = key or SimulatedKey.random()
    serial = serial or f"key-{key.public_id}"
    session.add(
        Token(
            serial=serial,
            kind=TokenKind.YUBICO_OTP,
            public_id=key.public_id,
            secret=box.seal(
                YubicoSecret(key.private_id, key.aes_key).to_bytes(), context=token_context(serial)
            ),
            status=TokenStatus.ACTIVE,
            practice=practice,
            created_at=now,
        )
    )
    session.flush()
    return key


def seed_key(url: URL, box: SecretBox, *, serial: str = "1") -> SimulatedKey:
    """An active Yubikey of practice 881234500 in a database of its own, committed."""
    database = Database.from_url(url)
    with database.session() as session:
        key = add_login(session, box, serial=serial)
    database.dispose()
    return key
