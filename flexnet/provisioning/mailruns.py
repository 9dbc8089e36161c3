"""Letters and mail runs: what is due, producing a run's PDF, dispatch, cancel, reprint.

Split shipment (§ 3.2): a credentials letter becomes due only after the practice's
Yubikey has left (its key letter's run confirmed dispatched) and the configured number
of working days has passed; nothing is shipped to a practice without accepted terms
(§ 1.3). Passwords are generated while the run is produced, only their hashes are
stored, and the PDF goes to the caller's stream once: it is never kept.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import BinaryIO

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import instance_state

from flexnet import audit
from flexnet.accounts import users
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.authn import passwords
from flexnet.config import Settings
from flexnet.db import begin_reading, chunked, expire_loaded
from flexnet.errors import ConflictError, NotFoundError, ValidationError
from flexnet.lifecycle.rules import DEFAULT_LOCK_AFTER_QUARTERS, start_of_day
from flexnet.lifecycle.status import State, practice_status, user_status
from flexnet.models import (
    Letter,
    LetterKind,
    LetterStatus,
    LockCause,
    MailRun,
    MailRunStatus,
    Practice,
    Token,
    TokenStatus,
    User,
)
from flexnet.otp.verify import USABLE_STATUSES
from flexnet.provisioning import letters as render
from flexnet.provisioning.hashpool import Hasher

# Those imported ``as`` themselves are re-exported: callers have always found them here.
from flexnet.provisioning.letterfields import format_euro as format_euro
from flexnet.provisioning.letterfields import letter_data
from flexnet.provisioning.letterfields import parse_reference as parse_reference
from flexnet.provisioning.letterfields import reference as reference
from flexnet.provisioning.workdays import add_working_days

# § 3.2: the password travels on security paper; these letters are printed last, together.
SECURITY_PAPER = render.SECURITY_PAPER
PASSWORD_LETTERS = SECURITY_PAPER
# Letters that hand something out: they wait while the practice is locked.
ISSUING_LETTERS = frozenset({LetterKind.KEY, *PASSWORD_LETTERS})
_KIND_LABEL = {
    LetterKind.KEY: "Begleitschreiben Yubikey",
    LetterKind.CREDENTIALS: "Zugangsdaten",
    LetterKind.NEW_PASSWORD: "Neues Kennwort",
    LetterKind.LOCK: "Sperrung/Kündigung",
    LetterKind.LOSS_CONFIRMATION: "Verlustbestätigung",
    LetterKind.LOCK_NOTICE: "Ankündigung einer Sperre",
    LetterKind.RETURN_REMINDER: "Erinnerung Yubikey-Rückgabe",
    LetterKind.TERMS: "Neue Nutzungsbedingungen",
}


def kind_label(kind: LetterKind) -> str:
    return _KIND_LABEL[kind]


@dataclass(frozen=True)
class NewLetter:
    """A letter to put on the list (see :func:`queue_many`)."""

    kind: LetterKind
    practice: Practice
    user: User | None = None
    token: Token | None = None
    replace_at_once: bool = True
    fee_cents: int | None = None
    note: str | None = None
    effective_on: date | None = None
    cause: LockCause | None = None  # lock and notice letters: their legal ground


def queue(
    session: Session,
    *,
    kind: LetterKind,
    practice: Practice,
    actor: Actor,
    now: datetime,
    user: User | None = None,
    token: Token | None = None,
    replace_at_once: bool = True,
    fee_cents: int | None = None,
    note: str | None = None,
    effective_on: date | None = None,
    cause: LockCause | None = None,
) -> Letter:
    """Put a letter on the list for the next mail run that may carry it."""
    new = NewLetter(
        kind, practice, user, token, replace_at_once, fee_cents, note, effective_on, cause
    )
    (letter_id,) = queue_many(session, [new], actor=actor, now=now)
    return session.get_one(Letter, letter_id)


def queue_many(
    session: Session, letters: Sequence[NewLetter], *, actor: Actor, now: datetime
) -> list[int]:
    """Put letters on the list in one statement, each audited; returns their ids."""
    if not letters:
        return []
    rows = [
        {
            "kind": new.kind,
            "status": LetterStatus.DUE,
            "practice_id": new.practice.id,
            "user_id": new.user.id if new.user else None,
            "token_id": new.token.id if new.token else None,
            "replace_at_once": new.replace_at_once,
            "fee_cents": new.fee_cents,
            "note": new.note,
            "effective_on": new.effective_on,
            "cause": new.cause,
            "created_at": now,
            "created_by": actor.name,
        }
        for new in letters
    ]
    ids = list(
        session.scalars(insert(Letter).returning(Letter.id, sort_by_parameter_order=True), rows)
    )
    audit.record_many(
        session,
        [
            audit.Pending(
                AuditTag.LETTER_QUEUE,
                Subject("practice", new.practice.bsnr),
                {
                    "letter": reference(letter_id),
                    "kind": new.kind.value,
                    "user": new.user.username if new.user else None,
                    "token": new.token.serial if new.token else None,
                },
            )
            for letter_id, new in zip(ids, letters, strict=True)
        ],
        actor=actor,
        now=now,
    )
    for new in letters:  # loaded letter lists show the new ones when next read
        _expire_letters(session, new.practice)
        if new.user is not None:
            _expire_letters(session, new.user)
    return ids


def _expire_letters(session: Session, owner: Practice | User) -> None:
    if "letters" not in instance_state(owner).unloaded:
        session.expire(owner, ["letters"])


# --- what is due -----------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """A letter that is not due yet, and why (shown by ``letters due``)."""

    letter: Letter
    reason: str


@dataclass(frozen=True)
class DueList:
    due: list[Letter]  # in print order: plain paper first, then security paper
    waiting: list[Waiting]


def due_letters(
    session: Session,
    *,
    today: date,
    delay_days: int,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
    claim: bool = False,
) -> DueList:
    """The letters a run made ``today`` would carry, and those held back with the reason.

    ``claim`` locks the letters for the caller's transaction (PostgreSQL; SQLite's
    write lock serialises runs anyway) and skips those another run holds, so that two
    runs started at once never print one letter twice with two different passwords.
    """
    query = (
        select(Letter)
        .where(Letter.status == LetterStatus.DUE)
        .options(
            # Everything the hold-back rules read (terms, the effective status), loaded
            # per relationship rather than per letter.
            selectinload(Letter.practice).selectinload(Practice.terms_acceptances),
            selectinload(Letter.practice).selectinload(Practice.lock_exception),
            # The members' rule (§ 1.2) reads every user of the practice: without this, a
            # query per letter.
            selectinload(Letter.practice)
            .selectinload(Practice.users)
            .selectinload(User.lock_exception),
            selectinload(Letter.user).selectinload(User.lock_exception),
            selectinload(Letter.token),
        )
    )
    if claim:
        query = query.with_for_update(of=Letter, skip_locked=True)
    letters = list(session.scalars(query))
    key_out = _keys_out(session, {letter.practice_id for letter in letters})
    due, waiting = [], []
    for letter in letters:
        reason = _held_back(letter, key_out, today, delay_days, quarters)
        if reason is None:
            due.append(letter)
        else:
            waiting.append(Waiting(letter, reason))
    due.sort(key=lambda one: (one.kind in SECURITY_PAPER, one.practice.bsnr, one.id))
    return DueList(due, waiting)


def outlook(
    session: Session,
    letters: Sequence[Letter],
    *,
    today: date,
    delay_days: int,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> dict[int, str | None]:
    """For each of ``letters`` still on the list: None if a run made ``today`` would
    carry it, else why it waits (the rule of :func:`due_letters`, for a record's page)."""
    listed = [letter for letter in letters if letter.status is LetterStatus.DUE]
    key_out = _keys_out(session, {letter.practice_id for letter in listed})
    return {
        letter.id: _held_back(letter, key_out, today, delay_days, quarters) for letter in listed
    }


def _keys_out(session: Session, practice_ids: set[int]) -> dict[int, date | None]:
    """Practices whose Yubikey has left: the day its key letter went out (None: long since).

    Only a dispatched key letter counts: a key that was tried out before its letter left
    is still in the building. Keys taken over from the old system have no letter at all;
    they count as delivered once shipped or in use.
    """
    if not practice_ids:
        return {}
    # Per key and practice: a key reprogrammed and handed to another practice arrives
    # there with a new key letter, whatever its letter to the first practice did.
    letters = (
        select(
            Letter.token_id,
            Letter.practice_id,
            func.count().label("letters"),
            func.max(MailRun.dispatched_on).label("sent"),
        )
        .outerjoin(
            MailRun, (Letter.run_id == MailRun.id) & (Letter.status == LetterStatus.DISPATCHED)
        )
        .where(Letter.kind == LetterKind.KEY, Letter.status != LetterStatus.CANCELLED)
        .group_by(Letter.token_id, Letter.practice_id)
        .subquery()
    )
    rows = session.execute(
        select(Token.practice_id, Token.status, letters.c.letters, letters.c.sent)
        .outerjoin(
            letters,
            (letters.c.token_id == Token.id) & (letters.c.practice_id == Token.practice_id),
        )
        .where(Token.practice_id.in_(practice_ids), Token.status.in_(USABLE_STATUSES))
    )
    arrivals: dict[int, list[date | None]] = defaultdict(list)
    for practice_id, status, count, sent in rows:
        if count:  # issued through a key letter: arrived only once it was dispatched
            if sent is not None:
                arrivals[practice_id].append(sent)
        elif status in (TokenStatus.SHIPPED, TokenStatus.ACTIVE):
            arrivals[practice_id].append(None)
    return {
        practice_id: None if None in dates else min(d for d in dates if d is not None)
        for practice_id, dates in arrivals.items()
    }


def _reprint_refused(letter: Letter, today: date, quarters: int) -> str | None:
    """What holds a letter back, apart from the split-shipment clock (it went out once)."""
    return _held_back(letter, {letter.practice_id: None}, today, 0, quarters)


def _held_back(
    letter: Letter, key_out: dict[int, date | None], today: date, delay_days: int, quarters: int
) -> str | None:
    if letter.practice.terms_acceptance is None:
        return "Nutzungsbedingungen nicht angenommen (§ 1.3)"
    returned_on = letter.practice.undeliverable_since
    if returned_on is not None:
        return (
            f"Anschrift unzustellbar (Brief am {returned_on:%d.%m.%Y} zurückgekommen): erst die "
            f"Anschrift berichtigen oder bestätigen (flexnet practice edit {letter.practice.bsnr})"
        )
    if letter.kind in ISSUING_LETTERS:
        # The effective status: a termination or the § 10.3 date counts from its day on,
        # whether or not the nightly job has made the lock durable yet.
        practice = practice_status(letter.practice, start_of_day(today), quarters)
        if practice.state is State.LOCKED:
            return f"Betriebsstätte ist gesperrt: {practice.reason}"
    if letter.kind is LetterKind.KEY and (
        letter.token is None or letter.token.status not in USABLE_STATUSES
    ):
        return "Yubikey ist gesperrt, verloren oder zurückgegeben"
    if letter.token is not None and letter.token.practice_id != letter.practice_id:
        return "Yubikey gehört inzwischen nicht mehr zu dieser Betriebsstätte"
    if letter.kind is LetterKind.LOCK and (
        practice_status(letter.practice, start_of_day(today), quarters).state is not State.LOCKED
        and (letter.token is None or letter.token.status is not TokenStatus.LOCKED)
    ):
        return "Sperre inzwischen aufgehoben: der Sperrbrief wird nicht gedruckt"
    if letter.kind is LetterKind.RETURN_REMINDER and (
        letter.token is None or letter.token.status is not TokenStatus.LOCKED
    ):
        return "Yubikey ist inzwischen zurückgegeben oder entsperrt"
    if letter.kind not in PASSWORD_LETTERS:
        return None
    assert letter.user is not None  # noqa: S101 - a CHECK constraint guarantees it
    user = user_status(letter.user, start_of_day(today), quarters)
    if user.state in (State.LOCKED, State.REVOKED):
        return f"Benutzer ist gesperrt: {user.reason}"
    if letter.practice_id not in key_out:
        return "Begleitschreiben mit dem Yubikey noch nicht versandt (§ 3.2)"
    sent = key_out[letter.practice_id]
    if sent is not None and today < add_working_days(sent, delay_days):
        ready = add_working_days(sent, delay_days)
        return f"zeitversetzter Versand: frühestens am {ready:%d.%m.%Y} (§ 3.2)"
    return None


# --- producing a run ---------------------------------------------------------------------


def templates_for(settings: Settings) -> render.LetterTemplates:
    return render.load_templates(settings.letters.directory or render.default_letters_dir())


@dataclass(frozen=True)
class ProducedRun:
    run: MailRun
    letters: int
    plain_pages: int  # printed first, on the association's letter paper
    security_pages: int  # then the password letters, on security paper (§ 3.2)


def produce_run(
    session: Session,
    *,
    today: date,
    out: BinaryIO,
    templates: render.LetterTemplates,
    settings: Settings,
    actor: Actor,
    now: datetime,
    progress: Callable[[int], None] | None = None,
    on_due: Callable[[int], None] | None = None,
) -> ProducedRun | None:
    """Print every due letter into ``out`` as one PDF; None if nothing is due (or another
    run took the letters meanwhile). ``on_due(count)`` learns how many letters are due
    before any is printed (a progress bar's length; it may raise to stop the run).

    In three steps, so that no lock is held while passwords are hashed and the PDF is
    laid out (logins and other writers would wait, on SQLite for the whole file): the
    due letters are read and ``session`` is committed (nothing is written yet); then
    the passwords are hashed on every core while the PDF is rendered; then the run is
    written in the caller's transaction, set-based, if the letters are still due and no
    other run holds them. If rendering fails, or the letters changed meanwhile, the
    caller rolls back: no password was changed. The caller must not keep the PDF
    beyond handing it out.

    The hashing processes start before the letters are read, so that they are ready
    (imported) when the first password is: the pool never waits for this process. The
    read is a read on SQLite too (no write lock while the pool starts and the letters
    are read: logins on the same file would wait for it).
    """
    begin_reading(session)
    with Hasher(_password_letters_listed(session)) as hasher:
        due = due_letters(
            session,
            today=today,
            delay_days=settings.letters.credentials_delay_days,
            quarters=settings.lock_after_quarters,
        ).due
        if on_due is not None:
            on_due(len(due))
        if not due:
            return None
        wanted = [letter.id for letter in due if letter.kind in PASSWORD_LETTERS]
        clear = {id_: passwords.generate() for id_ in wanted}
        pending = hasher.hash_all(list(clear.values()))
        data = [letter_data(letter, today, clear.get(letter.id), settings, now) for letter in due]
        session.commit()  # only read so far: no lock is held while hashing and rendering
        pages = render.render(data, out, templates=templates, progress=progress)
        hashes = dict(zip(clear, pending.result(), strict=True))
        del data, clear
    run = _write_run(session, due, hashes, actor=actor, now=now, today=today)
    if run is None:
        return None
    kinds = [letter.kind for letter in due]
    security = sum(n for n, kind in zip(pages, kinds, strict=True) if kind in SECURITY_PAPER)
    return ProducedRun(run, len(due), sum(pages) - security, security)


def _password_letters_listed(session: Session) -> int:
    """How many password letters are on the list, due or waiting: at least as many
    passwords as the run will hash (one count, before the rules are read)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Letter)
            .where(Letter.status == LetterStatus.DUE, Letter.kind.in_(PASSWORD_LETTERS))
        )
        or 0
    )


def _write_run(
    session: Session,
    due: Sequence[Letter],
    hashes: dict[int, str],
    *,
    actor: Actor,
    now: datetime,
    today: date,
) -> MailRun | None:
    """The run, its letters, the passwords and the audit entries, set-based: the
    caller's transaction holds its locks for a moment, not for the whole run."""
    ids = [letter.id for letter in due]
    claimed = _claim(session, ids, skip_locked=True)
    if claimed and len(claimed) != len(ids):
        # Some were locked: by a login or staff touching a letter for a moment (wait for
        # it), or by another run (then, once it commits, they no longer match).
        claimed |= _claim(session, sorted(set(ids) - claimed), skip_locked=False)
    if not claimed:
        return None  # another run holds or has printed them
    if len(claimed) != len(ids):
        raise ConflictError(
            "Während der Lauf entstand, hat sich an den fälligen Briefen etwas geändert; "
            "bitte den Lauf noch einmal erstellen"
        )
    run = MailRun(
        status=MailRunStatus.PRODUCED, run_date=today, produced_at=now, produced_by=actor.name
    )
    session.add(run)
    session.flush()  # the run's number goes into the letters and its audit entry
    issued = _issue_passwords(session, due, hashes, now=now)
    printed = {"run_id": run.id, "status": LetterStatus.PRINTED, "printed_at": now}
    plain = [{"id": id_, **printed} for id_ in ids if id_ not in hashes]
    with_password = [
        {"id": id_, **printed, "replace_at_once": at_once, "issued_password_hash": hashes[id_]}
        for id_, at_once in issued.items()
    ]
    for rows in (plain, with_password):
        if rows:
            session.execute(update(Letter), rows)
    changed = ["run_id", "status", "printed_at", "replace_at_once", "issued_password_hash"]
    expire_loaded(session, Letter, ids, changed)
    entries = [
        audit.Pending(
            AuditTag.USER_PASSWORD_ISSUE,
            Subject("user", letter.user.username),
            {
                "letter": reference(letter),
                "replaces": "at_once" if issued[letter.id] else "on_first_use",
            },
        )
        for letter in due
        if letter.id in issued and letter.user is not None
    ]
    counts = Counter(letter.kind.value for letter in due)
    entries.append(
        audit.Pending(
            AuditTag.MAIL_RUN_PRODUCE,
            Subject("mail_run", str(run.id)),
            {"letters": len(ids), "by_kind": dict(counts)},
        )
    )
    audit.record_many(session, entries, actor=actor, now=now)
    return run


def _claim(session: Session, ids: list[int], *, skip_locked: bool) -> set[int]:
    """Those of ``ids`` still due and in no run, locked for this transaction (PostgreSQL;
    SQLite's write lock covers the file). ``skip_locked``: rows another transaction
    holds are left out instead of waited for."""
    return {
        id_
        for chunk in chunked(sorted(ids))
        for id_ in session.scalars(
            select(Letter.id)
            .where(Letter.id.in_(chunk), Letter.status == LetterStatus.DUE, Letter.run_id.is_(None))
            .with_for_update(skip_locked=skip_locked)
        )
    }


_ISSUED = [
    "password_hash",
    "password_set_at",
    "password_must_change",
    "taken_over_password",
    "next_password_hash",
    "next_password_set_at",
    "session_epoch",
]


def _issue_passwords(
    session: Session, due: Sequence[Letter], hashes: dict[int, str], *, now: datetime
) -> dict[int, bool]:
    """``users.issue_password`` for every password letter, set-based, against the users'
    rows as they are now (read again, locked); letter id -> replaced at once."""
    letters = [letter for letter in due if letter.id in hashes]
    user_ids = sorted({letter.user_id for letter in letters if letter.user_id is not None})
    current: dict[int, str | None] = {
        id_: password_hash
        for chunk in chunked(user_ids)
        for id_, password_hash in session.execute(
            select(User.id, User.password_hash).where(User.id.in_(chunk)).with_for_update()
        )
    }
    issued: dict[int, bool] = {}
    at_once_rows: list[dict[str, object]] = []
    later_rows: list[dict[str, object]] = []
    for letter in letters:
        if letter.user_id is None:  # CHECK password_letter_has_user: never
            raise ValueError(f"password letter {reference(letter)} without a user")
        # Recorded on the letter, so that cancelling its run revokes exactly this password.
        at_once = bool(letter.replace_at_once or current[letter.user_id] is None)
        issued[letter.id] = at_once
        if at_once:
            current[letter.user_id] = hashes[letter.id]
        row = {"user_id": letter.user_id, "issued_hash": hashes[letter.id]}
        (at_once_rows if at_once else later_rows).append(row)
    table = User.metadata.tables[User.__tablename__]
    if at_once_rows:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("user_id"))
            .values(
                password_hash=bindparam("issued_hash"),
                password_set_at=now,
                password_must_change=True,
                taken_over_password=None,
                next_password_hash=None,
                next_password_set_at=None,
                session_epoch=func.coalesce(table.c.session_epoch, 0) + 1,
            ),
            at_once_rows,
        )
    if later_rows:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("user_id"))
            .values(next_password_hash=bindparam("issued_hash"), next_password_set_at=now),
            later_rows,
        )
    expire_loaded(session, User, user_ids, _ISSUED)
    return issued


