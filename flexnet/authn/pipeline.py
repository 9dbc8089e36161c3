"""The one place that decides a login: knowledge (password) and possession (Yubikey).

RADIUS, the HTTP API and self-service all call :func:`authenticate`. It reads as the
sequence the terms ask for, with three rules on top:

- the OTP is checked before the password, so garbage never reaches argon2, and a
  cryptographically valid OTP is used up whatever else then fails;
- once the OTP is valid, the password hash is computed even for a missing or locked
  user, so the response time does not tell whether a username exists; only a rate
  limit, which does not depend on the user, refuses before the hash;
- only a failure that comes with a valid OTP counts towards a user's lock: whoever
  merely knows a username must not be able to lock its owner out.

The reason of a failure goes to the auth log; the client only learns accept or reject.
Expected failures are results; an internal error raises :class:`BackendError`, which
the caller turns into no answer (RADIUS) or an error response, never an accept.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from flexnet import audit
from flexnet.accounts import users
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.authn import passwords, ratelimit
from flexnet.config import AuthSettings, ExpiredPasswordMode, Settings
from flexnet.lifecycle.status import EffectiveStatus, user_status
from flexnet.models import (
    AuthEvent,
    LockCause,
    Practice,
    TakenOverPassword,
    Token,
    TokenKind,
    User,
    UserStatus,
)
from flexnet.otp import modhex, oath, yubico
from flexnet.otp.secrets import SecretBox
from flexnet.otp.verify import OtpReason, OtpResult, RemoteCheck, verify_yubico_otp

log = logging.getLogger(__name__)

MAX_USERNAME_CHARS = 64


class Outcome(enum.StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    CHALLENGE = "challenge"  # the password must be changed in-band first


class Channel(enum.StrEnum):
    RADIUS = "radius"
    API = "api"
    SELF_SERVICE = "self_service"


class BackendError(Exception):
    """Something inside failed (database, secret, external service): never an accept."""


@dataclass(frozen=True)
class Client:
    channel: Channel
    name: str | None = None  # NAS or API client
    source_ip: str | None = None  # the user's address as far as it is known


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str  # internal: auth log and audit only
    profile: str | None = None
    reply_message: str | None = None  # German, safe to show the user
    user_id: int | None = None
    token_serial: str | None = None
    # False when the transaction only logs and counts: nothing a crash could replay.
    durable: bool = True

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPT


GENERIC_REJECT = "Anmeldung fehlgeschlagen."
# Correct credentials, but the password must be changed first (whatever the mode).
PASSWORD_CHANGE_REASONS = frozenset({"password_expired", "password_must_change", "password_weak"})
# Refusals by a rate limit that never depends on the user (unknown names are counted too):
# decided without the password hash, which then tells nothing about who exists.
THROTTLE_REASONS = frozenset({"source_throttled", "key_throttled", "password_only_throttled"})
# Password-only failures of one username from all addresses after which each further
# address has this many per window (never none: a stranger cannot keep the owner out).
PASSWORD_ONLY_UNDER_ALARM = 1


def password_only_alarm(auth: AuthSettings) -> int:
    """Password-only failures of one username, from everywhere, that put it on alarm."""
    return 6 * auth.lockout_threshold


@dataclass(frozen=True)
class _Attempt:
    username: str
    password: str = field(repr=False)
    otp: str | None
    parsed: yubico.ParsedOtp | None = None  # the OTP, parsed once, if it is a Yubico OTP


# Statements every request runs, built once.
_FIND_USER = (
    select(User)
    .where(User.username == bindparam("username"))
    # Everything the status rules read, in one round trip instead of four.
    .options(
        joinedload(User.practice).joinedload(Practice.lock_exception),
        joinedload(User.lock_exception),
    )
)
_AUTH_EVENT_INSERT = insert(AuthEvent)
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


def authenticate(
    session: Session,
    *,
    username: str,
    password: str,
    otp: str | None,
    client: Client,
    now: datetime,
    settings: Settings,
    box: SecretBox,
    remote: RemoteCheck | None = None,
) -> Decision:
    """Decide one login attempt. The caller commits (the OTP is consumed either way).

    ``otp=None`` checks the password alone; only callers whose client is configured for
    it (portals that share the password, § 5.4) and the self-lock may pass it. Failures
    there are counted per username apart from the user's lock (``_password_only_counters``).
    """
    attempt = _syntax(username, password, otp)
    if attempt is None:
        # Even a request refused for its form uses up a valid OTP it carries.
        consumed = _consume(session, otp, now, settings, box, remote)
        decision = replace(_reject("syntax"), durable=consumed)
        return _record(session, username, client, now, decision)
    user = session.scalar(_FIND_USER, {"username": attempt.username})
    status = user_status(user, now, settings.lock_after_quarters) if user else None
    hotp = _hotp_token(session, user, attempt)
    key = _key_counter(attempt.parsed, hotp)
    early = _account_problem(session, user, status, attempt, key, client, now, settings.auth)
    possession = (
        _check_possession(session, attempt, hotp, now, settings, box, remote)
        if attempt.otp is not None
        else OtpResult(OtpReason.OK)
    )
    token = possession.token
    if not possession.ok:
        # A valid OTP was used up (locked key...); a HOTP check may have moved its counter.
        consumed = possession.decoded is not None or hotp is not None
        decision = replace(_reject(early or possession.reason.value, token=token), durable=consumed)
        # A Yubico OTP cannot be guessed, and its public id is no secret: garbage under it
        # must not block the practice's key, so only the source is charged. A HOTP code can
        # be guessed, so its token is charged too. Neither may lock a user out.
        guessable = key if hotp is not None else None
        _count_failure(
            session, attempt, client, user=None, key=guessable, now=now, auth=settings.auth
        )
        return _record(session, attempt.username, client, now, decision, user)
    if early in THROTTLE_REASONS:
        # Refused before argon2id, so a flood from a throttled source costs no CPU; any
        # valid OTP it carried has been used up above.
        _count_failure(
            session, attempt, client, user=None, key=key, now=now, auth=settings.auth, checked=False
        )
        return _record(session, attempt.username, client, now, _reject(early, token=token), user)
    verification = _verify_password(attempt.password, user)
    reason = early or _key_problem(user, token) or (None if verification.ok else "password_wrong")
    if reason is not None or user is None:
        # Password and key right, refused by a status that has something to tell the user
        # (new terms to accept): say so; every other refusal stays generic.
        right = verification.ok and _key_problem(user, token) is None
        told = status.message if status and early and right else None
        decision = _reject(reason or "user_unknown", token=token, message=told or GENERIC_REJECT)
        # A wrong password with the practice's own valid key is someone guessing this
        # user's password; anything else (a foreign key) is charged to key and source only.
        # Without an OTP anyone who knows the username may be guessing: that failure goes
        # to the password-only counter, never towards the user's (hard) lock.
        counted = user if reason == "password_wrong" and attempt.otp is not None else None
        _count_failure(session, attempt, client, user=counted, key=key, now=now, auth=settings.auth)
        return _record(session, attempt.username, client, now, decision, user)
    if verification.reissued:
        users.promote_next_password(session, user, now=now)
    # The plaintext is at hand only now: a taken-over hash meets the policy or must go.
    users.check_taken_over(
        session, user, attempt.password, now=now, policy=settings.password_policy
    )
    decision = _password_state_decision(user, token, now, settings.auth)
    if decision.outcome is not Outcome.REJECT:
        _succeeded(session, user, verification.new_hash, now)
    return _record(session, attempt.username, client, now, decision, user)


def _verify_password(password: str, user: User | None) -> passwords.Verification:
    """Check the password; an unknown user costs the same dummy hash as a known one."""
    verification = passwords.verify(password, user.password_hash if user else None)
    if not verification.ok and user is not None and user.next_password_hash is not None:
        # A re-issued password that replaces the old one on its first use (§ 7.3).
        verification = passwords.verify(password, user.next_password_hash)
        verification = replace(verification, reissued=verification.ok)
    return verification


def _consume(
    session: Session,
    otp: str | None,
    now: datetime,
    settings: Settings,
    box: SecretBox,
    remote: RemoteCheck | None,
) -> bool:
    """Verify a well-formed Yubico OTP only to use it up; True if it was valid."""
    if otp is None or not yubico.looks_like_otp(otp):
        return False
    result = verify_yubico_otp(session, otp, box=box, settings=settings.otp, now=now, remote=remote)
    if result.reason is OtpReason.BACKEND_ERROR:
        raise BackendError("OTP backend error")
    return result.decoded is not None


def _syntax(username: str, password: str, otp: str | None) -> _Attempt | None:
    name = username.strip().lower()
    if not name or len(name) > MAX_USERNAME_CHARS or not name.isprintable():
        return None
    try:
        password_bytes = len(passwords.normalize(password).encode())
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800"): no text at all
        return None
    if not password or password_bytes > passwords.MAX_PASSWORD_BYTES:
        return None
    if otp is None:
        return _Attempt(name, password, None)
    parsed = yubico.parse(otp)
    if parsed is None and not _looks_like_hotp(otp):
        return None
    return _Attempt(name, password, otp.strip(), parsed)


def _looks_like_hotp(otp: str) -> bool:
    """6 or 8 digits, optionally after a 12-character modhex token id."""
    digits = otp[12:] if len(otp) > 12 and modhex.is_modhex(otp[:12].lower()) else otp
    return digits.isascii() and digits.isdigit() and len(digits) in (6, 8)


def _account_problem(
    session: Session,
    user: User | None,
    status: EffectiveStatus | None,
    attempt: _Attempt,
    key: str | None,
    client: Client,
    now: datetime,
    auth: AuthSettings,
) -> str | None:
    """Why this account may not log in now, in the order the terms give; None if it may.

    The rate limits come first, checked in one statement: source, key (``key`` is its
    counter) and, without an OTP, the username's password-only counter.
    """
    source, password_only = _source_counter(client), _password_only_counters(attempt, client)
    limits = {source: auth.source_failure_limit} if source else {}
    if key:
        limits[key] = auth.key_failure_limit
    if password_only:
        pair, whole = password_only
        limits[pair], limits[whole] = auth.lockout_threshold, password_only_alarm(auth)
    seen = ratelimit.counts(session, limits, window_seconds=auth.failure_window_seconds, now=now)
    throttled = {counter for counter, limit in limits.items() if seen[counter] >= limit}
    if source in throttled:
        return "source_throttled"
    if key in throttled:
        return "key_throttled"
    if password_only and (
        pair in throttled or (whole in throttled and seen[pair] >= PASSWORD_ONLY_UNDER_ALARM)
    ):
        return "password_only_throttled"
    if user is None or status is None:
        return "user_unknown"
    if not status.may_log_in:
        return f"user_{status.state.value}" + (f"_{status.cause.value}" if status.cause else "")
    if user.throttled_until is not None and user.throttled_until > now:
        return "user_throttled"
    return None


def _hotp_token(session: Session, user: User | None, attempt: _Attempt) -> Token | None:
    """The practice's OATH-HOTP token if the OTP is a HOTP code, else None.

    Looked up before the limits are checked: a six-digit code can be guessed, so the token
    has a failure limit of its own, like a Yubikey.
    """
    if attempt.otp is None or attempt.parsed is not None:
        return None
    # The look-up runs for unknown users too, so the time taken does not tell them apart.
    return _practice_token(session, user, TokenKind.OATH_HOTP)


def _check_possession(
    session: Session,
    attempt: _Attempt,
    hotp: Token | None,
    now: datetime,
    settings: Settings,
    box: SecretBox,
    remote: RemoteCheck | None,
) -> OtpResult:
    """Verify (and so consume) the OTP; a backend failure raises instead of rejecting."""
    otp = attempt.otp or ""
    if attempt.parsed is not None:
        result = verify_yubico_otp(
            session,
            otp,
            box=box,
            settings=settings.otp,
            now=now,
            remote=remote,
            parsed=attempt.parsed,
        )
    elif hotp is None:
        return OtpResult(OtpReason.UNKNOWN_KEY)
    else:
        result = oath.verify_hotp(
            session, hotp, otp, box=box, window=settings.otp.hotp_window, now=now
        )
    if result.reason is OtpReason.BACKEND_ERROR:
        raise BackendError("OTP backend error")
    return result


def _practice_token(session: Session, user: User | None, kind: TokenKind) -> Token | None:
    # For an unknown user, an id no row has (None would match stock tokens: IS NULL).
    practice_id = user.practice_id if user is not None else -1
    return session.scalar(
        select(Token).where(Token.practice_id == practice_id, Token.kind == kind).limit(1)
    )


def _key_problem(user: User | None, token: Token | None) -> str | None:
    """§ 2.1: the key of the user's own practice, none other."""
    if user is None or token is None:
        return None
    return None if token.practice_id == user.practice_id else "key_of_other_practice"


