"""Every statement of staff's search is served by an index on both databases (issue 17:
50,000 practices and 150,000 users in milliseconds), never by reading a whole table.

The statements ``search`` runs are captured and explained with their own parameters:
on SQLite no ``SCAN`` of ``practices`` or ``users`` (through an index or not); on
PostgreSQL, told to avoid sequential scans (which it ignores only where no index can
serve), every scan of them has an index condition: none reads a whole table or index
and filters. Structure, not time: the sizes are the tests'.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from flexnet.accounts.search import search
from flexnet.models import Practice, Token, User, UserKind
from tests.support.yubikeys import SimulatedKey

QUERIES = {
    "BSNR prefix": "8800000",
    "practice name part": "Beispiel 47",
    "city part": "Köthen",
    "username prefix": "u47-",
    "person name part": "Jürgen Groß",
    "LANR": "123456601",
    "key serial": "9000001",
    "no hit": "zzzz-nichts",
}
SQLITE_FULL_SCAN = re.compile(r"^SCAN (practices|users)\b")
TABLES = {"practices", "users"}


@pytest.fixture
def records(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
) -> None:
    for n in range(40, 50):
        practice = make_practice(name=f"Praxis Beispiel {n}", city="Köthen (Anhalt)")
        make_user(practice=practice, username=f"u{n}-a", name="Jürgen Groß")
    make_user(practice=practice, username="u49-b", kind=UserKind.MEMBER, lanr="123456601")
    make_yubikey()


@pytest.fixture
def statements(session: Session) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (with their parameters) run on the session's connection."""
    seen: list[tuple[str, Any]] = []
    connection = session.connection()

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", record)
    yield seen
    event.remove(connection, "before_cursor_execute", record)


def full_scans(session: Session, statement: str, parameters: Any) -> list[str]:
    """The steps of the statement's plan that read all of ``practices`` or ``users``."""
    cursor = session.connection().connection.cursor()
    try:
        if session.get_bind().dialect.name == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            details = [str(row[-1]).strip() for row in cursor.fetchall()]
            return [line for line in details if SQLITE_FULL_SCAN.search(line)]
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
        return list(_unbounded(cursor.fetchone()[0][0]["Plan"]))
    finally:
        cursor.close()


def _unbounded(node: dict[str, Any]) -> Iterator[str]:
    """PostgreSQL plan nodes that scan practices or users without an index condition."""
    if node.get("Relation Name") in TABLES:
        bounded = "Index Cond" in node or node["Node Type"] == "Bitmap Heap Scan"
        if not bounded:
            yield f"{node['Node Type']} on {node['Relation Name']}"
    for child in node.get("Plans", []):
        yield from _unbounded(child)


@pytest.mark.parametrize("kind", sorted(QUERIES))
def test_every_statement_of_a_search_is_served_by_an_index(
    session: Session, records: None, statements: list[tuple[str, Any]], kind: str
) -> None:
    search(session, QUERIES[kind])

    assert statements
    for statement, parameters in statements:
        assert full_scans(session, statement, parameters) == [], statement
