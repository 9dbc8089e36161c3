"""flexnet's psycopg cursor describes every result exactly as psycopg's own does."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet import pgcursor
from flexnet.db import Database, make_engine
from flexnet.models import Practice, User
from tests.conftest import BOX, NOW
from tests.support.seed import add_login

QUERIES = [
    "SELECT 1 AS one, 'x'::text AS word, now() AS at, NULL::numeric(10, 2) AS money,"
    " ARRAY[1, 2] AS numbers, '{}'::jsonb AS doc, 'a'::varchar(7) AS short",
    "SELECT * FROM users",
    "SELECT",  # a result without columns
]


def described(cursor: psycopg.Cursor[object]) -> list[tuple[object, ...]] | None:
    description = cursor.description
    return None if description is None else [tuple(column) for column in description]


@pytest.mark.parametrize("query", QUERIES)
def test_a_description_reads_as_psycopg_s_own(pg_url: URL, query: str) -> None:
    dsn = pg_url.render_as_string(hide_password=False).replace("+psycopg", "")
    with (
        psycopg.connect(dsn) as plain,
        psycopg.connect(dsn, cursor_factory=pgcursor.Cursor) as ours,
    ):
        expected = described(plain.execute(query))
        cursor = ours.execute(query)
        description = cursor.description

        assert isinstance(cursor, pgcursor.Cursor)
        assert described(cursor) == expected
        assert description is not None and len(description) == len(expected or [])
        if expected:
            assert description[0].name == expected[0][0]
            assert [tuple(c) for c in description[-1:]] == expected[-1:]


def test_a_description_read_after_the_next_statement_still_describes_its_own(
    pg_url: URL,
) -> None:
    dsn = pg_url.render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(dsn, cursor_factory=pgcursor.Cursor) as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT 1 AS first, 2 AS second")
        earlier = cursor.description
        cursor.execute("SELECT 'x' AS other")
        assert earlier is not None
        assert [column.name for column in earlier] == ["first", "second"]
        assert [column.name for column in cursor.description or []] == ["other"]


def test_no_result_has_no_description(pg_url: URL) -> None:
    dsn = pg_url.render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(dsn, cursor_factory=pgcursor.Cursor) as connection:
        assert connection.execute("SET TIME ZONE 'UTC'").description is None


def test_flexnet_s_engines_use_it_and_the_orm_reads_through_it(pg_url: URL) -> None:
    engine = make_engine(pg_url)
    raw = engine.raw_connection()
    try:
        assert isinstance(raw.cursor(), pgcursor.Cursor)
    finally:
        raw.close()
    database = Database(engine)
    try:
        with database.session() as session:
            add_login(session, BOX, bsnr="881234500", username="emuster", password="x", now=NOW)
        for _ in range(3):  # the second run takes the layout SQLAlchemy cached
            with database.reader() as session:
                user = session.scalars(select(User).where(User.username == "emuster")).one()
                bsnr = session.scalar(select(Practice.bsnr).where(Practice.id == user.practice_id))
            assert (user.username, bsnr) == ("emuster", "881234500")
    finally:
        database.dispose()
