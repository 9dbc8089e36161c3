"""ocserv 1.1 (radcli 1.2) and openconnect 9 against flexnet: what a customer's VPN
team runs. Each case logs in through the real client, the real concentrator and its
RADIUS library, and reads the outcome from flexnet's own tables."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.engine import URL

from flexnet.db import Database
from flexnet.models import User, VpnSession
from interop import ocserv
from interop.conftest import Stack
from tests.support.nodes import PASSWORD, auth_log

T = TypeVar("T")


def sessions(url: URL, username: str) -> list[VpnSession]:
    database = Database.from_url(url)
    try:
        with database.reader() as session:
            rows = session.scalars(
                select(VpnSession).where(VpnSession.username == username).order_by(VpnSession.id)
            ).all()
            session.expunge_all()
            return list(rows)
    finally:
        database.dispose()


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll until probe returns something truthy (accounting arrives asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not in time: {what}")
        time.sleep(0.2)


def test_single_round_login_with_accounting_start_and_stop(stack: Stack) -> None:
    login = stack.logins[0]

    client = stack.client.connect(login.username, PASSWORD + login.key.otp())
    try:
        client.wait_connected()
        live = eventually(
            lambda: [s for s in sessions(stack.url, login.username) if s.stopped_at is None],
            "Accounting-Start",
        )
    finally:
        client.log_out()

    assert len(live) == 1 and live[0].flagged is None
    assert live[0].nas_identifier == "ocserv-interop"  # radcli's nas-identifier
    assert live[0].nas_ip_address == ocserv.OCSERV_ADDRESS  # NAS-IP-Address, sent by radcli
    assert "found group full" in stack.server.log()  # Class OU=full of the default profile
    # Session-Timeout (12 h by default): openconnect shows when ocserv will end the session.
    assert "Session authentication will expire" in client.log()
    stopped = eventually(
        lambda: [s for s in sessions(stack.url, login.username) if s.stopped_at is not None],
        "Accounting-Stop",
    )
    assert [s.acct_session_id for s in stopped] == [live[0].acct_session_id]
    assert stopped[0].terminate_cause == "User-Request"  # openconnect logged out
    assert stopped[0].calling_station == ocserv.HOST_ADDRESS  # the client's address
    assert (stopped[0].framed_ip or "").startswith("192.168.231.")  # ocserv's pool
    assert auth_log(stack.url, login.username)[("accept", "ok")] == 1


def test_two_round_login_answers_the_challenge_ocserv_shows(stack: Stack) -> None:
    """Password alone, then ocserv shows flexnet's Reply-Message as a prompt and sends
    the OTP with the State it got (radcli copies State; flexnet's has no zero byte)."""
    login = stack.logins[0]

    client = stack.client.connect(login.username, PASSWORD, login.key.otp())
    try:
        client.wait_connected()
        eventually(lambda: sessions(stack.url, login.username), "Accounting-Start")
    finally:
        client.log_out()

    assert "Access-Challenge to NAS ocserv for" in stack.node.log()
    assert auth_log(stack.url, login.username)[("accept", "ok")] == 1


def test_password_change_login_in_three_rounds(stack: Stack) -> None:
    """A password that must be changed (the initial one from a letter): ocserv shows each
    of flexnet's prompts in turn (new password, repeated), and the login is accepted."""
    login = stack.logins[0]
    database = Database.from_url(stack.url)
    try:
        with database.session() as session:
            session.execute(
                update(User)
                .where(User.username == login.username)
                .values(password_must_change=True)
            )
    finally:
        database.dispose()
    new_password = "Herbst-Wind-am-Elbufer-2027"

    client = stack.client.connect(
        login.username, PASSWORD + login.key.otp(), new_password, new_password
    )
    try:
        client.wait_connected()
        eventually(lambda: sessions(stack.url, login.username), "Accounting-Start")
    finally:
        client.log_out()

    assert "Bitte geben Sie ein neues Kennwort ein." in client.log()
    again = stack.client.connect(login.username, new_password + login.key.otp())
    try:
        again.wait_connected()
    finally:
        again.log_out()


def test_wrong_otp_is_refused_and_no_session_starts(stack: Stack) -> None:
    login = stack.logins[0]
    forged = login.key.craft(usage=login.key.usage_counter + 1, session=0, aes_key=os.urandom(16))

    client = stack.client.connect(login.username, PASSWORD + forged)
    code = client.wait()

    assert code != 0  # ocserv asked for the password again; openconnect had no more
    assert "Configured as " not in client.log()
    assert "Anmeldung fehlgeschlagen." in client.log()  # flexnet's Reply-Message, shown
    # The refusal is written after the reply went out: wait for it.
    outcomes = eventually(lambda: auth_log(stack.url, login.username), "the refusal logged")
    assert outcomes == {("reject", "otp_invalid"): 1}
    assert sessions(stack.url, login.username) == []


def test_a_cookie_from_before_a_lock_is_flagged_and_a_disconnect_queued(stack: Stack) -> None:
    """ocserv re-admits a session cookie without asking RADIUS again: flexnet learns of
    the session only from its Accounting-Start, flags it for staff and queues a
    Disconnect (ocserv itself cannot receive one; its Session-Timeout bounds it)."""
    login, other = stack.logins
    issued = stack.client.authenticate(login.username, PASSWORD + login.key.otp())
    stack.flexnet("lock", "user", login.username, "--reason", "Interop-Test: Sperre")

    client = stack.client.connect_with_cookie(issued["COOKIE"])
    try:
        client.wait_connected()
        flagged = eventually(
            lambda: [s for s in sessions(stack.url, login.username) if s.flagged],
            "flagged Accounting-Start",
        )
    finally:
        client.log_out()

    assert [s.flagged for s in flagged] == ["locked"]
    assert flagged[0].disconnect_requested_at is not None
    assert f"accounting for {login.username} on session" in stack.node.log()
    assert sessions(stack.url, other.username) == []  # nobody else's session touched
