"""The association's registry, imported (``flexnet registry import FILE.csv``).

The registry knows members and practices (BSNR, LANR, names, addresses, start and end of
the physician's activity). An import compares its export with what flexnet holds and
creates what is new (a practice waits for its terms, § 1.3; a member gets an account and
its credentials letter), applies what changed (names, addresses, a member's end of
activity, an end cleared), and never deletes: what the file no longer names stays as it
is. The comparison is the plan, which a dry run reports as a diff; applying it changes
nothing when nothing differs, so the same file imported twice changes nothing. A file
with one bad row changes nothing and names the row. Run nightly, it keeps § 10.3 fed from
the source that knows when an activity ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, selectinload

from flexnet import audit
from flexnet.accounts import practices, users
from flexnet.accounts.folding import fold, search_key
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.db import CHUNK
from flexnet.errors import FlexnetError
from flexnet.lifecycle import activity
from flexnet.lifecycle.rules import DEFAULT_LOCK_AFTER_QUARTERS, automatic_lock_instant
from flexnet.lifecycle.status import practice_status
from flexnet.models import (
    LetterKind,
    LockCause,
    Practice,
    PracticeKind,
    PracticeStatus,
    StaffAccount,
    User,
    UserKind,
    UserStatus,
)
from flexnet.otp.importer import ImportFailed
from flexnet.provisioning import mailruns
from flexnet.provisioning.registry_file import RegistryRow

REASON = "Register der KV Sachsen-Anhalt (Import)"
Change = dict[str, tuple[Any, Any]]  # field → (old, new)


@dataclass
class PracticePlan:
    row: RegistryRow
    practice: Practice | None  # None: new
    changes: Change = field(default_factory=dict)


@dataclass
class MemberPlan:
    row: RegistryRow
    user: User | None  # None: new
    username: str
    changes: Change = field(default_factory=dict)


@dataclass
class Plan:
    """What an import of the file does: new and changed records, and the rest counted."""

    practices: list[PracticePlan] = field(default_factory=list)
    members: list[MemberPlan] = field(default_factory=list)
    skipped: list[tuple[RegistryRow, str]] = field(default_factory=list)
    unchanged_practices: int = 0
    unchanged_members: int = 0
    not_in_file: int = 0  # members of the file's practices the file does not name

    @property
    def steps(self) -> int:
        return len(self.practices) + len(self.members)


@dataclass
class _Known:
    """What flexnet holds that the file touches, read once."""

    practices: dict[str, Practice]
    holders: dict[str, list[User]]  # LANR → its accounts, in any practice
    taken: set[str]  # usernames of users and staff


def plan(
    session: Session,
    rows: list[RegistryRow],
    *,
    now: datetime,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> Plan:
    """Compare the file with the database; ImportFailed names every row that cannot be
    applied (nothing is written either way)."""
    known = _known(session, rows)
    result, problems = Plan(), list[str]()
    seen: set[str] = set()
    for row in rows:
        if row.bsnr not in seen:
            seen.add(row.bsnr)
            _plan_practice(result, known, row, problems)
    file_names: dict[str | None, str] = {
        row.lanr: fold(row.member_name or "") for row in rows if row.lanr
    }
    in_file: set[tuple[str, str | None]] = {(row.bsnr, row.lanr) for row in rows if row.lanr}
    for row in rows:
        if row.lanr is not None:
            _plan_member(result, known, row, file_names, in_file, now, quarters, problems)
    result.not_in_file = sum(
        1
        for practice in known.practices.values()
        for user in practice.users
        if user.kind is UserKind.MEMBER
        and not _ended_for_good(user)
        and (practice.bsnr, user.lanr) not in in_file
    )
    if problems:
        raise ImportFailed(problems)
    return result


def _slices(keys: list[str]) -> list[list[str]]:
    """Slices of ``keys`` for statements that name them in an IN list."""
    return [keys[start : start + CHUNK] for start in range(0, len(keys), CHUNK)]


def _known(session: Session, rows: list[RegistryRow]) -> _Known:
    bsnrs = sorted({row.bsnr for row in rows})
    lanrs = sorted({row.lanr for row in rows if row.lanr})
    found = {
        practice.bsnr: practice
        for chunk in _slices(bsnrs)
        for practice in session.scalars(
            select(Practice)
            .where(Practice.bsnr.in_(chunk))
            .options(
                selectinload(Practice.users).selectinload(User.lock_exception),
                selectinload(Practice.lock_exception),
            )
        )
    }
    holders: dict[str, list[User]] = {}
    for chunk in _slices(lanrs):
        for user in session.scalars(
            select(User).where(User.lanr.in_(chunk)).options(selectinload(User.practice))
        ):
            holders.setdefault(user.lanr or "", []).append(user)
    taken = set(session.scalars(select(User.username))) | set(
        session.scalars(select(StaffAccount.username))
    )
    return _Known(found, holders, taken)


def _plan_practice(result: Plan, known: _Known, row: RegistryRow, problems: list[str]) -> None:
    practice = known.practices.get(row.bsnr)
    if practice is None:
        result.practices.append(PracticePlan(row, None))
        return
    if practice.kind is PracticeKind.THIRD_PARTY:
        problems.append(
            f"Zeile {row.line}: BSNR {row.bsnr} ist ein Dritter (§ 1.1), keine Mitgliedspraxis"
        )
        return
    changes = {
        name: (getattr(practice, name), new)
        for name, new in row.practice_values().items()
        # The registry may not know a phone number: only a given one replaces the stored.
        if getattr(practice, name) != new and not (name == "phone" and new is None)
    }
    if changes:
        result.practices.append(PracticePlan(row, practice, changes))
    else:
        result.unchanged_practices += 1


def _plan_member(
    result: Plan,
    known: _Known,
    row: RegistryRow,
    file_names: dict[str | None, str],
    in_file: set[tuple[str, str | None]],
    now: datetime,
    quarters: int,
    problems: list[str],
) -> None:
    practice = known.practices.get(row.bsnr)
    accounts = [
        user
        for user in known.holders.get(row.lanr or "", [])
        if practice is not None and user.practice_id == practice.id
    ]
    if accounts:
        # The one still in use if there are several (a member who came back).
        user = min(accounts, key=_ended_for_good)
        changes: Change = {}
        if user.name != row.member_name:
            changes["name"] = (user.name, row.member_name)
        if user.activity_ended_on != row.ended_on:
            changes["activity_ended_on"] = (user.activity_ended_on, row.ended_on)
        if changes:
            result.members.append(MemberPlan(row, user, user.username, changes))
        else:
            result.unchanged_members += 1
        return
    skip = _why_not_created(row, practice, now, quarters)
    if skip:
        result.skipped.append((row, skip))
        return
    for other in known.holders.get(row.lanr or "", []):
        name = (
            file_names[row.lanr]
            if (other.practice.bsnr, row.lanr) in in_file
            else fold(other.name or "")
        )
        if not _ended_for_good(other) and name != fold(row.member_name or ""):
            problems.append(
                f"Zeile {row.line}: LANR {row.lanr} gehört bereits {other.name} (Benutzer "
                f"{other.username}, BSNR {other.practice.bsnr}); eine LANR gehört genau einer "
                "Person"
            )
            return
    username = row.username or derive_username(row.member_name or "", known.taken)
    if username in known.taken:
        problems.append(f"Zeile {row.line}: Benutzername {username} ist bereits vergeben")
        return
    known.taken.add(username)
    result.members.append(MemberPlan(row, None, username))


def _why_not_created(
    row: RegistryRow, practice: Practice | None, now: datetime, quarters: int
) -> str | None:
    """A member is not given an account whose access has ended already, or in a practice
    whose access is withdrawn."""
    if row.ended_on is not None and automatic_lock_instant(row.ended_on, quarters) <= now:
        return f"Tätigkeit endete am {row.ended_on:%d.%m.%Y}: kein Zugang mehr (§ 10.3)"
    if practice is not None:
        status = practice_status(practice, now, quarters)
        if status.withdrawn:
            return f"Betriebsstätte gesperrt ({status.reason})"
    return None


def _ended_for_good(user: User) -> bool:
    return user.status is UserStatus.REVOKED or user.lock_cause is LockCause.TAKEOVER


_TITLE_WORDS = frozenset({"dr", "med", "prof", "dent", "dipl", "psych", "habil", "univ"})


def derive_username(name: str, taken: set[str]) -> str:
    """A username from a person's name: the first given name's initial and the surname,
    folded to a–z (umlauts as ae, oe, ue, ss), titles left out; a number is added if it
    is taken ("aschmidt", "aschmidt2")."""
    words = [
        word
        for word in fold(name).replace(".", ". ").split()
        if word.rstrip(".") not in _TITLE_WORDS and not word.endswith(".")
    ]
    clean = [
        "".join(ch for ch in word if ch.isascii() and (ch.isalnum() or ch == "-")) for word in words
    ]
    clean = [word.strip("-") for word in clean if word.strip("-")]
    base = (clean[0][0] + clean[-1] if len(clean) > 1 else "".join(clean) or "mitglied")[:40]
    base = base if len(base) >= 3 else f"{base}-mitglied"
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}{number}"
    return candidate


# --- applying the plan ------------------------------------------------------------------


def apply(
    session: Session,
    planned: Plan,
    *,
    actor: Actor,
    now: datetime,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Carry the plan out in the caller's transaction: new records set-based (thousands
    at once), changes through the same services as the command line, each audited."""
    step = progress or (lambda _n: None)
    new_ids = _create_practices(
        session, [p.row for p in planned.practices if p.practice is None], actor, now
    )
    step(len(new_ids))
    for change in planned.practices:
        if change.practice is not None:
            with _naming(change.row):
                practices.edit_practice(
                    session,
                    bsnr=change.row.bsnr,
                    **{name: new or "" for name, (_old, new) in change.changes.items()},
                    actor=actor,
                    now=now,
                )
            step(1)
    created = [member for member in planned.members if member.user is None]
    _create_members(session, created, new_ids, actor, now)
    step(len(created))
    for member in planned.members:
        if member.user is not None:
            with _naming(member.row):
                _change_member(session, member, actor=actor, now=now, quarters=quarters)
            step(1)
    if planned.steps:
        audit.record(
            session,
            AuditTag.REGISTRY_IMPORT,
            actor=actor,
            data={
                "practices_created": len(new_ids),
                "practices_changed": len(planned.practices) - len(new_ids),
                "members_created": len(created),
                "members_changed": len(planned.members) - len(created),
                "skipped": len(planned.skipped),
            },
            now=now,
        )