def _reject(reason: str, *, token: Token | None = None, message: str = GENERIC_REJECT) -> Decision:
    return Decision(
        Outcome.REJECT,
        reason,
        reply_message=message,
        token_serial=token.serial if token else None,
    )


def source_counter(source_ip: str) -> str:
    """The rate-limit counter of failures from one source (also fed by the fast path)."""
    return f"auth-src:{source_ip}"


def _source_counter(client: Client) -> str | None:
    return source_counter(client.source_ip) if client.source_ip else None


def _key_counter(parsed: yubico.ParsedOtp | None, hotp: Token | None) -> str | None:
    """The failure counter of the key: a Yubikey by its public id, a HOTP token by serial."""
    if parsed is not None:
        return f"auth-key:{parsed.public_id}"
    return f"auth-hotp:{hotp.serial}" if hotp is not None else None


def _password_only_counters(attempt: _Attempt, client: Client) -> tuple[str, str] | None:
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
    if attempt.otp is not None:
        return None
    where = ratelimit.source_key(client.source_ip)
    return f"auth-pw:{attempt.username}:{where}", f"auth-pw:{attempt.username}"


def _count_failure(
    session: Session,
    attempt: _Attempt,
    client: Client,
    *,
    user: User | None,
    key: str | None,
    now: datetime,
    auth: AuthSettings,
    checked: bool = True,
) -> None:
    """Count a failure atomically for the source, the key's counter ``key``, the
    password-only counters (without an OTP; ``checked``: only a password that was
    checked counts against the username from everywhere) and the user."""
    window = auth.failure_window_seconds
    password_only = _password_only_counters(attempt, client)
    counters = [_source_counter(client), key]
    if password_only:
        counters += password_only if checked else password_only[:1]
    for counter in filter(None, counters):
        ratelimit.record(session, counter, window_seconds=window, now=now)
    if user is not None:
        _count_user_failure(session, user, now, auth)


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


