"""Keys validated by an external Yubico service, through the real yubico-client.

A second flexnet instance plays the external service: it holds the AES secret and the
replay state, this side only the key's public id.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import port_for
import pytest
from sqlalchemy.orm import Session

from flexnet.config import OtpSettings
from flexnet.errors import ValidationError
from flexnet.models import Practice, TokenStatus
from flexnet.otp import stock
from flexnet.otp.remote import RemoteValidator
from flexnet.otp.verify import OtpReason, verify_yubico_otp
from tests.conftest import BOX, NOW, STAFF
from tests.functional.conftest import Server


def validator(
    server: Server, *, url: str | None = None, api_key: str | None = None, timeout: int = 5
) -> RemoteValidator:
    return RemoteValidator(
        OtpSettings(
            remote_urls=(url or server.url,),
            remote_client_id=server.client_id,
            remote_api_key=api_key or server.api_key,
            remote_timeout=timeout,
        )
    )


@pytest.fixture
def remote_key(session: Session, server: Server, make_practice: Callable[..., Practice]) -> None:
    token = stock.register_remote(
        session, serial="8800001", public_id=server.key.public_id, actor=STAFF, now=NOW
    )
    stock.assign(session, serial=token.serial, bsnr=make_practice().bsnr, actor=STAFF, now=NOW)


def check(session: Session, otp: str, remote: RemoteValidator | None) -> OtpReason:
    return verify_yubico_otp(
        session, otp, box=BOX, settings=OtpSettings(), now=NOW, remote=remote
    ).reason


@pytest.mark.usefixtures("remote_key")
def test_remote_key_is_accepted_once(session: Session, server: Server) -> None:
    otp = server.key.otp()

    assert check(session, otp, validator(server)) is OtpReason.OK
    assert check(session, otp, validator(server)) is OtpReason.REPLAYED


@pytest.mark.usefixtures("remote_key")
def test_wrong_api_key_is_a_reject(session: Session, server: Server) -> None:
    wrong = base64.b64encode(b"x" * 20).decode()

    assert check(session, server.key.otp(), validator(server, api_key=wrong)) is (
        OtpReason.BACKEND_ERROR
    )


@pytest.mark.usefixtures("remote_key")
def test_unreachable_service_is_a_reject(session: Session, server: Server) -> None:
    closed = f"http://127.0.0.1:{port_for.select_random()}/wsapi/2.0/verify"

    assert check(session, server.key.otp(), validator(server, url=closed, timeout=1)) is (
        OtpReason.BACKEND_ERROR
    )


@pytest.mark.usefixtures("remote_key")
def test_remote_key_without_configured_service_is_a_reject(
    session: Session, server: Server
) -> None:
    assert check(session, server.key.otp(), None) is OtpReason.BACKEND_ERROR


def test_locked_remote_key_is_refused_even_if_the_service_accepts(
    session: Session, server: Server, remote_key: None
) -> None:
    token = stock.get_token(session, "8800001")
    token.status = TokenStatus.LOST
    session.flush()

    assert check(session, server.key.otp(), validator(server)) is OtpReason.KEY_LOST


def test_register_remote_validates_input(session: Session) -> None:
    with pytest.raises(ValidationError, match="Modhex"):
        stock.register_remote(session, serial="1", public_id="xyz", actor=STAFF, now=NOW)
    # Digits of other scripts and serials longer than the column are no serials: a clear
    # error, not a database error on PostgreSQL.
    for serial in ("١٢٣٤٥", "9" * 40):
        with pytest.raises(ValidationError, match="keine Zahl"):
            stock.register_remote(
                session, serial=serial, public_id="cccccccccccb", actor=STAFF, now=NOW
            )
