"""VPN user accounts of a practice: members, practice staff, third parties, practice access."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.accounts import vpn
from flexnet.accounts.folding import fold
from flexnet.accounts.identifiers import normalize_username, validate_lanr
from flexnet.accounts.practices import apply_changes, get_practice, require_terms_accepted
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.authn import authlog, passwords, ratelimit
from flexnet.authn.decision import Channel, Client, Reason, reject
from flexnet.authn.ratelimit import Admission
from flexnet.config import AuthSettings
from flexnet.db import chunked, rows_for_update, update_by_id
from flexnet.errors import ConflictError, NotFoundError, ValidationError
from flexnet.models import (
    Lock,
    LockCause,
    PasswordHistory,
    Practice,
    PracticeKind,
    StaffAccount,
    TakenOverPassword,
    User,
    UserKind,
    UserStatus,
)
from flexnet.textrules import optional_line

# Which kinds of user a practice of each kind may have (§ 1.1, § 1.2, § 2.1).
_ALLOWED_KINDS = {
    PracticeKind.MEMBER: {UserKind.MEMBER, UserKind.STAFF, UserKind.PRACTICE_ACCESS},
    PracticeKind.THIRD_PARTY: {UserKind.THIRD_PARTY, UserKind.PRACTICE_ACCESS},
}
_KIND_LABEL = {
    UserKind.MEMBER: "Mitglied",
    UserKind.STAFF: "Praxispersonal",
    UserKind.THIRD_PARTY: "Dritter",
    UserKind.PRACTICE_ACCESS: "Praxiszugang",
}


def kind_label(kind: UserKind) -> str:
    return _KIND_LABEL[kind]


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFoundError(f"Kein Benutzer {username.strip()!r}")
    return user


def create_user(
    session: Session,
    *,
    username: str,
    bsnr: str,
    kind: UserKind,
    actor: Actor,
    now: datetime,
    name: str | None = None,
    lanr: str | None = None,
    migrated_password: str | None = None,
    migrated_hash: str | None = None,
    policy: passwords.PasswordPolicy = passwords.DEFAULT_POLICY,
) -> User:
    """Create a user of a practice: the building block, with no letter. Staff add a
    user with ``provisioning.issuance.add_user``, which queues the credentials letter.

    Without a password the user is pending until a credentials letter is printed.
    With ``migrated_password`` (the plaintext) or ``migrated_hash`` (its hash in a
    scheme flexnet verifies) the password of the previous system is taken over and the
    account is active at once, which needs accepted terms (§ 1.3, § 3.3). The policy
    (§ 5.4) is checked on the plaintext now, on a hash's plaintext when it is first
    typed (see :func:`check_taken_over`): one that breaks it must be changed first.
    """
    username = normalize_username(username)
    practice = get_practice(session, bsnr)
    _check_kind(practice, kind)
    lanr = _checked_lanr(kind, lanr)
    name = optional_line(name, field="Name", max_length=200)
    if lanr is not None:
        _refuse_other_holder(session, lanr=lanr, practice=practice, name=name)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ConflictError(f"Der Benutzername {username!r} ist bereits vergeben")
    if session.scalar(select(StaffAccount.id).where(StaffAccount.username == username)):
        raise ConflictError(f"Der Benutzername {username!r} gehört einem KVSA-Mitarbeiter")
    if migrated_password is not None and migrated_hash is not None:
        raise ValidationError("Bitte entweder das Kennwort oder seinen Hash übernehmen")
    if migrated_password is not None:
        require_terms_accepted(practice)
        normalized = passwords.check_transportable(migrated_password)
    if migrated_hash is not None:
        require_terms_accepted(practice)
        migrated_hash = passwords.check_foreign_hash(migrated_hash)
    user = User(
        username=username,
        practice=practice,
        kind=kind,
        name=name,
        lanr=lanr,
        status=UserStatus.PENDING,
        created_at=now,
    )
    session.add(user)
    audit.record(
        session,
        AuditTag.USER_CREATE,
        actor=actor,
        subject=Subject("user", username),
        data={"bsnr": practice.bsnr, "kind": kind.value, "lanr": lanr},
        now=now,
    )
    if migrated_password is not None:
        weak = bool(_policy_problems(user, normalized, policy))
        set_password(session, user, normalized, now=now)
        _taken_over(session, user, TakenOverPassword.WEAK if weak else None, actor=actor, now=now)
    if migrated_hash is not None:
        _store_hash(user, migrated_hash, now=now)
        _taken_over(session, user, TakenOverPassword.UNCHECKED, actor=actor, now=now)
    return user


def _check_kind(practice: Practice, kind: UserKind) -> None:
    if kind not in _ALLOWED_KINDS[practice.kind]:
        where = "Drittanbieter" if practice.kind is PracticeKind.THIRD_PARTY else "Mitgliedspraxis"
        raise ValidationError(
            f"Ein Benutzer der Art {kind_label(kind)!r} ist bei einer {where} nicht vorgesehen"
        )
    if kind is UserKind.PRACTICE_ACCESS and any(
        u.kind is UserKind.PRACTICE_ACCESS and not _ended_for_good(u) for u in practice.users
    ):
        raise ConflictError(f"BSNR {practice.bsnr} hat bereits einen Praxiszugang (§ 2.1)")


def _ended_for_good(user: User) -> bool:
    """Revoked, or a previous owner's (§ 2.3): such an account never comes back."""
    return user.status is UserStatus.REVOKED or user.lock_cause is LockCause.TAKEOVER


