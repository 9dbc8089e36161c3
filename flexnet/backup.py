"""Backup and restore of the embedded SQLite database, with the security state carried over.

A backup is SQLite's online backup API: a consistent copy taken while RADIUS and the web
app keep serving. A restore puts an older copy back. What the database knew since then
would be lost, and some of it must not be: OTP counters that moved on (else an OTP used
after the backup is accepted a second time), locks and revocations (else a lost key works
again), password and key changes (else a leaked old password or NAS secret works again;
after a master key rotation the backup's sealed secrets would not even open). The restore
reads these from the database it replaces and applies them to the restored one; a safety
copy of the replaced database stays next to it, so nothing is lost.

PostgreSQL is backed up with pg_dump and restored with pg_restore into a new database
(README, "Backup and restore"); ``flexnet db carry-state`` then brings the same state
over from the database it replaces (:func:`carry_between`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from flexnet import audit, migrate
from flexnet.audit import Actor, AuditTag
from flexnet.db import Database
from flexnet.errors import ConflictError, ValidationError
from flexnet.models import (
    ApiClient,
    AuditEntry,
    LockException,
    NasClient,
    Practice,
    PracticeStatus,
    StaffAccount,
    StaffSession,
    Token,
    TokenStatus,
    User,
    UserStatus,
    WsapiClient,
)

log = logging.getLogger(__name__)

PG_HINT = (
    "PostgreSQL wird mit pg_dump/pg_restore gesichert und wiederhergestellt "
    "(README, Abschnitt 'Backup and restore')"
)
_USABLE_TOKEN = frozenset({TokenStatus.ASSIGNED, TokenStatus.SHIPPED, TokenStatus.ACTIVE})
_LOCK_FIELDS = ("status", "lock_cause", "lock_reason", "locked_at")
_YUBICO_REPLAY = (
    "otp_usage_counter",
    "otp_session_counter",
    "otp_timestamp",
    "last_used_at",
    "wsapi_last_nonce",
)
_USER_PASSWORD = (
    "password_hash",
    "password_set_at",
    "password_must_change",
    "next_password_hash",
    "next_password_set_at",
)
_OATH_REPLAY = ("hotp_counter", "totp_last_step")
_PRACTICE_DATES = (
    "activity_ended_on",
    "terminated_by",
    "termination_notice_on",
    "access_ends_on",
    "termination_reason",
)
_STAFF_PASSWORD = ("password_hash", "password_changed_at", "must_change_password")
_STAFF_FACTOR = ("totp_secret", "totp_enrolled_at", "totp_last_step")


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    size: int
    revision: str


@dataclass
class CarriedState:
    """How many rows of each kind took over state from the replaced database."""

    counters: int = 0  # keys whose OTP counters had moved on
    locks: int = 0  # keys, users, practices and clients locked or deactivated since
    credentials: int = 0  # passwords, second factors, API keys and roles changed since
    failures: int = 0  # users whose failure count or temporary lock had grown
    missing: list[str] = field(default_factory=list)  # keys unknown to the backup

    def as_audit_data(self) -> dict[str, Any]:
        return {
            "counters": self.counters,
            "locks": self.locks,
            "credentials": self.credentials,
            "failures": self.failures,
            "keys_not_in_backup": len(self.missing),
        }


@dataclass(frozen=True)
class RestoreReport:
    backup: BackupInfo
    safety_copy: Path | None
    carried: CarriedState | None  # None: restored without the replaced database's state


def sqlite_file(url: URL | str) -> Path:
    """The database file behind a SQLite URL; PostgreSQL has its own tools."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise ValidationError(f"flexnet backup/restore gilt nur für SQLite. {PG_HINT}.")
    if not parsed.database or parsed.database == ":memory:":
        raise ValidationError("Eine SQLite-Datenbank im Speicher lässt sich nicht sichern")
    return Path(parsed.database)


