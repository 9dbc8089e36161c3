"""Yubico validation protocol 2.0 at /wsapi/2.0/verify, checked with the real yubico-client."""

from __future__ import annotations

import base64
import re

import pytest
from flask import Flask
from sqlalchemy import select
from yubico_client import Yubico
from yubico_client.yubico_exceptions import (
    InvalidClientIdError,
    SignatureVerificationError,
    StatusCodeError,
)

from flexnet.models import StaffRole, Token
from flexnet.otp import wsapi
from flexnet.staff import accounts as staff_accounts
from flexnet.web import state
from tests.conftest import BOX, NOW, STAFF
from tests.functional.conftest import Server, seed
from tests.support.yubikeys import SimulatedKey


def client(server: Server, api_key: str | None = None) -> Yubico:
    return Yubico(
        server.client_id,
        api_key if api_key is not None else server.api_key,
        api_urls=(server.url,),
        max_retries=1,
    )


def test_yubico_client_accepts_a_fresh_otp(server: Server) -> None:
    assert client(server).verify(server.key.otp(), timeout=5) is True


def test_yubico_client_sees_a_replayed_otp(server: Server) -> None:
    otp = server.key.otp()
    assert client(server).verify(otp, timeout=5) is True

    with pytest.raises(StatusCodeError) as raised:
        client(server).verify(otp, timeout=5)

    assert raised.value.status_code == "REPLAYED_OTP"


def test_yubico_client_with_a_wrong_key_gets_no_accept(server: Server) -> None:
    wrong = base64.b64encode(b"w" * 20).decode()

    with pytest.raises(SignatureVerificationError):
        client(server, wrong).verify(server.key.otp(), timeout=5)


def test_yubico_client_of_an_unknown_client(server: Server) -> None:
    unknown = Yubico("999", None, api_urls=(server.url,), max_retries=1)

    with pytest.raises(InvalidClientIdError):
        unknown.verify(server.key.otp(), timeout=5)


def test_yubico_client_of_a_disabled_client_until_it_is_enabled(server: Server) -> None:
    def switch(active: bool) -> None:
        with state(server.app).database.session() as session:
            wsapi.set_active(session, name=server.client_id, active=active, actor=STAFF, now=NOW)

    switch(False)
    unsigned = Yubico(server.client_id, None, api_urls=(server.url,), max_retries=1)
    with pytest.raises(InvalidClientIdError):  # NO_SUCH_CLIENT, as for an unknown id
        unsigned.verify(server.key.otp(), timeout=5)
    with pytest.raises(SignatureVerificationError):  # the answer is not signed with its key
        client(server).verify(server.key.otp(), timeout=5)
    switch(True)

    assert client(server).verify(server.key.otp(), timeout=5) is True


def test_yubico_client_with_the_key_before_a_regeneration_gets_no_accept(
    server: Server,
) -> None:
    with state(server.app).database.session() as session:
        _, new_key = wsapi.regenerate_key(session, name="KVSAonline", box=BOX, actor=STAFF, now=NOW)

    with pytest.raises(SignatureVerificationError):
        client(server).verify(server.key.otp(), timeout=5)
    assert client(server, new_key).verify(server.key.otp(), timeout=5) is True


# --- the protocol in detail, through Flask's test client ------------------------------


def parse(body: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in body.splitlines() if "=" in line)


def signed(params: dict[str, str], api_key: str) -> dict[str, str]:
    return {**params, "h": wsapi.signature(params, base64.b64decode(api_key))}


def call(app: Flask, params: dict[str, str], method: str = "GET") -> tuple[int, dict[str, str]]:
    test_client = app.test_client()
    if method == "GET":
        response = test_client.get("/wsapi/2.0/verify", query_string=params)
    else:
        response = test_client.post("/wsapi/2.0/verify", data=params)
    return response.status_code, parse(response.get_data(as_text=True))


@pytest.fixture
def seeded(app: Flask) -> tuple[Flask, str, str, SimulatedKey]:
    return (app, *seed(app))


def test_answer_is_signed_and_echoes_otp_and_nonce(
    seeded: tuple[Flask, str, str, SimulatedKey],
) -> None:
    app, client_id, api_key, key = seeded
    otp = key.otp()
    params = signed({"id": client_id, "otp": otp, "nonce": "n" * 20, "timestamp": "1"}, api_key)

    code, answer = call(app, params, method="POST")

    assert code == 200
    assert answer["status"] == "OK"
    assert (answer["otp"], answer["nonce"]) == (otp, "n" * 20)
    assert answer["h"] == wsapi.signature(answer, base64.b64decode(api_key))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ0\d{3}", answer["t"])
    assert (answer["sessioncounter"], answer["sessionuse"]) == ("1", "0")
    assert answer["timestamp"].isdigit() and answer["sl"] == "100"


