"""Lists in the admin UI, the one way: filters from the query string, sorting by column
headers (links, no script), paging with totals through the database (never all rows), and
the same rows as CSV for German spreadsheets (semicolon, UTF-8 with BOM, German dates and
decimal comma), with the same filters as the page.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from flask import Response, request, stream_with_context, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql import ColumnElement

from flexnet import days
from flexnet.errors import ValidationError
from flexnet.lifecycle.rules import BERLIN
from flexnet.ops import germancsv
from flexnet.web import state

# What a list sorts by: a mapped attribute or an SQL expression (a subquery).
Sortable = ColumnElement[Any] | QueryableAttribute[Any]
PER_PAGE = 50
MAX_PAGE = 100_000
Row = TypeVar("Row")


@dataclass(frozen=True)
class Column:
    """A column of a list: its header, and how to sort by it (None: not sortable)."""

    key: str
    label: str
    order: Sortable | None = None
    numeric: bool = False


@dataclass
class Page(Generic[Row]):
    """One page of a list, with what the page needs to link to others."""

    rows: list[Row]
    total: int
    page: int
    per_page: int
    sort: str
    descending: bool
    columns: Sequence[Column]
    endpoint: str
    args: dict[str, str] = field(default_factory=dict)  # the filters in force
    view_args: dict[str, Any] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def first(self) -> int:
        return 0 if self.total == 0 else (self.page - 1) * self.per_page + 1

    @property
    def last(self) -> int:
        return min(self.total, self.page * self.per_page)

    def url(self, **changes: Any) -> str:
        """This list with ``changes`` (page, sort, dir, format) and the same filters."""
        values: dict[str, Any] = {**self.args, "sort": self.sort}
        values["dir"] = "desc" if self.descending else "asc"
        values.update(changes)
        values = {k: v for k, v in values.items() if v not in (None, "")}
        return url_for(self.endpoint, **self.view_args, **values)

    def sort_url(self, column: Column) -> str:
        """Sorting by ``column``: ascending first, a second click reverses."""
        descending = column.key == self.sort and not self.descending
        return self.url(sort=column.key, dir="desc" if descending else "asc", page=None)

    def aria_sort(self, column: Column) -> str | None:
        if column.key != self.sort:
            return None
        return "descending" if self.descending else "ascending"

    def csv_url(self) -> str:
        return self.url(format="csv", page=None)


T = TypeVar("T")


class Filters:
    """The filters a list was asked for, read from the query string: ``args`` keeps the
    valid ones (for the links of the page), ``problems`` says in German what was ignored."""

    def __init__(self) -> None:
        self.args: dict[str, str] = {}
        self.problems: list[str] = []

    def text(self, name: str, *, limit: int = 100) -> str | None:
        value = " ".join(request.args.get(name, "").split())[:limit].replace("\x00", "")
        if value:
            self.args[name] = value
        return value or None

    def choice(self, name: str, label: str, options: Mapping[str, T]) -> T | None:
        value = request.args.get(name, "")
        if not value:
            return None
        if value not in options:
            self.problems.append(f"{label}: unbekannter Wert, der Filter wurde nicht angewandt.")
            return None
        self.args[name] = value
        return options[value]

    def flag(self, name: str) -> bool:
        if request.args.get(name) == "1":
            self.args[name] = "1"
            return True
        return False

    def day(self, name: str, label: str) -> date | None:
        value = request.args.get(name, "").strip()
        if not value:
            return None
        try:
            day = days.parse_day(value, field=label)
        except ValidationError as error:
            self.problems.append(f"{error.message}; der Filter wurde nicht angewandt.")
            return None
        self.args[name] = value
        return day


def _order(columns: Sequence[Column], default: str) -> tuple[Column, bool]:
    by_key = {column.key: column for column in columns if column.order is not None}
    column = by_key.get(request.args.get("sort", ""), by_key[default])
    return column, request.args.get("dir") == "desc"


def page_of(
    db: Session,
    query: Any,  # a Select of any row shape
    *,
    columns: Sequence[Column],
    default_sort: str,
    tiebreak: Sortable,
    endpoint: str,
    args: dict[str, str],
    view_args: dict[str, Any] | None = None,
    per_page: int = PER_PAGE,
    default_descending: bool = False,
) -> Page[Any]:
    """The requested page of ``query``: two statements (the count, the rows)."""
    column, descending = _order(columns, default_sort)
    if "sort" not in request.args:
        descending = default_descending
    total = db.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, math.ceil(total / per_page))
    number = min(max(1, request.args.get("page", 1, type=int) or 1), pages, MAX_PAGE)
    assert column.order is not None  # noqa: S101 - _order picks sortable columns only
    order = column.order.desc() if descending else column.order.asc()
    tie = tiebreak.desc() if descending else tiebreak.asc()
    rows = list(
        db.execute(query.order_by(order, tie).offset((number - 1) * per_page).limit(per_page))
    )
    return Page(
        rows=rows,
        total=total,
        page=number,
        per_page=per_page,
        sort=column.key,
        descending=descending,
        columns=columns,
        endpoint=endpoint,
        args=args,
        view_args=view_args or {},
    )


# --- CSV for German spreadsheets -------------------------------------------------------------


def cell(value: Any) -> str:
    """A value as a German spreadsheet reads it: 03.12.2026, 03.12.2026 14:05, 60,00."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, datetime):
        return f"{value.astimezone(BERLIN):%d.%m.%Y %H:%M}"
    if isinstance(value, date):
        return f"{value:%d.%m.%Y}"
    if isinstance(value, float):
        return f"{value:.2f}".replace(".", ",")
    if isinstance(value, int):
        return str(value)
    # A cell a spreadsheet would take for a formula (usernames in the auth log come
    # from anyone) stays text: the one rule of every CSV flexnet writes.
    return str(germancsv.cell(str(value)))


def wants_csv() -> bool:
    return request.args.get("format") == "csv"


def csv_download(
    filename: str,
    header: Sequence[str],
    rows: Callable[[Session], Iterator[Sequence[Any]]],
    *,
    batch: int = 500,
) -> Response:
    """A CSV file made while it is sent: ``rows`` reads in batches (``yield_per``), so a
    list of thousands never sits in memory. Semicolon, CRLF, UTF-8 with BOM."""

    def generate() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        writer.writerow(header)
        yield "\ufeff" + out.getvalue()
        with state().database.reader() as db:
            for count, row in enumerate(rows(db), start=1):
                out.seek(0)
                out.truncate()
                writer.writerow([cell(value) for value in row])
                yield out.getvalue()
                if count % batch == 0:
                    db.expunge_all()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Type": "text/csv; charset=utf-8",
        },
    )
