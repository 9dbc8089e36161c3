"""Users taken over from the previous system in one go: a CSV file, all or nothing.

A migration brings the users with their password hashes (never plaintexts: a file of
passwords must not exist). Each row goes through the same steps as ``user add``
(``issuance.add_user``): a row without a hash waits for a credentials letter; a hash is
taken over if flexnet can verify its scheme, and its plaintext meets the policy (§ 5.4)
when it is first typed, or must be changed then. The layout is in
docs/IMPORT_FORMATS.md.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from flexnet.audit import Actor
from flexnet.errors import FlexnetError
from flexnet.lifecycle.rules import DEFAULT_LOCK_AFTER_QUARTERS
from flexnet.models import UserKind
from flexnet.otp.importer import ImportFailed
from flexnet.provisioning import issuance

COLUMNS = ("username", "bsnr", "kind", "name", "lanr", "password_hash")
REQUIRED = ("username", "bsnr", "kind")
KINDS = {
    "member": UserKind.MEMBER,
    "staff": UserKind.STAFF,
    "third": UserKind.THIRD_PARTY,
    "practice": UserKind.PRACTICE_ACCESS,
}


@dataclass(frozen=True)
class ImportedUser:
    """One row of the file; ``line`` is its line number, for the messages."""

    line: int
    username: str
    bsnr: str
    kind: UserKind
    name: str | None = None
    lanr: str | None = None
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class UserImportSummary:
    users: int
    taken_over: int  # with a hash: the policy is checked when it is first typed
    letters: int  # without: a credentials letter is queued


def parse(data: bytes) -> list[ImportedUser]:
    """Every row of the file, or ImportFailed listing every problem with its line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFailed(["Die Datei ist nicht in UTF-8 geschrieben"]) from None
    header_line = text.partition("\n")[0]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [name.strip().lower() for name in next(reader, [])]
    problems = _header_problems(header)
    if problems:
        raise ImportFailed(problems)
    rows, errors = [], []
    for values in reader:
        if not any(value.strip() for value in values):
            continue  # blank line
        try:
            rows.append(_row(reader.line_num, header, values))
        except ValueError as error:
            errors.append(f"Zeile {reader.line_num}: {error}")
    if not rows and not errors:
        errors.append("Die Datei enthält keine Benutzer")
    if errors:
        raise ImportFailed(errors)
    return rows


def _header_problems(header: list[str]) -> list[str]:
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in COLUMNS]
    doubled = sorted({name for name in header if header.count(name) > 1})
    if not (missing or unknown or doubled):
        return []
    return [
        "Zeile 1: Kopfzeile mit den Spalten "
        + ",".join(COLUMNS)
        + " erwartet"
        + (f"; es fehlt: {', '.join(missing)}" if missing else "")
        + (f"; unbekannt: {', '.join(unknown)}" if unknown else "")
        + (f"; doppelt: {', '.join(doubled)}" if doubled else "")
    ]


def _row(line: int, header: list[str], values: list[str]) -> ImportedUser:
    if len(values) != len(header):
        raise ValueError(f"{len(values)} Felder statt {len(header)}")
    fields = {name: value.strip() for name, value in zip(header, values, strict=True)}
    for name in REQUIRED:
        if not fields[name]:
            raise ValueError(f"{name} fehlt")
    kind = KINDS.get(fields["kind"].lower())
    if kind is None:
        raise ValueError(f"kind muss {', '.join(KINDS)} sein")
    return ImportedUser(
        line=line,
        username=fields["username"],
        bsnr=fields["bsnr"],
        kind=kind,
        name=fields.get("name") or None,
        lanr=fields.get("lanr") or None,
        password_hash=fields.get("password_hash") or None,
    )


def import_users(
    session: Session,
    rows: Sequence[ImportedUser],
    *,
    actor: Actor,
    now: datetime,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
    progress: Callable[[int], None] | None = None,
) -> UserImportSummary:
    """Add every user in the caller's transaction; if any row is refused, ImportFailed
    names each refused row and the caller's rollback leaves the database as it was."""
    errors = []
    taken_over = 0
    for row in rows:
        try:
            # A savepoint per row, so that the rows after a refused one are still checked.
            with session.begin_nested():
                user, _ = issuance.add_user(
                    session,
                    username=row.username,
                    bsnr=row.bsnr,
                    kind=row.kind,
                    name=row.name,
                    lanr=row.lanr,
                    migrated_hash=row.password_hash,
                    actor=actor,
                    now=now,
                    quarters=quarters,
                )
        except FlexnetError as error:
            errors.append(f"Zeile {row.line} ({row.username}): {error.message}")
        else:
            taken_over += user.password_hash is not None
        if progress is not None:
            progress(1)
    if errors:
        raise ImportFailed(errors)
    return UserImportSummary(len(rows), taken_over, len(rows) - taken_over)
