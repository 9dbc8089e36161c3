"""What a login's outcome writes, and the rules it is decided by.

Failures are counted atomically per source, per key, per username without an OTP and
per user (``UPDATE … RETURNING``), so the limits hold across processes and nodes; a
success resets the user's counters, upgrades an outdated hash and activates a user on
the first login; the password's state (§ 5.4) decides between accept, the in-band
change and a reject pointing to self-service.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from flexnet import audit
from flexnet.accounts import users
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.authn import authlog, passwords, ratelimit
from flexnet.authn.decision import BackendError, Client, Decision, Outcome, Reason, reject
from flexnet.config import AuthSettings, ExpiredPasswordMode, Settings
from flexnet.lifecycle.status import user_status
from flexnet.models import LockCause, TakenOverPassword, Token, User, UserStatus
from flexnet.otp.verify import Presented

log = logging.getLogger("flexnet.authn.pipeline")

# Password-only failures of one username from all addresses after which each further
# address has this many per window (never none: a stranger cannot keep the owner out).
PASSWORD_ONLY_UNDER_ALARM = 1

_LOGIN_SUCCEEDED = (
    update(User)
    .where(User.id == bindparam("user_id"))
    .values(failed_logins=0, throttled_until=None, last_login_at=bindparam("now"))
)
_ACTIVATE = (
    update(User)
    .where(User.id == bindparam("user_id"), User.status == UserStatus.PENDING)
    .values(status=UserStatus.ACTIVE, first_login_at=bindparam("now"))
)


def password_only_alarm(auth: AuthSettings) -> int:
    """Password-only failures of one username, from everywhere, that put it on alarm."""
    return 6 * auth.lockout_threshold


# --- the counters a login is limited by ------------------------------------------------


def key_counter(otp: Presented | None, hotp: Token | None) -> str | None:
    """The failure counter of the key: a Yubikey by its public id, a HOTP token by serial."""
    if otp is not None and otp.parsed is not None:
        return f"auth-key:{otp.parsed.public_id}"
    return f"auth-hotp:{hotp.serial}" if hotp is not None else None


def _source_counter(client: Client) -> str | None:
    return authlog.source_counter(client.source_ip) if client.source_ip else None


def password_only_counters(username: str, client: Client) -> tuple[str, str]:
    """Failures of one username without an OTP (self-lock, password-only API clients):
    from the client's address, and from everywhere.

    Whoever knows a username can fail here, so these failures never count towards the
    user's lock, and they throttle the password-only paths only per address: past
    ``lockout_threshold`` from one address that address is refused for the window; past
    the alarm from everywhere each further address has ``PASSWORD_ONLY_UNDER_ALARM``.
    The owner, from an address of their own, can always lock their access at once, and
    guessing is bounded by the addresses used. An unknown name is counted like a known
    one. The VPN login with the key is never affected.
    """
    where = ratelimit.source_key(client.source_ip)
    return f"auth-pw:{username}:{where}", f"auth-pw:{username}"


@dataclass(frozen=True)
class Limits:
    """The counters checked before a login, and their limits."""

    source: str | None
    key: str | None
    password_only: tuple[str, str] | None

    @classmethod
    def of(cls, username: str, client: Client, key: str | None, *, password_only: bool) -> Limits:
        pairs = password_only_counters(username, client) if password_only else None
        return cls(_source_counter(client), key, pairs)

    def limits(self, auth: AuthSettings) -> dict[str, int]:
        limits = {self.source: auth.source_failure_limit} if self.source else {}
        if self.key:
            limits[self.key] = auth.key_failure_limit
        if self.password_only:
            pair, whole = self.password_only
            limits[pair], limits[whole] = auth.lockout_threshold, password_only_alarm(auth)
        return limits

    def throttled(self, auth: AuthSettings, seen: dict[str, int]) -> Reason | None:
        """Which limit refuses the attempt (source, key, password-only), if any."""
        full = {counter for counter, limit in self.limits(auth).items() if seen[counter] >= limit}
        if self.source in full:
            return Reason.SOURCE_THROTTLED
        if self.key in full:
            return Reason.KEY_THROTTLED
        if self.password_only:
            pair, whole = self.password_only
            if pair in full or (whole in full and seen[pair] >= PASSWORD_ONLY_UNDER_ALARM):
                return Reason.PASSWORD_ONLY_THROTTLED
        return None


def key_problem(user: User | None, token: Token | None) -> Reason | None:
    """§ 2.1: the key of the user's own practice, none other."""
    if user is None or token is None:
        return None
    return None if token.practice_id == user.practice_id else Reason.KEY_OF_OTHER_PRACTICE


