"""Staff's search over practices, users and keys (admin UI).

Names and cities are compared folded (``flexnet.accounts.folding``: case, umlauts in both
spellings, accents) against the search keys stored with each practice and user; BSNR,
username, LANR and key serial as typed. Every look-up is bounded by ``limit``.

Each kind of look-up is its own statement, served by an index on both databases (the
migration ``search indexes for prefix and infix search``): a part of a name or city by
PostgreSQL's trigram index or SQLite's FTS5 trigram table, a BSNR or username prefix by
a B-tree (PostgreSQL: pattern operators, whatever the collation; SQLite: GLOB on the
unique index), LANR and serial by their own. A part shorter than three characters has
no trigram: it is looked for without an index.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import CTE, ColumnElement, and_, column, select, table
from sqlalchemy import text as text_sql
from sqlalchemy.orm import InstrumentedAttribute, Session

from flexnet import labels
from flexnet.accounts.folding import fold
from flexnet.models import Practice, Token, User

LIMIT = 50


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
    hits = _practices(session, text, folded, limit) + _users(session, text, folded, limit)
    tokens = session.execute(
        select(Token, Practice).join(Practice).where(Token.serial == text).limit(limit)
    )
    for token, practice in tokens:
        hits.append(Hit("Yubikey", practice.bsnr, practice.name, f"Seriennummer {token.serial}"))
    return hits[:limit]


def _practices(session: Session, text: str, folded: str, limit: int) -> list[Hit]:
    by_bsnr = (
        select(Practice)
        .where(_prefix(session, Practice.bsnr, text))
        .order_by(Practice.bsnr)
        .limit(limit)
    )
    parts = _part(session, Practice, Practice.bsnr, folded)
    by_key = (
        select(Practice)
        .join(parts, parts.c.id == Practice.id)
        .order_by(parts.c.sort_key)
        .limit(limit)
    )
    found: dict[int, Practice] = {}
    for query in (by_bsnr, by_key):
        for practice in session.scalars(query):
            found.setdefault(practice.id, practice)
    hits = []
    for practice in sorted(found.values(), key=lambda one: one.bsnr)[:limit]:
        if practice.bsnr.startswith(text):
            kind = "BSNR"
        else:
            kind = "Praxis" if folded in fold(practice.name) else "Ort"
        status = labels.PRACTICE_STATUS_LABEL[practice.status]
        detail = status if kind != "Ort" else f"{practice.city}; {status}"
        hits.append(Hit(kind, practice.bsnr, practice.name, detail))
    return hits


def _users(session: Session, text: str, folded: str, limit: int) -> list[Hit]:
    both = select(User, Practice).join(Practice)
    parts = _part(session, User, User.username, folded)
    queries = [
        both.where(_prefix(session, User.username, folded)).order_by(User.username),
        both.join(parts, parts.c.id == User.id).order_by(parts.c.sort_key),
        both.where(User.lanr == text).order_by(User.username),
    ]
    found: dict[int, tuple[User, Practice]] = {}
    for query in queries:
        for user, practice in session.execute(query.limit(limit)):
            found.setdefault(user.id, (user, practice))
    hits = []
    for user, practice in sorted(found.values(), key=lambda pair: pair[0].username)[:limit]:
        if user.lanr == text:
            kind = "LANR"
        else:
            kind = "Benutzer" if user.username.startswith(folded) else "Name"
        detail = f"{user.username} ({labels.USER_STATUS_LABEL[user.status]})"
        if user.name:
            detail = f"{user.name}: {detail}"
        hits.append(Hit(kind, practice.bsnr, practice.name, detail, user.username))
    return hits


_GLOB_SPECIAL = str.maketrans({"*": "[*]", "?": "[?]", "[": "[[]"})
TRIGRAM = 3


def _prefix(session: Session, field: InstrumentedAttribute[str], text: str) -> ColumnElement[bool]:
    """``field`` starts with ``text``, as an index serves it."""
    if _dialect(session) == "sqlite":
        # LIKE is case-insensitive in SQLite and could only use a NOCASE index; GLOB
        # compares as the unique index sorts.
        return field.op("GLOB")(text.translate(_GLOB_SPECIAL) + "*")
    return field.startswith(text, autoescape=True)


def _part(
    session: Session,
    model: type[Practice] | type[User],
    order: InstrumentedAttribute[str],
    folded: str,
) -> CTE:
    """The records whose search key holds ``folded`` (``id``, ``sort_key``: ``order``), as
    the trigram index finds them. Materialised, and the caller sorts by its own column:
    a planner that walked the ``order`` index instead, filtering every row until the
    limit is reached, would read the whole table for a rare part."""
    contains = model.search_key.contains(folded, autoescape=True)
    where: ColumnElement[bool] = contains
    if _dialect(session) == "sqlite" and len(folded) >= TRIGRAM:
        fts = table(f"{model.__tablename__}_fts", column("rowid"))
        phrase = '"' + folded.replace('"', '""') + '"'
        matching = select(fts.c.rowid).where(
            text_sql(f"{fts.name} MATCH :phrase").bindparams(phrase=phrase)
        )
        # The trigram phrase finds the rows; LIKE confirms each on the row itself.
        where = and_(model.id.in_(matching), contains)
    found = select(model.id.label("id"), order.label("sort_key")).where(where)
    return found.cte(f"{model.__tablename__}_parts").prefix_with("MATERIALIZED")


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name
