"""The management's reports: ``flexnet report NAME [--csv]``."""

from __future__ import annotations

from datetime import date
from typing import Any

import click

from flexnet.cli import DATE, CliContext, cli, echo_text, pass_context
from flexnet.lifecycle.rules import start_of_day
from flexnet.ops import germancsv, reports


@cli.command("report")
@click.argument("name", type=click.Choice(list(reports.REPORTS)))
@click.option("--csv", "as_csv", is_flag=True, help="CSV (Semikolon, UTF-8 mit BOM, Dezimalkomma)")
@click.option("--today", type=DATE, help="Stichtag 00:00 Uhr (Standard: jetzt)")
@pass_context
def report(ctx: CliContext, name: str, as_csv: bool, today: date | None) -> None:
    """Bericht für die Geschäftsführung; er nennt den Zeitpunkt, den er beschreibt.

    practices: Betriebsstätten nach Status und Art; keys-out: ausgegebene, nicht
    zurückgegebene Yubikeys; locks-next-quarter: Sperren im nächsten Quartal nach den
    Daten, mit Ausnahmen; fees: offene Gebühren; terms: angenommene Versionen.
    """
    now = start_of_day(today) if today else ctx.now()
    with ctx.reading() as session:
        made = reports.make(session, name, now=now, quarters=ctx.settings.lock_after_quarters)
    if as_csv:
        click.echo(made.as_csv(), nl=False)
        return
    click.echo(f"{made.title}, Stand {germancsv.instant(made.as_of)}: {len(made.rows)}")
    click.echo("  " + " | ".join(column.title for column in made.columns))
    for row in made.rows:
        cells = [_text(row[column.key], column.kind) for column in made.columns]
        echo_text("  " + " | ".join(cells))


def _text(value: Any, kind: reports.Kind) -> str:
    if value is None:
        return "–"
    if kind is reports.Kind.DAY:
        return germancsv.day(value)
    if kind is reports.Kind.CENTS:
        return germancsv.euro(value)
    return str(value)
