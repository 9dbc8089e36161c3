"""Staff's search over practices, users and keys (admin UI).

Names and cities are compared folded (``flexnet.accounts.folding``: case, umlauts in both
spellings, accents) against the search keys stored with each practice and user; BSNR,
username, LANR and key serial as typed. Every look-up is bounded by ``limit``.

Each kind of look-up is its own part of one ``UNION ALL`` statement, served by an index
on both databases (the migration ``search indexes for prefix and infix search``): a part
of a name or city by PostgreSQL's trigram index or SQLite's FTS5 trigram table, a BSNR or
username prefix by a B-tree (PostgreSQL: pattern operators, whatever the collation;
SQLite: GLOB on the unique index), LANR and serial by their own. A part shorter than
three characters has no trigram: it is looked for without an index.

One statement, not one per kind: the admin search is typed into often, and each
statement costs a round trip, a plan and the ORM's work per row, which were most of a
search's time (issue 17, docs/BENCHMARKS.md). The statement is built once per database
kind and its values are bound, so SQLAlchemy's compiled form is reused; rows are read as
plain columns, never as ORM objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Integer,
    Row,
    Select,
    and_,
    bindparam,
    cast,
    column,
    literal_column,
    null,
    select,
    table,
    union_all,
)
from sqlalchemy import text as text_sql
from sqlalchemy.orm import InstrumentedAttribute, Session

from flexnet import labels
from flexnet.accounts.folding import fold
from flexnet.models import Practice, Token, User

LIMIT = 50
TRIGRAM = 3


@dataclass(frozen=True)
class Hit:
    kind: str  # what matched, in German: BSNR, Praxis, Ort, Benutzer, Name, LANR, Yubikey
    bsnr: str
    practice_name: str
    detail: str
    username: str | None = None  # a user's page to link to


def search(session: Session, query: str, *, limit: int = LIMIT) -> list[Hit]:
    """Practices by BSNR (prefix), name or city (part); users by username (prefix), name
    (part) or LANR; keys by serial. At most ``limit`` hits."""
    text = " ".join(query.split())
    folded = fold(text)
    if not folded:
        return []
    dialect = session.get_bind().dialect.name
    statement = _statement(dialect, len(folded) >= TRIGRAM, limit)
    rows = session.connection().execute(statement, _values(dialect, text, folded)).all()
    practices = {row.practice_id: row for row in rows if row.source == "practice"}
    users = {row.user_id: row for row in rows if row.source == "user"}
    hits = _practice_hits(practices.values(), text, folded, limit)
    hits += _user_hits(users.values(), text, folded, limit)
    hits += [
        Hit("Yubikey", row.bsnr, row.practice_name, f"Seriennummer {row.serial}")
        for row in rows
        if row.source == "key"
    ]
    return hits[:limit]


def _practice_hits(rows: Iterable[Row[Any]], text: str, folded: str, limit: int) -> list[Hit]:
    hits = []
    for row in sorted(rows, key=lambda one: one.bsnr)[:limit]:
        if row.bsnr.startswith(text):
            kind = "BSNR"
        else:
            kind = "Praxis" if folded in fold(row.practice_name) else "Ort"
        status = labels.PRACTICE_STATUS_LABEL[row.practice_status]
        detail = status if kind != "Ort" else f"{row.city}; {status}"
        hits.append(Hit(kind, row.bsnr, row.practice_name, detail))
    return hits


def _user_hits(rows: Iterable[Row[Any]], text: str, folded: str, limit: int) -> list[Hit]:
    hits = []
    for row in sorted(rows, key=lambda one: one.username)[:limit]:
        if row.lanr == text:
            kind = "LANR"
        else:
            kind = "Benutzer" if row.username.startswith(folded) else "Name"
        detail = f"{row.username} ({labels.USER_STATUS_LABEL[row.user_status]})"
        if row.user_name:
            detail = f"{row.user_name}: {detail}"
        hits.append(Hit(kind, row.bsnr, row.practice_name, detail, row.username))
    return hits


_GLOB_SPECIAL = str.maketrans({"*": "[*]", "?": "[?]", "[": "[[]"})
_LIKE_SPECIAL = str.maketrans({"/": "//", "%": "/%", "_": "/_"})


def _values(dialect: str, text: str, folded: str) -> dict[str, str]:
    """The bound values of ``_statement``: what was typed, as each look-up compares it."""
    if dialect == "sqlite":
        # LIKE is case-insensitive in SQLite and could only use a NOCASE index; GLOB
        # compares as the unique index sorts.
        bsnr, username = (value.translate(_GLOB_SPECIAL) + "*" for value in (text, folded))
    else:
        bsnr, username = (value.translate(_LIKE_SPECIAL) + "%" for value in (text, folded))
    return {
        "text": text,
        "bsnr_prefix": bsnr,
        "username_prefix": username,
        "part": "%" + folded.translate(_LIKE_SPECIAL) + "%",
        "phrase": '"' + folded.replace('"', '""') + '"',
    }


@cache
def _statement(dialect: str, trigram: bool, limit: int) -> Select[Any]:
    """Every look-up of a search as one statement, each part sorted and limited on its
    own as it was when each was a statement of its own. Rows: ``source`` ("practice",
    "user" or "key"), the practice's columns, the user's (or NULL) and the key serial
    (or NULL)."""
    fts = dialect == "sqlite" and trigram
    found_practices = _part(Practice, fts)
    found_users = _part(User, fts)
    first_users = (
        select(found_users).order_by(found_users.c.username).limit(limit).subquery("first_users")
    )
    parts = [
        _practices(Practice.__table__)
        .where(_prefix(dialect, Practice.bsnr, "bsnr_prefix"))
        .order_by(Practice.bsnr),
        _practices(found_practices).order_by(found_practices.c.bsnr),
        _users(User.__table__)
        .where(_prefix(dialect, User.username, "username_prefix"))
        .order_by(User.username),
        _users(first_users),
        _users(User.__table__).where(User.lanr == bindparam("text")).order_by(User.username),
        select(literal_column("'key'").label("source"), *_practice(Practice.__table__))
        .add_columns(*_no_user(), Token.serial)
        .join(Practice, Practice.id == Token.practice_id)
        .where(Token.serial == bindparam("text")),
    ]
    # SQLite sorts and limits a part of a compound statement only as a subquery of it.
    return select(union_all(*(select(part.limit(limit).subquery()) for part in parts)).subquery())


def _prefix(dialect: str, field: InstrumentedAttribute[str], value: str) -> ColumnElement[bool]:
    """``field`` starts with the bound ``value`` (made by ``_values``), as an index
    serves it."""
    if dialect == "sqlite":
        return field.op("GLOB")(bindparam(value))
    return field.like(bindparam(value), escape="/")


_USER_LABELS = {"id": "user_id", "username": "username", "name": "user_name"}
_USER_LABELS |= {"status": "user_status", "lanr": "lanr"}


def _practice(source: Any) -> list[ColumnElement[Any]]:
    """The columns of a practice hit, from ``practices`` or a selection of its columns."""
    return [
        source.c.id.label("practice_id"),
        source.c.bsnr,
        source.c.name.label("practice_name"),
        source.c.city,
        source.c.status.label("practice_status"),
    ]


def _no_user() -> list[ColumnElement[Any]]:
    """NULL for each column of a user, typed: the parts of a UNION agree on their types."""
    users = User.__table__.c
    return [cast(null(), users[key].type).label(label) for key, label in _USER_LABELS.items()]


def _practices(source: Any) -> Select[Any]:
    """Practices (rows of ``source``: the table or a selection of it) as hits."""
    serial = cast(null(), Token.serial.type).label("serial")
    return select(
        literal_column("'practice'").label("source"), *_practice(source), *_no_user(), serial
    ).select_from(source)


def _users(source: Any) -> Select[Any]:
    """Users (rows of ``source``: the table or a selection of it) with their practice,
    as hits."""
    user = [source.c[key].label(label) for key, label in _USER_LABELS.items()]
    serial = cast(null(), Token.serial.type).label("serial")
    return (
        select(literal_column("'user'").label("source"), *_practice(Practice.__table__))
        .add_columns(*user, serial)
        .select_from(source)
        .join(Practice.__table__, Practice.id == source.c.practice_id)
    )


def _part(model: type[Practice] | type[User], fts: bool) -> CTE:
    """The records whose search key holds the folded query, with the columns a hit
    shows, as the trigram index finds them. Materialised, and sorted by the caller: a
    planner that walked the sort column's index instead, filtering every row until the
    limit is reached, would read the whole table for a rare part. The columns are read
    here, once per match: joining the table again made PostgreSQL hash all of it."""
    contains: ColumnElement[bool] = model.search_key.like(bindparam("part"), escape="/")
    where = contains
    if fts:
        index = table(f"{model.__tablename__}_fts", column("rowid", Integer))
        matching = select(index.c.rowid).where(text_sql(f"{index.name} MATCH :phrase"))
        # The trigram phrase finds the rows; LIKE confirms each on the row itself.
        where = and_(model.id.in_(matching), contains)
    columns = model.__table__.c
    keys = ["id", "bsnr", "name", "city", "status"]
    if model is User:
        keys = [*_USER_LABELS, "practice_id"]
    found = select(*(columns[key] for key in keys)).where(where)
    # Nested: the WITH stands inside the part that reads it, the statement is a SELECT.
    # Materialised on PostgreSQL only: SQLite starts from the FTS5 rows anyway (a look-up
    # by rowid is the cheapest plan it knows), and copying each match once more took
    # twice the time for a common part such as a city.
    found_cte = found.cte(f"{model.__tablename__}_parts", nesting=True)
    return found_cte.prefix_with("MATERIALIZED", dialect="postgresql")
