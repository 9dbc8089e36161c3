"""The one place that decides a login: knowledge (password) and possession (Yubikey).

RADIUS, the HTTP API and self-service all call :meth:`Authenticator.authenticate`. It
reads as the sequence the terms ask for, with three rules on top:

- the OTP is checked before the password, so garbage never reaches argon2, and a
  cryptographically valid OTP is used up whatever else then fails;
- once the OTP is valid, the password hash is computed even for a missing or locked
  user, so the response time does not tell whether a username exists; only a rate
  limit, which does not depend on the user, refuses before the hash;
- only a failure that comes with a valid OTP counts towards a user's lock: whoever
  merely knows a username must not be able to lock its owner out.

A login is decided in three phases, so that no transaction is open while argon2id runs
(on SQLite a transaction that may write holds the whole file; on PostgreSQL the OTP's
row lock would be held as long):

1. the account is read and the limits checked in a read-only transaction (on SQLite it
   takes no write lock, so a thread the machine leaves waiting here holds up nobody);
   then a short write verifies the OTP and advances its counter, and is committed: the
   OTP is used up from here on, whatever follows (phase 3 decides against the rows as
   they are then, so what was read before the write cannot let a changed account in);
2. the password hash (and the policy check of a taken-over password's plaintext), with
   no transaction open and no lock held;
3. a second short write, which the caller commits: the user's row is read again and
   locked, and the login succeeds only if that row still allows it with the hash just
   verified (a lock, a password change or failures counted meanwhile win), otherwise
   it is a reject with the reason; then the auth log, counters, last login.

The reason of a failure goes to the auth log; the client only learns accept or reject.
Expected failures are results; an internal error in any phase raises
:class:`BackendError` (or the database's own error), which the caller turns into no
answer (RADIUS) or an error response, never an accept.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, joinedload

from flexnet import metrics
from flexnet.accounts import users
from flexnet.authn import authlog, outcome, passwords, ratelimit, recheck
from flexnet.authn.authlog import relax_durability, shown_username, source_counter
from flexnet.authn.decision import (
    GENERIC_REJECT,
    PASSWORD_CHANGE_REASONS,
    THROTTLE_REASONS,
    BackendError,
    Channel,
    Client,
    Decision,
    Outcome,
    Reason,
    reject,
)
from flexnet.authn.outcome import PASSWORD_ONLY_UNDER_ALARM, password_only_alarm
from flexnet.config import Settings
from flexnet.db import begin_reading
from flexnet.lifecycle.status import EffectiveStatus, user_status
from flexnet.models import Practice, Token, TokenKind, User
from flexnet.otp import modhex, oath
from flexnet.otp.remote import RemoteValidator
from flexnet.otp.secrets import SecretBox
from flexnet.otp.verify import (
    OtpReason,
    OtpResult,
    Presented,
    RemoteCheck,
    status_reason,
    verify_yubico_otp,
)

MAX_USERNAME_CHARS = authlog.MAX_USERNAME_CHARS

__all__ = [  # the pipeline's vocabulary, for its callers
    "GENERIC_REJECT",
    "PASSWORD_CHANGE_REASONS",
    "PASSWORD_ONLY_UNDER_ALARM",
    "THROTTLE_REASONS",
    "Authenticator",
    "BackendError",
    "Channel",
    "Client",
    "Decision",
    "Outcome",
    "Reason",
    "password_only_alarm",
    "relax_durability",
    "shown_username",
    "source_counter",
]


@dataclass(frozen=True)
class _Attempt:
    username: str
    password: str = field(repr=False)
    otp: Presented | None


@dataclass
class _Login:
    """One attempt across the phases: what phase 1 read, and what phase 2 needs."""

    attempt: _Attempt
    client: Client
    now: datetime
    user: User | None
    hotp: Token | None
    key: str | None  # the key's failure counter
    limits: outcome.Limits
    early: Reason | None = None  # why the account may not log in, as phase 1 saw it
    # What that refusal may tell the user once password and key were right (new terms to
    # accept); every other refusal stays generic.
    told: str | None = None
    token: Token | None = None
    # Read in phase 1 for phase 2, which must not touch the database.
    password_hash: str | None = field(default=None, repr=False)
    next_password_hash: str | None = field(default=None, repr=False)
    otp_seconds: float = 0.0  # of phase 1, for the metrics

    @property
    def serial(self) -> str | None:
        return self.token.serial if self.token else None


@dataclass(frozen=True)
class _Checked:
    """Phase 2's verdict: the hash that matched, and a taken-over plaintext's policy."""

    verification: passwords.Verification
    verified_hash: str | None = field(default=None, repr=False)
    weak: bool | None = None  # None: no taken-over password waiting for its check


# Statements every request runs, built once.
_WITH_STATUS_DATA = (  # everything the status rules read, in one round trip, not 3 + members
    joinedload(User.practice).joinedload(Practice.lock_exception),
    # The practice follows its members (§ 1.2): a staff login reads each member's end of
    # activity and exception. Joined here, a practice of n users costs n rows, not n + 1
    # statements (once in phase 1, once again in phase 3).
    joinedload(User.practice).joinedload(Practice.users).joinedload(User.lock_exception),
    joinedload(User.lock_exception),
)
_FIND_USER = select(User).where(User.username == bindparam("username")).options(*_WITH_STATUS_DATA)
# Phase 3 locks the row (PostgreSQL; SQLite's BEGIN IMMEDIATE holds the file) and, if
# anything changed since phase 1 (``recheck``), refreshes what phase 1 loaded.
_LOCK_USER = (
    select(User)
    .where(User.id == bindparam("user_id"))
    .options(*_WITH_STATUS_DATA)
    .with_for_update(of=User)
    .execution_options(populate_existing=True)
)


@dataclass(frozen=True)
class Authenticator:
    """The pipeline with its fixed dependencies, built once per process."""

    settings: Settings
    box: SecretBox
    remote: RemoteCheck | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> Authenticator:
        """With the secret box and, if configured, the external validation service."""
        return cls(
            settings, SecretBox(settings.master_key), RemoteValidator.from_settings(settings.otp)
        )

    def authenticate(
        self,
        session: Session,
        *,
        username: str,
        password: str,
        otp: str | Presented | None,
        client: Client,
        now: datetime,
    ) -> Decision:
        """Decide one login attempt, in the phases of the module's docstring.

        Commits ``session`` once, after phase 1, when the password hash is still to
        come; the caller commits phase 3 (and so the decision) as its unit of work. A
        valid OTP is used up either way. ``otp=None`` checks the password alone; only
        callers whose client is configured for it (portals that share the password,
        § 5.4) and the self-lock may pass it. Failures there are counted per username
        apart from the user's lock (``outcome.password_only_counters``).
        """
        presented = Presented.typed(otp) if isinstance(otp, str) else otp
        attempt = _syntax(username, password, presented)
        if attempt is None:
            # Even a request refused for its form uses up a valid OTP it carries.
            consumed = self._consume(session, presented, now)
            return authlog.record(
                session,
                reject(Reason.SYNTAX, durable=consumed),
                username=username,
                client=client,
                now=now,
            )
        started = time.perf_counter()
        with _read_only(session):
            login = self._read_account(session, attempt, client, now)
        login_or_decision = self._phase_one(session, login)
        if isinstance(login_or_decision, Decision):
            return login_or_decision
        session.commit()  # the OTP is used up for good; nothing is held while hashing
        hashing = time.perf_counter()
        checked = self._phase_two(login)
        deciding = time.perf_counter()
        decision = self._phase_three(session, login, checked)
        database = hashing - started - login.otp_seconds + time.perf_counter() - deciding
        metrics.phase_took("hash", deciding - hashing)
        metrics.phase_took("database", database)
        return decision

    # --- phase 1: account, limits, possession ------------------------------------------

    def _read_account(
        self, session: Session, attempt: _Attempt, client: Client, now: datetime
    ) -> _Login:
        """Read the account and check the limits: what may refuse the login early."""
        user = _one_user(session, _FIND_USER, username=attempt.username)
        status = user_status(user, now, self.settings.lock_after_quarters) if user else None
        hotp = _hotp_token(session, user, attempt)
        key = outcome.key_counter(attempt.otp, hotp)
        limits = outcome.Limits.of(attempt.username, client, key, password_only=attempt.otp is None)
        login = _Login(attempt, client, now, user, hotp, key, limits)
        login.early = self._account_problem(session, login, status)
        if login.early is not None and status is not None and not status.may_log_in:
            login.told = status.message
        if user is not None:
            login.password_hash, login.next_password_hash = (
                user.password_hash,
                user.next_password_hash,
            )
        return login

    def _phase_one(self, session: Session, login: _Login) -> _Login | Decision:
        """Use up the OTP; a decision if the login ends here."""
        attempt = login.attempt
        if attempt.otp:
            checking = time.perf_counter()
            possession = self._check_possession(session, login, attempt.otp)
            login.otp_seconds = time.perf_counter() - checking
            metrics.phase_took("otp", login.otp_seconds)
        else:
            possession = OtpResult(OtpReason.OK)
        login.token = possession.token
        if not possession.ok:
            # A valid OTP was used up (locked key...); a HOTP check may have moved its counter.
            consumed = possession.decoded is not None or login.hotp is not None
            why = login.early or Reason.of_otp(possession.reason)
            # A Yubico OTP cannot be guessed, and its public id is no secret: garbage under it
            # must not block the practice's key, so only the source is charged. A HOTP code can
            # be guessed, so its token is charged too. Neither may lock a user out.
            guessable = login.key if login.hotp is not None else None
            self._count_failure(session, login, user=None, key=guessable)
            decision = reject(why, token_serial=login.serial, durable=consumed)
            return self._record(session, login, decision)
        if login.early in THROTTLE_REASONS:
            # Refused before argon2id, so a flood from a throttled source costs no CPU; any
            # valid OTP it carried has been used up above.
            self._count_failure(session, login, user=None, key=login.key, checked=False)
            return self._record(session, login, reject(login.early, token_serial=login.serial))
        return login

    def _account_problem(
        self, session: Session, login: _Login, status: EffectiveStatus | None
    ) -> Reason | None:
        """Why this account may not log in now, in the order the terms give; None if it may.

        The rate limits come first, checked in one statement: source, key and, without an
        OTP, the username's password-only counters.
        """
        auth = self.settings.auth
        seen = ratelimit.counts(
            session,
            login.limits.limits(auth),
            window_seconds=auth.failure_window_seconds,
            now=login.now,
        )
        throttled = login.limits.throttled(auth, seen)
        if throttled is not None:
            return throttled
        user = login.user
        if user is None or status is None:
            return Reason.USER_UNKNOWN
        if not status.may_log_in:
            return Reason.of_status(status)
        if user.throttled_until is not None and user.throttled_until > login.now:
            return Reason.USER_THROTTLED
        return None

    def _check_possession(self, session: Session, login: _Login, otp: Presented) -> OtpResult:
        """Verify (and so consume) the OTP; a backend failure raises instead of rejecting."""
        if otp.parsed is not None:
            result = verify_yubico_otp(
                session,
                otp.text,
                box=self.box,
                settings=self.settings.otp,
                now=login.now,
                remote=self.remote,
                presented=otp,
            )
        elif login.hotp is None:
            return OtpResult(OtpReason.UNKNOWN_KEY)
        else:
            result = oath.verify_hotp(
                session,
                login.hotp,
                otp.text,
                box=self.box,
                window=self.settings.otp.hotp_window,
                now=login.now,
            )
        if result.reason is OtpReason.BACKEND_ERROR:
            raise BackendError("OTP backend error")
        return result

    def _consume(self, session: Session, otp: Presented | None, now: datetime) -> bool:
        """Verify a well-formed Yubico OTP only to use it up; True if it was valid."""
        if otp is None or otp.parsed is None:
            return False
        result = verify_yubico_otp(
            session,
            otp.text,
            box=self.box,
            settings=self.settings.otp,
            now=now,
            remote=self.remote,
            presented=otp,
        )
        if result.reason is OtpReason.BACKEND_ERROR:
            raise BackendError("OTP backend error")
        return result.decoded is not None

    # --- phase 2: the hash, with no transaction open --------------------------------------

    def _phase_two(self, login: _Login) -> _Checked:
        """Check the password; an unknown user costs the same dummy hash as a known one.

        Uses only what phase 1 read: no statement runs here (a lazy load would open a
        transaction and, on SQLite, take the write lock for the length of a hash).
        """
        password = login.attempt.password
        verification = passwords.verify(password, login.password_hash)
        verified = login.password_hash
        if not verification.ok and login.next_password_hash is not None:
            # A re-issued password that replaces the old one on its first use (§ 7.3).
            verification = passwords.verify(password, login.next_password_hash)
            verification = replace(verification, reissued=verification.ok)
            verified = login.next_password_hash
        if not verification.ok or login.user is None:
            return _Checked(verification)
        # The plaintext is at hand only now: a taken-over hash meets the policy or must go.
        policy = self.settings.password_policy
        weak = users.taken_over_weak(login.user, password, policy)
        return _Checked(verification, verified, weak)

    # --- phase 3: decide against the current row ------------------------------------------

    def _phase_three(self, session: Session, login: _Login, checked: _Checked) -> Decision:
        """Decide and write the outcome; the user's row is locked first (one lock order,
        user before counters, on every path that writes both)."""
        user = login.user
        fresh = user is not None and recheck.lock_unchanged(session, user, login.token)
        if user is not None and not fresh:
            user = login.user = _one_user(session, _LOCK_USER, user_id=user.id)
        reason = (
            login.early
            or outcome.key_problem(user, login.token)
            or (None if checked.verification.ok else Reason.PASSWORD_WRONG)
        )
        if reason is None and user is not None:
            reason = self._changed_meanwhile(session, login, user, checked, fresh=fresh)
        if reason is not None or user is None:
            # A wrong password with the practice's own valid key is someone guessing this
            # user's password; anything else (a foreign key) is charged to key and source
            # only. Without an OTP anyone who knows the username may be guessing: that
            # failure goes to the password-only counter, never towards the user's lock.
            counted = (
                user if reason is Reason.PASSWORD_WRONG and login.attempt.otp is not None else None
            )
            self._count_failure(session, login, user=counted, key=login.key)
            right = checked.verification.ok and outcome.key_problem(user, login.token) is None
            told = login.told if right and reason is login.early else None
            decision = reject(
                reason or Reason.USER_UNKNOWN,
                token_serial=login.serial,
                message=told or GENERIC_REJECT,
            )
            return self._record(session, login, decision)
        if checked.verification.reissued and user.next_password_hash == checked.verified_hash:
            users.promote_next_password(session, user, now=login.now)
        if checked.weak is not None:
            users.record_taken_over_check(session, user, weak=checked.weak, now=login.now)
        decision = outcome.password_state_decision(user, login.token, login.now, self.settings.auth)
        if decision.outcome is not Outcome.REJECT:
            outcome.succeeded(session, user, checked.verification.new_hash, login.now)
        return self._record(session, login, decision)

    def _changed_meanwhile(
        self, session: Session, login: _Login, user: User, checked: _Checked, *, fresh: bool
    ) -> Reason | None:
        """Why the rows read again (and locked) no longer allow the login phase 1 and 2
        found good: a lock of the user, practice or key, failures counted meanwhile, or a
        password changed since it was verified (a reject, as in the serial order).
        ``fresh``: the rows, the key's among them, are as phase 1 loaded them."""
        status = user_status(user, login.now, self.settings.lock_after_quarters)
        if not status.may_log_in:
            return Reason.of_status(status)
        if user.throttled_until is not None and user.throttled_until > login.now:
            return Reason.USER_THROTTLED
        if checked.verified_hash not in (user.password_hash, user.next_password_hash):
            return Reason.PASSWORD_WRONG
        if login.token is None:
            return None
        token = login.token if fresh else session.get(Token, login.token.id, populate_existing=True)
        login.token = token
        refused = status_reason(token) if token is not None else OtpReason.UNKNOWN_KEY
        if refused is not None:
            return Reason.of_otp(refused)
        return outcome.key_problem(user, token)

    # --- bookkeeping -----------------------------------------------------------------------

    def _count_failure(
        self,
        session: Session,
        login: _Login,
        *,
        user: User | None,
        key: str | None,
        checked: bool = True,
    ) -> None:
        outcome.count_failure(
            session,
            limits=login.limits,
            user=user,
            key=key,
            now=login.now,
            auth=self.settings.auth,
            checked=checked,
        )

    def _record(self, session: Session, login: _Login, decision: Decision) -> Decision:
        return authlog.record(
            session,
            decision,
            username=login.attempt.username,
            client=login.client,
            now=login.now,
            user=login.user,
        )

    # --- the new password asked for in-band ----------------------------------------------

    def finish_password_change(
        self,
        session: Session,
        *,
        user_id: int,
        new_password: str,
        client: Client,
        now: datetime,
    ) -> Decision:
        """Set the password asked for in-band after a full login; accept into the profile.

        Like a login: the policy (its history rule hashes) and the new hash are worked
        out before the write, which then checks the user's row again, locked: a lock
        that landed during the exchange wins, and so does a password changed meanwhile.
        """
        return outcome.finish_password_change(
            session,
            user_id=user_id,
            new_password=new_password,
            client=client,
            now=now,
            settings=self.settings,
        )


