"""The one authentication pipeline: order of checks, consumption, timing, lockout."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from passlib.hash import bcrypt
from sqlalchemy import event, func, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flexnet.audit import Actor
from flexnet.authn import passwords, pipeline
from flexnet.authn.pipeline import BackendError, Channel, Client, Outcome
from flexnet.clients import nas
from flexnet.config import AuthSettings, ExpiredPasswordMode, Settings, parse_master_key
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    AuditEntry,
    AuthEvent,
    LockCause,
    LockException,
    Practice,
    PracticeKind,
    StaffRole,
    Token,
    TokenKind,
    TokenStatus,
    User,
    UserKind,
    UserStatus,
    VpnSession,
)
from flexnet.otp import stock
from flexnet.otp.secrets import SecretBox, token_context
from flexnet.staff import accounts as staff_accounts
from tests.conftest import BOX, NOW, STAFF, TEST_MASTER_KEY
from tests.support import seed
from tests.support.yubikeys import SimulatedKey

PASSWORD = "Sommer-Regen-2026!"
NAS = Client(Channel.RADIUS, name="vpn-1", source_ip="198.51.100.7")
WEB = Client(Channel.SELF_SERVICE, name="self-service", source_ip="203.0.113.5")
WRONG = "Falsch-Falsch-1"
SETTINGS = Settings(
    instance_path=Path("/nonexistent"),
    database_url=URL.create("sqlite"),
    secret_key="s" * 32,
    master_key=parse_master_key(TEST_MASTER_KEY),
)


@pytest.fixture
def login(
    session: Session,
    make_user: Callable[..., User],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
) -> tuple[User, SimulatedKey]:
    user = make_user(username="emuster", migrated_password=PASSWORD)
    _, key = make_yubikey(practice=user.practice)
    return user, key


def auth(
    session: Session,
    username: str,
    otp: str,
    password: str = PASSWORD,
    *,
    settings: Settings = SETTINGS,
    now: datetime = NOW,
    client: Client = NAS,
    box: SecretBox = BOX,
) -> pipeline.Decision:
    return pipeline.Authenticator(settings, box).authenticate(
        session,
        username=username,
        password=password,
        otp=otp,
        client=client,
        now=now,
    )


def password_only(
    session: Session,
    username: str,
    password: str = PASSWORD,
    *,
    settings: Settings = SETTINGS,
    now: datetime = NOW,
) -> pipeline.Decision:
    """The self-lock and API clients without --require-otp: no OTP at all."""
    return pipeline.Authenticator(settings, BOX).authenticate(
        session,
        username=username,
        password=password,
        otp=None,
        client=WEB,
        now=now,
    )


def add_hotp_token(session: Session, practice: Practice) -> pyotp.HOTP:
    """An OATH-HOTP token of the practice; returns the generator of its codes."""
    seed, serial = bytes(range(20)), "hotp-0001"
    session.add(
        Token(
            serial=serial,
            kind=TokenKind.OATH_HOTP,
            secret=BOX.seal(seed, context=token_context(serial)),
            digits=6,
            status=TokenStatus.ACTIVE,
            practice=practice,
            created_at=NOW,
        )
    )
    session.flush()
    return pyotp.HOTP(base64.b32encode(seed).decode(), digits=6)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Records every password verification (the expensive step)."""
    calls: list[str | None] = []
    original = passwords.verify

    def counting(password: str, stored: str | None) -> passwords.Verification:
        calls.append(stored)
        return original(password, stored)

    monkeypatch.setattr(passwords, "verify", counting)
    return calls


