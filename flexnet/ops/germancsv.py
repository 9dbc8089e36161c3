"""CSV that German spreadsheets open without an import wizard: semicolon-separated,
UTF-8 with a byte order mark, decimal comma, days as TT.MM.JJJJ, CRLF line ends.

Used by the fee ledger and the management reports (the audit export has its own
columns but the same dialect). A text a spreadsheet would take for a formula gets a
leading apostrophe (OWASP's advice for CSV exports).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from flexnet.lifecycle.rules import BERLIN


def cell(value: object) -> object:
    """One value as the sheet should show it: text that looks like a formula is text."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return f"'{value}"
    return value


def euro(cents: int) -> str:
    """An amount with a decimal comma and no thousands separator: ``1234,50``."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100},{abs(cents) % 100:02d}"


def day(value: date | None) -> str:
    return f"{value:%d.%m.%Y}" if value else ""


def instant(value: datetime) -> str:
    """An instant in Berlin time, as the reports state the moment they describe."""
    return f"{value.astimezone(BERLIN):%d.%m.%Y %H:%M}"


def write(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return buffer.getvalue().encode("utf-8-sig")
