"""The audit trail from the command line: verification (with the audit key and against
checkpoints kept elsewhere), checkpoints, key rotation and the officer's export."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from datetime import date
from pathlib import Path

import click

from flexnet import audit
from flexnet.audit import AuditKey, ChainReport
from flexnet.cli import DATE, CliContext, cli, echo_text, pass_context, read_password_stdin
from flexnet.config import parse_audit_key
from flexnet.errors import ConfigError, ValidationError
from flexnet.lifecycle.rules import BERLIN
from flexnet.ops import auditexport, checkpoints, keyrotation, privatefiles


@cli.group("audit")
def audit_group() -> None:
    """Revisionsprotokoll (versiegelte Hash-Kette, Prüfpunkte, Export)."""


def audit_key(ctx: CliContext) -> AuditKey:
    key = ctx.settings.chain_key
    if key is None:  # load_settings requires it; settings built in code may lack it
        raise ValidationError("FLEXNET_AUDIT_KEY ist nicht gesetzt")
    return key


@audit_group.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Prüfpunktdatei (z. B. die ausgelagerte audit-checkpoints.jsonl)",
)
@pass_context
def audit_verify(ctx: CliContext, checkpoint_file: Path | None) -> None:
    """Kette, Siegel und ggf. Prüfpunkte prüfen; Exit-Code 1, wenn etwas nicht passt."""
    key = audit_key(ctx)
    statements = checkpoints.read(checkpoint_file) if checkpoint_file else []
    with ctx.reading() as session:
        report = audit.verify_chain(
            session, retention_years=ctx.settings.audit_retention_years, key=key
        )
        findings = checkpoints.check(session, statements, key=key, chain=report)
    if not report.ok:
        _broken(report)
    click.echo(f"Revisionsprotokoll intakt: {report.entries} Einträge mit Siegel geprüft")
    if report.purged_before is not None:
        cut = report.purged_before.astimezone(BERLIN)
        click.echo(f"Nach Aufbewahrungsfrist gelöscht: Einträge vor dem {cut:%d.%m.%Y}")
    click.echo(f"Letzter Eintrag {report.head_id}, Hash {report.head}")
    click.echo(f"Prüfpunkt-Schlüssel: {key.fingerprint}")
    problems = [finding for finding in findings if finding.problem]
    for finding in findings:
        what = f"Prüfpunkt vom {finding.written_at} (Eintrag {finding.entry})"
        if finding.problem:
            echo_text(f"{what}: {finding.problem}", err=True)
        elif finding.note:
            echo_text(f"{what}: {finding.note}")
    if findings:
        click.echo(f"Prüfpunkte: {len(findings)} geprüft, {len(problems)} passen nicht")
    if problems:
        raise SystemExit(1)


def _broken(report: ChainReport) -> None:
    click.echo(
        f"Revisionsprotokoll GEBROCHEN bei Eintrag {report.first_broken_id}: {report.problem}",
        err=True,
    )
    if report.entries == 1 and (report.problem or "").startswith("Siegel falsch"):
        click.echo("Schon der erste Eintrag: ist FLEXNET_AUDIT_KEY der richtige?", err=True)
    raise SystemExit(1)


@audit_group.command("checkpoint")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Datei, an die angehängt wird (Standard: {checkpoints.FILE_NAME} im Instanzordner)",
)
@pass_context
def audit_checkpoint(ctx: CliContext, out: Path | None) -> None:
    """Einen signierten Prüfpunkt des letzten Eintrags schreiben (zum Auslagern)."""
    write_checkpoint(ctx, out or ctx.settings.instance_path / checkpoints.FILE_NAME)


def write_checkpoint(ctx: CliContext, path: Path) -> None:
    """A checkpoint of the head now: appended to ``path``, logged and shown."""
    with ctx.reading() as session:
        statement = checkpoints.make(session, audit_key(ctx), now=ctx.now())
    line = checkpoints.publish(statement, path)
    # On standard output too: under systemd that is the journal, a second copy elsewhere.
    click.echo(f"Prüfpunkt (angehängt an {path}): {line}")


@audit_group.command("rotate-key")
@click.option(
    "--new-key-stdin", is_flag=True, required=True, help="Neuen Schlüssel von stdin lesen"
)
@pass_context
def audit_rotate_key(ctx: CliContext, new_key_stdin: bool) -> None:
    """Alle Siegel in einer Transaktion mit einem neuen FLEXNET_AUDIT_KEY erneuern.

    Vorher Web, RADIUS und den nächtlichen Lauf auf allen Knoten anhalten: ein Eintrag,
    den ein Prozess mit dem alten Schlüssel danach schreibt, passt nicht mehr.
    """
    try:
        new = AuditKey(parse_audit_key(read_password_stdin().strip()))
    except ConfigError:
        raise ValidationError(
            "Der neue Schlüssel muss 32 Zufallsbytes in URL-sicherem Base64 enthalten "
            "(erzeugen mit 'flexnet keygen'); nichts geändert"
        ) from None
    with ctx.unit_of_work() as session:
        count = keyrotation.rotate_audit_key(
            session,
            old=audit_key(ctx),
            new=new,
            actor=ctx.actor,
            now=ctx.now(),
            retention_years=ctx.settings.audit_retention_years,
        )
    click.echo(
        f"{count} Einträge neu versiegelt; neuer Prüfpunkt-Schlüssel {new.fingerprint}. "
        "Jetzt FLEXNET_AUDIT_KEY auf allen Knoten ersetzen und neu starten."
    )


@audit_group.command("export")
@click.option("--from", "first", required=True, type=DATE, help="Erster Tag")
@click.option("--to", "last", required=True, type=DATE, help="Letzter Tag (einschließlich)")
@click.option("--subject", help="Nur dieser Gegenstand (BSNR, Benutzername, Seriennummer …)")
@click.option("--actor", "by_actor", help="Nur dieser Handelnde")
@click.option("--csv", "as_format", flag_value="csv", help="CSV (Semikolon, UTF-8 mit BOM)")
@click.option("--json", "as_format", flag_value="json", help="JSON")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Datei (neu)")
@pass_context
def audit_export(
    ctx: CliContext,
    first: date,
    last: date,
    subject: str | None,
    by_actor: str | None,
    as_format: str | None,
    out: Path | None,
) -> None:
    """Das Revisionsprotokoll eines Zeitraums für die Datenschutzbeauftragte ausgeben."""
    if as_format is None:
        raise click.UsageError("Bitte --csv oder --json angeben")
    period = auditexport.Period(first, last, subject or None, by_actor or None)
    # The file is written before the commit (a failed write leaves no audit entry) and
    # moved into place after it.
    with ExitStack() as placed, ctx.unit_of_work() as session:
        content = auditexport.export(
            session, period, as_format=as_format, actor=ctx.actor, now=ctx.now()
        )
        if out is not None:
            placed.enter_context(privatefiles.new_files({out: content}))
    if out is None:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return
    click.echo(f"Export geschrieben: {out}", err=True)
