"""Helpers for CLI tests: run results and database snapshots."""

from __future__ import annotations

from collections.abc import Callable

from click.testing import Result
from sqlalchemy import func, select

from flexnet.db import Base, Database

Invoke = Callable[..., Result]


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output + result.stderr
    return result


def refused(result: Result, message: str) -> None:
    """Exit code non-zero and exactly one 'flexnet: …' line on stderr naming the problem."""
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("flexnet: ")
    assert message in lines[0]


def snapshot(database: Database) -> dict[str, int]:
    """Row counts of every table: equal before and after a refused command."""
    with database.session() as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }
