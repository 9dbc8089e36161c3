"""A ready-to-try instance for newcomers (FLEXNET_DEMO=1, set by ``make run``).

Creates, on an empty instance only, a demo practice, a user and a soft Yubikey whose
OTPs ``flexnet demo otp`` prints, and a NAS entry for radclient on this machine. The
demo credentials are kept in the instance folder, so that each start can print a
ready radclient command line. Never enable this on a production instance.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flexnet.accounts import practices, users
from flexnet.audit import Actor
from flexnet.authn import passwords
from flexnet.clients import nas
from flexnet.errors import NotFoundError
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import Practice, TermsChannel, Token, TokenKind, TokenStatus, UserKind
from flexnet.otp import modhex, yubico
from flexnet.otp.secrets import SecretBox, YubicoSecret, token_context

DEMO_BSNR = "880000100"
DEMO_USER = "demo"
DEMO_SERIAL = "demo-1"
CREDENTIALS_FILE = "demo-credentials.json"


@dataclass(frozen=True)
class DemoCredentials:
    username: str
    password: str = field(repr=False)
    nas_secret: str = field(repr=False)


def ensure_demo(session: Session, *, box: SecretBox, instance: Path, now: datetime) -> bool:
    """Create the demo records if the instance has no practice yet; True if created."""
    if session.scalar(select(func.count()).select_from(Practice)):
        return False
    actor = Actor.system("demo")
    practices.add_practice(
        session,
        bsnr=DEMO_BSNR,
        name="Demo-Praxis Dr. Beispiel",
        street="Doctor-Eisenbart-Ring 2",
        zip_code="39120",
        city="Magdeburg",
        actor=actor,
        now=now,
    )
    practices.accept_terms(
        session,
        bsnr=DEMO_BSNR,
        version="demo",
        channel=TermsChannel.PORTAL,
        accepted_on=now.astimezone(BERLIN).date(),
        actor=actor,
        now=now,
    )
    password = passwords.generate()
    users.create_user(
        session,
        username=DEMO_USER,
        bsnr=DEMO_BSNR,
        kind=UserKind.STAFF,
        name="Demo Nutzer",
        migrated_password=password,
        actor=actor,
        now=now,
    )
    practice = practices.get_practice(session, DEMO_BSNR)
    secret = YubicoSecret(secrets.token_bytes(6), secrets.token_bytes(16))
    session.add(
        Token(
            serial=DEMO_SERIAL,
            kind=TokenKind.YUBICO_OTP,
            public_id="vv" + modhex.from_bytes(secrets.token_bytes(5)),
            secret=box.seal(secret.to_bytes(), context=token_context(DEMO_SERIAL)),
            status=TokenStatus.ACTIVE,
            practice=practice,
            created_at=now,
        )
    )
    nas_secret = secrets.token_urlsafe(24)
    nas.add_nas(
        session,
        name="localhost (Demo)",
        address="127.0.0.1",
        secret=nas_secret,
        box=box,
        actor=actor,
        now=now,
        coa_port=None,
    )
    _write_credentials(instance, DemoCredentials(DEMO_USER, password, nas_secret))
    return True


def credentials(instance: Path) -> DemoCredentials | None:
    path = instance / CREDENTIALS_FILE
    if not path.exists():
        return None
    return DemoCredentials(**json.loads(path.read_text()))


def _write_credentials(instance: Path, demo: DemoCredentials) -> None:
    path = instance / CREDENTIALS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(demo.__dict__, handle)


def next_otp(session: Session, *, box: SecretBox) -> str:
    """The OTP the demo key would type next (the server consumes it when presented)."""
    token = session.scalar(select(Token).where(Token.serial == DEMO_SERIAL))
    if token is None or token.secret is None or token.public_id is None:
        raise NotFoundError("Keine Demo-Instanz: mit FLEXNET_DEMO=1 auf leerer Instanz starten")
    secret = YubicoSecret.from_bytes(box.open(token.secret, context=token_context(DEMO_SERIAL)))
    usage, session_counter = token.otp_usage_counter, token.otp_session_counter + 1
    if session_counter > 0xFF or usage == 0:
        usage, session_counter = usage + 1, 0
    plain = (
        secret.private_id
        + usage.to_bytes(2, "little")
        + secrets.token_bytes(3)
        + bytes([session_counter])
        + secrets.token_bytes(2)
    )
    plain += (~yubico.crc16(plain) & 0xFFFF).to_bytes(2, "little")
    # ECB is the Yubico OTP format: exactly one block.
    encryptor = Cipher(algorithms.AES(secret.aes_key), modes.ECB()).encryptor()  # noqa: S305
    return token.public_id + modhex.from_bytes(encryptor.update(plain) + encryptor.finalize())
