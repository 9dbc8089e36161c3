"""Set-up and serving: keygen, init, db, serve, run."""

from __future__ import annotations

import os
import threading

import click
from werkzeug.serving import BaseWSGIServer

from flexnet.cli import CliContext, cli, configure_logging, pass_context
from flexnet.cli.radius_cmds import build_radius, print_radclient_hint
from flexnet.config import generate_master_key, instance_path_from
from flexnet.lifecycle.rules import BERLIN
from flexnet.ops import demo, migrate
from flexnet.ops.instance import ensure_instance
from flexnet.radius.server import Listen
from flexnet.staff.accounts import ensure_first_admin, first_admin


@cli.command()
def keygen() -> None:
    """Einen neuen Master-Schlüssel (FLEXNET_MASTER_KEY) ausgeben."""
    click.echo(generate_master_key())


@cli.command()
def init() -> None:
    """Instanzordner mit Konfiguration und neuen Schlüsseln anlegen (falls nicht vorhanden)."""
    for line in ensure_instance(instance_path_from(os.environ), os.environ):
        click.echo(line)


@cli.group()
def db() -> None:
    """Datenbankschema (Alembic-Migrationen)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Zielrevision")
@pass_context
def db_upgrade(ctx: CliContext, revision: str) -> None:
    """Datenbank auf den neuesten Stand bringen."""
    migrate.upgrade(ctx.database.engine, revision, audit_key=ctx.settings.chain_key)
    click.echo(f"Datenbankschema auf Stand {', '.join(migrate.current(ctx.database.engine))}")


@db.command("current")
@pass_context
def db_current(ctx: CliContext) -> None:
    """Aktuelle Revision anzeigen; Exit-Code 1, wenn Migrationen ausstehen."""
    engine = ctx.database.engine
    click.echo(", ".join(migrate.current(engine)) or "(leer)")
    if not migrate.is_up_to_date(engine):
        click.echo("Migrationen ausstehen: 'flexnet db upgrade' ausführen", err=True)
        raise SystemExit(1)


@db.command("revision")
@click.option("-m", "--message", required=True, help="Kurzbeschreibung der Änderung")
@pass_context
def db_revision(ctx: CliContext, message: str) -> None:
    """(Entwicklung) Neue Migration aus dem Unterschied Modelle ↔ Datenbank erzeugen."""
    migrate.revision(ctx.database.engine, message)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@pass_context
def serve(ctx: CliContext, host: str, port: int) -> None:
    """Web-Anwendung für die Entwicklung starten (Produktion: gunicorn flexnet.wsgi:app)."""
    _serve_web(ctx, host, port)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--auth-port", default=1812, show_default=True, type=click.IntRange(0, 65535))
@click.option("--acct-port", default=1813, show_default=True, type=click.IntRange(0, 65535))
@pass_context
def run(ctx: CliContext, host: str, port: int, auth_port: int, acct_port: int) -> None:
    """Alles für einen lokalen Start: Instanz, Datenbank, erster Admin, Web und RADIUS."""
    configure_logging()
    for line in ensure_instance(instance_path_from(os.environ), os.environ):
        click.echo(line)
    migrate.upgrade(ctx.database.engine, audit_key=ctx.settings.chain_key)
    click.echo(f"Datenbank: {ctx.settings.database_url.render_as_string(hide_password=True)}")
    with ctx.unit_of_work() as session:
        created = ensure_first_admin(session, now=ctx.now())
        demo_created = ctx.settings.demo and demo.ensure_demo(
            session, box=ctx.secret_box, instance=ctx.settings.instance_path, now=ctx.now()
        )
        admin = first_admin(session)
        admin_name = admin.username if admin else None
    if created:
        click.echo("")
        click.echo(
            "Erster Administrator angelegt. Kennwort und Einrichtungscode (für den zweiten "
            "Faktor) werden nur jetzt angezeigt:"
        )
        click.echo(f"  Benutzername:     {created.enrolment.username}")
        click.echo(f"  Kennwort:         {created.password}")
        click.echo(f"  Einrichtungscode: {created.enrolment.code}")
        click.echo(
            f"  (gültig bis {created.enrolment.expires_at.astimezone(BERLIN):%d.%m.%Y %H:%M})"
        )
    if demo_created:
        click.echo("Demo-Praxis, Benutzer 'demo' und ein Demo-Yubikey angelegt (FLEXNET_DEMO=1).")
    click.echo("")
    if ctx.settings.demo:
        print_radclient_hint(ctx, auth_port)
    click.echo("Weitere Befehle (in einem zweiten Terminal, mit 'source .venv/bin/activate'):")
    click.echo("  flexnet practice add --bsnr 881234500 --name 'Praxis Dr. Muster' \\")
    click.echo("      --street 'Doctor-Eisenbart-Ring 2' --zip 39120 --city Magdeburg")
    click.echo("  flexnet --help   (alle Befehle)")
    web = f"http://{_browsable(host)}:{port}"
    click.echo(f"Startseite: {web}/   RADIUS: {host}:{auth_port}/{acct_port}")
    if admin_name:
        click.echo(f"Verwaltung: {web}/admin/ (Anmeldung als {admin_name})")
        if not created:
            click.echo("  Das Kennwort wurde beim ersten Start angezeigt.")
    click.echo("Beenden mit Strg+C (beendet Web und RADIUS).")
    server = _web_thread(ctx, host, port)
    try:
        build_radius(ctx, Listen(host, auth_port, acct_port)).run()
    finally:
        server.shutdown()


def _browsable(host: str) -> str:
    """The address a browser on this machine uses for ``host``."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - a comparison


def _web_thread(ctx: CliContext, host: str, port: int) -> BaseWSGIServer:
    from werkzeug.serving import make_server

    from flexnet import create_app

    server = make_server(host, port, create_app(ctx.settings), threaded=True)
    threading.Thread(target=server.serve_forever, name="web", daemon=True).start()
    return server


def _serve_web(ctx: CliContext, host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    from flexnet import create_app

    run_simple(host, port, create_app(ctx.settings), threaded=True, use_reloader=False)
