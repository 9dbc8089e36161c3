"""The management's reports in the browser (every role reads): the same reports as
``flexnet report NAME`` (``ops.reports``), at a chosen day or now, as a table and as the
same CSV the CLI writes (semicolon, UTF-8 with BOM, decimal comma)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, g, render_template, request
from flask.typing import ResponseReturnValue

from flexnet.db import utcnow
from flexnet.lifecycle.rules import start_of_day
from flexnet.ops import germancsv, reports
from flexnet.web import state
from flexnet.web.admin import ALL_ROLES, allowed, blueprint
from flexnet.web.admin.tables import Filters, wants_csv

# The reports as the chooser offers them (the names are those of ``flexnet report``).
REPORT_LABELS = {
    "practices": "Betriebsstätten nach Status und Art",
    "keys-out": "Ausgegebene, nicht zurückgegebene Yubikeys",
    "locks-next-quarter": "Sperren im nächsten Quartal",
    "fees": "Offene Gebühren",
    "terms": "Angenommene Versionen der Nutzungsbedingungen",
}


def _cell(value: Any, kind: reports.Kind) -> str:
    if value is None:
        return "–"
    if kind is reports.Kind.DAY:
        return germancsv.day(value)
    if kind is reports.Kind.CENTS:
        return germancsv.euro(value) + " €"
    return str(value)


@blueprint.get("/reports")
@allowed(ALL_ROLES)
def report_page() -> ResponseReturnValue:
    """One report at the start of the chosen day, or now when no day is chosen."""
    chosen = Filters()
    name = chosen.choice("name", "Bericht", {key: key for key in REPORT_LABELS}) or "practices"
    chosen.args["name"] = name
    day = chosen.day("day", "Stichtag")
    now: datetime = start_of_day(day) if day else utcnow()
    with state().database.reader() as db:
        made = reports.make(db, name, now=now, quarters=state().settings.lock_after_quarters)
    if wants_csv():
        stamp = f"{made.as_of:%Y%m%d}"
        return Response(
            made.as_csv(),
            mimetype="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="bericht-{name}-{stamp}.csv"',
                "Content-Type": "text/csv; charset=utf-8",
            },
        )
    rows = [[(_cell(row[c.key], c.kind), c.kind) for c in made.columns] for row in made.rows]
    return render_template(
        "admin/reports.html",
        made=made,
        rows=rows,
        name=name,
        reports=list(REPORT_LABELS.items()),
        day=request.args.get("day", "") if day else "",
        as_of=germancsv.instant(made.as_of),
        problems=chosen.problems,
        args=chosen.args,
        numeric=(reports.Kind.COUNT, reports.Kind.CENTS),
        staff=g.staff,
    )
