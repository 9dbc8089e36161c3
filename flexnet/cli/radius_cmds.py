"""The RADIUS server, its NAS clients, and the demo helpers."""

from __future__ import annotations

import os
import sys

import click

from flexnet.cli import (
    CliContext,
    add_switch_commands,
    cli,
    configure_logging,
    echo_text,
    pass_context,
    read_password_stdin,
)
from flexnet.clients import apiclients, nas, profiles
from flexnet.config import parse_metrics_address
from flexnet.models import StaffRole
from flexnet.ops import demo
from flexnet.radius import workers as radius_workers
from flexnet.radius.packets import load_dictionary
from flexnet.radius.server import Listen, RadiusServer
from flexnet.radius.tls import TlsConfig, server_context


def build_radius(ctx: CliContext, listen: Listen) -> RadiusServer:
    """The RADIUS server in this process (``flexnet run``: beside the web app)."""
    server = radius_workers.build_server(ctx.settings, listen)
    click.get_current_context().find_root().call_on_close(server.handler.database.dispose)
    return server


@cli.command()
@click.option(
    "--bind",
    "binds",
    multiple=True,
    default=["127.0.0.1"],
    show_default=True,
    help="Adresse, mehrfach angebbar; :: nimmt IPv6 und IPv4 an",
)
@click.option("--auth-port", default=1812, show_default=True, type=click.IntRange(0, 65535))
@click.option("--acct-port", default=1813, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Prozesse, die sich die Ports teilen (SO_REUSEPORT): einer je Prozessorkern",
)
@click.option(
    "--threads",
    default=Listen.threads,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads je Prozess (Anfragen, die zugleich entschieden werden)",
)
@click.option(
    "--metrics",
    default=None,
    metavar="[ADRESSE:]PORT",
    help="Prometheus-Metriken unter http://ADRESSE:PORT/metrics, alle Worker zusammen "
    "(Vorgabe: FLEXNET_RADIUS_METRICS, sonst aus; nur Loopback-Adressen, außer mit "
    "FLEXNET_RADIUS_METRICS_REMOTE=1)",
)
@click.option(
    "--tls-port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="RADIUS über TLS (RFC 6614, üblich 2083); 0: aus",
)
@click.option(
    "--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Serverzertifikat (PEM)"
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False),
    help="Privater Schlüssel des Serverzertifikats (PEM)",
)
@click.option(
    "--tls-ca",
    type=click.Path(exists=True, dir_okay=False),
    help="CA der Client-Zertifikate (PEM); jedes Zertifikat zudem je NAS hinterlegt",
)
@pass_context
def radius(
    ctx: CliContext,
    binds: tuple[str, ...],
    auth_port: int,
    acct_port: int,
    workers: int,
    threads: int,
    metrics: str | None,
    tls_port: int,
    tls_cert: str | None,
    tls_key: str | None,
    tls_ca: str | None,
) -> None:
    """RADIUS-Server für die VPN-Konzentratoren starten (Strg+C beendet).

    Mit --tls-port zusätzlich RADIUS über TLS: nur mit einem Client-Zertifikat der
    --tls-ca, das bei einem aktiven NAS hinterlegt ist (flexnet nas set NAME
    --tls-fingerprint …).
    """
    configure_logging()
    tls = None
    if tls_port:
        if not (tls_cert and tls_key and tls_ca):
            raise click.UsageError("--tls-port braucht --tls-cert, --tls-key und --tls-ca")
        tls = TlsConfig(tls_port, tls_cert, tls_key, tls_ca)
        try:  # a bad file or key is named now, not on the first connection
            server_context(tls)
        except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
            raise click.ClickException(
                f"Zertifikat, Schlüssel oder CA für TLS nicht verwendbar: {error}"
            ) from None
    elif tls_cert or tls_key or tls_ca:
        raise click.UsageError("--tls-cert, --tls-key und --tls-ca nur mit --tls-port")
    listen = Listen(binds[0], auth_port, acct_port, threads=threads, also=tuple(binds[1:]), tls=tls)
    address = ctx.settings.radius_metrics
    if metrics is not None:
        try:
            address = parse_metrics_address(metrics, remote=ctx.settings.radius_metrics_remote)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--metrics") from None
    radius_workers.serve(ctx.settings, listen, workers, metrics_address=address)


@cli.group("nas")
def nas_group() -> None:
    """NAS-Clients (VPN-Konzentratoren) mit eigenem Geheimnis."""


