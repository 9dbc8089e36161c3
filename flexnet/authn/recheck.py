"""Phase 3's second look at the rows a login is decided on: are they as phase 1 read them?

Phase 3 decides against the rows as they are then, with the user's row locked. Loading
the user, the practice, the practice's members, their exceptions and the key through the
ORM a second time costs as much as the first load, and on almost every login nothing has
changed in the tens of milliseconds between. So the same rows are read once more as plain
values, in one statement that also takes the user's row lock, and compared with what
phase 1 loaded, column by column; only if anything differs, or a row came or went, does
the pipeline load them again through the ORM. Every column takes part, not only those
the status rules read today, so a rule that reads one more column later cannot miss a
change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Select, Table, bindparam, select
from sqlalchemy.orm import Session, class_mapper
from sqlalchemy.orm.attributes import instance_dict

from flexnet.models import LockException, Practice, Token, User

Values = tuple[Any, ...] | None  # one row's columns, None for a row that is not there


def _columns(model: type[User | Practice | LockException | Token]) -> tuple[str, ...]:
    """The model's attribute names in its table's column order."""
    mapper = class_mapper(model)
    table: Table = model.__table__  # type: ignore[assignment]
    return tuple(mapper.get_property_by_column(column).key for column in table.columns)


_USER, _PRACTICE, _EXCEPTION, _TOKEN = (
    _columns(model) for model in (User, Practice, LockException, Token)
)
_u = User.__table__.alias("u")
_p = Practice.__table__.alias("p")
_ue = LockException.__table__.alias("ue")
_pe = LockException.__table__.alias("pe")
_t = Token.__table__.alias("t")
_m = User.__table__.alias("m")
_me = LockException.__table__.alias("me")
# Per row: the user, the practice, their exceptions and the key (the same in every row),
# then one member of the practice with that member's exception.
_LAYOUT = (_USER, _PRACTICE, _EXCEPTION, _EXCEPTION, _TOKEN, _USER, _EXCEPTION)
_CURRENT: Select[Any] = (
    select(_u, _p, _ue, _pe, _t, _m, _me)
    .select_from(
        _u.join(_p, _p.c.id == _u.c.practice_id)
        .outerjoin(_ue, _ue.c.user_id == _u.c.id)
        .outerjoin(_pe, _pe.c.practice_id == _p.c.id)
        .outerjoin(_t, _t.c.id == bindparam("token_id"))
        .outerjoin(_m, _m.c.practice_id == _p.c.id)
        .outerjoin(_me, _me.c.user_id == _m.c.id)
    )
    .where(_u.c.id == bindparam("user_id"))
    .with_for_update(of=_u)  # PostgreSQL; on SQLite the write transaction holds the file
)


def lock_unchanged(session: Session, user: User, token: Token | None) -> bool:
    """Lock the user's row; True if it and the rows its login depends on (practice,
    members, exceptions, ``token``) still hold exactly what ``user`` and ``token`` were
    loaded with. False if anything differs, or ``user`` is not loaded in full."""
    rows = session.execute(
        _CURRENT, {"user_id": user.id, "token_id": token.id if token is not None else None}
    ).all()
    if not rows:
        return False
    current = [_split(row) for row in rows]
    user_now, practice_now, user_exception, practice_exception, token_now = current[0][:5]
    members_now = {(member, exception) for *_, member, exception in current if member}
    practice = _loaded(user, "practice")
    if practice is None:
        return False
    members = _loaded(practice, "users")
    return (
        user_now == _values(user, _USER)
        and practice_now == _values(practice, _PRACTICE)
        and user_exception == _exception_values(user)
        and practice_exception == _exception_values(practice)
        and token_now == (_values(token, _TOKEN) if token is not None else None)
        and members is not None
        and members_now == {(_values(m, _USER), _exception_values(m)) for m in members}
    )


def _split(row: Row[Any]) -> list[Values]:
    """One result row as the values of each row it joins (None where the join found none;
    every table's first column is its primary key)."""
    parts: list[Values] = []
    start = 0
    for keys in _LAYOUT:
        values = tuple(row[start : start + len(keys)])
        parts.append(values if values[0] is not None else None)
        start += len(keys)
    return parts


_NOT_LOADED = object()


def _loaded(instance: object, name: str) -> Any:
    """An attribute as loaded, without loading it (None if it never was)."""
    value = instance_dict(instance).get(name, _NOT_LOADED)
    return None if value is _NOT_LOADED else value


def _values(instance: object, keys: Sequence[str]) -> Values:
    """What the instance holds for each column; a column not loaded makes it unequal."""
    loaded = instance_dict(instance)
    return tuple(loaded.get(key, _NOT_LOADED) for key in keys)


def _exception_values(holder: User | Practice) -> Values:
    state = instance_dict(holder)
    if "lock_exception" not in state:
        return (_NOT_LOADED,)
    exception = state["lock_exception"]
    return _values(exception, _EXCEPTION) if exception is not None else None