def backup(url: URL | str, destination: Path) -> BackupInfo:
    """Copy the live database to ``destination`` (a new file), online and consistent."""
    source = sqlite_file(url)
    if not source.exists():
        raise ValidationError(f"Datenbankdatei {source} fehlt")
    if destination.exists():
        raise ConflictError(f"{destination} existiert schon; bitte einen neuen Namen wählen")
    partial = destination.with_name(destination.name + ".part")
    try:
        _copy(source, partial)
        revision = check_backup(partial)
        os.replace(partial, destination)
        _fsync(destination.parent)
    finally:
        for leftover in (partial, *_sidecars(partial)):
            leftover.unlink(missing_ok=True)
    info = BackupInfo(destination, destination.stat().st_size, revision)
    log.info("backup of %s written to %s (%d bytes)", source, destination, info.size)
    return info


def check_backup(path: Path) -> str:
    """The schema revision of a readable, intact flexnet database file."""
    if not path.is_file():
        raise ValidationError(f"Sicherung {path} fehlt")
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
            integrity = connection.execute("PRAGMA integrity_check").fetchone()
            revisions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.DatabaseError as error:
        raise ValidationError(f"{path} ist keine lesbare flexnet-Datenbank ({error})") from None
    if integrity is None or integrity[0] != "ok":
        raise ValidationError(f"{path} ist beschädigt (integrity_check: {integrity})")
    if len(revisions) != 1:
        raise ValidationError(f"{path} hat keinen eindeutigen Schemastand")
    revision = str(revisions[0][0])
    if not migrate.is_known(revision):
        raise ValidationError(f"{path} stammt von einer neueren flexnet-Version ({revision})")
    return revision


def restore(
    url: URL | str,
    source: Path,
    *,
    actor: Actor,
    now: datetime,
    discard_live_state: bool = False,
) -> RestoreReport:
    """Put the backup ``source`` in place of the live database.

    The restored database is prepared beside the live one (migrated, the live one's
    security state carried in, the restore audited) and copied over it in one step, so
    a failure on the way leaves the live database as it was. A safety copy of the live
    database stays next to it. ``discard_live_state`` is for a live database that is gone
    or unreadable: an OTP used after the backup could then be accepted again until the
    key is next used, and the caller must say so.
    """
    live = sqlite_file(url)
    info = BackupInfo(source, source.stat().st_size, check_backup(source))
    if not live.exists() and not discard_live_state:
        raise ValidationError(
            f"{live} fehlt: ohne sie lassen sich Zählerstände und Sperren seit der Sicherung "
            "nicht übernehmen. Bewusst ohne: --discard-live-state"
        )
    staging = live.with_name(f"{live.name}.wiederherstellung.part")
    safety_copy: Path | None = None
    carried: CarriedState | None = None
    watch = _WriteWatch(live) if live.exists() else None
    try:
        _copy(source, staging)
        _upgrade(staging)
        if live.exists():
            safety_copy = live.with_name(
                f"{live.name}.vor-wiederherstellung-{now:%Y%m%dT%H%M%S.%f}Z"
            )
            if safety_copy.exists():
                raise ConflictError(f"{safety_copy} existiert schon; bitte gleich noch einmal")
            _copy(live, safety_copy)
        if safety_copy is not None and not discard_live_state:
            carried = carry_between(_sqlite_url(safety_copy), _sqlite_url(staging))
        record_restore(
            _sqlite_url(staging),
            carried,
            actor=actor,
            now=now,
            backup=source.name,
            revision=info.revision,
            safety_copy=safety_copy.name if safety_copy else None,
        )
        if watch is not None:
            watch.refuse_if_written()
        _copy(staging, live)
    finally:
        if watch is not None:
            watch.close()
        for leftover in (staging, *_sidecars(staging)):
            leftover.unlink(missing_ok=True)
    log.warning("database %s restored from %s", live, source)
    return RestoreReport(info, safety_copy, carried)