# --- failures ----------------------------------------------------------------------------


def count_failure(
    session: Session,
    *,
    limits: Limits,
    user: User | None,
    key: str | None,
    now: datetime,
    auth: AuthSettings,
    checked: bool = True,
) -> None:
    """Count a failure atomically for the user (first: one lock order, user before
    counters), the source, the key's counter ``key`` and the password-only counters
    (``checked``: only a password that was checked counts against the username from
    everywhere)."""
    if user is not None:
        _count_user_failure(session, user, now, auth)
    counters = [limits.source, key]
    if limits.password_only:
        counters += limits.password_only if checked else limits.password_only[:1]
    for counter in filter(None, counters):
        ratelimit.record(session, counter, window_seconds=auth.failure_window_seconds, now=now)


def _count_user_failure(session: Session, user: User, now: datetime, auth: AuthSettings) -> None:
    failures = session.execute(
        update(User)
        .where(User.id == user.id)
        .values(failed_logins=User.failed_logins + 1, last_failed_at=now)
        .returning(User.failed_logins),
        execution_options={"synchronize_session": False},
    ).scalar_one()
    session.refresh(user, ["failed_logins", "last_failed_at"])
    if failures >= auth.hard_lock_after:
        _hard_lock(session, user, failures, now)
    elif failures >= auth.lockout_threshold:
        delay = min(
            auth.lockout_delay_seconds * 2 ** (failures - auth.lockout_threshold),
            auth.lockout_max_delay_seconds,
        )
        user.throttled_until = now + timedelta(seconds=delay)
        audit.record(
            session,
            AuditTag.USER_THROTTLE,
            actor=Actor.system("authn"),
            subject=Subject("user", user.username),
            data={"failures": failures, "seconds": delay},
            now=now,
        )


def _hard_lock(session: Session, user: User, failures: int, now: datetime) -> None:
    """After N consecutive failures only staff can unlock."""
    queued = users.lock_one(
        session,
        user=user,
        cause=LockCause.THROTTLE,
        reason=f"{failures} Fehlversuche in Folge",
        actor=Actor.system("authn"),
        now=now,
        data={"failures": failures},
    )
    if queued is not None:
        log.warning(
            "user %s locked after %d consecutive failures (%d sessions to disconnect)",
            user.username,
            failures,
            queued,
        )


# --- success -----------------------------------------------------------------------------


def succeeded(session: Session, user: User, new_hash: str | None, now: datetime) -> None:
    """Reset counters, upgrade an outdated hash, activate on first login."""
    # A Core update mirrored into the identity map: every accept runs this, and the
    # unit of work's flush machinery costs more than the statement itself.
    session.connection().execute(_LOGIN_SUCCEEDED, {"user_id": user.id, "now": now})
    for name, value in {"failed_logins": 0, "throttled_until": None, "last_login_at": now}.items():
        set_committed_value(user, name, value)
    if new_hash is not None:
        user.password_hash = new_hash
        audit.record(
            session,
            AuditTag.USER_PASSWORD_REHASH,
            actor=Actor.system("authn"),
            subject=Subject("user", user.username),
            now=now,
        )
    if user.status is UserStatus.PENDING and _activate(session, user, now):
        audit.record(
            session,
            AuditTag.USER_ACTIVATE,
            actor=Actor.user(user.username),
            subject=Subject("user", user.username),
            now=now,
        )


def _activate(session: Session, user: User, now: datetime) -> bool:
    """First login: pending → active, unless a lock took the row meanwhile (a plain
    assignment would overwrite a lock committed since the user was read)."""
    changed = session.connection().execute(_ACTIVATE, {"user_id": user.id, "now": now}).rowcount
    if changed:
        set_committed_value(user, "status", UserStatus.ACTIVE)
        set_committed_value(user, "first_login_at", now)
    return bool(changed)


def _self_service_hint(auth: AuthSettings) -> str:
    where = f" unter {auth.self_service_url}" if auth.self_service_url else ""
    return f"im Selbstbedienungsportal{where}"


_MUST_CHANGE = {
    passwords.PasswordState.EXPIRED: Reason.PASSWORD_EXPIRED,
    passwords.PasswordState.MUST_CHANGE: Reason.PASSWORD_MUST_CHANGE,
    passwords.PasswordState.WEAK: Reason.PASSWORD_WEAK,
}


