"""The audit trail for a period, for the data protection officer: CSV (semicolons, UTF-8
with a byte order mark, as German spreadsheets open it) or JSON; filtered by subject or
actor as the admin UI's audit page is. The export itself is audited."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.audit import Actor, AuditTag
from flexnet.errors import ValidationError
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import AuditEntry
from flexnet.ops.germancsv import cell as _cell

COLUMNS = (
    "id",
    "zeitpunkt",
    "art_des_handelnden",
    "handelnder",
    "ereignis",
    "art_des_gegenstands",
    "gegenstand",
    "daten",
    "adresse",
    "hash",
)


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # inclusive, days in Europe/Berlin
    subject: str | None = None
    actor: str | None = None

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValidationError("--to liegt vor --from")


def entries(session: Session, period: Period) -> Iterator[AuditEntry]:
    """The entries of the period in chain order (streamed: a year may be long)."""
    query = (
        select(AuditEntry)
        .where(
            AuditEntry.at >= _start(period.first),
            AuditEntry.at < _start(period.last + timedelta(days=1)),
        )
        .order_by(AuditEntry.id)
        .execution_options(yield_per=1000)
    )
    if period.subject:
        query = query.where(AuditEntry.subject_id == period.subject)
    if period.actor:
        query = query.where(AuditEntry.actor == period.actor)
    yield from session.scalars(query)


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=BERLIN)


def row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "zeitpunkt": entry.at.astimezone(BERLIN).isoformat(timespec="seconds"),
        "art_des_handelnden": entry.actor_kind,
        "handelnder": entry.actor,
        "ereignis": entry.tag,
        "art_des_gegenstands": entry.subject_kind,
        "gegenstand": entry.subject_id,
        "daten": json.loads(entry.data),
        "adresse": entry.source_ip,  # only while the connection-data period lasts
        "hash": entry.hash,
    }


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for item in rows:
        writer.writerow(
            [
                _cell(json.dumps(item[name], ensure_ascii=False, sort_keys=True))
                if name == "daten"
                else _cell(item[name])
                for name in COLUMNS
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")


def as_json(rows: list[dict[str, Any]], period: Period) -> bytes:
    document = {
        "von": period.first.isoformat(),
        "bis": period.last.isoformat(),
        "gegenstand": period.subject,
        "handelnder": period.actor,
        "eintraege": rows,
    }
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def export(
    session: Session, period: Period, *, as_format: str, actor: Actor, now: datetime
) -> bytes:
    """The period's entries in ``as_format`` (csv or json); audited with the filters and
    the count (the entry comes after the export and is not part of it)."""
    rows = [row(entry) for entry in entries(session, period)]
    content = as_csv(rows) if as_format == "csv" else as_json(rows, period)
    audit.record(
        session,
        AuditTag.AUDIT_EXPORT,
        actor=actor,
        data={
            "from": period.first.isoformat(),
            "to": period.last.isoformat(),
            "subject": period.subject,
            "by_actor": period.actor,
            "format": as_format,
            "entries": len(rows),
        },
        now=now,
    )
    return content