def carry_security_state(replaced: Session, restored: Session) -> CarriedState:
    """Bring over what the replaced database knows that must survive a restore.

    The replaced database must be the later one (the restored one an earlier state of
    it): then whatever differs is newer there, and it wins.
    """
    _refuse_unless_ancestor(replaced, restored)
    carried = CarriedState()
    _carry_tokens(replaced, restored, carried)
    _carry_users(replaced, restored, carried)
    _carry_practices(replaced, restored, carried)
    _carry_exceptions(replaced, restored, carried)
    _carry_staff(replaced, restored, carried)
    _carry_clients(replaced, restored, carried)
    # Staff sign in again: a session ended since the backup must not come back.
    restored.execute(delete(StaffSession))
    return carried


def _refuse_unless_ancestor(replaced: Session, restored: Session) -> None:
    """The restored database's last audit entry must be in the replaced one's chain: a
    backup newer than the database it replaces (or another instance's) would carry
    older secrets and passwords over newer ones."""
    head = restored.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))
    if head is None:
        return
    if replaced.scalar(select(AuditEntry.id).where(AuditEntry.hash == head)) is None:
        raise ValidationError(
            "Die Sicherung ist kein früherer Stand der ersetzten Datenbank (ihr letzter "
            "Revisionseintrag fehlt dort): nichts übernommen"
        )


# --- carrying state over ---------------------------------------------------------------

_Row = TypeVar("_Row")


def _pairs(
    replaced: Session, restored: Session, model: type[_Row], key: str
) -> Iterable[tuple[_Row, _Row]]:
    """(replaced row, restored row) for every row both databases have, matched by ``key``."""
    restored_rows = {getattr(row, key): row for row in restored.scalars(select(model))}
    for row in replaced.scalars(select(model)):
        match = restored_rows.get(getattr(row, key))
        if match is not None:
            yield row, match


def _copy_fields(source: object, target: object, names: Sequence[str]) -> None:
    for name in names:
        setattr(target, name, getattr(source, name))


def _newer(later: datetime | None, earlier: datetime | None) -> bool:
    return later is not None and (earlier is None or later > earlier)


def _carry_tokens(replaced: Session, restored: Session, carried: CarriedState) -> None:
    restored_serials = set(restored.scalars(select(Token.serial)))
    carried.missing = sorted(set(replaced.scalars(select(Token.serial))) - restored_serials)
    for live, old in _pairs(replaced, restored, Token, "serial"):
        if (live.public_id, live.secret) != (old.public_id, old.secret):
            # Reprogrammed (or a master key rotated) since the backup: the counters belong
            # to the new secret, so they go with it rather than as a maximum.
            _copy_fields(live, old, ("public_id", "secret", *_YUBICO_REPLAY, *_OATH_REPLAY))
            carried.credentials += 1
        elif _carry_counters(live, old):
            carried.counters += 1
        if old.status in _USABLE_TOKEN and live.status not in _USABLE_TOKEN:
            _copy_fields(live, old, _LOCK_FIELDS)
            carried.locks += 1


def _carry_counters(live: Token, old: Token) -> bool:
    """The later of each replay state; True if any moved."""
    moved = False
    if (live.otp_usage_counter, live.otp_session_counter) > (
        old.otp_usage_counter,
        old.otp_session_counter,
    ):
        _copy_fields(live, old, _YUBICO_REPLAY)
        moved = True
    if live.hotp_counter > old.hotp_counter:
        old.hotp_counter = live.hotp_counter
        moved = True
    if (live.totp_last_step or -1) > (old.totp_last_step or -1):
        old.totp_last_step = live.totp_last_step
        moved = True
    return moved