@nas_group.command("add")
@click.argument("name")
@click.option("--address", required=True, help="IP-Adresse oder Netz (CIDR), nie 0.0.0.0/0")
@click.option("--secret-stdin", is_flag=True, required=True, help="Geheimnis von stdin lesen")
@click.option(
    "--allow-missing-message-authenticator",
    is_flag=True,
    help="Nur für alte NAS: Anfragen ohne Message-Authenticator annehmen (unsicher)",
)
@click.option(
    "--coa-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port für Disconnect-Requests (RFC 5176), meist 3799",
)
@click.option(
    "--proxy",
    is_flag=True,
    help="RADIUS-Proxy vor mehreren Konzentratoren: Sitzungen nach NAS-IP-Address/"
    "NAS-Identifier des Konzentrators unterscheiden",
)
@click.option(
    "--tls-fingerprint",
    default=None,
    help="RADIUS über TLS: SHA-256-Fingerabdruck des Client-Zertifikats dieses NAS "
    "(openssl x509 -noout -fingerprint -sha256)",
)
@pass_context
def nas_add(
    ctx: CliContext,
    name: str,
    address: str,
    secret_stdin: bool,
    allow_missing_message_authenticator: bool,
    coa_port: int | None,
    proxy: bool,
    tls_fingerprint: str | None,
) -> None:
    """NAS-Client anlegen."""
    secret = read_password_stdin()
    with ctx.unit_of_work() as session:
        created = nas.add_nas(
            session,
            name=name,
            address=address,
            secret=secret,
            box=ctx.secret_box,
            actor=ctx.actor,
            now=ctx.now(),
            allow_missing_message_authenticator=allow_missing_message_authenticator,
            coa_port=coa_port,
            proxy=proxy,
            tls_fingerprint=tls_fingerprint,
        )
    click.echo(f"NAS {created.name} ({created.address}) angelegt")


@nas_group.command("set-secret")
@click.argument("name")
@click.option("--secret-stdin", is_flag=True, required=True, help="Geheimnis von stdin lesen")
@pass_context
def nas_set_secret(ctx: CliContext, name: str, secret_stdin: bool) -> None:
    """Neues gemeinsames Geheimnis setzen.

    Etwa wenn das alte bekannt geworden sein kann: damit lassen sich aufgezeichnete
    Kennwörter samt Einmalkennwort entschlüsseln. Die RADIUS-Server verwenden das neue
    binnen einer Minute, danach gilt das alte nicht mehr; es zugleich am Konzentrator
    eintragen.
    """
    secret = read_password_stdin()
    with ctx.unit_of_work() as session:
        changed = nas.set_secret(
            session, name=name, secret=secret, box=ctx.secret_box, actor=ctx.actor, now=ctx.now()
        )
        shown = changed.name
    click.echo(
        f"Geheimnis von NAS {shown} geändert; die RADIUS-Server verwenden es binnen einer Minute"
    )


YES_NO = click.Choice(["yes", "no"])


@nas_group.command("set")
@click.argument("name")
@click.option("--address", default=None, help="Neue IP-Adresse oder neues Netz (CIDR)")
@click.option(
    "--allow-missing-message-authenticator",
    "allow_missing",
    type=YES_NO,
    default=None,
    help="yes: Anfragen ohne Message-Authenticator annehmen (nur alte NAS; unsicher)",
)
@click.option(
    "--coa-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port für Disconnect-Requests (RFC 5176); 0: keine Disconnect-Requests",
)
@click.option(
    "--proxy",
    type=YES_NO,
    default=None,
    help="yes: ein RADIUS-Proxy vor mehreren Konzentratoren (Sitzungen nach NAS-IP-Address/"
    "NAS-Identifier unterschieden)",
)
@click.option(
    "--tls-fingerprint",
    default=None,
    help="RADIUS über TLS: SHA-256-Fingerabdruck des Client-Zertifikats; none: kein TLS",
)
@pass_context
def nas_set(
    ctx: CliContext,
    name: str,
    address: str | None,
    allow_missing: str | None,
    coa_port: int | None,
    proxy: str | None,
    tls_fingerprint: str | None,
) -> None:
    """Eigenschaften eines NAS-Clients ändern (Geheimnis: set-secret).

    Nur die angegebenen ändern sich; jede Änderung wird protokolliert. Die
    RADIUS-Server übernehmen sie binnen einer Minute.
    """
    with ctx.unit_of_work() as session:
        changed = nas.change_nas(
            session,
            name=name,
            actor=ctx.actor,
            now=ctx.now(),
            address=nas.KEEP if address is None else address,
            allow_missing_message_authenticator=(
                nas.KEEP if allow_missing is None else allow_missing == "yes"
            ),
            coa_port=nas.KEEP if coa_port is None else (coa_port or None),
            proxy=nas.KEEP if proxy is None else proxy == "yes",
            tls_fingerprint=(
                nas.KEEP
                if tls_fingerprint is None
                else None
                if tls_fingerprint.strip().lower() == "none"
                else tls_fingerprint
            ),
        )
        shown = (
            f"NAS {changed.name}: Adresse {changed.address}, Message-Authenticator "
            f"{'darf fehlen' if changed.allow_missing_message_authenticator else 'Pflicht'}, "
            f"CoA-Port {changed.coa_port or 'keiner'}"
            f"{', Proxy' if changed.proxy else ''}"
            f"{', TLS-Zertifikat ' + changed.tls_fingerprint if changed.tls_fingerprint else ''}"
        )
    click.echo(f"{shown}; die RADIUS-Server übernehmen es binnen einer Minute")


