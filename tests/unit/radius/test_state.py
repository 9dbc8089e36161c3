"""RADIUS state: challenges (in the database, shared by workers) and the duplicate cache."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pyrad import packet as rp
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet.clients import nas
from flexnet.db import Database
from flexnet.models import RadiusChallenge
from flexnet.radius.handler import _add_message
from flexnet.radius.packets import load_dictionary
from flexnet.radius.state import IN_FLIGHT, Challenge, ChallengeStore, DuplicateCache
from tests.conftest import BOX, NOW, STAFF


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A committed database of this test's own with two NAS (ids 1 and 2)."""
    url: URL = request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")
    database = Database.from_url(url)
    with database.session() as session:
        for n in (1, 2):
            nas.add_nas(
                session,
                name=f"vpn-{n}",
                address=f"192.0.2.{n}",
                secret=f"nas-secret-{n}-0123456789",
                box=BOX,
                actor=STAFF,
                now=NOW,
            )
    yield database
    database.dispose()


def test_challenge_is_single_use_and_bound_to_user_and_nas(database: Database) -> None:
    store = ChallengeStore(database, BOX)
    state = store.issue(Challenge("otp", "emuster", nas_id=1, password="x"))
    other = store.issue(Challenge("otp", "emuster", nas_id=1, password="x"))

    assert store.take(state, username="emuster", nas_id=2) is None  # other NAS
    assert store.take(state, username="emuster", nas_id=1) is None  # already used up
    assert store.take(other, username="dritter", nas_id=1) is None  # other user
    assert store.take(b"\x00" * 16, username="emuster", nas_id=1) is None


def test_challenge_expires(database: Database) -> None:
    store = ChallengeStore(database, BOX, ttl=0.05)
    state = store.issue(Challenge("otp", "emuster", nas_id=1))
    time.sleep(0.1)

    assert store.take(state, username="emuster", nas_id=1) is None


def test_a_flood_from_one_source_replaces_only_its_own_challenges(database: Database) -> None:
    store = ChallengeStore(database, BOX, size=50, per_source=5)
    victim = store.issue(Challenge("otp", "emuster", nas_id=1, source="198.51.100.1"))
    for n in range(500):
        store.issue(Challenge("otp", f"angreifer{n}", nas_id=1, source="203.0.113.66"))

    assert store.take(victim, username="emuster", nas_id=1) is not None


def test_duplicate_cache_keeps_requests_in_flight() -> None:
    cache = DuplicateCache(size=3)
    assert cache.claim("in-flight") is None
    for n in range(10):
        assert cache.claim(n) is None
        cache.store(n, b"reply")

    assert cache.claim("in-flight") is IN_FLIGHT
    cache.store("in-flight", b"answer")
    assert cache.claim("in-flight") == b"answer"


def test_long_reply_messages_are_split_on_character_boundaries() -> None:
    reply = rp.AuthPacket(code=rp.AccessReject, secret=b"s", dict=load_dictionary())
    text = "Ihr Kennwort läuft bald ab; bitte ändern Sie es rechtzeitig. " * 10

    _add_message(reply, text)

    parts = reply["Reply-Message"]
    assert len(parts) > 1
    assert all(len(p.encode()) <= 253 for p in parts)
    assert "".join(parts) == text


def test_state_values_are_printable_and_unguessable(database: Database) -> None:
    """Issue 18 item 3: some NAS cut a State at a zero byte, so a value never has one;
    printable, and at least as much entropy as the 16 random bytes before."""
    store = ChallengeStore(database, BOX, size=1000, per_source=1000)
    states = [store.issue(Challenge("otp", "emuster", nas_id=1, password="x")) for _ in range(300)]

    assert all(state.isascii() and state.decode().isprintable() for state in states)
    assert all(b"\x00" not in state for state in states)
    assert len(set(states)) == len(states)
    assert min(len(state) for state in states) * 6 >= 128  # base64url: 6 bits a character


def test_the_first_rounds_password_is_sealed_at_rest(database: Database) -> None:
    store = ChallengeStore(database, BOX)
    state = store.issue(Challenge("otp", "emuster", nas_id=1, password="Sommer-Regen-2026!"))
    with database.reader() as session:
        rows = session.execute(select(RadiusChallenge)).scalars().all()
        stored = b"".join(
            row.sealed + row.state_hash.encode() + row.username.encode() for row in rows
        )

    assert b"Sommer-Regen-2026!" not in stored
    assert state not in stored  # only the State's hash: a database reader cannot answer it
    taken = store.take(state, username="emuster", nas_id=1)
    assert taken is not None and taken.password == "Sommer-Regen-2026!"
