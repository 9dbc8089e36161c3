"""Two-round logins as ocserv (radcli) makes them: it copies State as a C string, so a
State with a zero byte would come back cut. A long run of challenges over UDP, none with
a zero byte; a State cut on the way is logged as altered; each round is logged."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from pyrad import packet as rp
from sqlalchemy.engine import URL

from flexnet.clients import nas
from flexnet.db import Database
from flexnet.radius.handler import RadiusHandler
from tests.conftest import BOX, NOW, STAFF
from tests.functional.test_radius_status import settings
from tests.support.radius import SECRET, RunningRadius, running
from tests.support.seed import add_login
from tests.support.yubikeys import SimulatedKey

PASSWORD = "Sommer-Regen-2026!"
CHALLENGES = 400  # with 16 random octets, about 6 % of States held a zero byte


@dataclass
class Served:
    radius: RunningRadius
    keys: dict[str, SimulatedKey]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    url: URL = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    database = Database.from_url(url)
    with database.session() as session:
        keys = {
            name: add_login(
                session, BOX, bsnr=f"8812345{n:02d}", username=name, password=PASSWORD, now=NOW
            )
            for n, name in enumerate(("emuster", "kmeier", "lschulz"))
        }
        nas.add_nas(
            session,
            name="ocserv-1",
            address="127.0.0.1",
            secret=SECRET.decode(),
            box=BOX,
            actor=STAFF,
            now=NOW,
        )
    ticks = itertools.count()  # a clock that moves: the oldest challenges make room

    def clock() -> datetime:
        return NOW + timedelta(days=1, milliseconds=next(ticks))

    handler = RadiusHandler(database, settings(url), clock=clock)
    with running(handler) as radius:
        yield Served(radius, keys)
    database.dispose()


def first_round(served: Served, username: str) -> bytes:
    reply = served.radius.send(served.radius.access_request(username, PASSWORD))
    assert reply is not None and reply.code == rp.AccessChallenge
    (state,) = reply["State"]
    return bytes(state)


def second_round(served: Served, username: str, state: bytes) -> int | None:
    otp = served.keys[username].otp()
    reply = served.radius.send(served.radius.access_request(username, otp, state=state))
    return None if reply is None else reply.code


def test_a_long_run_of_states_has_no_zero_byte_and_each_works(served: Served) -> None:
    names = list(served.keys)
    states = [first_round(served, names[n % len(names)]) for n in range(CHALLENGES)]
    # The last challenge of each user is still pending (older ones make room per source).
    latest = {names[n % len(names)]: state for n, state in enumerate(states)}
    answered = [second_round(served, name, state) for name, state in latest.items()]

    assert not [state for state in states if b"\x00" in state]
    assert all(state.isascii() and state.decode().isprintable() for state in states)
    assert len(set(states)) == CHALLENGES
    assert answered == [rp.AccessAccept] * len(names)


def test_a_state_cut_on_the_way_is_logged_as_altered(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flexnet.radius")
    cut = first_round(served, "emuster")[:11]  # as a C string copy cuts at a zero byte
    unknown = b"A" * 32

    results = [second_round(served, "emuster", cut), second_round(served, "kmeier", unknown)]

    messages = [r.getMessage() for r in caplog.records]
    assert results == [rp.AccessReject, rp.AccessReject]
    assert "Access-Challenge to NAS ocserv-1 for emuster: round OTP after the password" in messages
    assert (
        "answer to a challenge from NAS ocserv-1 for emuster rejected: "
        "State came back altered (11 octets instead of 32)"
    ) in messages
    assert (
        "answer to a challenge from NAS ocserv-1 for kmeier rejected: "
        "State unknown, used, expired or of another user or NAS"
    ) in messages
