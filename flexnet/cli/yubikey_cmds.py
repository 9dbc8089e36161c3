"""Yubikeys and secrets: import, assign, show, resync; master key rotation; wsapi clients."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from flexnet.cli import (
    CliContext,
    add_switch_commands,
    cli,
    echo_text,
    pass_context,
    read_password_stdin,
)
from flexnet.cli.show import token_lines
from flexnet.config import parse_master_key
from flexnet.errors import ConfigError, ValidationError
from flexnet.ops import keyrotation
from flexnet.otp import importer, stock, wsapi
from flexnet.otp.secrets import SecretBox, SecretError
from flexnet.otp.verify import OtpReason
from flexnet.provisioning import issuance, mailruns


@cli.group()
def yubikey() -> None:
    """Yubikeys: Import in den Bestand, Zuweisung, Anzeige, Resynchronisierung."""


@yubikey.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in importer.Format]),
    default="auto",
    show_default=True,
    help="ykman-CSV, Personalisierungs-Tool-Log oder PSKC",
)
@click.option(
    "--pskc-passphrase-stdin", is_flag=True, help="Passphrase einer verschlüsselten PSKC-Datei"
)
@pass_context
def yubikey_import(ctx: CliContext, file: Path, fmt: str, pskc_passphrase_stdin: bool) -> None:
    """Programmierte Yubikeys in den Bestand übernehmen: alles oder nichts."""
    passphrase = read_password_stdin() if pskc_passphrase_stdin else None
    try:
        keys = importer.parse(file.read_bytes(), importer.Format(fmt), passphrase=passphrase)
        with (
            ctx.unit_of_work() as session,
            click.progressbar(length=len(keys), label="Import", file=sys.stderr) as bar,
        ):
            summary = importer.import_keys(
                session,
                keys,
                box=ctx.secret_box,
                actor=ctx.actor,
                now=ctx.now(),
                progress=bar.update,
            )
    except importer.ImportFailed as failed:
        for error in failed.errors:
            echo_text(error, err=True)
        above = " oben" if failed.count > len(failed.errors) else ""
        raise ValidationError(
            f"Import abgebrochen, nichts übernommen ({failed.summary}{above})"
        ) from None
    again = (
        f"; davon {summary.reprogrammed} zurückgegeben und neu programmiert"
        if summary.reprogrammed
        else ""
    )
    click.echo(
        f"{summary.total} Yubikeys importiert (Yubico OTP: {summary.yubico_otp}, "
        f"OATH-HOTP: {summary.oath_hotp}){again}"
    )


@yubikey.command("register-remote")
@click.argument("serial")
@click.argument("public_id")
@pass_context
def yubikey_register_remote(ctx: CliContext, serial: str, public_id: str) -> None:
    """Yubikey erfassen, dessen Schlüssel bei einem externen Yubico-Prüfdienst liegt."""
    if not ctx.settings.otp.remote_urls:
        raise ValidationError("FLEXNET_YUBICO_API_URLS ist nicht gesetzt: kein Prüfdienst")
    with ctx.unit_of_work() as session:
        token = stock.register_remote(
            session, serial=serial, public_id=public_id, actor=ctx.actor, now=ctx.now()
        )
    click.echo(f"Yubikey {token.serial} erfasst (Prüfung über externen Dienst)")


@yubikey.command("assign")
@click.argument("serial")
@click.option("--practice", "bsnr", required=True, help="BSNR der Betriebsstätte")
@pass_context
def yubikey_assign(ctx: CliContext, serial: str, bsnr: str) -> None:
    """Yubikey aus dem Lager einer Betriebsstätte zuweisen (einer je BSNR)."""
    with ctx.unit_of_work() as session:
        letter = issuance.issue_key(
            session,
            serial=serial,
            bsnr=bsnr,
            actor=ctx.actor,
            now=ctx.now(),
            quarters=ctx.settings.lock_after_quarters,
        )
    click.echo(
        f"Yubikey {serial.strip()} der BSNR {bsnr.strip()} zugewiesen; "
        f"Begleitschreiben {mailruns.reference(letter)} vorgemerkt"
    )


@yubikey.command("replace")
@click.argument("bsnr")
@click.option("--new", "new_serial", required=True, help="Seriennummer des Ersatz-Yubikeys")
@click.option(
    "--lost", "why", flag_value=issuance.Replacement.LOST.value, help="Verlust (§ 6.3: Gebühr)"
)
@click.option("--defective", "why", flag_value=issuance.Replacement.DEFECTIVE.value)
@click.option(
    "--takeover",
    "why",
    flag_value=issuance.Replacement.TAKEOVER.value,
    help="Praxisübernahme (§ 2.3): der alte wird gesperrt und zurückgefordert, keine Gebühr",
)
@click.option(
    "--on-first-use",
    is_flag=True,
    help="Nur bei Defekt: der alte Yubikey gilt, bis der neue zum ersten Mal benutzt wird",
)
@pass_context
def yubikey_replace(
    ctx: CliContext, bsnr: str, new_serial: str, why: str | None, on_first_use: bool
) -> None:
    """Verlorenen, defekten oder übernommenen Yubikey einer Betriebsstätte ersetzen."""
    if why is None:
        raise ValidationError("Bitte --lost, --defective oder --takeover angeben")
    reason = issuance.Replacement(why)
    if reason is not issuance.Replacement.DEFECTIVE and on_first_use:
        raise ValidationError("Nur ein defekter Yubikey gilt bis zur ersten Nutzung des neuen")
    with ctx.unit_of_work() as session:
        queued = issuance.replace_key(
            session,
            bsnr=bsnr,
            new_serial=new_serial,
            why=reason,
            at_once=not on_first_use,
            fee_cents=ctx.settings.letters.loss_fee_cents,
            actor=ctx.actor,
            now=ctx.now(),
            quarters=ctx.settings.lock_after_quarters,
        )
        numbers = ", ".join(mailruns.reference(letter) for letter in queued)
    click.echo(f"Yubikey {new_serial.strip()} ersetzt den bisherigen; Briefe vorgemerkt: {numbers}")


@yubikey.command("show")
@click.argument("serial")
@pass_context
def yubikey_show(ctx: CliContext, serial: str) -> None:
    """Yubikey mit Status, Betriebsstätte und Zählerständen anzeigen."""
    with ctx.reading() as session:
        for line in token_lines(stock.get_token(session, serial)):
            echo_text(line)


@yubikey.command("resync")
@click.argument("serial")
@click.argument("otp1")
@click.argument("otp2")
@pass_context
def yubikey_resync(ctx: CliContext, serial: str, otp1: str, otp2: str) -> None:
    """Zählerstand aus zwei aufeinanderfolgenden Einmalkennwörtern neu setzen (§ 6.1)."""
    with ctx.unit_of_work() as session:
        reason = stock.resync(
            session,
            serial=serial,
            first=otp1,
            second=otp2,
            box=ctx.secret_box,
            actor=ctx.actor,
            now=ctx.now(),
        )
    if reason is not OtpReason.OK:
        raise ValidationError(
            f"Resynchronisierung fehlgeschlagen ({reason.value}): zwei direkt nacheinander "
            "erzeugte Einmalkennwörter dieses Yubikeys angeben"
        )
    click.echo(f"Yubikey {serial.strip()} resynchronisiert")


@cli.group()
def keys() -> None:
    """Master-Schlüssel für die Geheimnisse der Yubikeys und Clients."""


@keys.command("rotate")
@click.option(
    "--new-key-stdin", is_flag=True, required=True, help="Neuen Schlüssel von stdin lesen"
)
@pass_context
def keys_rotate(ctx: CliContext, new_key_stdin: bool) -> None:
    """Alle Geheimnisse in einer Transaktion mit einem neuen Master-Schlüssel verschlüsseln."""
    try:
        new_box = SecretBox(parse_master_key(read_password_stdin().strip()))
    except ConfigError:
        raise ValidationError(
            "Der neue Schlüssel muss 32 Zufallsbytes in URL-sicherem Base64 enthalten "
            "(erzeugen mit 'flexnet keygen'); nichts geändert"
        ) from None
    try:
        with ctx.unit_of_work() as session:
            counts = keyrotation.rotate_master_key(
                session, old=ctx.secret_box, new=new_box, actor=ctx.actor, now=ctx.now()
            )
    except SecretError:
        raise ValidationError(
            "Ein Geheimnis lässt sich mit dem bisherigen Master-Schlüssel nicht öffnen; "
            "nichts geändert"
        ) from None
    ended = counts["staff_enrolments_ended"]
    enrolments = (
        f" {ended} laufende Einrichtung(en) des zweiten Faktors beendet: "
        "dort erneut anmelden und neu einrichten."
        if ended
        else ""
    )
    click.echo(
        f"{counts['tokens']} Token-, {counts['wsapi_clients']} Client-, "
        f"{counts['staff_totp']} Mitarbeiter-Geheimnisse (zweiter Faktor) und "
        f"{counts['nas_clients']} NAS-Geheimnisse neu verschlüsselt.{enrolments} "
        "Jetzt FLEXNET_MASTER_KEY auf allen Knoten ersetzen und neu starten."
    )


@cli.group("wsapi-client")
def wsapi_client() -> None:
    """Clients des Yubico-Prüfprotokolls (/wsapi/2.0/verify)."""


@wsapi_client.command("add")
@click.argument("name")
@click.option("--unsigned-allowed", is_flag=True, help="Auch unsignierte Anfragen annehmen")
@pass_context
def wsapi_client_add(ctx: CliContext, name: str, unsigned_allowed: bool) -> None:
    """Client anlegen; gibt einmalig 'id=N' und 'key=BASE64' aus."""
    with ctx.unit_of_work() as session:
        client, api_key = wsapi.add_client(
            session,
            name=name,
            box=ctx.secret_box,
            actor=ctx.actor,
            now=ctx.now(),
            require_signature=not unsigned_allowed,
        )
        client_id = client.id
    click.echo(f"id={client_id}")
    click.echo(f"key={api_key}")


@wsapi_client.command("regenerate")
@click.argument("name", metavar="NAME|ID")
@pass_context
def wsapi_client_regenerate(ctx: CliContext, name: str) -> None:
    """Neuen Schlüssel erzeugen.

    Der alte gilt sofort nicht mehr, z. B. wenn ihn ein ausgeschiedener Mitarbeiter
    kannte. Gibt einmalig 'id=N' und 'key=BASE64' aus.
    """
    with ctx.unit_of_work() as session:
        client, api_key = wsapi.regenerate_key(
            session, name=name, box=ctx.secret_box, actor=ctx.actor, now=ctx.now()
        )
        client_id = client.id
    click.echo(f"id={client_id}")
    click.echo(f"key={api_key}")


add_switch_commands(
    wsapi_client,
    wsapi.set_active,
    metavar="NAME|ID",
    help_texts=(
        "Client deaktivieren. Seine Anfragen erhalten sofort NO_SUCH_CLIENT.",
        "Client wieder zulassen. Er gilt mit seinem bisherigen Schlüssel.",
    ),
    done=(
        "Prüfdienst-Client {name} (id={id}) deaktiviert; Anfragen erhalten NO_SUCH_CLIENT",
        "Prüfdienst-Client {name} (id={id}) wieder aktiv",
    ),
)
