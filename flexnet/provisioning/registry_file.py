"""The association's registry export (``flexnet registry import``): reading the file.

One row per member and practice (a practice without a member known yet: a row with
empty member fields). German spreadsheet exports: semicolon-separated (a comma works
too), UTF-8 with or without a byte order mark, days as TT.MM.JJJJ or JJJJ-MM-TT, a
header naming the columns in any order. Every problem is named with its line; the layout
is in docs/IMPORT_FORMATS.md.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date

from flexnet import days
from flexnet.accounts.folding import fold
from flexnet.accounts.identifiers import (
    normalize_username,
    validate_bsnr,
    validate_lanr,
    validate_phone,
    validate_zip,
)
from flexnet.errors import ValidationError
from flexnet.otp.importer import ImportFailed
from flexnet.textrules import clean_line, optional_line

# Header (folded: case, umlauts, ß) → field. Required columns may hold empty member
# fields in a row; optional columns may be left out altogether.
COLUMNS = {
    "bsnr": "bsnr",
    "praxis": "name",
    "strasse": "street",
    "plz": "zip_code",
    "ort": "city",
    "lanr": "lanr",
    "name": "member_name",
    "ende": "ended_on",
    "adresszusatz": "address_extra",
    "telefon": "phone",
    "beginn": "started_on",
    "benutzername": "username",
}
REQUIRED = ("bsnr", "praxis", "strasse", "plz", "ort", "lanr", "name", "ende")
PRACTICE_FIELDS = ("name", "street", "zip_code", "city", "address_extra", "phone")
_GERMAN_DAY = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")


@dataclass(frozen=True)
class RegistryRow:
    """One row: the practice and, if ``lanr`` is set, one of its members."""

    line: int
    bsnr: str
    name: str
    street: str
    zip_code: str
    city: str
    address_extra: str | None
    phone: str | None
    lanr: str | None = None
    member_name: str | None = None
    started_on: date | None = None
    ended_on: date | None = None
    username: str | None = None

    def practice_values(self) -> dict[str, str | None]:
        return {field: getattr(self, field) for field in PRACTICE_FIELDS}


def parse(data: bytes) -> list[RegistryRow]:
    """Every row of the file, or ImportFailed naming every bad row and why."""
    text = _decode(data)
    header_line = text.partition("\n")[0]
    delimiter = ";" if header_line.count(";") >= header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [fold(name).replace(" ", "") for name in next(reader, [])]
    problems = _header_problems(header)
    if problems:
        raise ImportFailed(problems)
    rows, errors = [], []
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        try:
            rows.append(_row(reader.line_num, header, values))
        except ValidationError as error:
            errors.append(f"Zeile {reader.line_num}: {error.message}")
    if not rows and not errors:
        errors.append("Die Datei enthält keine Zeilen")
    errors += consistency_problems(rows)
    if errors:
        raise ImportFailed(errors)
    return rows


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ImportFailed(
            [
                f"Zeile {line}: die Datei ist nicht in UTF-8 geschrieben (beim Export aus der "
                "Tabellenkalkulation 'CSV UTF-8' wählen)"
            ]
        ) from None


def _header_problems(header: list[str]) -> list[str]:
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in COLUMNS]
    doubled = sorted({name for name in header if header.count(name) > 1})
    if not (missing or unknown or doubled):
        return []
    return [
        "Zeile 1: Kopfzeile mit den Spalten BSNR;Praxis;Adresszusatz;Strasse;PLZ;Ort;Telefon;"
        "LANR;Name;Beginn;Ende erwartet"
        + (f"; es fehlt: {', '.join(missing)}" if missing else "")
        + (f"; unbekannt: {', '.join(unknown)}" if unknown else "")
        + (f"; doppelt: {', '.join(doubled)}" if doubled else "")
    ]


def _row(line: int, header: list[str], values: list[str]) -> RegistryRow:
    if len(values) != len(header):
        raise ValidationError(f"{len(values)} Felder statt {len(header)}")
    raw = {COLUMNS[name]: value for name, value in zip(header, values, strict=True)}
    lanr = (raw.get("lanr") or "").strip()
    member_name = optional_line(raw.get("member_name"), field="Name", max_length=200)
    started_on = _day(raw.get("started_on"), "Beginn")
    ended_on = _day(raw.get("ended_on"), "Ende")
    username = (raw.get("username") or "").strip()
    if not lanr and (member_name or ended_on or started_on or username):
        raise ValidationError("Angaben zu einem Mitglied ohne LANR")
    if lanr and not member_name:
        raise ValidationError("Name des Mitglieds fehlt")
    if started_on and ended_on and started_on > ended_on:
        raise ValidationError("Beginn liegt nach dem Ende der Tätigkeit")
    phone = (raw.get("phone") or "").strip()
    return RegistryRow(
        line=line,
        bsnr=validate_bsnr(raw.get("bsnr", "")),
        name=clean_line(raw.get("name", ""), field="Praxis", max_length=200),
        street=clean_line(raw.get("street", ""), field="Strasse", max_length=200),
        zip_code=validate_zip(raw.get("zip_code", "")),
        city=clean_line(raw.get("city", ""), field="Ort", max_length=100),
        address_extra=optional_line(raw.get("address_extra"), field="Adresszusatz", max_length=200),
        phone=validate_phone(phone) if phone else None,
        lanr=validate_lanr(lanr) if lanr else None,
        member_name=member_name,
        started_on=started_on,
        ended_on=ended_on,
        username=normalize_username(username) if username else None,
    )


def _day(value: str | None, field: str) -> date | None:
    """TT.MM.JJJJ (as German spreadsheets write it) or JJJJ-MM-TT; empty: none."""
    text = (value or "").strip()
    if not text:
        return None
    german = _GERMAN_DAY.fullmatch(text)
    if german:
        day, month, year = (int(part) for part in german.groups())
        try:
            return days.check_day(date(year, month, day), field=field)
        except ValueError:
            raise ValidationError(f"{field}: {text!r} ist kein gültiges Datum") from None
    try:
        return days.parse_day(text, field=field)
    except ValidationError:
        raise ValidationError(
            f"{field}: {text!r} ist kein gültiges Datum (TT.MM.JJJJ oder JJJJ-MM-TT)"
        ) from None


def consistency_problems(rows: list[RegistryRow]) -> list[str]:
    """What rows say against each other: a practice described two ways, a member listed
    twice in one practice, one LANR with two names (a LANR is one person's)."""
    problems = []
    practices: dict[str, RegistryRow] = {}
    members: dict[tuple[str, str], RegistryRow] = {}
    people: dict[str, RegistryRow] = {}
    usernames: dict[str, RegistryRow] = {}
    for row in rows:
        first = practices.setdefault(row.bsnr, row)
        differing = [
            field for field in PRACTICE_FIELDS if getattr(first, field) != getattr(row, field)
        ]
        if differing:
            problems.append(
                f"Zeile {row.line}: BSNR {row.bsnr}: {', '.join(differing)} anders als in "
                f"Zeile {first.line}"
            )
        if row.lanr is None:
            continue
        twin = members.setdefault((row.bsnr, row.lanr), row)
        if twin is not row:
            problems.append(
                f"Zeile {row.line}: LANR {row.lanr} bei BSNR {row.bsnr} schon in Zeile {twin.line}"
            )
        person = people.setdefault(row.lanr, row)
        if fold(person.member_name or "") != fold(row.member_name or ""):
            problems.append(
                f"Zeile {row.line}: LANR {row.lanr} mit anderem Namen als in Zeile "
                f"{person.line} ({person.member_name}); eine LANR gehört genau einer Person"
            )
        if row.username:
            named = usernames.setdefault(row.username, row)
            if named is not row:
                problems.append(
                    f"Zeile {row.line}: Benutzername {row.username} schon in Zeile {named.line}"
                )
    return problems
