"""The association's registry: ``flexnet registry import FILE.csv [--dry-run]``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from flexnet.cli import CliContext, cli, echo_text, pass_context
from flexnet.errors import ValidationError
from flexnet.labels import FIELD_LABEL
from flexnet.otp.importer import ImportFailed
from flexnet.provisioning import registry, registry_file
from flexnet.provisioning.registry import Plan, day_text

_LABELS = {**FIELD_LABEL, "activity_ended_on": "Ende der Tätigkeit"}


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
    echo_text(_summary(planned, dry_run))


@contextmanager
def _progress(steps: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal (standard error), none in a pipe or a log."""
    if not sys.stderr.isatty() or steps == 0:
        yield lambda _n: None
        return
    with click.progressbar(length=steps, label="Register", file=sys.stderr) as bar:
        yield bar.update


def report_lines(planned: Plan) -> list[str]:
    """The diff: what is (or would be) created and changed, old → new; what is skipped;
    the unchanged and those the file does not name, counted."""
    lines = []
    for practice in planned.practices:
        row = practice.row
        if practice.practice is None:
            extra = f"{row.address_extra}, " if row.address_extra else ""
            lines.append(
                f"Neu: Betriebsstätte {row.bsnr} {row.name}, {extra}{row.street}, "
                f"{row.zip_code} {row.city}"
            )
        else:
            lines.append(f"Geändert: Betriebsstätte {row.bsnr}: {_changes(practice.changes)}")
    for member in planned.members:
        row = member.row
        who = f"Mitglied LANR {row.lanr} {row.member_name} bei BSNR {row.bsnr}"
        if member.user is None:
            end = f", Ende der Tätigkeit {row.ended_on:%d.%m.%Y}" if row.ended_on else ""
            lines.append(f"Neu: {who}, Benutzer {member.username}{end}")
        else:
            lines.append(f"Geändert: {who} ({member.username}): {_changes(member.changes)}")
    for row, why in planned.skipped:
        lines.append(f"Übersprungen: Mitglied LANR {row.lanr} bei BSNR {row.bsnr}: {why}")
    lines.append(
        f"Unverändert: {planned.unchanged_practices} Betriebsstätten, "
        f"{planned.unchanged_members} Mitglieder"
    )
    if planned.not_in_file:
        lines.append(
            f"Nicht in der Datei (bleiben, wie sie sind): {planned.not_in_file} Mitglieder"
        )
    return lines


def _changes(changes: registry.Change) -> str:
    return "; ".join(
        f"{_LABELS.get(name, name)}: {_value(old)} → {_value(new)}"
        for name, (old, new) in changes.items()
    )


def _value(value: object) -> str:
    if value is None or value == "":
        return "–"
    if hasattr(value, "strftime"):
        return day_text(value)  # type: ignore[arg-type]
    return str(value)


def _summary(planned: Plan, dry_run: bool) -> str:
    created = sum(p.practice is None for p in planned.practices)
    members = sum(m.user is None for m in planned.members)
    counts = (
        f"{created} Betriebsstätten neu, {len(planned.practices) - created} geändert; "
        f"{members} Mitglieder neu, {len(planned.members) - members} geändert"
    )
    if dry_run:
        return f"Probelauf, nichts geändert: {counts}"
    return f"Übernommen: {counts}" if planned.steps else "Nichts zu ändern"