def _checked_lanr(kind: UserKind, lanr: str | None) -> str | None:
    if kind is UserKind.MEMBER:
        if not lanr:
            raise ValidationError("Für ein Mitglied ist die LANR anzugeben")
        return validate_lanr(lanr)
    if lanr:
        raise ValidationError("Eine LANR gibt es nur für Mitglieder (Ärzte/Psychotherapeuten)")
    return None


def _refuse_other_holder(
    session: Session, *, lanr: str, practice: Practice, name: str | None, user_id: int = 0
) -> None:
    """A LANR belongs to one person for life. It may appear in several practices (one
    member, two BSNRs), with that person's name (folded: case, umlauts), but only once
    in a practice (an account whose access has ended for good, or a previous owner's,
    aside)."""
    others = session.execute(
        select(
            User.username,
            User.name,
            User.practice_id,
            User.status,
            User.lock_cause,
            Practice.bsnr,
        )
        .join(Practice, User.practice_id == Practice.id)
        .where(User.lanr == lanr, User.id != user_id)
    )
    for other in others:
        ended = other.status is UserStatus.REVOKED or other.lock_cause is LockCause.TAKEOVER
        same_practice = other.practice_id == practice.id and not ended
        if same_practice or fold(other.name or "") != fold(name or ""):
            raise ConflictError(
                f"Die LANR {lanr} gehört bereits {other.name or other.username} (Benutzer "
                f"{other.username}, BSNR {other.bsnr}); eine LANR gehört genau einer Person"
            )