def record_rejection(
    session: Session, username: str, client: Client, now: datetime, reason: Reason
) -> Decision:
    """A reject decided before the pipeline could run (unreadable request, stale state)."""
    return authlog.record(
        session, reject(reason, durable=False), username=username, client=client, now=now
    )


def new_password_problems(
    session: Session,
    *,
    user_id: int,
    password: str,
    policy: passwords.PasswordPolicy = passwords.DEFAULT_POLICY,
) -> list[str]:
    """The policy's objections to a new password for this user (German sentences)."""
    return outcome.new_password_problems(session, user_id=user_id, password=password, policy=policy)


def _one_user(session: Session, statement: Select[User], **params: object) -> User | None:
    """The one user ``statement`` finds, its practice's users joined in (hence unique())."""
    return session.scalars(statement, params).unique().one_or_none()


@contextmanager
def _read_only(session: Session) -> Iterator[None]:
    """On SQLite, a transaction of its own that only reads and takes no write lock (BEGIN
    DEFERRED, ``flexnet_readonly`` in ``flexnet.db``), committed at the end; what it
    loaded stays usable. PostgreSQL's reads take no lock that holds up a writer: there
    they join the short write that follows, which saves a BEGIN and a COMMIT per login.
    A caller that has a transaction open already keeps it."""
    if session.in_transaction() or session.get_bind().dialect.name != "sqlite":
        yield
        return
    begin_reading(session)
    yield
    session.commit()


