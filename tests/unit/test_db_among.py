"""``flexnet.db.among``: an IN list on SQLite, one array parameter on PostgreSQL; the
same rows either way, in the set-based helpers built on it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from flexnet.db import CHUNK, among, rows_for_update, update_by_id
from flexnet.models import Practice, User


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
