"""The audit trail from the command line."""

from __future__ import annotations

import click

from flexnet import audit
from flexnet.cli import CliContext, cli, pass_context
from flexnet.lifecycle.rules import BERLIN


@cli.group("audit")
def audit_group() -> None:
    """Revisionsprotokoll (Hash-Kette)."""


@audit_group.command("verify")
@pass_context
def audit_verify(ctx: CliContext) -> None:
    """Hash-Kette prüfen; Exit-Code 1 bei einem Bruch."""
    with ctx.reading() as session:
        report = audit.verify_chain(session, retention_years=ctx.settings.audit_retention_years)
    if report.ok:
        click.echo(f"Revisionsprotokoll intakt: {report.entries} Einträge geprüft")
        if report.purged_before is not None:
            cut = report.purged_before.astimezone(BERLIN)
            click.echo(f"Nach Aufbewahrungsfrist gelöscht: Einträge vor dem {cut:%d.%m.%Y}")
        click.echo(f"Letzter Hash (extern festhalten): {report.head}")
        return
    click.echo(
        f"Revisionsprotokoll GEBROCHEN bei Eintrag {report.first_broken_id}: {report.problem}",
        err=True,
    )
    raise SystemExit(1)