def _syntax(username: str, password: str, otp: Presented | None) -> _Attempt | None:
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
    if otp.parsed is None and not _looks_like_hotp(otp.text):
        return None
    return _Attempt(name, password, replace(otp, text=otp.text.strip()))


def _looks_like_hotp(otp: str) -> bool:
    """6 or 8 digits, optionally after a 12-character modhex token id."""
    digits = otp[12:] if len(otp) > 12 and modhex.is_modhex(otp[:12].lower()) else otp
    return digits.isascii() and digits.isdigit() and len(digits) in (6, 8)


def _hotp_token(session: Session, user: User | None, attempt: _Attempt) -> Token | None:
    """The practice's OATH-HOTP token if the OTP is a HOTP code, else None.

    Looked up before the limits are checked: a six-digit code can be guessed, so the token
    has a failure limit of its own, like a Yubikey.
    """
    if attempt.otp is None or attempt.otp.parsed is not None:
        return None
    # The look-up runs for unknown users too, so the time taken does not tell them apart.
    # For an unknown user, an id no row has (None would match stock tokens: IS NULL).
    practice_id = user.practice_id if user is not None else -1
    return session.scalar(
        select(Token)
        .where(Token.practice_id == practice_id, Token.kind == TokenKind.OATH_HOTP)
        .limit(1)
    )
