"""The association's registry: ``flexnet registry import FILE.csv [--dry-run]``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from flexnet.cli import CliContext, cli, echo_text, pass_context
from flexnet.errors import ValidationError
from flexnet.otp.importer import ImportFailed
from flexnet.provisioning import registry, registry_file
from flexnet.provisioning.registry_report import report_lines, summary


@cli.group("registry")
def registry_group() -> None:
    """Register der KV Sachsen-Anhalt: Mitglieder und Betriebsstätten übernehmen."""


@registry_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Nur zeigen, was sich ändern würde")
@pass_context
def registry_import(ctx: CliContext, file: Path, dry_run: bool) -> None:
    """Export des Registers einlesen (CSV, siehe docs/IMPORT_FORMATS.md): Neues anlegen,
    Änderungen (Anschriften, Namen, Ende der Tätigkeit) übernehmen, nichts löschen; eine
    fehlerhafte Zeile und nichts wird geändert."""
    quarters = ctx.settings.lock_after_quarters
    now = ctx.now()
    try:
        rows = registry_file.parse(file.read_bytes())
        # Run nightly by a timer, it acts as the system when no one is named.
        actor = None if dry_run else ctx.acting(system="registry")
        with ctx.reading() if dry_run else ctx.unit_of_work() as session:
            planned = registry.plan(session, rows, now=now, quarters=quarters)
            lines = report_lines(planned)
            if actor is not None:
                with _progress(planned.steps) as step:
                    registry.apply(
                        session, planned, actor=actor, now=now, quarters=quarters, progress=step
                    )
    except ImportFailed as failed:
        for error in failed.errors:
            echo_text(error, err=True)
        raise ValidationError(
            f"Import abgebrochen, nichts geändert ({len(failed.errors)} Fehler)"
        ) from None
    for line in lines:
        echo_text(line)
    echo_text(summary(planned, dry_run=dry_run))


@contextmanager
def _progress(steps: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal (standard error), none in a pipe or a log."""
    if not sys.stderr.isatty() or steps == 0:
        yield lambda _n: None
        return
    with click.progressbar(length=steps, label="Register", file=sys.stderr) as bar:
        yield bar.update