def _carry_users(replaced: Session, restored: Session, carried: CarriedState) -> None:
    for live, old in _pairs(replaced, restored, User, "username"):
        ended = {UserStatus.LOCKED, UserStatus.REVOKED}
        if live.status in ended and old.status not in ended:
            _copy_fields(live, old, _LOCK_FIELDS)
            carried.locks += 1
        if _differ(live, old, ("activity_ended_on",)):
            old.activity_ended_on = live.activity_ended_on
            carried.locks += 1
        if _differ(live, old, _USER_PASSWORD):  # changed, re-issued or revoked since
            _copy_fields(live, old, _USER_PASSWORD)
            carried.credentials += 1
        if live.failed_logins > old.failed_logins or _newer(
            live.throttled_until, old.throttled_until
        ):
            old.failed_logins = max(live.failed_logins, old.failed_logins)
            old.last_failed_at = live.last_failed_at
            old.throttled_until = live.throttled_until
            carried.failures += 1
        # Self-service sessions of either database end.
        old.session_epoch = max(live.session_epoch, old.session_epoch) + 1


def _carry_practices(replaced: Session, restored: Session, carried: CarriedState) -> None:
    """Locks, and the dates the § 10.2/§ 10.3 locks follow from (activity end, termination)."""
    for live, old in _pairs(replaced, restored, Practice, "bsnr"):
        if live.status is PracticeStatus.LOCKED and old.status is not PracticeStatus.LOCKED:
            _copy_fields(live, old, _LOCK_FIELDS)
            carried.locks += 1
        if _differ(live, old, _PRACTICE_DATES):
            _copy_fields(live, old, _PRACTICE_DATES)
            carried.locks += 1


def _carry_exceptions(replaced: Session, restored: Session, carried: CarriedState) -> None:
    """An exception from the automatic lock that was ended or shortened since the backup
    must not come back (one granted since is not added: it lifts, it does not lock)."""
    current = {_exception_subject(e): e for e in replaced.scalars(select(LockException))}
    for kept in restored.scalars(select(LockException)):
        live = current.get(_exception_subject(kept))
        if live is None:
            restored.delete(kept)
            carried.locks += 1
        elif live.until < kept.until:
            _copy_fields(live, kept, ("until", "reason", "decision_ref", "decided_by"))
            carried.locks += 1


def _exception_subject(exception: LockException) -> tuple[str, str]:
    if exception.practice is not None:
        return "practice", exception.practice.bsnr
    assert exception.user is not None  # noqa: S101 - CHECK exactly_one_subject
    return "user", exception.user.username


def _differ(live: object, old: object, names: Sequence[str]) -> bool:
    return any(getattr(live, name) != getattr(old, name) for name in names)


def _carry_staff(replaced: Session, restored: Session, carried: CarriedState) -> None:
    for live, old in _pairs(replaced, restored, StaffAccount, "username"):
        if old.active and not live.active:
            old.active = False
            old.deactivated_at = live.deactivated_at
            carried.locks += 1
        if live.role != old.role:  # a demotion since the backup must hold
            old.role = live.role
            carried.credentials += 1
        if _newer(live.password_changed_at, old.password_changed_at):
            _copy_fields(live, old, _STAFF_PASSWORD)
            carried.credentials += 1
        if live.totp_enrolled_at != old.totp_enrolled_at:
            _copy_fields(live, old, _STAFF_FACTOR)  # reset or enrolled anew since
            carried.credentials += 1
        else:
            carried.credentials += _carry_sealed(live, old, "totp_secret")
            if (live.totp_last_step or -1) > (old.totp_last_step or -1):
                old.totp_last_step = live.totp_last_step


def _carry_sealed(live: object, old: object, name: str) -> bool:
    """A secret sealed under the master key: the replaced database holds the current one
    (a new NAS secret or wsapi key, a key re-imported with new secrets, a master key
    rotated since the backup). True if it differed and was carried over."""
    if getattr(live, name) == getattr(old, name):
        return False
    setattr(old, name, getattr(live, name))
    return True