def test_accept_with_password_and_fresh_otp(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    user, key = login

    decision = auth(session, "EMuster", key.otp())

    assert decision.outcome is Outcome.ACCEPT
    assert (decision.reason, decision.profile, decision.user_id) == ("ok", "full", user.id)
    event = session.scalars(select(AuthEvent)).one()
    assert (event.username, event.bsnr, event.client, event.outcome) == (
        "emuster",
        user.practice.bsnr,
        "vpn-1",
        "accept",
    )


def test_wrong_password_consumes_the_otp(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    _, key = login
    otp = key.otp()

    wrong = auth(session, "emuster", otp, "Falsches-Kennwort-1")
    replay = auth(session, "emuster", otp)

    assert (wrong.outcome, wrong.reason) == (Outcome.REJECT, "password_wrong")
    assert wrong.reply_message == pipeline.GENERIC_REJECT
    assert replay.reason == "otp_replayed"


def test_invalid_otp_never_reaches_the_hash(
    session: Session, login: tuple[User, SimulatedKey], hashes: list[str | None]
) -> None:
    decision = auth(session, "emuster", SimulatedKey.random().otp())

    assert decision.reason == "key_unknown"
    assert hashes == []


def test_unknown_user_costs_a_hash_once_the_otp_is_valid(
    session: Session, login: tuple[User, SimulatedKey], hashes: list[str | None]
) -> None:
    _, key = login

    with_valid_otp = auth(session, "niemand", key.otp())
    with_bad_otp = auth(session, "niemand", SimulatedKey.random().otp())

    assert with_valid_otp.reason == with_bad_otp.reason == "user_unknown"
    assert hashes == [None]  # one dummy verification, as for a real user


def test_key_of_another_practice(
    session: Session,
    login: tuple[User, SimulatedKey],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
) -> None:
    _, other = make_yubikey()
    otp = other.otp()

    decision = auth(session, "emuster", otp)

    assert decision.reason == "key_of_other_practice"
    assert auth(session, "emuster", otp).reason == "otp_replayed"


def test_a_staff_members_yubikey_never_opens_a_vpn(
    session: Session,
    login: tuple[User, SimulatedKey],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
) -> None:
    token, staff_key = make_yubikey(status=TokenStatus.STOCK)
    admin = staff_accounts.add_staff(
        session, username="it-anna", role=StaffRole.ADMIN, password="x" * 16, actor=STAFF, now=NOW
    )
    stock.assign_to_staff(session, serial=token.serial, staff=admin, actor=STAFF, now=NOW)

    decision = auth(session, "emuster", staff_key.otp())

    assert decision.outcome is Outcome.REJECT
    assert decision.reason == "key_of_other_practice"


def test_locked_user_is_rejected_and_the_otp_used_up(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    user, key = login
    user.status, user.lock_cause, user.lock_reason, user.locked_at = (
        UserStatus.LOCKED,
        LockCause.LOSS,
        "Verlust gemeldet",
        NOW,
    )
    session.flush()
    otp = key.otp()

    assert auth(session, "emuster", otp).reason == "user_locked_loss"
    user.status, user.lock_cause, user.lock_reason, user.locked_at = (
        UserStatus.ACTIVE,
        None,
        None,
        None,
    )
    session.flush()
    assert auth(session, "emuster", otp).reason == "otp_replayed"


def test_lifecycle_lock_applies_at_request_time(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    user, key = login
    user.practice.activity_ended_on = date(2025, 5, 15)  # locked from 2026-07-01
    session.flush()

    before = auth(session, "emuster", key.otp(), now=datetime(2026, 6, 30, 21, 59, tzinfo=BERLIN))
    after = auth(session, "emuster", key.otp(), now=datetime(2026, 7, 1, 0, 0, tzinfo=BERLIN))

    assert before.outcome is Outcome.ACCEPT
    assert after.reason == "user_locked_lifecycle"


def test_third_party_gets_the_restricted_profile(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
) -> None:
    practice = make_practice(kind=PracticeKind.THIRD_PARTY)
    make_user(
        practice=practice, kind=UserKind.THIRD_PARTY, username="dritter", migrated_password=PASSWORD
    )
    _, key = make_yubikey(practice=practice)

    assert auth(session, "dritter", key.otp()).profile == "restricted"


def test_first_login_with_letter_password_activates(
    session: Session,
    make_user: Callable[..., User],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
) -> None:
    from flexnet.accounts import users

    user = make_user(username="neu")
    users.set_password(session, user, PASSWORD, now=NOW - timedelta(days=2))
    _, key = make_yubikey(practice=user.practice)
    settings = replace(
        SETTINGS, auth=AuthSettings(expired_password_mode=ExpiredPasswordMode.RESTRICTED)
    )

    decision = auth(session, "neu", key.otp(), settings=settings)

    assert user.status is UserStatus.ACTIVE and user.first_login_at == NOW
    assert decision.outcome is Outcome.ACCEPT  # letter passwords are not "must change" here


@pytest.mark.parametrize(
    ("mode", "outcome", "profile"),
    [
        (ExpiredPasswordMode.REJECT, Outcome.REJECT, None),
        (ExpiredPasswordMode.RESTRICTED, Outcome.ACCEPT, "password-change"),
        (ExpiredPasswordMode.CHALLENGE, Outcome.CHALLENGE, None),
    ],
)
def test_expired_password_by_configuration(
    session: Session,
    login: tuple[User, SimulatedKey],
    mode: ExpiredPasswordMode,
    outcome: Outcome,
    profile: str | None,
) -> None:
    _, key = login
    settings = replace(
        SETTINGS,
        auth=AuthSettings(
            expired_password_mode=mode, self_service_url="https://flexnet.example/self-service"
        ),
    )

    decision = auth(session, "emuster", key.otp(), settings=settings, now=NOW + timedelta(days=181))

    assert (decision.outcome, decision.profile) == (outcome, profile)
    assert decision.reason == "password_expired"
    assert decision.reply_message is not None and "Kennwort" in decision.reply_message
    if mode is not ExpiredPasswordMode.CHALLENGE:
        assert "https://flexnet.example/self-service" in decision.reply_message


def test_warning_before_expiry(session: Session, login: tuple[User, SimulatedKey]) -> None:
    _, key = login

    decision = auth(session, "emuster", key.otp(), now=NOW + timedelta(days=170))

    assert decision.outcome is Outcome.ACCEPT
    assert decision.reply_message is not None and "in 10 Tagen ab" in decision.reply_message


def test_unused_initial_password_expires(
    session: Session,
    make_user: Callable[..., User],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
) -> None:
    from flexnet.accounts import users

    user = make_user(username="brief")
    users.set_password(session, user, PASSWORD, now=NOW, must_change=True)
    _, key = make_yubikey(practice=user.practice)

    decision = auth(session, "brief", key.otp(), now=NOW + timedelta(days=60))

    assert decision.reason == "initial_password_expired"


def test_legacy_hash_is_upgraded_on_success(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    user, key = login
    user.password_hash = bcrypt.hash(PASSWORD)
    session.flush()

    assert auth(session, "emuster", key.otp()).outcome is Outcome.ACCEPT
    assert user.password_hash.startswith("$argon2id$")


def test_temporary_lock_then_hard_lock(session: Session, login: tuple[User, SimulatedKey]) -> None:
    user, key = login
    vpn_1 = nas.add_nas(
        session,
        name="vpn-1",
        address="192.0.2.1",
        secret="s" * 16,
        box=BOX,
        actor=Actor.staff("admin"),
        now=NOW,
    )
    live = VpnSession(
        nas_id=vpn_1.id,
        acct_session_id="s1",
        username="emuster",
        user_id=user.id,
        started_at=NOW,
        updated_at=NOW,
    )
    session.add(live)
    for _ in range(5):
        auth(session, "emuster", key.otp(), "Falsch-Falsch-1")

    throttled = auth(session, "emuster", key.otp())
    assert user.failed_logins == 5
    assert user.throttled_until == NOW + timedelta(seconds=60)
    assert throttled.reason == "user_throttled"

    # Attempts during a temporary lock are refused uncounted; wait each delay out.
    later = NOW
    for _ in range(5):
        later += timedelta(hours=2)
        assert auth(session, "emuster", key.otp(), "Falsch-Falsch-1", now=later).reason == (
            "password_wrong"
        )
    assert user.status is UserStatus.LOCKED and user.lock_cause is LockCause.THROTTLE
    assert auth(session, "emuster", key.otp(), now=later).reason == "user_locked_throttle"
    session.refresh(live)
    assert live.disconnect_requested_at == later
    tags = list(session.scalars(select(AuditEntry.tag)))
    assert tags.count("account:user:lock") == 1
    assert "account:throttle:temporary" in tags


def test_success_resets_the_failure_counter(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    user, key = login
    auth(session, "emuster", key.otp(), "Falsch-Falsch-1")

    auth(session, "emuster", key.otp())

    assert user.failed_logins == 0


def test_bad_otps_do_not_lock_the_user_but_the_source(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    user, key = login
    settings = replace(SETTINGS, auth=AuthSettings(source_failure_limit=3))
    for _ in range(3):
        auth(session, "emuster", SimulatedKey.random().otp(), settings=settings)

    blocked = auth(session, "emuster", key.otp(), settings=settings)
    elsewhere = auth(
        session,
        "emuster",
        key.otp(),
        settings=settings,
        client=Client(Channel.RADIUS, "vpn-1", "203.0.113.9"),
    )

    assert user.failed_logins == 0
    assert blocked.reason == "source_throttled"
    assert elsewhere.outcome is Outcome.ACCEPT


@pytest.mark.parametrize(
    ("username", "password", "otp"),
    [
        ("", PASSWORD, "c" * 44),
        ("x" * 65, PASSWORD, "c" * 44),
        ("emuster", "", "c" * 44),
        ("emuster", "ä" * 43, "c" * 44),
        ("emuster", PASSWORD, "not-an-otp"),
        ("emu\x00ster", PASSWORD, "c" * 44),
    ],
)
def test_syntax_errors_are_rejected_before_any_lookup(
    session: Session, hashes: list[str | None], username: str, password: str, otp: str
) -> None:
    decision = auth(session, username, otp, password)

    assert decision.reason == "syntax"
    assert hashes == []
    assert session.scalar(select(func.count()).select_from(AuthEvent)) == 1


def test_backend_error_raises_and_counts_nothing(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    user, key = login

    with pytest.raises(BackendError):
        auth(session, "emuster", key.otp(), box=SecretBox(b"\x01" * 32))

    assert user.failed_logins == 0


def test_in_band_password_change_checks_the_policy(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    user, _ = login

    refused = pipeline.new_password_problems(session, user_id=user.id, password="kurz")
    reused = pipeline.new_password_problems(session, user_id=user.id, password=PASSWORD)
    changed = pipeline.Authenticator(SETTINGS, BOX).finish_password_change(
        session,
        user_id=user.id,
        new_password="Neues-Herbst-Laub-7",
        client=NAS,
        now=NOW,
    )

    assert any("12 Zeichen" in p for p in refused)
    assert any("letzten 10" in p for p in reused)
    assert (changed.outcome, changed.reason, changed.profile) == (
        Outcome.ACCEPT,
        "password_changed",
        "full",
    )
    assert passwords.verify("Neues-Herbst-Laub-7", user.password_hash).ok
    assert user.password_set_at == NOW and not user.password_must_change


def test_in_band_change_refuses_a_user_locked_meanwhile(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    user, _ = login
    user.status, user.lock_cause, user.lock_reason, user.locked_at = (
        UserStatus.LOCKED,
        LockCause.LOSS,
        "Verlust gemeldet",
        NOW,
    )
    session.flush()

    decision = pipeline.Authenticator(SETTINGS, BOX).finish_password_change(
        session,
        user_id=user.id,
        new_password="Neues-Herbst-Laub-7",
        client=NAS,
        now=NOW,
    )

    assert (decision.outcome, decision.reason) == (Outcome.REJECT, "user_locked")
    assert passwords.verify(PASSWORD, user.password_hash).ok  # unchanged


def test_a_foreign_key_never_locks_the_user(
    session: Session,
    login: tuple[User, SimulatedKey],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
) -> None:
    user, _ = login
    _, foreign = make_yubikey()
    later = NOW
    for _ in range(12):
        later += timedelta(hours=3)
        assert auth(session, "emuster", foreign.otp(), now=later).reason == "key_of_other_practice"

    assert user.failed_logins == 0
    assert user.status is UserStatus.ACTIVE


def test_garbage_under_a_public_id_does_not_block_the_key(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    _, key = login
    settings = replace(SETTINGS, auth=AuthSettings(key_failure_limit=3))
    for _ in range(10):
        auth(session, "emuster", key.public_id + "c" * 32, settings=settings)

    assert auth(session, "emuster", key.otp(), settings=settings).outcome is Outcome.ACCEPT


def test_valid_otp_in_a_malformed_request_is_used_up(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    _, key = login
    otp = key.otp()

    assert auth(session, "x" * 80, otp).reason == "syntax"
    assert auth(session, "emuster", otp).reason == "otp_replayed"


def test_expired_initial_password_does_not_activate(
    session: Session,
    make_user: Callable[..., User],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
) -> None:
    from flexnet.accounts import users

    user = make_user(username="brief2")
    users.set_password(session, user, PASSWORD, now=NOW, must_change=True)
    _, key = make_yubikey(practice=user.practice)

    auth(session, "brief2", key.otp(), now=NOW + timedelta(days=61))

    assert user.status is UserStatus.PENDING and user.first_login_at is None


# --- password-only paths, OATH-HOTP limits, throttles without a hash ------------------


def test_password_only_failures_never_lock_the_user(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    user, key = login
    later = NOW
    for _ in range(SETTINGS.auth.hard_lock_after + 2):
        later += timedelta(hours=2)  # past any temporary lock and the failure window
        assert password_only(session, "emuster", WRONG, now=later).reason == "password_wrong"

    assert (user.failed_logins, user.throttled_until) == (0, None)
    assert user.status is UserStatus.ACTIVE
    tags = set(session.scalars(select(AuditEntry.tag)))
    assert not tags & {"account:user:lock", "account:throttle:temporary"}
    assert auth(session, "emuster", key.otp(), now=later).outcome is Outcome.ACCEPT


def test_password_only_attempts_are_throttled_per_name_not_the_key_login(
    session: Session, login: tuple[User, SimulatedKey], hashes: list[str | None]
) -> None:
    user, key = login
    for _ in range(SETTINGS.auth.lockout_threshold):
        password_only(session, "emuster", WRONG)
        password_only(session, "niemand", WRONG)
    hashes.clear()

    known = password_only(session, "emuster")
    unknown = password_only(session, "Niemand")
    assert hashes == []  # refused before the hash, alike for both
    with_key = auth(session, "emuster", key.otp())
    next_window = password_only(
        session, "emuster", now=NOW + timedelta(seconds=SETTINGS.auth.failure_window_seconds)
    )

    assert known.reason == unknown.reason == "password_only_throttled"
    assert known.reply_message == pipeline.GENERIC_REJECT
    assert with_key.outcome is next_window.outcome is Outcome.ACCEPT
    assert user.failed_logins == 0


def test_hotp_codes_are_limited_per_token(
    session: Session,
    make_user: Callable[..., User],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
) -> None:
    user = make_user(username="hotp", migrated_password=PASSWORD)
    codes = add_hotp_token(session, user.practice)
    neighbour = make_user(username="nachbar", migrated_password=PASSWORD)
    _, neighbours_key = make_yubikey(practice=neighbour.practice)
    settings = replace(SETTINGS, auth=AuthSettings(key_failure_limit=3))
    unnamed = Client(Channel.RADIUS, "vpn-1")  # no Calling-Station-Id: no per-source limit
    wrong = [codes.at(n) for n in range(100, 103)]  # far beyond the look-ahead window

    guesses = [auth(session, "hotp", code, settings=settings, client=unnamed) for code in wrong]
    right = auth(session, "hotp", codes.at(0), settings=settings, client=unnamed)
    other_practice = auth(session, "nachbar", neighbours_key.otp(), settings=settings)
    later = NOW + timedelta(seconds=settings.auth.failure_window_seconds)
    used_up = auth(session, "hotp", codes.at(0), settings=settings, client=unnamed, now=later)
    next_code = auth(session, "hotp", codes.at(1), settings=settings, client=unnamed, now=later)

    assert [g.reason for g in guesses] == ["otp_invalid"] * 3
    assert (right.outcome, right.reason) == (Outcome.REJECT, "key_throttled")
    assert other_practice.outcome is Outcome.ACCEPT
    assert used_up.reason == "otp_invalid"  # the right code was consumed while refused
    assert next_code.outcome is Outcome.ACCEPT
    assert user.failed_logins == 0


def test_failures_from_one_ipv6_network_count_together(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    """One host has a whole /64 to choose source addresses from (as the web's limits
    know); an IPv4 address seen through a dual-stack socket is that IPv4 address."""
    _, key = login
    settings = replace(SETTINGS, auth=AuthSettings(source_failure_limit=3))

    def radius(source: str, otp: str) -> pipeline.Decision:
        client = Client(Channel.RADIUS, "vpn-1", source)
        return auth(session, "emuster", otp, settings=settings, client=client)

    for n in range(1, 4):
        radius(f"2001:db8:1:2::{n:x}", SimulatedKey.random().otp())
    for n in range(3):
        radius("::ffff:198.51.100.20" if n else "198.51.100.20", SimulatedKey.random().otp())

    same_network = radius("2001:db8:1:2:aaaa::9", key.otp())
    same_ipv4 = radius("::ffff:198.51.100.20", key.otp())
    next_network = radius("2001:db8:1:3::1", key.otp())

    assert (same_network.reason, same_ipv4.reason) == ("source_throttled", "source_throttled")
    assert next_network.outcome is Outcome.ACCEPT


def test_a_throttled_source_costs_no_hash_but_uses_up_the_otp(
    session: Session, login: tuple[User, SimulatedKey], hashes: list[str | None]
) -> None:
    _, key = login
    settings = replace(SETTINGS, auth=AuthSettings(source_failure_limit=2))
    for _ in range(2):
        auth(session, "emuster", SimulatedKey.random().otp(), settings=settings, client=WEB)
    otp = key.otp()

    known = auth(session, "emuster", otp, settings=settings, client=WEB)
    unknown = auth(session, "niemand", key.otp(), settings=settings, client=WEB)
    without_otp = password_only(session, "emuster", settings=settings)
    elsewhere = auth(session, "emuster", otp, settings=settings)

    assert known.reason == unknown.reason == without_otp.reason == "source_throttled"
    assert hashes == []
    assert elsewhere.reason == "otp_replayed"


def test_a_throttled_key_costs_no_hash(
    session: Session, login: tuple[User, SimulatedKey], hashes: list[str | None]
) -> None:
    user, key = login
    settings = replace(SETTINGS, auth=AuthSettings(key_failure_limit=2))
    for _ in range(2):
        auth(session, "emuster", key.otp(), WRONG, settings=settings)
    hashes.clear()

    throttled = auth(session, "emuster", key.otp(), settings=settings)

    assert throttled.reason == "key_throttled"
    assert hashes == []
    assert user.failed_logins == 2


def test_a_hotp_code_on_a_locked_token_is_used_up_durably(
    session: Session, make_user: Callable[..., User]
) -> None:
    """The counter moved: the transaction must not be committed with the relaxed
    durability of a mere log line, or a crash could let the code in again."""
    user = make_user(username="hotp", migrated_password=PASSWORD)
    codes = add_hotp_token(session, user.practice)
    token = session.scalars(select(Token).where(Token.serial == "hotp-0001")).one()
    token.status = TokenStatus.LOST

    refused = auth(session, "hotp", codes.at(0))

    assert refused.outcome is Outcome.REJECT and refused.durable
    assert token.hotp_counter == 1  # the code was used up: the counter moved


def test_a_lone_surrogate_in_the_password_is_a_syntax_reject(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    """JSON can carry "\\ud800", which no encoding turns into bytes (found by the fuzzer:
    the API answered 503)."""
    _, key = login

    decision = auth(session, "emuster", key.otp(), password="Sommer\ud800")

    assert (decision.outcome, decision.reason) == (Outcome.REJECT, "syntax")


def test_a_stranger_elsewhere_never_pauses_the_password_only_paths_for_the_owner(
    session: Session, login: tuple[User, SimulatedKey]
) -> None:
    """Issue 15, items 10 and 18, on the self-lock and password-only API clients: the
    owner's right password from their own address is checked whatever strangers do."""
    threshold = SETTINGS.auth.lockout_threshold

    def from_address(address: str, password: str) -> pipeline.Decision:
        client = Client(Channel.SELF_SERVICE, name="self-service", source_ip=address)
        return pipeline.Authenticator(SETTINGS, BOX).authenticate(
            session,
            username="emuster",
            password=password,
            otp=None,
            client=client,
            now=NOW,
        )

    one = [from_address("198.51.100.7", WRONG).reason for _ in range(3 * threshold)]
    many = [from_address(f"198.51.100.{n}", WRONG).reason for n in range(20, 40) for _ in range(5)]
    owner = from_address("192.0.2.44", PASSWORD)

    assert owner.outcome is Outcome.ACCEPT
    assert one.count("password_wrong") == threshold  # the rest refused before the hash
    # Guessing from many addresses is bounded by them: after the alarm one each.
    alarm = pipeline.password_only_alarm(SETTINGS.auth)
    addresses_before_alarm = (alarm - threshold) // threshold
    checked = threshold + many.count("password_wrong")
    assert checked == alarm + (20 - addresses_before_alarm) * pipeline.PASSWORD_ONLY_UNDER_ALARM


@pytest.mark.parametrize("members", [1, 4])
def test_a_staff_login_reads_its_members_in_as_many_statements_for_one_as_for_four(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
    members: int,
) -> None:
    """The practice follows its members (§ 1.2): every member's end of activity and
    exception decides a staff login. All members ended long ago, each with an exception
    past today: the login is let in only if every member's exception was read, and the
    statements do not grow with the members (they are joined into the user's read)."""
    practice = make_practice()
    staff = make_user(practice=practice, username="emuster", migrated_password=PASSWORD)
    _, key = make_yubikey(practice=practice)
    for n in range(members):
        member = make_user(practice=practice, kind=UserKind.MEMBER, lanr=seed.lanr(n))
        member.activity_ended_on = date(2024, 6, 30)
        session.add(
            LockException(
                user=member,
                until=NOW.date() + timedelta(days=30 + n),
                reason="Vertretung",
                decision_ref=f"V-{n}",
                decided_by="test",
            )
        )
    session.flush()
    session.expire_all()
    selects: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    engine = session.get_bind().engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        decision = auth(session, "emuster", key.otp())
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert decision.outcome is Outcome.ACCEPT, decision
    assert decision.user_id == staff.id
    # the user with practice and members (phase 1), the key (OTP), the limits, and in
    # phase 3 the same rows with the key as plain values, the user's locked, found
    # unchanged and so not loaded again: 4, however many members
    assert len(selects) == 4, "\n\n".join(selects)
