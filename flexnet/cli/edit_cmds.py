"""Data that changes over the years: practices move and rename, people change names."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import click

from flexnet import labels
from flexnet.accounts import practices, users
from flexnet.cli import DATE, CliContext, echo_text, one_of_date_or_clear, pass_context
from flexnet.cli.record_cmds import practice, user
from flexnet.lifecycle import activity
from flexnet.lifecycle.rules import BERLIN
from flexnet.lifecycle.status import user_lock_instant


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


@user.command("end")
@click.argument("username")
@click.option("--date", "ended_on", type=DATE, help="Ende der Tätigkeit des Mitglieds")
@click.option("--clear", is_flag=True, help="Erfasstes Ende streichen (mit --reason)")
@click.option("--reason", default=None, help="Grund einer Korrektur oder Streichung")
@pass_context
def user_end(
    ctx: CliContext, username: str, ended_on: date | None, clear: bool, reason: str | None
) -> None:
    """Eigenes Ende der Tätigkeit eines Mitglieds (§ 10.3): sein Zugang endet 4 Quartale
    später; Praxispersonal und Praxiszugang, wenn kein Mitglied mehr Zugang hat (§ 1.2)."""
    one_of_date_or_clear(ended_on, clear)
    quarters = ctx.settings.lock_after_quarters
    with ctx.unit_of_work() as session:
        member = activity.record_member_end(
            session,
            username=username,
            ended_on=None if clear else ended_on,
            reason=reason,
            actor=ctx.actor,
            now=ctx.now(),
            quarters=quarters,
        )
        lock_at = user_lock_instant(member, quarters)
        lock_text = f"{lock_at.astimezone(BERLIN):%d.%m.%Y %H:%M}" if lock_at else "–"
        name = member.username
    if clear:
        echo_text(f"Ende der Tätigkeit für {name} gestrichen; Sperre nach Daten ab {lock_text}")
        return
    echo_text(
        f"Ende der Tätigkeit für {name}: {ended_on:%d.%m.%Y}; automatische Sperre ab {lock_text}"
    )
