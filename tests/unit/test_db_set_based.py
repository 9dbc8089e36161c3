"""The set-based helpers of ``flexnet.db``: ``among`` (an IN list on SQLite, one array
parameter on PostgreSQL) and ``insert_rows`` (one statement of arrays on PostgreSQL):
the same rows either way, in the same order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from flexnet.db import CHUNK, among, insert_rows, rows_for_update, update_by_id
from flexnet.models import AuthEvent, Practice, User
from tests.conftest import NOW


def test_among_finds_exactly_the_rows_named(
    session: Session, make_user: Callable[..., User]
) -> None:
    made = [make_user() for _ in range(5)]
    wanted = [made[0].id, made[3].id, 10**9]  # an id no row has changes nothing

    found = session.scalars(select(User.id).where(among(session, User.id, wanted))).all()

    assert sorted(found) == sorted([made[0].id, made[3].id])
    assert session.scalars(select(User.id).where(among(session, User.id, []))).all() == []


def test_a_chunk_of_ids_is_one_parameter_on_postgresql(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    practices = [make_practice() for _ in range(3)]
    ids = [practice.id for practice in practices] + list(range(10**8, 10**8 + CHUNK - 3))
    parameters: list[int] = []

    def count(_conn: object, _cursor: object, _sql: str, params: object, *_: object) -> None:
        parameters.append(len(params) if isinstance(params, dict | tuple | list) else 0)

    engine = session.get_bind().engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        locked = rows_for_update(session, Practice, Practice.bsnr, ids)
        update_by_id(session, Practice, {p.id: {"phone": "0391 12345"} for p in practices})
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert [id_ for id_, _ in locked] == sorted(p.id for p in practices)
    session.expire_all()
    assert {p.phone for p in practices} == {"0391 12345"}
    if session.get_bind().dialect.name == "postgresql":
        assert max(parameters) <= 2, parameters
    else:
        assert max(parameters) >= CHUNK - 3  # SQLite names each id


def test_insert_rows_keeps_the_order_in_the_ids_and_every_value(session: Session) -> None:
    """The audit chain relies on it: ids follow the order given, in one statement on
    PostgreSQL; NULLs, umlauts and instants come back as given."""
    rows = [
        {
            "at": NOW + timedelta(seconds=n % 7),
            "channel": "radius",
            "username": f"n{(n * 7919) % 2500:04d}-jürgen",
            "client": None if n % 3 else "vpn-1",
            "source_ip": "2001:db8::1" if n % 2 else None,
            "outcome": "reject",
            "reason": "otp_invalid",
        }
        for n in range(2500)
    ]
    statements: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        if sql.startswith("INSERT"):
            statements.append(sql)

    engine = session.get_bind().engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        insert_rows(session, AuthEvent.metadata.tables["auth_events"], rows)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    stored = session.execute(
        select(
            AuthEvent.at,
            AuthEvent.channel,
            AuthEvent.username,
            AuthEvent.client,
            AuthEvent.source_ip,
            AuthEvent.outcome,
            AuthEvent.reason,
        ).order_by(AuthEvent.id)
    ).all()
    assert [dict(row._mapping) for row in stored] == rows
    if session.get_bind().dialect.name == "postgresql":
        assert len(statements) == 1
