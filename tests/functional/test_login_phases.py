"""A login in short phases (issue 17): nothing is held while argon2id runs, and what
changes meanwhile (a lock, a new password, failures elsewhere) wins as in a serial order.

Each test changes the database from a second connection *while* the password is being
hashed (a wrapper around ``passwords.verify`` does it before the first hash), as staff,
another node or a racing login would, and then looks at the decision and the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from passlib.hash import bcrypt
from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import URL
from sqlalchemy.sql import Executable

from flexnet.accounts import users
from flexnet.authn import passwords, pipeline
from flexnet.authn.pipeline import Channel, Client, Outcome
from flexnet.config import AuthSettings, Settings, parse_master_key
from flexnet.db import Database, utcnow
from flexnet.models import LockCause, LockException, Practice, Token, TokenStatus, User, UserKind
from tests.conftest import BOX, NOW, STAFF, TEST_MASTER_KEY
from tests.support import seed
from tests.support.nodes import otp_counters, stored_counters
from tests.support.seed import add_login
from tests.support.yubikeys import SimulatedKey

PASSWORD = "Sommer-Regen-2026!"
NEW_PASSWORD = "Neues-Herbst-Laub-7"
NAS = Client(Channel.RADIUS, "vpn-1", "198.51.100.7")
# How long the second connection waits for a lock: far below a hash's length x the
# NAS's patience, far above a short write's.
WAIT_MS = 300


@dataclass
class World:
    url: URL
    database: Database  # the login's
    other: Database  # staff, another node: a connection of its own, a short lock wait
    key: SimulatedKey
    settings: Settings
    errors: list[str] = field(default_factory=list)

    def login(self, otp: str, password: str = PASSWORD) -> pipeline.Decision:
        with self.database.session() as session:
            return pipeline.Authenticator(self.settings, BOX).authenticate(
                session, username="emuster", password=password, otp=otp, client=NAS, now=utcnow()
            )

    def meanwhile(self, action: Callable[[], None]) -> Callable[[], None]:
        """Run ``action`` from the other connection; a failure is kept, not raised."""

        def run() -> None:
            try:
                action()
            except Exception as error:  # noqa: BLE001 - reported by the test's assertions
                self.errors.append(f"{type(error).__name__}: {error}")

        return run

    def user(self) -> User:
        with self.other.reader() as session:
            found = session.scalar(select(User).where(User.username == "emuster"))
            assert found is not None
            return found


@pytest.fixture
def world(database_url: URL) -> Iterator[World]:
    database = Database.from_url(database_url)
    with database.session() as session:
        key = add_login(session, BOX, username="emuster", password=PASSWORD, now=NOW)
    settings = Settings(
        instance_path=Path("/nonexistent"),
        database_url=database_url,
        secret_key="s" * 32,
        master_key=parse_master_key(TEST_MASTER_KEY),
        auth=AuthSettings(),
    )
    other = Database.from_url(database_url, timeout_ms=WAIT_MS)
    yield World(database_url, database, other, key, settings)
    database.dispose()
    other.dispose()


@pytest.fixture
def during_the_hash(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], None]], None]:
    """``during_the_hash(action)``: the next password hash runs ``action`` first."""
    pending: list[Callable[[], None]] = []
    original = passwords.verify

    def verify(password: str, stored: str | None) -> passwords.Verification:
        while pending:
            pending.pop(0)()
        return original(password, stored)

    monkeypatch.setattr(passwords, "verify", verify)
    return pending.append


def test_nothing_is_held_while_the_password_is_hashed(
    world: World, during_the_hash: Callable[[Callable[[], None]], None]
) -> None:
    """The OTP's row (PostgreSQL) or the file (SQLite) is free while argon2id runs: a
    writer that waits WAIT_MS at most gets through, and the login is still accepted."""
    otp = world.key.otp()

    def touch_the_key() -> None:
        with world.other.session() as session:
            session.execute(
                update(Token)
                .where(Token.public_id == world.key.public_id)
                .values(last_used_at=Token.last_used_at)
            )

    during_the_hash(world.meanwhile(touch_the_key))
    decision = world.login(otp)

    assert world.errors == []
    assert decision.outcome is Outcome.ACCEPT


def test_a_lock_while_the_password_is_hashed_wins_and_the_otp_stays_used(
    world: World, during_the_hash: Callable[[Callable[[], None]], None]
) -> None:
    otp = world.key.otp()

    def lock() -> None:
        with world.other.session() as session:
            user = session.scalar(select(User).where(User.username == "emuster"))
            assert user is not None
            users.lock_one(
                session,
                user=user,
                cause=LockCause.MISUSE,
                reason="Missbrauchsverdacht",
                actor=STAFF,
                now=utcnow(),
            )

    during_the_hash(world.meanwhile(lock))
    decision = world.login(otp)

    assert world.errors == []
    assert (decision.outcome, decision.reason) == (Outcome.REJECT, "user_locked_misuse")
    assert stored_counters(world.url, world.key) == otp_counters(world.key, otp)


def test_a_password_changed_while_hashing_is_neither_accepted_nor_overwritten(
    world: World, during_the_hash: Callable[[Callable[[], None]], None]
) -> None:
    """The old hash is bcrypt (taken over), so an accept would store its argon2id
    upgrade: over the new password, the old one would work again."""
    with world.database.session() as session:
        session.execute(
            update(User)
            .where(User.username == "emuster")
            .values(password_hash=bcrypt.using(rounds=4).hash(PASSWORD))
        )
    otp = world.key.otp()

    def change() -> None:
        with world.other.session() as session:
            user = session.scalar(select(User).where(User.username == "emuster"))
            assert user is not None
            users.set_password(session, user, NEW_PASSWORD, now=utcnow())

    during_the_hash(world.meanwhile(change))
    decision = world.login(otp)

    assert world.errors == []
    assert (decision.outcome, decision.reason) == (Outcome.REJECT, "password_wrong")
    stored = world.user().password_hash
    assert passwords.verify(NEW_PASSWORD, stored).ok
    assert not passwords.verify(PASSWORD, stored).ok


def test_failures_counted_elsewhere_meanwhile_throttle_the_login(
    world: World, during_the_hash: Callable[[Callable[[], None]], None]
) -> None:
    """Another node counts the failures that reach the temporary lock while this login
    hashes: the login is refused as it would be after them."""
    otp = world.key.otp()
    wrong = [world.key.otp() for _ in range(world.settings.auth.lockout_threshold)]

    def fail_elsewhere() -> None:
        for other_otp in wrong:
            with world.other.session() as session:
                refused = pipeline.Authenticator(world.settings, BOX).authenticate(
                    session,
                    username="emuster",
                    password="Falsch-Falsch-1",
                    otp=other_otp,
                    client=NAS,
                    now=utcnow(),
                )
                assert refused.reason == "password_wrong"

    during_the_hash(world.meanwhile(fail_elsewhere))
    decision = world.login(otp)

    assert world.errors == []
    assert (decision.outcome, decision.reason) == (Outcome.REJECT, "user_throttled")
    assert world.user().failed_logins == world.settings.auth.lockout_threshold


def test_the_otp_stays_used_up_when_the_outcome_cannot_be_written(
    world: World, during_the_hash: Callable[[Callable[[], None]], None]
) -> None:
    """An error after the OTP was checked is no accept, and the OTP stays used up (the
    customer's rule): it was committed before the hash."""
    otp = world.key.otp()

    def break_the_auth_log() -> None:
        with world.other.session() as session:
            session.execute(text("ALTER TABLE auth_events RENAME TO auth_events_away"))

    during_the_hash(world.meanwhile(break_the_auth_log))
    with pytest.raises(Exception):  # noqa: B017, PT011 - whichever the database raises
        world.login(otp)
    with world.other.session() as session:
        session.execute(text("ALTER TABLE auth_events_away RENAME TO auth_events"))

    assert world.errors == []
    assert stored_counters(world.url, world.key) == otp_counters(world.key, otp)
    assert world.login(otp).reason == "otp_replayed"


# Phase 3 compares the rows with what phase 1 loaded and loads them again only if they
# differ (``authn.recheck``). Each test below changes a row other than the user's own,
# so the login is refused only if that row took part in the comparison.


def _end_long_ago(world: World) -> None:
    """The practice ended long ago (past § 10.3's lock); its exception keeps it open."""
    with world.database.session() as session:
        practice = session.scalar(select(Practice))
        assert practice is not None
        practice.activity_ended_on = date(2024, 6, 30)
        session.add(
            LockException(
                practice=practice,
                until=utcnow().date() + timedelta(days=30),
                reason="Vertretung",
                decision_ref="V-1",
                decided_by="test",
            )
        )


def _login_while(
    world: World,
    during_the_hash: Callable[[Callable[[], None]], None],
    change: Executable,
) -> pipeline.Decision:
    """A login whose password hash first runs ``change`` from the other connection."""
    otp = world.key.otp()

    def run() -> None:
        with world.other.session() as session:
            session.execute(change)

    during_the_hash(world.meanwhile(run))
    decision = world.login(otp)
    assert world.errors == []
    return decision


def test_a_practice_exception_withdrawn_while_hashing_locks_the_login(
    world: World, during_the_hash: Callable[[Callable[[], None]], None]
) -> None:
    _end_long_ago(world)
    assert world.login(world.key.otp()).outcome is Outcome.ACCEPT

    decision = _login_while(world, during_the_hash, delete(LockException))

    assert (decision.outcome, decision.reason) == (Outcome.REJECT, "user_locked_lifecycle")


def test_the_last_members_end_recorded_while_hashing_locks_a_staff_login(
    world: World, during_the_hash: Callable[[Callable[[], None]], None]
) -> None:
    """The practice follows its members (§ 1.2): a change to another user's row counts."""
    with world.database.session() as session:
        users.create_user(
            session,
            username="drmuster",
            bsnr="881234500",
            kind=UserKind.MEMBER,
            lanr=seed.lanr(1),
            actor=STAFF,
            now=NOW,
        )
    assert world.login(world.key.otp()).outcome is Outcome.ACCEPT
    end_the_member = (
        update(User).where(User.username == "drmuster").values(activity_ended_on=date(2024, 6, 30))
    )

    decision = _login_while(world, during_the_hash, end_the_member)

    assert (decision.outcome, decision.reason) == (Outcome.REJECT, "user_locked_lifecycle")


def test_a_key_reported_lost_while_hashing_refuses_the_login(
    world: World, during_the_hash: Callable[[Callable[[], None]], None]
) -> None:
    decision = _login_while(world, during_the_hash, update(Token).values(status=TokenStatus.LOST))

    assert (decision.outcome, decision.reason) == (Outcome.REJECT, "key_lost")