def edit_user(
    session: Session,
    *,
    username: str,
    actor: Actor,
    now: datetime,
    name: str | None = None,
    lanr: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Change a user's name or a member's LANR (check digit; not one held by another
    person); None leaves it. Later letters use the new name; the old values stay in the
    audit trail. Returns what changed (field → old and new)."""
    user = get_user(session, username)
    new_name = optional_line(name, field="Name", max_length=200) if name is not None else user.name
    new_lanr = _checked_lanr(user.kind, lanr) if lanr is not None else user.lanr
    if new_lanr is not None and (new_lanr, new_name) != (user.lanr, user.name):
        _refuse_other_holder(
            session, lanr=new_lanr, practice=user.practice, name=new_name, user_id=user.id
        )
    rules = {"name": lambda _v: new_name, "lanr": lambda _v: new_lanr}
    changes = apply_changes(user, rules, {"name": name, "lanr": lanr})
    if changes:
        audit.record(
            session,
            AuditTag.USER_EDIT,
            actor=actor,
            subject=Subject("user", user.username),
            data={"changes": changes},
            now=now,
        )
    return changes


def set_password(
    session: Session, user: User, password: str, *, now: datetime, must_change: bool = False
) -> None:
    """Store a new password's hash and keep the last ones for the history rule (§ 5.4)."""
    set_password_hash(
        session, user, passwords.hash_password(password), now=now, must_change=must_change
    )


def set_password_hash(
    session: Session, user: User, password_hash: str, *, now: datetime, must_change: bool = False
) -> None:
    """``set_password`` with the hash made beforehand (outside the transaction)."""
    _store_hash(user, password_hash, now=now)
    user.password_must_change = must_change
    # A password of one's own supersedes a re-issued one still waiting for its first use.
    user.next_password_hash = user.next_password_set_at = None
    # A new password ends every self-service session of the user.
    user.session_epoch = (user.session_epoch or 0) + 1


def _store_hash(user: User, password_hash: str, *, now: datetime) -> None:
    """The current password, kept in the history too (§ 5.4); it is no longer one
    taken over from the previous system."""
    user.password_hash = password_hash
    user.password_set_at = now
    user.taken_over_password = None
    user.password_history.append(PasswordHistory(password_hash=password_hash, set_at=now))
    del user.password_history[: -passwords.HISTORY_KEPT]


def issue_password(
    session: Session, user: User, password_hash: str, *, now: datetime, at_once: bool
) -> None:
    """A password printed on a letter (initial or re-issued), to be changed at first login.

    ``at_once`` replaces the current password now; otherwise it stays valid until the
    new one is first used (§ 7.3, staff's choice). A user without a password always
    gets it at once.
    """
    if at_once or user.password_hash is None:
        user.password_hash = password_hash
        user.password_set_at = now
        user.password_must_change = True
        user.taken_over_password = None
        user.next_password_hash = user.next_password_set_at = None
        user.session_epoch = (user.session_epoch or 0) + 1
    else:
        user.next_password_hash = password_hash
        user.next_password_set_at = now


def revoke_issued_password(session: Session, user: User, *, password_hash: str | None) -> bool:
    """The letter with this password was never sent, or came back from the post: that
    password must not work. Only where it is still in use: a later letter's or the
    user's own password stays. True if it was in use (and is revoked now)."""
    if password_hash is None:
        return False
    revoked = False
    if user.password_hash == password_hash:
        user.password_hash = None
        user.session_epoch = (user.session_epoch or 0) + 1
        revoked = True
    if user.next_password_hash == password_hash:
        user.next_password_hash = user.next_password_set_at = None
        revoked = True
    return revoked


def promote_next_password(session: Session, user: User, *, now: datetime) -> None:
    """The re-issued password was used: it replaces the old one, which stops working."""
    user.password_hash = user.next_password_hash
    user.password_set_at = user.next_password_set_at or now
    user.password_must_change = True
    user.taken_over_password = None
    user.next_password_hash = user.next_password_set_at = None
    user.session_epoch = (user.session_epoch or 0) + 1
    audit.record(
        session,
        AuditTag.USER_PASSWORD_REPLACE,
        actor=Actor.user(user.username),
        subject=Subject("user", user.username),
        now=now,
    )


def _taken_over(
    session: Session,
    user: User,
    state: TakenOverPassword | None,
    *,
    actor: Actor,
    now: datetime,
) -> None:
    """The password of the previous system is the user's now; the policy's expiry still
    applies, and ``state`` says whether it still has to meet the policy (§ 5.4)."""
    user.taken_over_password = state
    user.status = UserStatus.ACTIVE
    audit.record(
        session,
        AuditTag.USER_PASSWORD_MIGRATE,
        actor=actor,
        subject=Subject("user", user.username),
        data={"policy": state.value if state else "ok"},
        now=now,
    )


def check_taken_over(
    session: Session,
    user: User,
    password: str,
    *,
    now: datetime,
    policy: passwords.PasswordPolicy = passwords.DEFAULT_POLICY,
) -> None:
    """A taken-over hash's plaintext, just typed and verified: it meets the policy and
    counts as any other password, or it must be changed before anything else (§ 5.4)."""
    weak = taken_over_weak(user, password, policy)
    if weak is not None:
        record_taken_over_check(session, user, weak=weak, now=now)


def taken_over_weak(
    user: User, password: str, policy: passwords.PasswordPolicy = passwords.DEFAULT_POLICY
) -> bool | None:
    """Whether the plaintext of a taken-over hash not checked yet breaks the policy; None
    for any other password. Reads only the loaded user: the login pipeline asks while
    no transaction is open, as the policy check can take a while."""
    if user.taken_over_password is not TakenOverPassword.UNCHECKED:
        return None
    return bool(_policy_problems(user, password, policy))


def record_taken_over_check(session: Session, user: User, *, weak: bool, now: datetime) -> None:
    """Store (and audit) the verdict of ``taken_over_weak`` while it is still pending."""
    if user.taken_over_password is not TakenOverPassword.UNCHECKED:
        return
    user.taken_over_password = TakenOverPassword.WEAK if weak else None
    audit.record(
        session,
        AuditTag.USER_PASSWORD_POLICY_CHECK,
        actor=Actor.system("authn"),
        subject=Subject("user", user.username),
        data={"result": "weak" if weak else "ok"},
        now=now,
    )


def _personal(user: User) -> list[str]:
    return [user.username, user.name or "", user.practice.bsnr, user.practice.name]


def _policy_problems(user: User, password: str, policy: passwords.PasswordPolicy) -> list[str]:
    """The policy's rules on the password itself; the history rule does not apply to a
    password that is already the user's own."""
    return passwords.policy_violations(password, personal=_personal(user), policy=policy)


def password_problems(
    user: User, new_password: str, policy: passwords.PasswordPolicy = passwords.DEFAULT_POLICY
) -> list[str]:
    """The policy's objections to ``new_password`` for this user (German sentences)."""
    history = [h.password_hash for h in user.password_history]
    return passwords.policy_violations(
        new_password, personal=_personal(user), history=history, policy=policy
    )


def change_own_password(
    session: Session,
    *,
    user: User,
    old_password: str,
    new_password: str,
    channel: str,
    now: datetime,
    auth: AuthSettings,
    source_ip: str | None,
    policy: passwords.PasswordPolicy = passwords.DEFAULT_POLICY,
) -> passwords.PasswordChange:
    """A user changes their password: old one, minimum age, policy.

    Checking the old password is a guess at it, so it is throttled like every password
    check: ``auth.lockout_threshold`` per user and ``auth.source_failure_limit`` per
    address in the failure window, counted before the check (a refused attempt counts
    nowhere). The answer never tells whether the old password was right
    (``passwords.PasswordChange``). All of the user's sessions end (the session epoch
    rises); the caller keeps its own by taking the new epoch.
    """
    personal = [user.username, user.name or "", user.practice.bsnr, user.practice.name]
    too_soon = passwords.min_age_problem(
        set_at=user.password_set_at,
        # A taken-over password is no change of one's own: replacing it is never too soon.
        must_change=user.password_must_change or user.taken_over_password is not None,
        now=now,
        policy=policy,
    )
    problems = ([too_soon] if too_soon else []) + passwords.policy_violations(
        new_password, personal=personal, policy=policy
    )
    if problems:  # the same whatever the old password is: nothing was guessed
        return passwords.PasswordChange(problems)
    limits: dict[str, int | None] = {f"password-change:user:{user.id}": auth.lockout_threshold}
    if source_ip:
        key = f"password-change:ip:{ratelimit.source_key(source_ip)}"
        limits[key] = auth.source_failure_limit
    window = auth.failure_window_seconds
    if ratelimit.admit(session, limits, window_seconds=window, now=now) is not Admission.ADMITTED:
        return passwords.PasswordChange([passwords.TOO_MANY_CHANGES], throttled=True)
    history = [h.password_hash for h in user.password_history]
    # All three checks run whatever the first says: the time of the answer tells no more
    # than its text whether the old password was right.
    old_right = passwords.verify(old_password, user.password_hash).ok
    same_as_old = passwords.verify(new_password, user.password_hash).ok
    reused = passwords.reuses(new_password, history, policy=policy)
    if not old_right:
        # A guess at the password: staff see it in the login log like a failed login.
        client = Client(Channel(channel), source_ip=source_ip)
        authlog.record(
            session, reject(Reason.PASSWORD_WRONG), username=user.username, client=client,
            now=now, user=user,
        )  # fmt: skip
    if not old_right or same_as_old or reused:
        return passwords.PasswordChange([passwords.wrong_or_reused(policy.history)])
    set_password(session, user, new_password, now=now)
    audit.record(
        session,
        AuditTag.USER_PASSWORD_CHANGE,
        actor=Actor.user(user.username),
        subject=Subject("user", user.username),
        data={"channel": channel},
        now=now,
    )
    return passwords.PasswordChange([])


@dataclass(frozen=True)
class Locked:
    usernames: list[str]  # locked by this call (the already locked are left out)
    disconnects: int  # live VPN sessions queued for disconnect


LOCKABLE = (UserStatus.ACTIVE, UserStatus.PENDING)


def lock_users(
    session: Session, locks: Mapping[int, Lock], *, actor: Actor, now: datetime
) -> Locked:
    """Lock users (id → why), set-based: each audited, their live sessions queued for
    disconnect, their self-service sessions ended (the session epoch rises), a re-issued
    password waiting for its first use revoked (§ 7.2).

    The rows are locked first (FOR UPDATE), so of concurrent locks of one user exactly
    one takes effect and is audited; users locked already are skipped.
    """
    rows = rows_for_update(session, User, User.username, list(locks), User.status.in_(LOCKABLE))
    if not rows:
        return Locked([], 0)
    # One expression object for all rows: update_by_id groups rows with equal values, so
    # the rows of one lock reason still go in one UPDATE; the increment happens in SQL.
    next_epoch = User.session_epoch + 1
    update_by_id(
        session,
        User,
        {
            id_: {
                "status": UserStatus.LOCKED,
                "lock_cause": locks[id_].cause,
                "lock_reason": locks[id_].reason,
                "locked_at": now,
                "next_password_hash": None,
                "next_password_set_at": None,
                # A lock ends the user's self-service sessions too: an open one must not
                # go on changing the password of a locked account.
                "session_epoch": next_epoch,
            }
            for id_, _ in rows
        },
    )
    audit.record_many(
        session,
        [
            audit.Pending(
                AuditTag.USER_LOCK,
                Subject("user", username),
                {"cause": locks[id_].cause.value, **locks[id_].data},
            )
            for id_, username in rows
        ],
        actor=actor,
        now=now,
    )
    ids = [id_ for id_, _ in rows]
    disconnects = sum(
        vpn.request_disconnect(session, user_ids=chunk, now=now) for chunk in chunked(ids)
    )
    return Locked([username for _, username in rows], disconnects)


def lock_one(
    session: Session,
    *,
    user: User,
    cause: LockCause,
    reason: str,
    actor: Actor,
    now: datetime,
    data: dict[str, object] | None = None,
) -> int | None:
    """Lock one user (any cause), queue the disconnect of their live VPN sessions and end
    their self-service sessions: ``lock_users`` for one, the building block under the
    failed-login lock, the self-lock and staff's lock (``lifecycle.locks.lock``).

    Returns how many live sessions were queued, or None if the user was locked already.
    """
    locked = lock_users(session, {user.id: Lock(cause, reason, data or {})}, actor=actor, now=now)
    session.refresh(user)
    return locked.disconnects if locked.usernames else None