def _apply_password(
    session: Session,
    letter: Letter,
    password_hash: str,
    *,
    actor: Actor,
    now: datetime,
    at_once: bool = False,
) -> None:
    user = letter.user
    assert user is not None  # noqa: S101 - a CHECK constraint guarantees it
    # Recorded on the letter, so that cancelling its run revokes exactly this password.
    letter.replace_at_once = bool(at_once or letter.replace_at_once or user.password_hash is None)
    letter.issued_password_hash = password_hash
    users.issue_password(session, user, password_hash, now=now, at_once=letter.replace_at_once)
    audit.record(
        session,
        AuditTag.USER_PASSWORD_ISSUE,
        actor=actor,
        subject=Subject("user", user.username),
        data={
            "letter": reference(letter),
            "replaces": "at_once" if letter.replace_at_once else "on_first_use",
        },
        now=now,
    )


# --- after production --------------------------------------------------------------------


def confirm_dispatch(
    session: Session, *, run_id: int, dispatched_on: date, today: date, actor: Actor, now: datetime
) -> MailRun:
    """Staff confirm that the run went to the post: this starts the § 3.2 delay clock."""
    run = _open_run(session, run_id)
    if dispatched_on > today:
        raise ValidationError("Das Versanddatum liegt in der Zukunft")
    if dispatched_on < run.run_date:
        raise ValidationError(f"Der Lauf wurde erst am {run.run_date:%d.%m.%Y} erstellt")
    run.status = MailRunStatus.DISPATCHED
    run.dispatched_on = dispatched_on
    run.closed_by, run.closed_at = actor.name, now
    for letter in run.letters:
        letter.status = LetterStatus.DISPATCHED
        if letter.kind is LetterKind.KEY and letter.token is not None:
            _ship(session, letter.token, actor=actor, now=now)
    audit.record(
        session,
        AuditTag.MAIL_RUN_DISPATCH,
        actor=actor,
        subject=Subject("mail_run", str(run.id)),
        data={"dispatched_on": dispatched_on.isoformat(), "letters": len(run.letters)},
        now=now,
    )
    return run


