"""Shared fixtures: settings, real SQLite and PostgreSQL databases built by migrating.

Tests that take ``session`` run once on SQLite and once on a real PostgreSQL server
that this test session starts (pytest-postgresql with Debian's binaries). Each test
runs in a transaction that is rolled back, so tests are independent of order. The
migrations run once per backend: a test that commits gets a copy of a migrated
template (a copied file on SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL).
"""

from __future__ import annotations

import base64
import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import port_for
import pytest
from pytest_postgresql.executors import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session

from flexnet.accounts import practices, users
from flexnet.audit import Actor
from flexnet.auditformat import AuditKey
from flexnet.config import parse_audit_key, parse_master_key
from flexnet.db import AUDIT_KEY_INFO, make_engine
from flexnet.models import (
    LockCause,
    Practice,
    PracticeKind,
    TermsChannel,
    Token,
    TokenKind,
    TokenStatus,
    User,
    UserKind,
)
from flexnet.ops import migrate
from flexnet.otp.secrets import SecretBox, YubicoSecret, token_context
from tests.support.yubikeys import SimulatedKey

SUPPORT = Path(__file__).parent / "support"
TEST_SECRET_KEY = "test-secret-key-for-flexnet-tests-only-0123456789"
TEST_MASTER_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
TEST_AUDIT_KEY = base64.urlsafe_b64encode(bytes(range(100, 132))).decode()
AUDIT_KEY = AuditKey(parse_audit_key(TEST_AUDIT_KEY))
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
STAFF = Actor.staff("helpdesk-test")
BOX = SecretBox(parse_master_key(TEST_MASTER_KEY))


# --- settings -----------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A complete FLEXNET_* environment with an instance folder under tmp_path."""
    values = {
        "FLEXNET_INSTANCE": str(tmp_path / "instance"),
        "FLEXNET_SECRET_KEY": TEST_SECRET_KEY,
        "FLEXNET_MASTER_KEY": TEST_MASTER_KEY,
        "FLEXNET_AUDIT_KEY": TEST_AUDIT_KEY,
    }
    for name in list(os.environ):
        if name.startswith("FLEXNET_"):
            monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "instance").mkdir()
    return values


# --- PostgreSQL ---------------------------------------------------------------------


def debian_postgresql_tool(name: str) -> str:
    """A program of Debian's newest installed PostgreSQL (pg_ctl, pg_dump, pg_restore)."""
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4])
    )
    if not candidates:
        pytest.fail("PostgreSQL is not installed: run 'make test', which installs it")
    return candidates[-1]


@contextmanager
def postgresql_cluster(prefix: str = "flexnet-pg-") -> Iterator[PostgreSQLExecutor]:
    """A throw-away PostgreSQL cluster on a free port, owned by 'postgres' when run as root."""
    os.environ["FLEXNET_TEST_PG_CTL"] = debian_postgresql_tool("pg_ctl")
    base = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(base, user="postgres", group="postgres")
    executor = PostgreSQLExecutor(
        executable=str(SUPPORT / "pg_ctl_as_postgres"),
        host="127.0.0.1",
        port=port_for.select_random(),
        datadir=str(base / "data"),
        unixsocketdir=str(base),
        logfile=str(base / "postgresql.log"),
        startparams="-w",
        dbname="flexnet",
        user="postgres",
        # Durability is irrelevant for a throw-away test cluster, but benchmarks keep it.
        postgres_options=""
        if os.environ.get("FLEXNET_BENCH_DURABLE_PG")
        else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
    )
    executor.start()
    try:
        executor.wait_for_postgres()
        yield executor
    finally:
        if executor.running():
            executor.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgreSQLExecutor]:
    """The session's PostgreSQL: every test database lives on it."""
    with postgresql_cluster() as executor:
        yield executor


@pytest.fixture(scope="session")
def make_pg_database(
    postgresql_server: PostgreSQLExecutor,
) -> Iterator[Callable[..., URL]]:
    """Creates a database on the test server, empty or a copy of ``template``; all are
    dropped at the end."""
    janitors: list[DatabaseJanitor] = []

    def create(name: str, template: str | None = None) -> URL:
        janitor = DatabaseJanitor(
            user="postgres",
            host=postgresql_server.host,
            port=postgresql_server.port,
            dbname=name,
            template_dbname=template,
        )
        janitor.init()
        janitors.append(janitor)
        return URL.create(
            "postgresql+psycopg",
            username="postgres",
            host=postgresql_server.host,
            port=postgresql_server.port,
            database=name,
        )

    yield create
    for janitor in janitors:
        janitor.drop()