add_switch_commands(
    nas_group,
    nas.set_active,
    metavar="NAME",
    help_texts=(
        "NAS-Client deaktivieren. Die RADIUS-Server verwerfen seine Pakete binnen einer Minute.",
        "NAS-Client wieder zulassen. Er gilt mit seinem bisherigen Geheimnis.",
    ),
    done=(
        "NAS {name} deaktiviert; die RADIUS-Server verwerfen seine Pakete binnen einer Minute",
        "NAS {name} wieder aktiv; die RADIUS-Server nehmen ihn binnen einer Minute an",
    ),
)


@cli.group("profile")
def profile_group() -> None:
    """Zugangsprofile: RADIUS-Antwortattribute (z. B. Filter-Id, Class, Session-Timeout)."""


@profile_group.command("list")
@pass_context
def profile_list(ctx: CliContext) -> None:
    """Alle Profile mit ihren Attributen anzeigen."""
    with ctx.reading() as session:
        for profile in profiles.list_profiles(session):
            pairs = ", ".join(f"{n}={v}" for n, v in profile.reply_attributes) or "(keine)"
            echo_text(f"{profile.name:<18}{pairs}   {profile.description}")


@profile_group.command("set")
@click.argument("name")
@click.option("--attr", "attrs", multiple=True, help="Attribut=Wert, mehrfach angebbar")
@click.option("--description", default=None)
@pass_context
def profile_set(
    ctx: CliContext, name: str, attrs: tuple[str, ...], description: str | None
) -> None:
    """Profil anlegen oder seine Attribute ersetzen (RADIUS-Server übernimmt binnen 30 s)."""
    attributes = profiles.parse_attributes(attrs, load_dictionary())
    with ctx.unit_of_work() as session:
        profile = profiles.set_profile(
            session,
            name=name,
            attributes=attributes,
            description=description,
            actor=ctx.actor,
            now=ctx.now(),
        )
    click.echo(f"Profil {profile.name} gespeichert: {len(attributes)} Attribut(e)")


@cli.group("api-client")
def api_client_group() -> None:
    """Clients der HTTP-API (/api/v1), z. B. Portale mit gemeinsamem Kennwort (§ 5.4)."""


@api_client_group.command("add")
@click.argument("name")
@click.option("--require-otp", is_flag=True, help="Anfragen müssen ein Yubikey-OTP enthalten")
@click.option(
    "--role",
    type=click.Choice([role.value for role in StaffRole]),
    default=None,
    help="Zugriff auf /api/v1 über /auth hinaus: auditor (lesen), helpdesk, admin",
)
@pass_context
def api_client_add(ctx: CliContext, name: str, require_otp: bool, role: str | None) -> None:
    """API-Client anlegen; gibt den Schlüssel einmalig aus ('key=...')."""
    with ctx.unit_of_work() as session:
        _, key = apiclients.add_client(
            session,
            name=name,
            require_otp=require_otp,
            role=StaffRole(role) if role else None,
            actor=ctx.actor,
            now=ctx.now(),
        )
    click.echo(f"key={key}")


@api_client_group.command("regenerate")
@click.argument("name")
@pass_context
def api_client_regenerate(ctx: CliContext, name: str) -> None:
    """Neuen Schlüssel erzeugen; der alte gilt sofort nicht mehr ('key=...')."""
    with ctx.unit_of_work() as session:
        key = apiclients.regenerate_key(session, name=name, actor=ctx.actor, now=ctx.now())
    click.echo(f"key={key}")


add_switch_commands(
    api_client_group,
    apiclients.set_active,
    metavar="NAME",
    help_texts=(
        "API-Client deaktivieren. Sein Schlüssel wird sofort abgewiesen (401).",
        "API-Client wieder zulassen. Er gilt mit seinem bisherigen Schlüssel.",
    ),
    done=(
        "API-Client {name} deaktiviert; sein Schlüssel wird abgewiesen",
        "API-Client {name} wieder aktiv",
    ),
)


@cli.group("demo")
def demo_group() -> None:
    """Demo-Instanz (nur mit FLEXNET_DEMO=1)."""


@demo_group.command("otp")
@pass_context
def demo_otp(ctx: CliContext) -> None:
    """Das nächste Einmalkennwort des Demo-Yubikeys ausgeben."""
    with ctx.reading() as session:
        click.echo(demo.next_otp(session, box=ctx.secret_box))


def print_radclient_hint(ctx: CliContext, auth_port: int) -> None:
    creds = demo.credentials(ctx.settings.instance_path)
    if creds is None:
        return
    with ctx.reading() as session:
        otp = demo.next_otp(session, box=ctx.secret_box)
    flexnet = os.path.join(os.path.dirname(sys.argv[0]), "flexnet")
    click.echo("Demo-Anmeldung über RADIUS (Kennwort + Einmalkennwort in einem Feld):")
    click.echo(
        f"  echo \"User-Name={creds.username},User-Password='{creds.password}{otp}',"
        f'Message-Authenticator=0x00" | radclient -x 127.0.0.1:{auth_port} auth '
        f"'{creds.nas_secret}'"
    )
    click.echo(f"  Nächstes Einmalkennwort: {flexnet} demo otp")