def _succeeded(session: Session, user: User, new_hash: str | None, now: datetime) -> None:
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


_MUST_CHANGE_STATES = (
    passwords.PasswordState.EXPIRED,
    passwords.PasswordState.MUST_CHANGE,
    passwords.PasswordState.WEAK,
)


def _password_state_decision(
    user: User, token: Token | None, now: datetime, auth: AuthSettings
) -> Decision:
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
    profile = user.practice.access_profile
    if state.state is passwords.PasswordState.INITIAL_EXPIRED:
        message = "Ihr Erstkennwort ist abgelaufen. Bitte fordern Sie neue Zugangsdaten an."
        return Decision(Outcome.REJECT, "initial_password_expired", None, message, user.id, serial)
    if state.state in _MUST_CHANGE_STATES:
        reason = "password_" + state.state.value
        why = (
            "Ihr Kennwort entspricht nicht der Kennwortrichtlinie."
            if state.state is passwords.PasswordState.WEAK
            else "Ihr Kennwort muss geändert werden."
        )
        mode = auth.expired_password_mode
        if mode is ExpiredPasswordMode.CHALLENGE:
            message = f"{why} Bitte geben Sie ein neues Kennwort ein."
            return Decision(Outcome.CHALLENGE, reason, None, message, user.id, serial)
        if mode is ExpiredPasswordMode.RESTRICTED:
            message = f"{why} Bitte ändern Sie es {_self_service_hint(auth)}."
            return Decision(Outcome.ACCEPT, reason, "password-change", message, user.id, serial)
        message = f"{why} Bitte ändern Sie es {_self_service_hint(auth)}."
        return Decision(Outcome.REJECT, reason, None, message, user.id, serial)
    warning: str | None = None
    if state.state is passwords.PasswordState.EXPIRING:
        warning = (
            f"Ihr Kennwort läuft in {state.days_left} Tagen ab. Bitte ändern Sie es "
            f"{_self_service_hint(auth)}."
        )
    return Decision(Outcome.ACCEPT, "ok", profile, warning, user.id, serial)


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
    """Set the password asked for in-band after a full login; accept into the profile.

    The user's status is checked again: a lock that landed during the exchange wins.
    """
    user = session.get_one(User, user_id)
    status = user_status(user, now, settings.lock_after_quarters)
    if not status.may_log_in or (user.throttled_until is not None and user.throttled_until > now):
        reason = f"user_{status.state.value}" if not status.may_log_in else "user_throttled"
        return _record(session, user.username, client, now, _reject(reason), user)
    problems = new_password_problems(
        session, user_id=user_id, password=new_password, policy=settings.password_policy
    )
    if problems:
        return _record(session, user.username, client, now, _reject("new_password_refused"), user)
    users.set_password(session, user, new_password, now=now)
    audit.record(
        session,
        AuditTag.USER_PASSWORD_CHANGE,
        actor=Actor.user(user.username),
        subject=Subject("user", user.username),
        data={"channel": client.channel.value},
        now=now,
    )
    decision = Decision(Outcome.ACCEPT, "password_changed", user.practice.access_profile)
    return _record(session, user.username, client, now, decision, user)