@contextmanager
def _naming(row: RegistryRow) -> Iterator[None]:
    """A change refused while it is applied names its row (the caller rolls back)."""
    try:
        yield
    except FlexnetError as error:
        raise ImportFailed([f"Zeile {row.line} (BSNR {row.bsnr}): {error.message}"]) from None


def _create_practices(
    session: Session, rows: list[RegistryRow], actor: Actor, now: datetime
) -> dict[str, int]:
    """New practices, pending until their terms are accepted (§ 1.3): BSNR → id."""
    if not rows:
        return {}
    values = [
        {
            **row.practice_values(),
            "bsnr": row.bsnr,
            "kind": PracticeKind.MEMBER,
            "access_profile": practices.DEFAULT_ACCESS_PROFILE[PracticeKind.MEMBER],
            "status": PracticeStatus.PENDING,
            "created_at": now,
            # Written past the ORM's events: the search key as ``_search_keys`` sets it.
            "search_key": search_key(row.name, row.city),
        }
        for row in rows
    ]
    # One statement for all rows (a RETURNING in row order would be one per row on
    # SQLite); the BSNRs are unique, so their ids are read back by them.
    session.execute(insert(Practice), values)
    ids = _practice_ids(session, {row.bsnr for row in rows})

    audit.record_many(
        session,
        [
            audit.Pending(
                AuditTag.PRACTICE_CREATE,
                Subject("practice", row.bsnr),
                {
                    "name": row.name,
                    "kind": PracticeKind.MEMBER.value,
                    "city": row.city,
                    "source": "registry",
                },
            )
            for row in rows
        ],
        actor=actor,
        now=now,
    )
    return ids


