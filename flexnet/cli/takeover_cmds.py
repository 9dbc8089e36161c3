"""A practice changes hands (§ 2.3): ``flexnet practice takeover``."""

from __future__ import annotations

from datetime import date

import click

from flexnet.cli import DATE, CliContext, echo_text, pass_context
from flexnet.cli.record_cmds import practice
from flexnet.models import TermsChannel, UserKind
from flexnet.provisioning import mailruns, takeover


@practice.command("takeover")
@click.argument("bsnr")
@click.option("--date", "on", type=DATE, required=True, help="Erster Tag des neuen Inhabers")
@click.option("--new-name", required=True, help="Name der Praxis unter dem neuen Inhaber")
@click.option("--new-bsnr", default=None, help="Neue BSNR (sonst geht die bisherige weiter)")
@click.option("--terms-version", required=True, help="Vom neuen Inhaber angenommene Version")
@click.option("--channel", required=True, type=click.Choice([c.value for c in TermsChannel]))
@click.option("--accepted-on", type=DATE, help="Datum der Annahme (Standard: heute)")
@click.option(
    "--member",
    "members",
    type=(str, str, str),
    multiple=True,
    metavar="BENUTZER LANR NAME",
    help="Mitglied des neuen Inhabers (mehrfach)",
)
@click.option(
    "--staff",
    "staff",
    type=(str, str),
    multiple=True,
    metavar="BENUTZER NAME",
    help="Praxispersonal des neuen Inhabers (mehrfach)",
)
@click.option("--practice-access", default=None, metavar="BENUTZER", help="Neuer Praxiszugang")
@click.option("--key", "new_key", default=None, help="Seriennummer des neuen Yubikeys (Lager)")
@click.option("--street", default=None, help="Neue Anschrift (sonst die bisherige)")
@click.option("--zip", "zip_code", default=None)
@click.option("--city", default=None)
@click.option("--address-extra", default=None)
@click.option("--phone", default=None)
@click.option("--contact", default=None)
@pass_context
def practice_takeover(
    ctx: CliContext,
    bsnr: str,
    on: date,
    new_name: str,
    new_bsnr: str | None,
    terms_version: str,
    channel: str,
    accepted_on: date | None,
    members: tuple[tuple[str, str, str], ...],
    staff: tuple[tuple[str, str], ...],
    practice_access: str | None,
    new_key: str | None,
    street: str | None,
    zip_code: str | None,
    city: str | None,
    address_extra: str | None,
    phone: str | None,
    contact: str | None,
) -> None:
    """Praxisübernahme (§ 2.3): Zugangsdaten und Yubikey des bisherigen Inhabers enden,
    der Yubikey wird ersetzt und zurückgefordert, der neue Inhaber bekommt eigene."""
    new_users = [takeover.NewUser(u, UserKind.MEMBER, n, lanr) for u, lanr, n in members]
    new_users += [takeover.NewUser(u, UserKind.STAFF, n) for u, n in staff]
    if practice_access:
        new_users.append(takeover.NewUser(practice_access, UserKind.PRACTICE_ACCESS))
    address = takeover.Address(street, zip_code, city, address_extra, phone, contact)
    with ctx.unit_of_work() as session:
        result = takeover.take_over(
            session,
            bsnr=bsnr,
            on=on,
            new_name=new_name,
            new_bsnr=new_bsnr,
            terms_version=terms_version,
            terms_channel=TermsChannel(channel),
            accepted_on=accepted_on or ctx.today(),
            new_users=new_users,
            new_key=new_key,
            address=address,
            actor=ctx.actor,
            now=ctx.now(),
            quarters=ctx.settings.lock_after_quarters,
        )
        successor = result.practice.bsnr
        letters = ", ".join(mailruns.reference(letter) for letter in result.letters) or "keine"
    echo_text(f"Übernahme am {on:%d.%m.%Y}: BSNR {successor} – {new_name}")
    echo_text(
        f"Zugänge des bisherigen Inhabers beendet: {', '.join(sorted(result.ended)) or 'keine'}"
    )
    echo_text(f"Briefe vorgemerkt: {letters}")
    if not new_key:
        echo_text(f"Neuen Yubikey zuweisen: flexnet yubikey assign SERIAL --practice {successor}")
