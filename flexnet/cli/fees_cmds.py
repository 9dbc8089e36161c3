"""The fee ledger (§ 6.3): what lost Yubikeys owe, invoiced, paid or waived; CSV for
the accounting department."""

from __future__ import annotations

from datetime import date

import click

from flexnet.cli import DATE, CliContext, cli, echo_text, pass_context
from flexnet.models import LossFee
from flexnet.ops import germancsv
from flexnet.provisioning import fees as ledger
from flexnet.provisioning.mailruns import format_euro


def csv_rows(rows: list[LossFee]) -> bytes:
    """The ledger as accounting imports it."""
    return germancsv.write(ledger.CSV_HEADER, (ledger.csv_row(fee) for fee in rows))


@cli.group("fees")
def fees_group() -> None:
    """Gebühren nach § 6 Abs. 3 (verlorene Yubikeys): offen, berechnet, bezahlt, erlassen."""


@fees_group.command("list")
@click.option("--open", "open_only", is_flag=True, help="Nur offene (weder bezahlt noch erlassen)")
@click.option("--csv", "as_csv", is_flag=True, help="CSV für die Buchhaltung (Semikolon, UTF-8)")
@pass_context
def fees_list(ctx: CliContext, open_only: bool, as_csv: bool) -> None:
    """Gebühren auflisten, älteste zuerst."""
    with ctx.reading() as session:
        rows = ledger.fees(session, open_only=open_only)
        if as_csv:
            click.echo(csv_rows(rows), nl=False)
            return
        click.echo(f"Gebühren{' (offen)' if open_only else ''}: {len(rows)}")
        for fee in rows:
            echo_text(
                f"  Nr. {fee.id}  BSNR {fee.practice.bsnr} {fee.practice.name}  Yubikey "
                f"{fee.serial}  {format_euro(fee.amount_cents)}  fällig seit "
                f"{fee.owed_on:%d.%m.%Y}  {_stand(fee)}"
            )


def _stand(fee: LossFee) -> str:
    steps = [ledger.state_label(fee)]
    if fee.invoiced_on:
        steps.append(f"berechnet am {fee.invoiced_on:%d.%m.%Y}")
    if fee.paid_on:
        steps.append(f"bezahlt am {fee.paid_on:%d.%m.%Y}")
    if fee.waived_on:
        steps.append(f"erlassen am {fee.waived_on:%d.%m.%Y}: {fee.waive_reason}")
    return "; ".join(steps)


@fees_group.command("invoiced")
@click.argument("fee_id", metavar="NR", type=click.IntRange(min=1))
@click.option("--date", "on", type=DATE, help="Rechnungsdatum (Standard: heute)")
@pass_context
def fees_invoiced(ctx: CliContext, fee_id: int, on: date | None) -> None:
    """Gebühr als berechnet erfassen."""
    with ctx.unit_of_work() as session:
        ledger.invoice(session, fee_id=fee_id, on=on or ctx.today(), actor=ctx.actor, now=ctx.now())
    click.echo(f"Gebühr Nr. {fee_id} berechnet")


@fees_group.command("paid")
@click.argument("fee_id", metavar="NR", type=click.IntRange(min=1))
@click.option("--date", "on", type=DATE, help="Zahlungseingang (Standard: heute)")
@pass_context
def fees_paid(ctx: CliContext, fee_id: int, on: date | None) -> None:
    """Zahlungseingang erfassen."""
    with ctx.unit_of_work() as session:
        ledger.pay(session, fee_id=fee_id, on=on or ctx.today(), actor=ctx.actor, now=ctx.now())
    click.echo(f"Gebühr Nr. {fee_id} bezahlt")


@fees_group.command("waive")
@click.argument("fee_id", metavar="NR", type=click.IntRange(min=1))
@click.option("--reason", required=True, help="Grund des Erlasses")
@pass_context
def fees_waive(ctx: CliContext, fee_id: int, reason: str) -> None:
    """Gebühr mit Grund erlassen."""
    with ctx.unit_of_work() as session:
        ledger.waive(session, fee_id=fee_id, reason=reason, actor=ctx.actor, now=ctx.now())
    click.echo(f"Gebühr Nr. {fee_id} erlassen")
