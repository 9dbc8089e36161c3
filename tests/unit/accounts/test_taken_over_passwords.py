"""Passwords taken over from the previous system meet the policy (§ 5.4) before they
open the VPN: a plaintext is checked when it is taken over, a hash when its plaintext is
first typed; one that breaks the policy must be changed first, in the configured flow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from passlib.hash import bcrypt, sha512_crypt
from sqlalchemy import select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flexnet.accounts import users
from flexnet.authn import passwords, pipeline
from flexnet.authn.pipeline import Channel, Client, Outcome
from flexnet.config import AuthSettings, ExpiredPasswordMode, Settings, parse_master_key
from flexnet.errors import ValidationError
from flexnet.models import AuditEntry, Practice, TakenOverPassword, Token, User, UserKind
from tests.conftest import BOX, NOW, STAFF, TEST_MASTER_KEY
from tests.support.yubikeys import SimulatedKey

GOOD = "Sommer-Regen-2026!"
WEAK = "abc"
NAS = Client(Channel.RADIUS, name="vpn-1", source_ip="198.51.100.7")
SETTINGS = Settings(
    instance_path=Path("/nonexistent"),
    database_url=URL.create("sqlite"),
    secret_key="s" * 32,
    master_key=parse_master_key(TEST_MASTER_KEY),
    auth=AuthSettings(self_service_url="https://flexnet.example/self-service"),
)
MakeKey = Callable[..., tuple[Token, SimulatedKey]]


def taken_over(
    session: Session,
    practice: Practice,
    username: str,
    *,
    password: str | None = None,
    password_hash: str | None = None,
) -> User:
    return users.create_user(
        session,
        username=username,
        bsnr=practice.bsnr,
        kind=UserKind.STAFF,
        migrated_password=password,
        migrated_hash=password_hash,
        actor=STAFF,
        now=NOW,
    )


def login(
    session: Session,
    username: str,
    password: str,
    key: SimulatedKey,
    *,
    mode: ExpiredPasswordMode = ExpiredPasswordMode.REJECT,
    later: timedelta = timedelta(hours=1),
) -> pipeline.Decision:
    settings = replace(SETTINGS, auth=replace(SETTINGS.auth, expired_password_mode=mode))
    return pipeline.Authenticator(settings, BOX).authenticate(
        session,
        username=username,
        password=password,
        otp=key.otp(),
        client=NAS,
        now=NOW + later,
    )


@pytest.mark.parametrize(
    ("mode", "outcome", "profile"),
    [
        (ExpiredPasswordMode.REJECT, Outcome.REJECT, None),
        (ExpiredPasswordMode.RESTRICTED, Outcome.ACCEPT, "password-change"),
        (ExpiredPasswordMode.CHALLENGE, Outcome.CHALLENGE, None),
    ],
)
def test_a_taken_over_password_that_breaks_the_policy_must_be_changed_first(
    session: Session,
    make_practice: Callable[..., Practice],
    make_yubikey: MakeKey,
    mode: ExpiredPasswordMode,
    outcome: Outcome,
    profile: str | None,
) -> None:
    practice = make_practice()
    _, key = make_yubikey(practice=practice)
    weak = taken_over(session, practice, "schwach", password=WEAK)
    good = taken_over(session, practice, "stark", password=GOOD)

    decision = login(session, "schwach", WEAK, key, mode=mode)
    months_later = login(session, "schwach", WEAK, key, mode=mode, later=timedelta(days=90))
    fine = login(session, "stark", GOOD, key, mode=mode)

    assert weak.taken_over_password is TakenOverPassword.WEAK
    assert good.taken_over_password is None
    for refused in (decision, months_later):  # no "initial password expired" after 60 days
        assert (refused.outcome, refused.profile) == (outcome, profile)
        assert (
            refused.reason == "password_weak" and refused.reason in pipeline.PASSWORD_CHANGE_REASONS
        )
        assert refused.reply_message is not None and "Kennwortrichtlinie" in refused.reply_message
    assert (fine.outcome, fine.profile, fine.reason) == (Outcome.ACCEPT, "full", "ok")


@pytest.mark.parametrize("scheme", [bcrypt, sha512_crypt])
def test_a_taken_over_hash_is_checked_against_the_policy_when_first_typed(
    session: Session,
    make_practice: Callable[..., Practice],
    make_yubikey: MakeKey,
    scheme: object,
) -> None:
    practice = make_practice()
    _, key = make_yubikey(practice=practice)
    weak = taken_over(session, practice, "schwach", password_hash=scheme.hash(WEAK))  # type: ignore[attr-defined]
    good = taken_over(session, practice, "stark", password_hash=scheme.hash(GOOD))  # type: ignore[attr-defined]
    unchecked = (weak.taken_over_password, good.taken_over_password)

    wrong = login(session, "schwach", "falsch-falsch", key)
    refused = login(session, "schwach", WEAK, key)
    accepted = login(session, "stark", GOOD, key)

    assert unchecked == (TakenOverPassword.UNCHECKED, TakenOverPassword.UNCHECKED)
    assert wrong.reason == "password_wrong"
    assert refused.outcome is Outcome.REJECT and refused.reason == "password_weak"
    assert weak.taken_over_password is TakenOverPassword.WEAK
    assert (accepted.outcome, accepted.profile) == (Outcome.ACCEPT, "full")
    assert good.taken_over_password is None
    assert good.password_hash is not None and good.password_hash.startswith("$argon2id$")
    tags = [e.tag for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert tags.count("account:password:policy-check") == 2
    trail = " ".join(str(e.data) for e in session.scalars(select(AuditEntry)))
    assert WEAK not in trail.split() and GOOD not in trail and "$2b$" not in trail


def test_a_changed_password_ends_the_taken_over_state_at_once(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    practice = make_practice()
    _, key = make_yubikey(practice=practice)
    user = taken_over(session, practice, "schwach", password=WEAK)

    change = users.change_own_password(
        session,
        user=user,
        old_password=WEAK,
        new_password="Neues-Herbst-Laub-7",
        channel="self_service",
        now=NOW + timedelta(minutes=5),  # the minimum age does not hold a forced change back
        auth=AuthSettings(),
        source_ip=None,
    )

    assert change.changed, change.problems
    assert user.taken_over_password is None
    assert login(session, "schwach", "Neues-Herbst-Laub-7", key).outcome is Outcome.ACCEPT


@pytest.mark.parametrize(
    "bad",
    [
        "abc",
        "$1$saltsalt$abcdefghijklmnopqrstuv",  # md5_crypt: not a scheme flexnet verifies
        "$2b$12$tooshort",
        "$argon2id$v=19$m=19456,t=2,p=1$kaputt",
    ],
)
def test_a_hash_flexnet_cannot_verify_is_refused_without_showing_it(
    session: Session, make_practice: Callable[..., Practice], bad: str
) -> None:
    practice = make_practice()

    with pytest.raises(ValidationError) as refused:
        taken_over(session, practice, "neu", password_hash=bad)

    assert bad not in str(refused.value)
    assert "argon2" in str(refused.value) and "bcrypt" in str(refused.value)
    assert session.scalar(select(User.id).where(User.username == "neu")) is None


def test_a_password_and_a_hash_at_once_are_refused(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    with pytest.raises(ValidationError, match="entweder"):
        taken_over(session, make_practice(), "neu", password=GOOD, password_hash=bcrypt.hash(GOOD))


def test_policy_check_uses_the_configured_policy(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    practice = make_practice()
    strict = passwords.PasswordPolicy(min_length=20)

    user = users.create_user(
        session,
        username="kurz",
        bsnr=practice.bsnr,
        kind=UserKind.STAFF,
        migrated_password=GOOD,
        policy=strict,
        actor=STAFF,
        now=NOW,
    )

    assert user.taken_over_password is TakenOverPassword.WEAK
