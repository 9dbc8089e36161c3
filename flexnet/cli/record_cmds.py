"""Records staff keep: practices, terms acceptance, users, staff accounts."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click
from sqlalchemy.orm import Session

from flexnet.accounts import practices, users
from flexnet.cli import (
    DATE,
    CliContext,
    cli,
    echo_text,
    invoking_login,
    one_of_date_or_clear,
    pass_context,
    read_password_stdin,
)
from flexnet.cli.show import show_practice, show_user
from flexnet.errors import ValidationError
from flexnet.lifecycle import activity
from flexnet.lifecycle import terms as terms_service
from flexnet.lifecycle.rules import BERLIN
from flexnet.lifecycle.status import practice_lock_instant
from flexnet.models import (
    Letter,
    PracticeKind,
    StaffRole,
    TakenOverPassword,
    TermsChannel,
    UserKind,
)
from flexnet.otp import stock
from flexnet.otp.importer import ImportFailed
from flexnet.provisioning import issuance, mailruns, userimport
from flexnet.staff import accounts as staff_accounts

_USER_KINDS = {
    "member": UserKind.MEMBER,
    "staff": UserKind.STAFF,
    "third": UserKind.THIRD_PARTY,
    "practice": UserKind.PRACTICE_ACCESS,
}


@cli.group()
def practice() -> None:
    """Betriebsstätten (BSNR)."""


@practice.command("add")
@click.option("--bsnr", required=True, help="Betriebsstättennummer, 9 Ziffern")
@click.option("--name", required=True, help="Name der Praxis wie im Anschriftenfeld")
@click.option("--street", required=True, help="Straße und Hausnummer oder Postfach")
@click.option("--zip", "zip_code", required=True, help="Postleitzahl, 5 Ziffern")
@click.option("--city", required=True, help="Ort")
@click.option("--address-extra", default=None, help="Zusatzzeile, z. B. 'z. Hd. Frau Muster'")
@click.option("--third-party", is_flag=True, help="Dritter nach § 1.1 (eingeschränkter Zugang)")
@pass_context
def practice_add(
    ctx: CliContext,
    bsnr: str,
    name: str,
    street: str,
    zip_code: str,
    city: str,
    address_extra: str | None,
    third_party: bool,
) -> None:
    """Betriebsstätte anlegen; sie wartet auf die Annahme der Nutzungsbedingungen."""
    kind = PracticeKind.THIRD_PARTY if third_party else PracticeKind.MEMBER
    with ctx.unit_of_work() as session:
        created = practices.add_practice(
            session,
            bsnr=bsnr,
            name=name,
            street=street,
            zip_code=zip_code,
            city=city,
            address_extra=address_extra,
            kind=kind,
            actor=ctx.actor,
            now=ctx.now(),
        )
    click.echo(f"Betriebsstätte {created.bsnr} angelegt (wartet auf Nutzungsbedingungen)")


@practice.command("end")
@click.argument("bsnr")
@click.option("--date", "ended_on", type=DATE, help="Ende der Tätigkeit")
@click.option("--clear", is_flag=True, help="Erfasstes Ende streichen (mit --reason)")
@click.option("--reason", default=None, help="Grund einer Korrektur oder Streichung")
@pass_context
def practice_end(
    ctx: CliContext, bsnr: str, ended_on: date | None, clear: bool, reason: str | None
) -> None:
    """Ende der Tätigkeit der ganzen Betriebsstätte erfassen, berichtigen oder streichen
    (§ 10.3: Sperre 4 Quartale später; für ein einzelnes Mitglied 'flexnet user end')."""
    one_of_date_or_clear(ended_on, clear)
    with ctx.unit_of_work() as session:
        ended = activity.record_practice_end(
            session,
            bsnr=bsnr,
            ended_on=None if clear else ended_on,
            reason=reason,
            actor=ctx.actor,
            now=ctx.now(),
            quarters=ctx.settings.lock_after_quarters,
        )
        lock_at = practice_lock_instant(ended, ctx.settings.lock_after_quarters)
        lock_text = f"{lock_at.astimezone(BERLIN):%d.%m.%Y %H:%M}" if lock_at else "–"
    if clear:
        click.echo(
            f"Ende der Tätigkeit für {ended.bsnr} gestrichen; Sperre nach Daten ab {lock_text}"
        )
        return
    click.echo(
        f"Ende der Tätigkeit für {ended.bsnr}: {ended_on:%d.%m.%Y}; "
        f"automatische Sperre ab {lock_text}"
    )


@practice.command("show")
@click.argument("bsnr")
@pass_context
def practice_show(ctx: CliContext, bsnr: str) -> None:
    """Betriebsstätte mit Status, Sperrdatum, Yubikey und Benutzern anzeigen."""
    with ctx.reading() as session:
        found = practices.get_practice(session, bsnr)
        outlook = _outlook(ctx, session, found.letters)
        for line in show_practice(found, ctx.now(), ctx.settings.lock_after_quarters, outlook):
            echo_text(line)


def _outlook(ctx: CliContext, session: Session, letters: list[Letter]) -> dict[int, str | None]:
    settings = ctx.settings
    return mailruns.outlook(
        session,
        letters,
        today=ctx.today(),
        delay_days=settings.letters.credentials_delay_days,
        quarters=settings.lock_after_quarters,
    )


@cli.group()
def terms() -> None:
    """Nutzungsbedingungen (§ 1.3) und ihre Versionen (MD § 2 Abs. 4, § 14.2)."""


@terms.command("accept")
@click.argument("bsnr")
@click.option("--version", "version", required=True, help="Version der Nutzungsbedingungen")
@click.option("--channel", required=True, type=click.Choice([c.value for c in TermsChannel]))
@click.option("--date", "accepted_on", type=DATE, help="Datum der Annahme (Standard: heute)")
@pass_context
def terms_accept(
    ctx: CliContext, bsnr: str, version: str, channel: str, accepted_on: date | None
) -> None:
    """Annahme der Nutzungsbedingungen erfassen (Teilnahmeerklärung oder KVSAonline)."""
    now = ctx.now()
    with ctx.unit_of_work() as session:
        acceptance = terms_service.accept(
            session,
            bsnr=bsnr,
            version=version,
            channel=TermsChannel(channel),
            accepted_on=accepted_on or now.astimezone(BERLIN).date(),
            actor=ctx.actor,
            now=now,
            quarters=ctx.settings.lock_after_quarters,
        )
    click.echo(
        f"Nutzungsbedingungen {acceptance.version} für {bsnr.strip()} angenommen am "
        f"{acceptance.accepted_on:%d.%m.%Y}"
    )


@cli.group()
def user() -> None:
    """Benutzer der Praxen (Mitglieder, Praxispersonal, Dritte, Praxiszugang)."""


@user.command("add")
@click.argument("username")
@click.option("--practice", "bsnr", required=True, help="BSNR der Betriebsstätte")
@click.option("--kind", required=True, type=click.Choice(list(_USER_KINDS)))
@click.option("--lanr", default=None, help="Lebenslange Arztnummer (nur Mitglieder)")
@click.option("--name", default=None, help="Vor- und Nachname")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Kennwort aus dem Altsystem von der Standardeingabe übernehmen (sonst: Brief)",
)
@pass_context
def user_add(
    ctx: CliContext,
    username: str,
    bsnr: str,
    kind: str,
    lanr: str | None,
    name: str | None,
    password_stdin: bool,
) -> None:
    """Benutzer anlegen; ohne --password-stdin wartet er auf den Zugangsdaten-Brief."""
    migrated = read_password_stdin() if password_stdin else None
    with ctx.unit_of_work() as session:
        created, letter = issuance.add_user(
            session,
            username=username,
            bsnr=bsnr,
            kind=_USER_KINDS[kind],
            lanr=lanr,
            name=name,
            migrated_password=migrated,
            policy=ctx.settings.password_policy,
            actor=ctx.actor,
            now=ctx.now(),
            quarters=ctx.settings.lock_after_quarters,
        )
        state = (
            f"wartet auf den Zugangsdaten-Brief {mailruns.reference(letter)}"
            if letter
            else "aktiv (Kennwort übernommen)"
        )
        weak = created.taken_over_password is TakenOverPassword.WEAK
    click.echo(f"Benutzer {created.username} angelegt: {state}")
    if weak:
        click.echo(
            "Das übernommene Kennwort verletzt die Kennwortrichtlinie (§ 5.4): es muss bei "
            "der ersten Anmeldung geändert werden."
        )


@user.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_context
def user_import(ctx: CliContext, file: Path) -> None:
    """Benutzer aus dem Altsystem übernehmen, mit Kennwort-Hash (CSV, siehe
    docs/IMPORT_FORMATS.md): alles oder nichts."""
    try:
        rows = userimport.parse(file.read_bytes())
        with (
            ctx.unit_of_work() as session,
            click.progressbar(length=len(rows), label="Import", file=sys.stderr) as bar,
        ):
            summary = userimport.import_users(
                session,
                rows,
                actor=ctx.actor,
                now=ctx.now(),
                quarters=ctx.settings.lock_after_quarters,
                progress=bar.update,
            )
    except ImportFailed as failed:
        for error in failed.errors:
            click.echo(error, err=True)
        raise ValidationError(
            f"Import abgebrochen, nichts übernommen ({len(failed.errors)} Fehler)"
        ) from None
    click.echo(f"{summary.users} Benutzer angelegt")
    click.echo(
        f"Kennwörter übernommen: {summary.taken_over}; ob sie der Kennwortrichtlinie "
        "(§ 5.4) genügen, zeigt die erste Anmeldung: wer sie verletzt, muss das Kennwort "
        "dann ändern"
    )
    click.echo(f"Ohne Kennwort, Zugangsdaten-Brief vorgemerkt: {summary.letters}")


@user.command("reissue")
@click.argument("username")
@click.option(
    "--on-first-use",
    is_flag=True,
    help="Das bisherige Kennwort gilt, bis das neue zum ersten Mal benutzt wird",
)
@pass_context
def user_reissue(ctx: CliContext, username: str, on_first_use: bool) -> None:
    """Neue Zugangsdaten auf Anforderung (§ 7.3, kostenfrei § 6.1): ein Kennwortbrief."""
    with ctx.unit_of_work() as session:
        letter = issuance.reissue_password(
            session,
            username=username,
            at_once=not on_first_use,
            actor=ctx.actor,
            now=ctx.now(),
            quarters=ctx.settings.lock_after_quarters,
        )
        when = "bei erster Nutzung des neuen" if on_first_use else "beim Druck des Briefs"
    click.echo(
        f"Kennwortbrief {mailruns.reference(letter)} vorgemerkt; das bisherige Kennwort "
        f"endet {when}"
    )


@user.command("show")
@click.argument("username")
@pass_context
def user_show(ctx: CliContext, username: str) -> None:
    """Benutzer mit Status, Grund, Sperrdatum und Yubikey anzeigen."""
    with ctx.reading() as session:
        found = users.get_user(session, username)
        outlook = _outlook(ctx, session, found.letters)
        for line in show_user(found, ctx.now(), ctx.settings.lock_after_quarters, outlook):
            echo_text(line)


@cli.group("staff")
def staff_group() -> None:
    """KVSA-Mitarbeiter der Verwaltungsoberfläche."""


@staff_group.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([r.value for r in StaffRole]))
@click.option("--name", default=None, help="Vor- und Nachname")
@click.option("--password-stdin", is_flag=True, required=True, help="Kennwort von stdin lesen")
@pass_context
def staff_add(
    ctx: CliContext, username: str, role: str, name: str | None, password_stdin: bool
) -> None:
    """Mitarbeiterkonto anlegen (admin, helpdesk oder auditor); gibt den Einrichtungscode
    für den zweiten Faktor einmal aus."""
    password = read_password_stdin()
    with ctx.reading() as session:
        first = staff_accounts.active_admin_count(session) == 0
    # The first admin has no colleague who could be named: setting up is recorded as such.
    actor = ctx.acting(system=f"setup:{invoking_login()}" if first else None)
    with ctx.unit_of_work() as session:
        account = staff_accounts.add_staff(
            session,
            username=username,
            role=StaffRole(role),
            password=password,
            name=name,
            actor=actor,
            now=ctx.now(),
        )
        session.flush()
        enrolment = staff_accounts.issue_enrolment_code(
            session, username=account.username, actor=actor, now=ctx.now()
        )
        shown = f"Mitarbeiter {account.username} ({account.role.value}) angelegt"
    click.echo(shown)
    _echo_enrolment_code(enrolment)


@staff_group.command("enrolment-code")
@click.argument("username")
@pass_context
def staff_enrolment_code(ctx: CliContext, username: str) -> None:
    """Einrichtungscode für einen neuen zweiten Faktor ausgeben (nach dem Zurücksetzen,
    oder wenn der letzte abgelaufen ist); nur einmal angezeigt, 24 Stunden gültig."""
    with ctx.unit_of_work() as session:
        enrolment = staff_accounts.issue_enrolment_code(
            session, username=username, actor=ctx.actor, now=ctx.now()
        )
    _echo_enrolment_code(enrolment)


def _echo_enrolment_code(enrolment: staff_accounts.EnrolmentCode) -> None:
    click.echo(
        f"Einrichtungscode für {enrolment.username} (nur jetzt angezeigt, gültig bis "
        f"{enrolment.expires_at.astimezone(BERLIN):%d.%m.%Y %H:%M}): {enrolment.code}"
    )


@staff_group.command("yubikey")
@click.argument("username")
@click.argument("serial")
@pass_context
def staff_yubikey(ctx: CliContext, username: str, serial: str) -> None:
    """Yubikey aus dem Lager als zweiten Faktor an einen Mitarbeiter ausgeben."""
    with ctx.unit_of_work() as session:
        account = staff_accounts.get_staff(session, username)
        token = stock.assign_to_staff(
            session, serial=serial, staff=account, actor=ctx.actor, now=ctx.now()
        )
    click.echo(f"Yubikey {token.serial} an {account.username} ausgegeben")
