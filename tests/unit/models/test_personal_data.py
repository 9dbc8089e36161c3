"""docs/DATA_PROTECTION.md names every column of the database, with or without personal
data, and each personal one with its retention: a new column without an entry fails."""

from __future__ import annotations

import re
from pathlib import Path

import flexnet.models  # noqa: F401  (every table on Base.metadata)
from flexnet.db import Base
from flexnet.lifecycle.retention import LABELS
from flexnet.ops.privacy import NEVER

DOCUMENT = Path(__file__).parents[3] / "docs" / "DATA_PROTECTION.md"


def section(title: str) -> str:
    text = DOCUMENT.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def personal() -> dict[str, list[str]]:
    """table.column → [category, retention, deletion] from the register's table."""
    rows = re.findall(
        r"^\| `([a-z_]+\.[a-z_]+)` \|(.*)\|$", section("Spalten mit Personenbezug"), re.M
    )
    return {column: [cell.strip() for cell in cells.split("|")] for column, cells in rows}


def not_personal() -> set[str]:
    lines = re.findall(r"^- `([a-z_]+)`: (.*)$", section("Spalten ohne Personenbezug"), re.M)
    return {f"{table}.{name.strip()}" for table, names in lines for name in names.split(",")}


def columns() -> set[str]:
    return {
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
    }


def test_every_column_is_in_the_register_once() -> None:
    listed_personal, listed_other = set(personal()), not_personal()

    unlisted = columns() - listed_personal - listed_other
    unknown = (listed_personal | listed_other) - columns()

    assert not unlisted, (
        f"in docs/DATA_PROTECTION.md eintragen (personenbezogen: mit Frist): {sorted(unlisted)}"
    )
    assert not unknown, f"nicht (mehr) in den Modellen: {sorted(unknown)}"
    assert not listed_personal & listed_other


def test_every_personal_column_has_a_category_a_retention_and_a_deletion() -> None:
    for column, cells in personal().items():
        assert len(cells) == 3 and all(cells), column


def test_the_secrets_kept_out_of_an_access_report_are_registered() -> None:
    registered = set(personal()) | not_personal()

    for table, hidden in NEVER.items():
        assert {f"{table}.{name}" for name in hidden} <= registered


def test_every_category_the_nightly_job_ends_is_described() -> None:
    table = section("Kategorien, Zwecke, Fristen")

    for name in (
        "auth_events",
        "vpn_sessions",
        "staff_sessions",
        "service_requests",
        "rate_limit_counters",
        "audit_entries",
        "practices",
        "users",
        "staff_accounts",
        "letters",
    ):
        assert name in LABELS and f"`{name}" in table, name
