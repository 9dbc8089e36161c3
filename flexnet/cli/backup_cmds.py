"""Backup and restore of the embedded SQLite database (PostgreSQL: pg_dump, see README)."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy.engine import make_url

from flexnet import audit
from flexnet.audit import Actor, AuditTag
from flexnet.cli import CliContext, cli, invoking_login, pass_context, read_password_stdin
from flexnet.cli.instance_cmds import db
from flexnet.errors import ValidationError
from flexnet.ops import backup, carryover, migrate


@cli.command("backup")
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
@pass_context
def backup_command(ctx: CliContext, destination: Path) -> None:
    """SQLite-Datenbank im laufenden Betrieb in eine neue Datei sichern."""
    backup.sqlite_file(ctx.settings.database_url)  # PostgreSQL: pointed to pg_dump first
    # Backups are also made by timers: without a person, the system makes them.
    actor = ctx.acting(system=f"backup:{invoking_login()}")
    info = backup.backup(ctx.settings.database_url, destination)
    with ctx.unit_of_work() as session:
        audit.record(
            session,
            AuditTag.DATABASE_BACKUP,
            actor=actor,
            data={"file": info.path.name, "bytes": info.size, "revision": info.revision},
            now=ctx.now(),
        )
    click.echo(
        f"Sicherung geschrieben: {info.path} ({info.size} Bytes, Schemastand {info.revision})"
    )


@cli.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Ohne Rückfrage (für Skripte).")
@click.option(
    "--discard-live-state",
    is_flag=True,
    help="Nur wenn die laufende Datenbank verloren ist: Zählerstände und Sperren seit der "
    "Sicherung gehen verloren.",
)
@pass_context
def restore_command(ctx: CliContext, source: Path, yes: bool, discard_live_state: bool) -> None:
    """Eine Sicherung zurückspielen. RADIUS-Server und Web-Anwendung vorher anhalten.

    OTP-Zählerstände, Sperren und geänderte Kennwörter seit der Sicherung werden aus der
    bisherigen Datenbank übernommen; sie selbst bleibt als Kopie daneben liegen.
    """
    live = backup.sqlite_file(ctx.settings.database_url)
    if not yes:
        click.confirm(
            f"{live} durch die Sicherung {source} ersetzen? "
            "RADIUS-Server und Web-Anwendung müssen angehalten sein",
            abort=True,
        )
    # Without the live database there is no staff account to look up (and reading it
    # would create an empty file in its place).
    system = f"restore:{invoking_login()}"
    actor = ctx.acting(system=system) if live.exists() else Actor.system(system)
    report = backup.restore(
        ctx.settings.database_url,
        source,
        actor=actor,
        now=ctx.now(),
        audit_key=ctx.settings.chain_key,
        discard_live_state=discard_live_state,
    )
    click.echo(f"Wiederhergestellt aus {source} (Schemastand {report.backup.revision})")
    if report.safety_copy is not None:
        click.echo(f"Bisherige Datenbank aufbewahrt als {report.safety_copy}")
    if report.carried is None:
        click.echo(
            "WARNUNG: Zählerstände und Sperren seit der Sicherung wurden nicht übernommen. "
            "Verlorene Yubikeys erneut sperren; jeder Yubikey sollte bald einmal benutzt werden.",
            err=True,
        )
        return
    _echo_carried(report.carried)


@db.command("carry-state")
@click.argument("replaced_url")
@pass_context
def db_carry_state(ctx: CliContext, replaced_url: str) -> None:
    """Nach pg_restore: Zählerstände, Sperren und geänderte Zugangsdaten aus der ersetzten
    Datenbank in die konfigurierte übernehmen. REPLACED_URL '-' liest die URL von stdin
    (so steht ihr Kennwort nicht in der Prozessliste)."""
    if replaced_url == "-":
        replaced_url = read_password_stdin()
    if not migrate.is_up_to_date(ctx.database.engine):
        raise ValidationError("Erst 'flexnet db upgrade' für die wiederhergestellte Datenbank")
    replaced = make_url(replaced_url)
    if replaced == ctx.settings.database_url:
        raise ValidationError("Ersetzte und wiederhergestellte Datenbank sind dieselbe")
    carried = carryover.carry_between(
        replaced,
        ctx.settings.database_url,
        actor=ctx.acting(system=f"restore:{invoking_login()}"),
        now=ctx.now(),
        audit_key=ctx.settings.chain_key,
        carried_from=replaced.database,
    )
    _echo_carried(carried)


def _echo_carried(carried: carryover.CarriedState) -> None:
    click.echo(
        f"Übernommen: {carried.counters} Zählerstände, {carried.locks} Sperren, "
        f"{carried.credentials} geänderte Zugangsdaten oder Rollen, "
        f"{carried.failures} Fehlversuchszähler"
    )
    if carried.missing:
        click.echo(
            f"Yubikeys nicht in der Sicherung (jetzt unbekannt, neu importieren): "
            f"{', '.join(carried.missing)}",
            err=True,
        )