def _ship(session: Session, token: Token, *, actor: Actor, now: datetime) -> None:
    if token.status is not TokenStatus.ASSIGNED:
        return  # already in use, or locked meanwhile: the status says more than "shipped"
    token.status = TokenStatus.SHIPPED
    audit.record(
        session, AuditTag.TOKEN_SHIP, actor=actor, subject=Subject("token", token.serial), now=now
    )


def cancel_run(session: Session, *, run_id: int, actor: Actor, now: datetime) -> MailRun:
    """Throw away a produced run: its passwords stop working, its letters are due again.

    A run cancelled by an earlier version may still hold letters (that version skipped
    every second one): cancelling it again finishes the job.
    """
    run = _open_run(session, run_id, unfinished_cancel=True)
    run.status = MailRunStatus.CANCELLED
    run.closed_by, run.closed_at = actor.name, now
    returned = 0
    # A copy: taking a letter out of the run (``letter.run = None``) removes it from
    # ``run.letters`` at once, and a loop over the live list would skip its successor.
    for letter in list(run.letters):
        if letter.kind in PASSWORD_LETTERS and letter.user is not None:
            users.revoke_issued_password(
                session, letter.user, password_hash=letter.issued_password_hash
            )
            audit.record(
                session,
                AuditTag.USER_PASSWORD_REVOKE,
                actor=actor,
                subject=Subject("user", letter.user.username),
                data={"letter": reference(letter), "mail_run": run.id},
                now=now,
            )
        letter.status = LetterStatus.DUE
        letter.run = None
        letter.printed_at = None
        returned += 1
    audit.record(
        session,
        AuditTag.MAIL_RUN_CANCEL,
        actor=actor,
        subject=Subject("mail_run", str(run.id)),
        data={"letters": returned},
        now=now,
    )
    return run


