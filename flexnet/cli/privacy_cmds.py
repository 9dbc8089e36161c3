"""Access requests (Art. 15 DSGVO) from the command line."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import click

from flexnet.cli import CliContext, cli, pass_context
from flexnet.errors import ValidationError
from flexnet.ops import privacy, privacypdf, privatefiles
from flexnet.provisioning import letters


@cli.group("privacy")
def privacy_group() -> None:
    """Datenschutz: Auskunft nach Art. 15 DSGVO."""


@privacy_group.command("export")
@click.option("--user", "username", help="Benutzername")
@click.option("--practice", "bsnr", help="BSNR")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="FILE.json; das PDF entsteht daneben als FILE.pdf",
)
@pass_context
def privacy_export(ctx: CliContext, username: str | None, bsnr: str | None, out: Path) -> None:
    """Alles, was über einen Benutzer oder eine Betriebsstätte gespeichert ist, als JSON
    und als PDF (nie Kennwörter oder Schlüssel); die Auskunft wird protokolliert."""
    if (username is None) == (bsnr is None):
        raise click.UsageError("Bitte genau eines angeben: --user NAME oder --practice BSNR")
    if out.suffix != ".json":
        raise ValidationError("--out muss auf .json enden (das PDF entsteht daneben)")
    templates = letters.load_templates(
        ctx.settings.letters.directory or letters.default_letters_dir()
    )
    # Both files are written before the commit (a failed write leaves no audit entry)
    # and moved into place after it.
    with ExitStack() as placed, ctx.unit_of_work() as session:
        if username is not None:
            report = privacy.for_user(session, username, actor=ctx.actor, now=ctx.now())
        else:
            report = privacy.for_practice(session, bsnr or "", actor=ctx.actor, now=ctx.now())
        pdf = out.with_suffix(".pdf")
        contents = {out: report.as_json(), pdf: privacypdf.render(report, templates)}
        placed.enter_context(privatefiles.new_files(contents))
    click.echo(f"Auskunft über {report.key}: {out} und {pdf}")
