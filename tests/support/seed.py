"""Committed seed data for tests and benchmarks that need their own database."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet import practices
from flexnet.audit import Actor
from flexnet.db import Database, utcnow
from flexnet.models import Practice, Token, TokenKind, TokenStatus
from flexnet.otp.secrets import SecretBox, YubicoSecret, token_context
from tests.support.yubikeys import SimulatedKey


def seed_key(url: URL, box: SecretBox, *, serial: str = "1") -> SimulatedKey:
    """An active Yubikey of practice 881234500 (created on first use) and its simulator."""
    key = SimulatedKey.random()
    now = utcnow()
    database = Database.from_url(url)
    with database.session() as session:
        practice = session.scalar(select(Practice).where(Practice.bsnr == "881234500"))
        if practice is None:
            practice = practices.add_practice(
                session,
                bsnr="881234500",
                name="Praxis",
                street="Weg 1",
                zip_code="39104",
                city="Halle",
                actor=Actor.system("seed"),
                now=now,
            )
        secret = YubicoSecret(key.private_id, key.aes_key).to_bytes()
        session.add(
            Token(
                serial=serial,
                kind=TokenKind.YUBICO_OTP,
                public_id=key.public_id,
                secret=box.seal(secret, context=token_context(serial)),
                status=TokenStatus.ACTIVE,
                practice=practice,
                created_at=now,
            )
        )
    database.dispose()
    return key
