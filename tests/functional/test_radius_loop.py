"""What the server's event loop decides itself, and what it hands to a pool thread.

An OTP the fast path refuses is answered in the loop: no thread hand-off and no
database. Everything that needs the database or a hash goes on as ``Later`` with what
was decoded, and the loop never waits for the database, not even for a NAS list due
for reloading.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from pyrad import packet as rp
from sqlalchemy import event, select
from sqlalchemy.engine import URL

from flexnet.authn.pipeline import Authenticator, Reason
from flexnet.db import Database
from flexnet.models import AuthEvent
from flexnet.radius.fastpath import KeySnapshot
from flexnet.radius.handler import Later, RadiusHandler
from flexnet.radius.packets import Port, load_dictionary
from tests.conftest import BOX, NOW
from tests.functional.test_radius import PASSWORD, seed, settings_for
from tests.functional.test_radius_status import status_server
from tests.support.radius import SECRET, encoded_access_request, running
from tests.support.seed import add_login
from tests.support.yubikeys import SimulatedKey

SOURCE = ("127.0.0.1", 40000)


@dataclass
class Loop:
    handler: RadiusHandler
    database: Database
    key: SimulatedKey
    checkouts: list[int]  # one entry per database connection taken from the pool

    def receive(self, data: bytes, port: Port = Port.AUTH) -> object:
        """The handler's answer as the loop gets it, asserting it touched no database."""
        before = len(self.checkouts)
        outcome = self.handler.receive(data, SOURCE, port)
        assert len(self.checkouts) == before, "the event loop waited for the database"
        return outcome

    def wrong_otp(self) -> str:
        """An OTP of the practice's key, sealed with another AES key (a forgery)."""
        return self.key.craft(usage=1, session=5, aes_key=os.urandom(16))


def make_loop(
    sqlite_url: URL, refresh_seconds: float
) -> tuple[RadiusHandler, Database, SimulatedKey]:
    database = Database.from_url(sqlite_url)
    key, _ = seed(database, coa_port=3799)
    handler = RadiusHandler(
        database,
        settings_for(sqlite_url),
        clock=lambda: NOW + timedelta(days=1),
        refresh_seconds=refresh_seconds,
    )
    return handler, database, key


@pytest.fixture
def loop(sqlite_url: URL) -> Iterator[Loop]:
    handler, database, key = make_loop(sqlite_url, refresh_seconds=300.0)
    checkouts: list[int] = []
    # The first packet loads the NAS list, profiles and keys (in a thread, as always).
    first = handler.handle(
        encoded_access_request("emuster", PASSWORD + key.otp()), ("127.0.0.1", 39999), Port.AUTH
    )
    assert first is not None and first[0] == rp.AccessAccept
    event.listen(database.engine, "checkout", lambda *_: checkouts.append(1))
    try:
        yield Loop(handler, database, key, checkouts)
    finally:
        handler.close()
        database.dispose()


def reasons(database: Database) -> list[str]:
    with database.reader() as session:
        return list(session.scalars(select(AuthEvent.reason).order_by(AuthEvent.id)))


def test_a_refused_otp_is_answered_in_the_loop_and_logged_in_the_batch(loop: Loop) -> None:
    replies = [
        loop.receive(encoded_access_request("emuster", PASSWORD + loop.wrong_otp()))
        for _ in range(20)
    ]

    assert all(isinstance(reply, bytes) and reply[0] == rp.AccessReject for reply in replies)
    loop.handler.reject_log.flush()
    assert reasons(loop.database)[1:] == [Reason.OTP_INVALID.value] * 20


def test_a_valid_otp_goes_to_a_thread_and_its_retransmissions_wait_for_the_answer(
    loop: Loop,
) -> None:
    request = encoded_access_request("emuster", PASSWORD + loop.key.otp())

    later = loop.receive(request)
    retransmitted = loop.receive(request)  # while the first is still being decided
    assert isinstance(later, Later)
    answer = later.run()
    cached = loop.receive(request)

    assert retransmitted is None
    assert answer is not None and answer[0] == rp.AccessAccept
    assert cached == answer  # RFC 5080: the same answer, the OTP not evaluated again
    assert reasons(loop.database) == ["ok", "ok"]


def test_a_retransmitted_refusal_gets_the_same_answer(loop: Loop) -> None:
    request = encoded_access_request("emuster", PASSWORD + loop.wrong_otp())

    first = loop.receive(request)
    again = loop.receive(request)

    assert isinstance(first, bytes) and first[0] == rp.AccessReject
    assert again == first


