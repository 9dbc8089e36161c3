"""Terminations put right (§ 10.2): ``termination correct`` and ``termination withdraw``."""

from __future__ import annotations

from datetime import date

import click

from flexnet.cli import DATE, CliContext, cli, echo_text, pass_context
from flexnet.cli.record_cmds import practice
from flexnet.lifecycle import terminations
from flexnet.models import TermsChannel
from flexnet.provisioning import mailruns, reactivation


@cli.group("termination")
def termination() -> None:
    """Kündigungen berichtigen oder zurücknehmen, vor und nach ihrem Wirksamwerden."""


def _report(undone: terminations.Undone) -> None:
    if undone.lifted:
        click.echo("Die Sperre durch die Kündigung ist aufgehoben")
    if undone.cancelled:
        click.echo(f"Nicht mehr gedruckt: {', '.join(undone.cancelled)}")
    if undone.sent:
        echo_text(
            f"Bereits versandt: {', '.join(undone.sent)}; der Praxis bitte schriftlich "
            "bestätigen, dass der Zugang bleibt"
        )


@termination.command("correct")
@click.argument("bsnr")
@click.option("--notice-date", type=DATE, help="Eingang der Kündigung (Standard: wie erfasst)")
@click.option("--requested-date", type=DATE, help="Gewünschtes späteres Ende (sonst keines)")
@click.option("--reason", required=True, help="Grund der Berichtigung")
@pass_context
def termination_correct(
    ctx: CliContext,
    bsnr: str,
    notice_date: date | None,
    requested_date: date | None,
    reason: str,
) -> None:
    """Eingangsdatum oder gewünschtes Ende einer Kündigung berichtigen."""
    with ctx.unit_of_work() as session:
        undone = terminations.correct(
            session,
            bsnr=bsnr,
            notice_date=notice_date,
            requested=requested_date,
            reason=reason,
            actor=ctx.actor,
            now=ctx.now(),
            quarters=ctx.settings.lock_after_quarters,
        )
        last_day = undone.practice.access_ends_on
        click.echo(
            f"Kündigung der BSNR {undone.practice.bsnr} berichtigt; letzter Tag mit Zugang "
            f"{last_day:%d.%m.%Y}"
            if last_day
            else f"Kündigung der BSNR {bsnr} berichtigt"
        )
        _report(undone)


@termination.command("withdraw")
@click.argument("bsnr")
@click.option("--reason", required=True, help="Grund der Rücknahme")
@pass_context
def termination_withdraw(ctx: CliContext, bsnr: str, reason: str) -> None:
    """Kündigung zurücknehmen; die Sperre durch sie (nur diese) wird aufgehoben."""
    with ctx.unit_of_work() as session:
        undone = terminations.withdraw(
            session,
            bsnr=bsnr,
            reason=reason,
            actor=ctx.actor,
            now=ctx.now(),
            quarters=ctx.settings.lock_after_quarters,
        )
        click.echo(f"Kündigung der BSNR {undone.practice.bsnr} zurückgenommen")
        _report(undone)


@practice.command("reactivate")
@click.argument("bsnr")
@click.option("--terms-version", required=True, help="Angenommene Version der Nutzungsbedingungen")
@click.option("--channel", required=True, type=click.Choice([c.value for c in TermsChannel]))
@click.option("--accepted-on", type=DATE, help="Tag der Annahme (Standard: heute)")
@click.option("--key", "key_serial", help="Neuer Yubikey aus dem Lager (§ 2.1)")
@click.option("--reason", required=True, help="Grund, z. B. neue Teilnahmeerklärung")
@pass_context
def practice_reactivate(
    ctx: CliContext,
    bsnr: str,
    terms_version: str,
    channel: str,
    accepted_on: date | None,
    key_serial: str | None,
    reason: str,
) -> None:
    """Gekündigte Betriebsstätte nimmt wieder teil: neue Annahme, neue Zugangsdaten-Briefe."""
    with ctx.unit_of_work() as session:
        result = reactivation.reactivate(
            session,
            bsnr=bsnr,
            version=terms_version,
            channel=TermsChannel(channel),
            accepted_on=accepted_on or ctx.today(),
            key_serial=key_serial,
            reason=reason,
            actor=ctx.actor,
            now=ctx.now(),
            quarters=ctx.settings.lock_after_quarters,
        )
        numbers = ", ".join(mailruns.reference(letter) for letter in result.letters)
        click.echo(f"BSNR {result.practice.bsnr} nimmt wieder teil; Briefe vorgemerkt: {numbers}")
        if result.users:
            echo_text(f"Neue Zugangsdaten für: {', '.join(result.users)}")