def test_same_otp_and_nonce_is_a_replayed_request(
    seeded: tuple[Flask, str, str, SimulatedKey],
) -> None:
    app, client_id, api_key, key = seeded
    params = signed({"id": client_id, "otp": key.otp(), "nonce": "a" * 16}, api_key)

    statuses = [call(app, params)[1]["status"] for _ in range(2)]
    other_nonce = call(app, signed({**params, "nonce": "b" * 16, "h": ""}, api_key))[1]

    assert statuses == ["OK", "REPLAYED_REQUEST"]
    assert other_nonce["status"] == "REPLAYED_OTP"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"otp": "x", "nonce": "a" * 16}, "MISSING_PARAMETER"),
        ({"id": "{id}", "nonce": "a" * 16}, "MISSING_PARAMETER"),
        ({"id": "{id}", "otp": "{otp}", "nonce": "short"}, "MISSING_PARAMETER"),
        ({"id": "{id}", "otp": "{otp}", "nonce": "a" * 16}, "BAD_SIGNATURE"),  # unsigned
        ({"id": "{id}", "otp": "{otp}", "nonce": "a" * 16, "h": "AAAA"}, "BAD_SIGNATURE"),
        ({"id": "424242", "otp": "{otp}", "nonce": "a" * 16}, "NO_SUCH_CLIENT"),
    ],
)
def test_refused_requests(
    seeded: tuple[Flask, str, str, SimulatedKey], params: dict[str, str], status: str
) -> None:
    app, client_id, _, key = seeded
    filled = {k: v.format(id=client_id, otp=key.otp()) for k, v in params.items()}

    assert call(app, filled)[1]["status"] == status


def test_garbage_otp_is_bad_otp(seeded: tuple[Flask, str, str, SimulatedKey]) -> None:
    app, client_id, api_key, _ = seeded

    answer = call(
        app, signed({"id": client_id, "otp": "'; DROP TABLE", "nonce": "c" * 16}, api_key)
    )[1]

    assert answer["status"] == "BAD_OTP"


def test_unsigned_requests_when_the_client_allows_them(app: Flask) -> None:
    client_id, _, key = seed(app, require_signature=False)

    assert call(app, {"id": client_id, "otp": key.otp(), "nonce": "d" * 16})[1]["status"] == "OK"


def test_rate_limit_per_client(seeded: tuple[Flask, str, str, SimulatedKey]) -> None:
    app, client_id, api_key, key = seeded
    # 11 requests span at most two one-minute windows, so one window sees more than 5.
    results = [
        call(app, signed({"id": client_id, "otp": key.otp(), "nonce": f"{i:016d}"}, api_key))
        for i in range(11)
    ]

    limited = [answer for code, answer in results if code == 429]
    assert limited
    assert all(answer["status"] == "BACKEND_ERROR" for answer in limited)
    assert [code for code, _ in results[:5]] == [200] * 5


@pytest.mark.parametrize(
    "params",
    [
        {"id": "{id}", "otp": "vvvvvvvvvvvv\r\nstatus=OK", "nonce": "a" * 16},
        {"id": "{id}", "otp": "{otp}", "nonce": "aaaaaaaaaaaaaaaa\r\nstatus=OK"},
        {"id": "{id}", "otp": "{otp}\r\nstatus=OK", "nonce": "a" * 16},
    ],
)
def test_no_line_can_be_smuggled_into_an_answer(
    seeded: tuple[Flask, str, str, SimulatedKey], params: dict[str, str]
) -> None:
    app, client_id, api_key, key = seeded
    filled = signed({k: v.format(id=client_id, otp=key.otp()) for k, v in params.items()}, api_key)

    response = app.test_client().get("/wsapi/2.0/verify", query_string=filled)
    lines = response.get_data(as_text=True).splitlines()

    assert [line for line in lines if line.startswith("status=")] != ["status=OK"]
    assert len([line for line in lines if line.startswith("status=")]) == 1
    assert all(line.split("=", 1)[0] in {"h", "t", "otp", "nonce", "status"} for line in lines)


@pytest.mark.parametrize(
    "params",
    [
        {"id": "\u00b2", "otp": "x", "nonce": "a" * 16},
        {"id": "9" * 30, "otp": "x", "nonce": "a" * 16},
        {"id": "{id}", "otp": "{otp}", "nonce": "a" * 16, "h": "\u00e4\u00f6\u00fc"},
    ],
)
def test_odd_input_gets_a_protocol_answer_not_a_crash(
    seeded: tuple[Flask, str, str, SimulatedKey], params: dict[str, str]
) -> None:
    app, client_id, _, key = seeded
    filled = {k: v.format(id=client_id, otp=key.otp()) for k, v in params.items()}

    code, answer = call(app, filled)

    assert code == 200
    assert answer["status"] in {"MISSING_PARAMETER", "BAD_SIGNATURE"}


def test_a_staff_members_key_is_unknown_to_the_portals_and_its_otp_stays_unused(
    server: Server,
) -> None:
    """Staff keys sign in to the admin UI only: a portal mapping public ids to people must
    never be told that a staff member's key typed a fresh OTP."""

    def owner(staff: bool) -> None:
        with state(server.app).database.session() as session:
            token = session.scalar(select(Token).where(Token.serial == "4711"))
            assert token is not None
            if staff:
                anna = staff_accounts.add_staff(
                    session, username="it-anna", role=StaffRole.ADMIN, password="x" * 16,
                    actor=STAFF, now=NOW,
                )  # fmt: skip
                token.staff_id, token.practice_id = anna.id, None
            else:
                token.staff_id, token.practice_id = None, server_practice_id

    with state(server.app).database.reader() as session:
        server_practice_id = session.scalar(select(Token.practice_id).where(Token.serial == "4711"))
    otp = server.key.otp()

    owner(staff=True)
    # BAD_OTP, which yubico-client reports as no valid answer at all
    with pytest.raises(Exception, match="NO_VALID_ANSWERS"):
        client(server).verify(otp, timeout=5)
    owner(staff=False)

    assert client(server).verify(otp, timeout=5) is True  # not used up by the refusal