def _create_members(
    session: Session,
    members: list[MemberPlan],
    new_ids: dict[str, int],
    actor: Actor,
    now: datetime,
) -> None:
    """New members' accounts, each waiting for its credentials letter (queued)."""
    if not members:
        return
    known = _practice_ids(session, {m.row.bsnr for m in members} - set(new_ids))
    ids = {**known, **new_ids}
    values = [
        {
            "username": member.username,
            "practice_id": ids[member.row.bsnr],
            "kind": UserKind.MEMBER,
            "name": member.row.member_name,
            "lanr": member.row.lanr,
            "status": UserStatus.PENDING,
            "activity_ended_on": member.row.ended_on,
            "password_must_change": False,
            "failed_logins": 0,
            "session_epoch": 0,
            "created_at": now,
            "search_key": search_key(member.row.member_name),
        }
        for member in members
    ]
    session.execute(insert(User), values)  # one statement; usernames are unique
    user_ids = [
        id_
        for chunk in _slices(sorted(member.username for member in members))
        for id_ in session.scalars(select(User.id).where(User.username.in_(chunk)))
    ]
    audit.record_many(session, list(_member_entries(members)), actor=actor, now=now)
    created = session.scalars(
        select(User).where(User.id.in_(user_ids)).options(selectinload(User.practice))
    )
    mailruns.queue_many(
        session,
        [
            mailruns.NewLetter(LetterKind.CREDENTIALS, user.practice, user)
            for user in sorted(created, key=lambda u: u.id)
        ],
        actor=actor,
        now=now,
    )


