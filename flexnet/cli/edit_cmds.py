"""Data that changes over the years: practices move and rename, people change names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from flexnet import labels
from flexnet.accounts import practices, users
from flexnet.cli import CliContext, echo_text, pass_context
from flexnet.cli.record_cmds import practice, user


def _echo_changes(what: str, changes: Mapping[str, Mapping[str, Any]]) -> None:
    if not changes:
        echo_text(f"{what}: nichts geändert (die Angaben stimmen schon)")
        return
    echo_text(f"{what} geändert:")
    for line in labels.change_lines(changes):
        echo_text(f"  {line}")


@practice.command("edit")
@click.argument("bsnr")
@click.option("--name", default=None, help="Name der Praxis wie im Anschriftenfeld")
@click.option("--street", default=None, help="Straße und Hausnummer oder Postfach")
@click.option("--zip", "zip_code", default=None, help="Postleitzahl, 5 Ziffern")
@click.option("--city", default=None, help="Ort")
@click.option("--address-extra", default=None, help="Zusatzzeile; leer ('') entfernt sie")
@click.option("--phone", default=None, help="Telefonnummer für Rückrufe; leer entfernt sie")
@click.option("--contact", default=None, help="Ansprechpartner; leer entfernt ihn")
@pass_context
def practice_edit(
    ctx: CliContext,
    bsnr: str,
    name: str | None,
    street: str | None,
    zip_code: str | None,
    city: str | None,
    address_extra: str | None,
    phone: str | None,
    contact: str | None,
) -> None:
    """Name, Anschrift, Telefon oder Ansprechpartner ändern; spätere Briefe tragen die
    neuen Angaben, die alten stehen im Protokoll."""
    with ctx.unit_of_work() as session:
        changed = practices.edit_practice(
            session,
            bsnr=bsnr,
            name=name,
            street=street,
            zip_code=zip_code,
            city=city,
            address_extra=address_extra,
            phone=phone,
            contact_person=contact,
            actor=ctx.actor,
            now=ctx.now(),
        )
    _echo_changes(f"Betriebsstätte {bsnr.strip()}", changed)


@user.command("edit")
@click.argument("username")
@click.option("--name", default=None, help="Vor- und Nachname; leer entfernt ihn")
@click.option("--lanr", default=None, help="Lebenslange Arztnummer (nur Mitglieder)")
@pass_context
def user_edit(ctx: CliContext, username: str, name: str | None, lanr: str | None) -> None:
    """Namen oder LANR eines Benutzers ändern (Prüfziffer; keine LANR einer anderen
    Person)."""
    with ctx.unit_of_work() as session:
        changed = users.edit_user(
            session, username=username, name=name, lanr=lanr, actor=ctx.actor, now=ctx.now()
        )
    _echo_changes(f"Benutzer {username.strip().lower()}", changed)
