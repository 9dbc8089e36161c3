"""Backup and restore of the embedded SQLite database.

A backup is SQLite's online backup API: a consistent copy taken while RADIUS and the web
app keep serving. A restore puts an earlier copy back, and carries over from the
database it replaces what must outlive it (:mod:`flexnet.ops.carryover`); a safety copy of
the replaced database stays next to it, so nothing is lost.

PostgreSQL is backed up with pg_dump and restored with pg_restore into a new database
(README, "Backup and restore"); ``flexnet db carry-state`` then carries the same state
over from the database it replaces.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from flexnet.audit import Actor, AuditKey
from flexnet.db import Database
from flexnet.errors import ConflictError, ValidationError
from flexnet.ops import migrate
from flexnet.ops.carryover import CarriedState, carry_between, record_restore

log = logging.getLogger(__name__)

PG_HINT = (
    "PostgreSQL wird mit pg_dump/pg_restore gesichert und wiederhergestellt "
    "(README, Abschnitt 'Backup and restore')"
)


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    size: int
    revision: str


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
    audit_key: AuditKey | None,
    discard_live_state: bool = False,
) -> RestoreReport:
    """Put the backup ``source`` in place of the live database.

    The restored database is prepared beside the live one (migrated, the live one's
    security state carried in, the restore audited) and copied over it in one step, so
    a failure on the way leaves the live database as it was. A safety copy of the live
    database stays next to it. ``discard_live_state`` is for a live database that is gone
    or unreadable: an OTP used after the backup could then be accepted again until the
    key is next used, and the caller must say so. ``audit_key`` seals the restore's audit
    entry (and the entries of a backup from before the key while it is migrated).
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
        _upgrade(staging, audit_key)
        if live.exists():
            safety_copy = live.with_name(
                f"{live.name}.vor-wiederherstellung-{now:%Y%m%dT%H%M%S.%f}Z"
            )
            if safety_copy.exists():
                raise ConflictError(f"{safety_copy} existiert schon; bitte gleich noch einmal")
            _copy(live, safety_copy)
        details = {
            "backup": source.name,
            "revision": info.revision,
            "safety_copy": safety_copy.name if safety_copy else None,
        }
        if safety_copy is not None and not discard_live_state:
            carried = carry_between(
                _sqlite_url(safety_copy),
                _sqlite_url(staging),
                actor=actor,
                now=now,
                audit_key=audit_key,
                **details,
            )
        else:
            record_restore(
                _sqlite_url(staging), actor=actor, now=now, audit_key=audit_key, **details
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


def _upgrade(path: Path, audit_key: AuditKey | None) -> None:
    database = Database.from_url(_sqlite_url(path))
    try:
        migrate.upgrade(database.engine, audit_key=audit_key)
    finally:
        database.dispose()