def relax_durability(session: Session) -> None:
    """Commit this transaction without waiting for the disk (PostgreSQL only).

    Only for transactions that change no replay state: a crash may lose their auth-log
    line and failure counts, never let an OTP or password through twice.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit = off"))


def record_rejection(
    session: Session, username: str, client: Client, now: datetime, reason: str
) -> Decision:
    """A reject decided before the pipeline could run (unreadable request, stale state)."""
    return _record(session, username, client, now, replace(_reject(reason), durable=False))


def shown_username(username: str) -> str:
    """The username as logged: printable, at most 64 characters."""
    return "".join(ch if ch.isprintable() else "?" for ch in username)[:MAX_USERNAME_CHARS]


def _record(
    session: Session,
    username: str,
    client: Client,
    now: datetime,
    decision: Decision,
    user: User | None = None,
) -> Decision:
    """Write the auth log entry and a log line: who, where, what, why; never a secret."""
    if user is not None and decision.user_id is None:
        decision = replace(decision, user_id=user.id)
    shown_name = shown_username(username)
    if not decision.durable:
        relax_durability(session)
    # A Core insert on the session's connection: the log line needs none of the unit of
    # work's bookkeeping, and one prepared statement serves every request.
    session.connection().execute(
        _AUTH_EVENT_INSERT,
        {
            "at": now,
            "channel": client.channel.value,
            "username": shown_name,
            "user_id": user.id if user else None,
            "bsnr": user.practice.bsnr if user else None,
            "token_serial": decision.token_serial,
            "client": client.name,
            "source_ip": client.source_ip,
            "outcome": decision.outcome.value,
            "reason": decision.reason,
        },
    )
    log.info(
        "auth %s: user=%r client=%s source=%s outcome=%s reason=%s",
        client.channel.value,
        shown_name,
        client.name,
        client.source_ip,
        decision.outcome.value,
        decision.reason,
    )
    return decision
