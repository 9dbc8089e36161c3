"""Engine, session factory and the declarative base shared by web, RADIUS and CLI.

Services take a ``Session`` and never commit; the edge (a CLI command, a web request,
one RADIUS packet) owns the unit of work through :meth:`Database.session`.
"""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    Dialect,
    MetaData,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.util import identity_key
from sqlalchemy.types import TypeDecorator

from flexnet.auditformat import AuditKey
from flexnet.writegate import WriteGate

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; pass an aware datetime (UTC)")
        value = value.astimezone(UTC)
        # SQLite has no time zone storage: keep UTC wall time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# Where a session carries its process's audit key (flexnet.audit seals entries with it).
AUDIT_KEY_INFO = "flexnet.audit_key"

# Ids per IN (...) list: well below SQLite's and PostgreSQL's parameter limits.
CHUNK = 1000


def among(session: Session, column: Any, ids: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN (ids)``; on PostgreSQL ``column = ANY(%(ids)s)``, one array parameter.

    An IN list of a thousand ids is a thousand parameters, and psycopg parses a statement
    that long anew each time: in the nightly job that cost more than the statements.
    """
    if session.get_bind().dialect.name == "postgresql":
        clause: ColumnElement[bool] = column == any_(
            bindparam(None, list(ids), type_=ARRAY(column.type))
        )
    else:
        clause = column.in_(ids)
    return clause


def begin_reading(session: Session) -> None:
    """Begin the session's next transaction as a read: on SQLite ``BEGIN DEFERRED``,
    which takes no write lock (a writer's transaction takes the whole file at BEGIN).
    For a read phase that the caller commits before it writes; a transaction already
    open stays as it is."""
    if not session.in_transaction():
        session.connection(execution_options={"flexnet_readonly": True})


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (each with the same keys) in their order: the ids follow it.

    On PostgreSQL one statement whatever the number of rows, an array per column
    (``unnest … WITH ORDINALITY``, ordered by it). executemany sends a statement per row
    through psycopg's pipeline, in Python: in the nightly job and under a flood of
    rejects that cost more than the database's own work. SQLite: executemany (in C).
    """
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    arrays = [
        bindparam(f"column_{n}", [row[name] for row in rows], type_=ARRAY(table.c[name].type))
        for n, name in enumerate(names)
    ]
    given = (
        func.unnest(*arrays)
        .table_valued(*names, with_ordinality="position")
        .render_derived(name="given")
    )
    ordered = select(*(given.c[name] for name in names)).order_by(given.c.position)
    session.execute(insert(table).from_select(names, ordered))


def chunked(ids: Sequence[int], size: int = CHUNK) -> Iterator[Sequence[int]]:
    """Slices of ``ids`` for statements that name them in an IN list."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def rows_for_update(
    session: Session, model: type[Any], label: Any, ids: Sequence[int], *where: Any
) -> list[tuple[int, str]]:
    """(id, label) of the rows among ``ids`` that match ``where``, locked FOR UPDATE in
    id order: of concurrent set-based changes each row is changed by exactly one."""
    return [
        (id_, text)
        for chunk in chunked(sorted(ids))
        for id_, text in session.execute(
            select(model.id, label)
            .where(among(session, model.id, chunk), *where)
            .order_by(model.id)
            .with_for_update()
        )
    ]


def update_by_id(
    session: Session, model: type[Any], values_by_id: Mapping[int, Mapping[str, Any]]
) -> None:
    """Set per-row values set-based: one UPDATE per distinct set of values (and per
    chunk of ids), not one per row. Loaded objects re-read the changed attributes."""
    groups: dict[tuple[tuple[str, Any], ...], list[int]] = defaultdict(list)
    for id_, values in values_by_id.items():
        groups[tuple(sorted(values.items()))].append(id_)
    for group, ids in groups.items():
        for chunk in chunked(sorted(ids)):
            session.execute(
                update(model).where(among(session, model.id, chunk)).values(dict(group)),
                execution_options={"synchronize_session": False},
            )
        expire_loaded(session, model, ids, [name for name, _ in group])


def expire_loaded(
    session: Session, model: type[Any], ids: Iterable[int], attributes: Sequence[str]
) -> None:
    """After a set-based UPDATE of ``attributes``: objects of these rows that are already
    loaded read them anew when next used (and only them: the id stays at hand)."""
    for id_ in ids:
        loaded = session.identity_map.get(identity_key(model, id_))
        if loaded is not None:
            session.expire(loaded, attributes)


# The database is away or refuses (down, restarting, disk full, read-only, timed out):
# retrying later can succeed. Other SQLAlchemy errors are programming errors.
UNAVAILABLE = (OperationalError, InterfaceError)


def describe_error(error: SQLAlchemyError) -> str:
    """The driver's own first line ("database or disk is full", "connection refused"):
    clear enough for a log line, without the statement or its parameters."""
    return str(getattr(error, "orig", None) or type(error).__name__).splitlines()[0]


def make_engine(url: URL | str, *, timeout_ms: int = 5000, **options: Any) -> Engine:
    """An engine with the per-backend settings flexnet relies on.

    ``timeout_ms`` bounds connecting, each statement and each lock wait on PostgreSQL,
    and the wait for SQLite's write lock (its busy timeout), so a slow, hung or busy
    database turns into an error (never an accept) instead of a request that waits
    forever. Migrations lift it for their own transaction.
    """
    if make_url(url).get_backend_name() == "postgresql":
        from flexnet import pgcursor  # psycopg only where PostgreSQL is used

        options.setdefault("connect_args", {}).update(
            connect_timeout=max(1, timeout_ms // 1000),
            options=f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}",
            cursor_factory=pgcursor.Cursor,
        )
    # No pre-ping: it costs a round trip per request. After a database restart the first
    # use of a stale connection fails (an error, never an accept) and SQLAlchemy then
    # drops the whole pool, so the next request connects afresh.
    # A failed statement's parameters (password hashes, counters, names) never reach an
    # exception message, and so never a log line.
    options.setdefault("hide_parameters", True)
    engine = create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, busy_timeout_ms=timeout_ms)
    return engine


def _configure_sqlite(engine: Engine, *, busy_timeout_ms: int) -> None:
    """Foreign keys on, WAL, a bounded wait for the write lock, and transactions that
    take the write lock at BEGIN.

    pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; SQLAlchemy's
    documented recipe is to switch it off and emit BEGIN ourselves. IMMEDIATE makes a
    read-then-write transaction (audit chain, counters) fail fast or wait on the busy
    timeout instead of failing at commit. Readers (``Database.reader``) begin DEFERRED
    and, in WAL mode, never wait for a writer. Writers of this process queue in a
    :class:`~flexnet.writegate.WriteGate` and take their turn in order; only then do they
    meet other processes' writers (:func:`_begin_immediate`). The two waits together last
    at most ``busy_timeout_ms``: the RADIUS server's is below the NAS's own timeout
    (``FLEXNET_RADIUS_DB_TIMEOUT_MS``), so a request it cannot decide in time is
    silence, and the NAS fails over.
    """
    gate = WriteGate()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("flexnet_readonly", False):
            connection.exec_driver_sql("BEGIN DEFERRED")
            return
        started = time.monotonic()
        if not gate.acquire(busy_timeout_ms / 1000):
            raise OperationalError(
                "BEGIN IMMEDIATE",
                None,
                sqlite3.OperationalError(
                    "database is locked (this process's writers before it took the whole"
                    " busy timeout)"
                ),
            )
        connection.info[_GATE_HELD] = True
        try:
            _begin_immediate(
                connection.connection.dbapi_connection,
                deadline=started + busy_timeout_ms / 1000,
                busy_timeout_ms=busy_timeout_ms,
            )
        except BaseException:
            connection.info.pop(_GATE_HELD, None)
            gate.release()
            raise

    # The next writer's turn comes after the COMMIT/ROLLBACK, not before it (SQLAlchemy
    # announces both before it runs them): this runs them on the driver's connection,
    # and SQLAlchemy's own call right after finds no transaction left and does nothing.
    # A failed COMMIT raises here, as SQLAlchemy's error for it: SQLite rolls a
    # transaction back by itself on some failures (disk full, I/O error), and the call
    # after this one would then find nothing to commit and report success.
    def _end_and_pass_turn(connection: Any, statement: str) -> None:
        if not connection.info.pop(_GATE_HELD, False):
            return
        try:
            connection.connection.dbapi_connection.execute(statement)
        except sqlite3.Error as error:
            if statement == "COMMIT":
                raise DBAPIError.instance(
                    statement, None, error, sqlite3.Error, hide_parameters=True
                ) from error
            # A failed ROLLBACK leaves nothing to keep: SQLAlchemy's own rolls back again.
        finally:
            gate.release()

    event.listen(engine, "commit", lambda connection: _end_and_pass_turn(connection, "COMMIT"))
    event.listen(engine, "rollback", lambda connection: _end_and_pass_turn(connection, "ROLLBACK"))

    @event.listens_for(engine, "reset")
    def _on_reset(_dbapi_connection: Any, record: Any, _state: Any) -> None:
        # A connection given back to the pool with its transaction still open (its
        # Connection was never closed) is rolled back here: its turn ends with it.
        if record.info.pop(_GATE_HELD, False):
            gate.release()


_GATE_HELD = "flexnet_write_gate_held"

# How often a writer looks again whether another process's writer has ended.
_LOOK_AGAIN_SECONDS = 0.002


def _begin_immediate(
    dbapi_connection: sqlite3.Connection, *, deadline: float, busy_timeout_ms: int
) -> None:
    """Take SQLite's write lock, looking again every 2 ms until ``deadline`` (monotonic).

    SQLite's own busy handler sleeps 1, 2, 5 … and then 100 ms between looks. Another
    process whose writers follow each other with a gap of a millisecond or two is then
    met holding the lock at nearly every look: web and RADIUS processes on one file
    waited up to 1.3 s, past the RADIUS server's bound of 1 s, for a lock that no writer
    held for more than 0.3 s (benchmarks/test_bench_sqlite_shared.py).
    The connection's busy timeout stays as configured for everything else (a reader can
    meet a short lock in WAL mode too); it is off only while this loop does the waiting.
    """
    dbapi_connection.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                left = deadline - time.monotonic()
                if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or left <= 0:
                    raise DBAPIError.instance(
                        "BEGIN IMMEDIATE", None, error, sqlite3.Error, hide_parameters=True
                    ) from error
            time.sleep(min(left, _LOOK_AGAIN_SECONDS))
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")


class Database:
    """One engine and its session factory for a process.

    ``audit_key`` (from ``FLEXNET_AUDIT_KEY``) travels
    with every session: audit entries are sealed with it and verified against it. A
    database opened without it writes unsealed entries, which a verification with the
    key reports.
    """

    def __init__(self, engine: Engine, *, audit_key: AuditKey | None = None) -> None:
        self.engine = engine
        info = {AUDIT_KEY_INFO: audit_key} if audit_key is not None else {}
        self.session_factory = sessionmaker(bind=engine, expire_on_commit=False, info=info)
        # Reads (shows, reports, verification) must not hold SQLite's write lock.
        self._reader_factory = sessionmaker(
            bind=engine.execution_options(flexnet_readonly=True),
            expire_on_commit=False,
            info=info,
        )

    @classmethod
    def from_url(
        cls, url: URL | str, *, timeout_ms: int = 5000, audit_key: AuditKey | None = None
    ) -> Database:
        return cls(make_engine(url, timeout_ms=timeout_ms), audit_key=audit_key)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any exception."""
        with self.session_factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def reader(self) -> Iterator[Session]:
        """A session for reading only: never committed; closing ends its transaction
        (and, unlike an explicit rollback, leaves what was read usable)."""
        with self._reader_factory() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