# --- migrated databases -------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file upgraded to head once; tests get copies of it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "flexnet.sqlite3"
    engine = make_engine(f"sqlite+pysqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> URL:
    """A fresh, migrated SQLite database of this test's own (for tests that commit)."""
    path = tmp_path / "flexnet.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return URL.create("sqlite+pysqlite", database=str(path))


@pytest.fixture(scope="session")
def pg_template(make_pg_database: Callable[..., URL]) -> str:
    """The name of a PostgreSQL database upgraded to head once; fresh databases are
    copies of it. Nothing stays connected to it: PostgreSQL copies only an idle one."""
    name = "flexnet_template"
    engine = make_engine(make_pg_database(name))
    migrate.upgrade(engine)
    engine.dispose()
    return name


_pg_counter = iter(range(1, 1_000_000))


@pytest.fixture
def pg_url(make_pg_database: Callable[..., URL], pg_template: str) -> URL:
    """A fresh, migrated PostgreSQL database of this test's own (for tests that commit)."""
    return make_pg_database(f"flexnet_t{next(_pg_counter)}", template=pg_template)


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Engine:
    path = tmp_path_factory.mktemp("sqlite-shared") / "flexnet.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return make_engine(f"sqlite+pysqlite:///{path}")


@pytest.fixture(scope="session")
def pg_engine(make_pg_database: Callable[..., URL], pg_template: str) -> Iterator[Engine]:
    engine = make_engine(make_pg_database("flexnet_shared", template=pg_template))
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The shared migrated engine of each backend."""
    result: Engine = request.getfixturevalue(
        f"{'pg' if request.param == 'postgresql' else 'sqlite'}_engine"
    )
    return result


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose commits are savepoints inside a transaction rolled back at the end;
    it carries the test audit key, as a process's sessions carry FLEXNET_AUDIT_KEY."""
    with engine.connect() as connection:
        transaction = connection.begin()
        db_session = Session(
            bind=connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
            info={AUDIT_KEY_INFO: AUDIT_KEY},
        )
        try:
            yield db_session
        finally:
            db_session.close()
            transaction.rollback()


# --- factories ----------------------------------------------------------------------


@pytest.fixture
def make_practice(session: Session) -> Callable[..., Practice]:
    counter = iter(range(1, 10_000))

    def create(
        *, terms: bool = True, kind: PracticeKind = PracticeKind.MEMBER, **fields: Any
    ) -> Practice:
        values: dict[str, Any] = {
            "bsnr": f"88{next(counter):07d}",
            "name": "Praxis Dr. Müller",
            "street": "Doctor-Eisenbart-Ring 2",
            "zip_code": "39120",
            "city": "Magdeburg",
        }
        values.update(fields)
        practice = practices.add_practice(session, kind=kind, actor=STAFF, now=NOW, **values)
        if terms:
            practices.accept_terms(
                session,
                bsnr=practice.bsnr,
                version="1.0",
                channel=TermsChannel.PAPER,
                accepted_on=date(2026, 11, 1),
                actor=STAFF,
                now=NOW,
            )
        return practice

    return create


@pytest.fixture
def make_user(session: Session, make_practice: Callable[..., Practice]) -> Callable[..., User]:
    counter = iter(range(1, 10_000))

    def create(
        *, practice: Practice | None = None, kind: UserKind = UserKind.STAFF, **fields: Any
    ) -> User:
        practice = practice or make_practice()
        values: dict[str, Any] = {"username": f"user{next(counter)}", "name": "Erika Muster"}
        if kind is UserKind.MEMBER:
            values["lanr"] = "123456601"
        values.update(fields)
        return users.create_user(
            session, bsnr=practice.bsnr, kind=kind, actor=STAFF, now=NOW, **values
        )

    return create


@pytest.fixture
def make_yubikey(
    session: Session, make_practice: Callable[..., Practice]
) -> Callable[..., tuple[Token, SimulatedKey]]:
    """A Yubico OTP token in the database and the simulated key that belongs to it."""
    counter = iter(range(1, 10_000))

    def create(
        *,
        status: TokenStatus = TokenStatus.ACTIVE,
        practice: Practice | None = None,
        key: SimulatedKey | None = None,
    ) -> tuple[Token, SimulatedKey]:
        key = key or SimulatedKey.random()
        serial = f"{9_000_000 + next(counter)}"
        secret = YubicoSecret(key.private_id, key.aes_key).to_bytes()
        token = Token(
            serial=serial,
            kind=TokenKind.YUBICO_OTP,
            public_id=key.public_id,
            secret=BOX.seal(secret, context=token_context(serial)),
            status=status,
            practice=None
            if status in (TokenStatus.STOCK, TokenStatus.RETIRED)
            else (practice or make_practice()),
            created_at=NOW,
        )
        if status is TokenStatus.LOCKED:
            token.lock_cause, token.lock_reason, token.locked_at = (
                LockCause.MANUAL,
                "gesperrt im Test",
                NOW,
            )
        session.add(token)
        session.flush()
        return token, key

    return create