_RUN_CLOSED = {MailRunStatus.DISPATCHED: "versandt", MailRunStatus.CANCELLED: "storniert"}


def _open_run(session: Session, run_id: int, *, unfinished_cancel: bool = False) -> MailRun:
    """The run, locked for this transaction: of two confirmations (or a confirmation and
    a cancel) at once, the second sees the first one's result. ``unfinished_cancel`` also
    admits a cancelled run that still holds letters (see :func:`cancel_run`)."""
    run = session.get(MailRun, run_id, with_for_update=True, populate_existing=True)
    if run is None:
        raise NotFoundError(f"Keinen Versandlauf {run_id}")
    left_behind = run.status is MailRunStatus.CANCELLED and bool(run.letters)
    if run.status is not MailRunStatus.PRODUCED and not (unfinished_cancel and left_behind):
        raise ConflictError(
            f"Versandlauf {run.id} ist bereits abgeschlossen ({_RUN_CLOSED[run.status]})"
        )
    return run


def reprint(
    session: Session,
    *,
    letter_id: int,
    out: BinaryIO,
    templates: render.LetterTemplates,
    settings: Settings,
    today: date,
    actor: Actor,
    now: datetime,
) -> Letter:
    """Print a letter again; a password letter gets a new password and the old one dies."""
    letter = session.get(Letter, letter_id)
    if letter is None:
        raise NotFoundError(f"Keinen Brief FN-{letter_id:06d}")
    if letter.status not in (LetterStatus.PRINTED, LetterStatus.DISPATCHED):
        raise ConflictError(f"Brief {reference(letter)} wurde noch nicht gedruckt")
    refused = _reprint_refused(letter, today, settings.lock_after_quarters)
    if refused is not None:
        raise ConflictError(f"Brief {reference(letter)} wird nicht erneut gedruckt: {refused}")
    password = None
    if letter.kind in PASSWORD_LETTERS:
        assert letter.user is not None  # noqa: S101
        password = passwords.generate()
        hashed = passwords.hash_password(password)
        _apply_password(session, letter, hashed, actor=actor, now=now, at_once=True)
    render.render([letter_data(letter, today, password, settings, now)], out, templates=templates)
    audit.record(
        session,
        AuditTag.LETTER_REPRINT,
        actor=actor,
        subject=Subject("practice", letter.practice.bsnr),
        data={"letter": reference(letter), "kind": letter.kind.value},
        now=now,
    )
    return letter
