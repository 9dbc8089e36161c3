"""psycopg's cursor with a description that costs nothing until it is read.

After every statement SQLAlchemy reads ``cursor.description``, and psycopg builds a new
list for it: one Column per result column, each decoding its name and looking up its
type. For a statement it has run before, SQLAlchemy only looks whether there is a
description at all (it keeps the result's layout with the compiled statement). A login
reads rows of about a hundred columns, and building those lists was a seventh of the
login pipeline's CPU on PostgreSQL (issue 17). This cursor answers with a sequence that
builds the columns when they are first read, for the result it was asked about.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import psycopg


class _AtResult:
    """The cursor as a Column reads it, held at one result: a description read after the
    next statement still describes its own."""

    def __init__(self, cursor: psycopg.Cursor[Any], result: Any) -> None:
        self._cursor = cursor
        self.pgresult = result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class Description(Sequence[psycopg.Column]):
    """A result's columns, built on first use."""

    def __init__(self, cursor: psycopg.Cursor[Any], result: Any) -> None:
        self._at = _AtResult(cursor, result)
        self._count: int = result.nfields
        self._columns: list[psycopg.Column] | None = None

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> psycopg.Column: ...

    @overload
    def __getitem__(self, index: slice) -> list[psycopg.Column]: ...

    def __getitem__(self, index: int | slice) -> psycopg.Column | list[psycopg.Column]:
        if self._columns is None:
            at: Any = self._at  # reads like the cursor it stands for
            self._columns = [psycopg.Column(at, i) for i in range(self._count)]
        return self._columns[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return repr(list(self))


class Cursor(psycopg.Cursor[Any]):
    """``cursor_factory`` for flexnet's PostgreSQL connections (``db.make_engine``)."""

    @property
    def description(self) -> Description | list[psycopg.Column] | None:  # type: ignore[override]
        result = self.pgresult
        if result is None or not result.nfields:
            return super().description  # None, or [] for a result without columns: cheap
        return Description(self, result)