@pytest.mark.parametrize(
    ("what", "port"),
    [
        ("password without OTP: a challenge is stored", Port.AUTH),
        ("no password: the refusal is written at once", Port.AUTH),
        ("a key handed out since the last reload", Port.AUTH),
        ("Status-Server asks the database", Port.AUTH),
        ("accounting is stored", Port.ACCT),
    ],
)
def test_what_needs_the_database_goes_to_a_thread(loop: Loop, what: str, port: Port) -> None:
    if what.startswith("password without OTP"):
        data = encoded_access_request("emuster", PASSWORD)
        expected = rp.AccessChallenge
    elif what.startswith("no password"):
        data = encoded_access_request("emuster", None)
        expected = rp.AccessReject
    elif what.startswith("a key handed out"):
        with loop.database.session() as session:
            new_key = add_login(
                session, BOX, bsnr="881234700", username="neu", password=PASSWORD, now=NOW
            )
        data = encoded_access_request("neu", PASSWORD + new_key.otp())
        expected = rp.AccessAccept
    elif what.startswith("Status-Server"):
        data = status_server()
        expected = rp.AccessAccept
    else:
        data = _accounting_start()
        expected = rp.AccountingResponse

    later = loop.receive(data, port)

    assert isinstance(later, Later), what
    answer = later.run()
    assert answer is not None and answer[0] == expected, what


def test_a_nas_list_due_for_reloading_is_reloaded_in_a_thread(sqlite_url: URL) -> None:
    handler, database, key = make_loop(sqlite_url, refresh_seconds=300.0)
    checkouts: list[int] = []
    event.listen(database.engine, "checkout", lambda *_: checkouts.append(1))
    try:
        later = handler.receive(
            encoded_access_request("emuster", PASSWORD + key.otp()), SOURCE, Port.AUTH
        )
        in_the_loop = len(checkouts)
        assert isinstance(later, Later)
        answer = later.run()
    finally:
        handler.close()
        database.dispose()

    assert in_the_loop == 0  # nothing loaded yet, and still the loop did not wait
    assert answer is not None and answer[0] == rp.AccessAccept


def test_an_error_in_the_loop_is_silence_and_a_retransmission_is_decided_again(
    loop: Loop, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    request = encoded_access_request("emuster", PASSWORD + loop.wrong_otp())

    def broken(snapshot: KeySnapshot, otp: object) -> object:
        raise RuntimeError("a defect in the fast path")

    with monkeypatch.context() as patch:
        patch.setattr(KeySnapshot, "judge", broken)
        with caplog.at_level(logging.ERROR, logger="flexnet.radius.handler"):
            silent = loop.receive(request)
    again = loop.receive(request)

    assert silent is None  # never an accept; the NAS asks its second server
    assert "internal error on Access-Request" in caplog.text
    assert isinstance(again, bytes) and again[0] == rp.AccessReject


def test_refusals_are_answered_while_every_thread_hashes(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty forged OTPs while the pool's only thread is busy with a valid login: each is
    refused at once, and the valid login is accepted when its thread is done."""
    release = threading.Event()
    started = threading.Event()
    authenticate = Authenticator.authenticate

    def slow(self: Authenticator, *args: object, **kwargs: object) -> object:
        started.set()
        release.wait(20)  # a long hash, as on a busy hour
        return authenticate(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Authenticator, "authenticate", slow)
    with running(loop.handler, threads=1) as radius:
        pending = threading.Thread(
            target=lambda: results.append(
                radius.send(radius.access_request("emuster", PASSWORD + loop.key.otp()), timeout=20)
            )
        )
        results: list[rp.Packet | None] = []
        pending.start()
        assert started.wait(10)
        refused = [
            radius.send(radius.access_request("emuster", PASSWORD + loop.wrong_otp()), timeout=2)
            for _ in range(20)
        ]
        release.set()
        pending.join(20)

    assert [None if r is None else r.code for r in refused] == [rp.AccessReject] * 20
    assert [None if r is None else r.code for r in results] == [rp.AccessAccept]


def _accounting_start() -> bytes:
    request = rp.AcctPacket(
        code=rp.AccountingRequest,
        secret=SECRET,
        dict=load_dictionary(),
        User_Name="emuster",
        Acct_Session_Id="loop-1",
        Acct_Status_Type="Start",
    )
    return bytes(request.RequestPacket())