def _member_entries(members: Iterable[MemberPlan]) -> Iterable[audit.Pending]:
    for member in members:
        subject = Subject("user", member.username)
        row = member.row
        yield audit.Pending(
            AuditTag.USER_CREATE,
            subject,
            {
                "bsnr": row.bsnr,
                "kind": UserKind.MEMBER.value,
                "lanr": row.lanr,
                "source": "registry",
            },
        )
        if row.ended_on is not None:
            yield audit.Pending(
                AuditTag.USER_ACTIVITY_END,
                subject,
                practices.end_change_data(None, row.ended_on, REASON),
            )


def _practice_ids(session: Session, bsnrs: set[str]) -> dict[str, int]:
    return {
        bsnr: id_
        for chunk in _slices(sorted(bsnrs))
        for id_, bsnr in session.execute(
            select(Practice.id, Practice.bsnr).where(Practice.bsnr.in_(chunk))
        )
    }


def _change_member(
    session: Session, member: MemberPlan, *, actor: Actor, now: datetime, quarters: int
) -> None:
    if "name" in member.changes:
        users.edit_user(
            session,
            username=member.username,
            name=member.row.member_name or "",
            actor=actor,
            now=now,
        )
    if "activity_ended_on" in member.changes:
        activity.record_member_end(
            session,
            username=member.username,
            ended_on=member.row.ended_on,
            reason=REASON,
            actor=actor,
            now=now,
            quarters=quarters,
        )


def day_text(day: date | None) -> str:
    return f"{day:%d.%m.%Y}" if day else "–"