def password_state_decision(
    user: User, token: Token | None, now: datetime, auth: AuthSettings
) -> Decision:
    """Right credentials: where the password stands decides (§ 5.4)."""
    state = passwords.password_status(
        set_at=user.password_set_at,
        must_change=user.password_must_change,
        now=now,
        max_age_days=auth.password_max_age_days,
        warning_days=auth.password_warning_days,
        initial_days=auth.initial_password_days,
        weak=user.taken_over_password is TakenOverPassword.WEAK,
    )
    serial = token.serial if token else None

    def decided(
        outcome: Outcome, reason: Reason, message: str | None, profile: str | None = None
    ) -> Decision:
        return Decision(
            outcome=outcome,
            reason=reason,
            profile=profile,
            reply_message=message,
            user_id=user.id,
            token_serial=serial,
        )

    if state.state is passwords.PasswordState.INITIAL_EXPIRED:
        message = "Ihr Erstkennwort ist abgelaufen. Bitte fordern Sie neue Zugangsdaten an."
        return decided(Outcome.REJECT, Reason.INITIAL_PASSWORD_EXPIRED, message)
    reason = _MUST_CHANGE.get(state.state)
    if reason is not None:
        why = (
            "Ihr Kennwort entspricht nicht der Kennwortrichtlinie."
            if state.state is passwords.PasswordState.WEAK
            else "Ihr Kennwort muss geändert werden."
        )
        mode = auth.expired_password_mode
        if mode is ExpiredPasswordMode.CHALLENGE:
            message = f"{why} Bitte geben Sie ein neues Kennwort ein."
            return decided(Outcome.CHALLENGE, reason, message)
        message = f"{why} Bitte ändern Sie es {_self_service_hint(auth)}."
        if mode is ExpiredPasswordMode.RESTRICTED:
            return decided(Outcome.ACCEPT, reason, message, "password-change")
        return decided(Outcome.REJECT, reason, message)
    warning: str | None = None
    if state.state is passwords.PasswordState.EXPIRING:
        warning = (
            f"Ihr Kennwort läuft in {state.days_left} Tagen ab. Bitte ändern Sie es "
            f"{_self_service_hint(auth)}."
        )
    return decided(Outcome.ACCEPT, Reason.OK, warning, user.practice.access_profile)


# --- the new password asked for in-band ----------------------------------------------


def new_password_problems(
    session: Session,
    *,
    user_id: int,
    password: str,
    policy: passwords.PasswordPolicy = passwords.DEFAULT_POLICY,
) -> list[str]:
    """The policy's objections to a new password for this user (German sentences)."""
    user = session.get(User, user_id)
    if user is None:
        raise BackendError("user vanished during password change")
    return users.password_problems(user, password, policy)


def finish_password_change(
    session: Session,
    *,
    user_id: int,
    new_password: str,
    client: Client,
    now: datetime,
    settings: Settings,
) -> Decision:
    """See ``Authenticator.finish_password_change``: the policy and the hash first, with
    no transaction open, then one short write against the user's row, locked."""
    user = session.get(User, user_id)
    if user is None:
        raise BackendError("user vanished during password change")
    seen_hash = user.password_hash
    # What the policy reads (history, practice) is loaded now: it runs after the commit.
    _ = user.practice, list(user.password_history)
    session.commit()  # no lock is held while the history rule and the new hash run
    problems = users.password_problems(user, new_password, settings.password_policy)
    new_hash = None if problems else passwords.hash_password(new_password)
    user = session.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise BackendError("user vanished during password change")

    def record(decision: Decision) -> Decision:
        return authlog.record(
            session, decision, username=user.username, client=client, now=now, user=user
        )

    status = user_status(user, now, settings.lock_after_quarters)
    if not status.may_log_in:
        return record(reject(Reason.of_status(status, with_cause=False)))
    if user.throttled_until is not None and user.throttled_until > now:
        return record(reject(Reason.USER_THROTTLED))
    if new_hash is None or user.password_hash != seen_hash:
        # A password changed meanwhile: the history rule was checked against another one.
        return record(reject(Reason.NEW_PASSWORD_REFUSED))
    users.set_password_hash(session, user, new_hash, now=now)
    audit.record(
        session,
        AuditTag.USER_PASSWORD_CHANGE,
        actor=Actor.user(user.username),
        subject=Subject("user", user.username),
        data={"channel": client.channel.value},
        now=now,
    )
    decision = Decision(
        outcome=Outcome.ACCEPT, reason=Reason.PASSWORD_CHANGED, profile=user.practice.access_profile
    )
    return record(decision)