def _carry_clients(replaced: Session, restored: Session, carried: CarriedState) -> None:
    for live_nas, old_nas in _pairs(replaced, restored, NasClient, "name"):
        carried.credentials += _carry_sealed(live_nas, old_nas, "secret")
    for live_wsapi, old_wsapi in _pairs(replaced, restored, WsapiClient, "name"):
        carried.credentials += _carry_sealed(live_wsapi, old_wsapi, "api_key")
    for live, old in _pairs(replaced, restored, ApiClient, "name"):
        if _newer(live.key_changed_at, old.key_changed_at):
            _copy_fields(live, old, ("key_prefix", "key_hash", "key_changed_at"))
            carried.credentials += 1
        if live.role != old.role:
            old.role = live.role
            carried.credentials += 1
    clients: tuple[type[Any], ...] = (ApiClient, WsapiClient, NasClient)
    for model in clients:
        for client, restored_client in _pairs(replaced, restored, model, "name"):
            if restored_client.active and not client.active:
                restored_client.active = False
                carried.locks += 1


# --- files -------------------------------------------------------------------------------


def _copy(source: Path, destination: Path) -> None:
    """SQLite's backup API: a consistent copy even while others write to ``source``.

    A new file is created readable by its owner only before a byte is written to it: it
    holds password hashes and the encrypted key secrets."""
    if not destination.exists():
        os.close(os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        with (
            closing(sqlite3.connect(source)) as reader,
            closing(sqlite3.connect(destination)) as writer,
        ):
            reader.backup(writer)
    except sqlite3.DatabaseError as error:
        raise ConflictError(
            f"Kopieren von {source} nach {destination} fehlgeschlagen: {error}"
        ) from None
    _fsync(destination)


class _WriteWatch:
    """Notices whether anyone commits to the live database while a restore prepares: a
    login then would be lost with the restore, and its OTP accepted a second time."""

    def __init__(self, live: Path) -> None:
        self._connection = sqlite3.connect(f"file:{live}?mode=ro", uri=True)
        self._version = self._data_version()

    def _data_version(self) -> int:
        return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    def refuse_if_written(self) -> None:
        if self._data_version() != self._version:
            raise ConflictError(
                "Die Datenbank wurde während der Wiederherstellung geändert: RADIUS-Server und "
                "Web-Anwendung anhalten und noch einmal wiederherstellen; nichts ersetzt"
            )

    def close(self) -> None:
        self._connection.close()


def _fsync(path: Path) -> None:
    """Flush a file (or a directory's entries) to the disk before we report success."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sidecars(path: Path) -> tuple[Path, Path]:
    """SQLite's write-ahead log and shared-memory files beside a database file."""
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _sqlite_url(path: Path) -> URL:
    return URL.create("sqlite+pysqlite", database=str(path))


def _upgrade(path: Path) -> None:
    database = Database.from_url(_sqlite_url(path))
    try:
        migrate.upgrade(database.engine)
    finally:
        database.dispose()


def carry_between(replaced_url: URL | str, restored_url: URL | str) -> CarriedState:
    """:func:`carry_security_state` from one database to another (both at the schema head)."""
    replaced = Database.from_url(replaced_url)
    restored = Database.from_url(restored_url)
    try:
        with replaced.reader() as old_side, restored.session() as new_side:
            return carry_security_state(old_side, new_side)
    finally:
        replaced.dispose()
        restored.dispose()


def record_restore(
    url: URL | str,
    carried: CarriedState | None,
    *,
    actor: Actor,
    now: datetime,
    **details: str | None,
) -> None:
    """The restore's entry in the restored database's own audit trail."""
    database = Database.from_url(url)
    try:
        with database.session() as session:
            audit.record(
                session,
                AuditTag.DATABASE_RESTORE,
                actor=actor,
                data={**details, "carried": carried.as_audit_data() if carried else None},
                now=now,
            )
    finally:
        database.dispose()
