"""Lifecycle: the nightly job, terminations, locks and unlocks (§ 7.2, § 10)."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from typing import Any

import click

from flexnet.cli import DATE, CliContext, cli, echo_text, pass_context
from flexnet.cli.audit_cmds import write_checkpoint
from flexnet.cli.record_cmds import practice
from flexnet.cli.yubikey_cmds import yubikey
from flexnet.lifecycle import job, lock_exceptions, locks, retention, returns
from flexnet.lifecycle.rules import start_of_day
from flexnet.models import ReturnCondition, TerminationBy, TokenStatus
from flexnet.ops import checkpoints

_CAUSES = {cause.value: cause for cause in locks.STAFF_CAUSES}
_CAUSE_HELP = "manual (§ 10.1), misuse/loss (§ 7.2), objection (§ 14.2)"


@cli.group()
def lifecycle() -> None:
    """Der nächtliche Lauf: Sperren nach § 10.3/§ 10.2, Bericht, Löschfristen."""


class _Bar:
    """click's progress bar, created once the job knows how many practices it checks."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, total: int) -> None:
        self._bar = click.progressbar(length=total, label="Betriebsstätten", file=sys.stderr)
        self._bar.__enter__()

    def advance(self, done: int) -> None:
        self._bar.update(done)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


@lifecycle.command("run")
@click.option("--today", type=DATE, help="Stichtag (Standard: jetzt)")
@click.option("--dry-run", is_flag=True, help="Nur berichten, nichts ändern")
@pass_context
def lifecycle_run(ctx: CliContext, today: date | None, dry_run: bool) -> None:
    """Sperren dauerhaft machen, Sperrbriefe vormerken, alte Verbindungsdaten löschen."""
    now = start_of_day(today) if today else ctx.now()
    settings = ctx.settings
    # The nightly timer has no person behind it: the dates decide, the system acts.
    actor = ctx.acting(system="lifecycle")
    bar = _Bar()
    try:
        with ctx.reading() if dry_run else ctx.unit_of_work() as session:
            report = job.run(
                session,
                now=now,
                settings=job.JobSettings.from_settings(settings),
                actor=actor,
                dry_run=dry_run,
                progress=bar,
            )
    finally:
        bar.finish()
    heading = "Probelauf, nichts geändert" if dry_run else "Lebenszyklus-Lauf"
    click.echo(f"{heading} zum {report.today:%d.%m.%Y}")
    for title, lines in (
        ("Jetzt gesperrt", report.locked),
        ("Sperre innerhalb von 8 Wochen", report.upcoming),
        ("Ausnahmen enden innerhalb von 8 Wochen", report.exceptions_ending),
        ("Yubikey nicht zurückgegeben, Erinnerung vorgemerkt", report.reminders),
    ):
        click.echo(f"{title}: {len(lines)}")
        for line in lines:
            echo_text(f"  {line}")
    if not dry_run:
        click.echo(f"Ankündigungsbriefe vorgemerkt: {report.notices}")
    purged = ", ".join(f"{retention.LABELS[name]} {count}" for name, count in report.purged.items())
    click.echo(
        f"Gelöscht (Verbindungsdaten nach {settings.connection_log_days} Tagen, erledigte "
        f"Anfragen nach {settings.request_retention_days} Tagen, Stammdaten "
        f"{settings.record_retention_years} Jahre nach dem Ende anonymisiert, Protokoll "
        f"nach {settings.audit_retention_years} Jahren): {purged}"
    )
    if not dry_run:
        # The day's checkpoint of the audit chain, for shipping elsewhere (log and file).
        write_checkpoint(ctx, settings.instance_path / checkpoints.FILE_NAME)


@cli.group("exception")
def exception_group() -> None:
    """Ausnahmen von der automatischen Sperre (§ 10 Abs. 3 Satz 2)."""


def _who(bsnr: str | None, username: str | None) -> None:
    if (bsnr is None) == (username is None):
        raise click.UsageError("Bitte genau eines angeben: --practice BSNR oder --user NAME")


@exception_group.command("grant")
@click.option("--practice", "bsnr", help="BSNR")
@click.option("--user", "username", help="Benutzername (eigenes Tätigkeitsende)")
@click.option("--until", required=True, type=DATE, help="Letzter Tag mit Zugang")
@click.option("--reason", required=True, help="Begründung")
@click.option("--ref", "decision_ref", required=True, help="Aktenzeichen der Entscheidung")
@click.option("--decided-by", required=True, help="Wer entschieden hat")
@pass_context
def exception_grant(
    ctx: CliContext,
    bsnr: str | None,
    username: str | None,
    until: date,
    reason: str,
    decision_ref: str,
    decided_by: str,
) -> None:
    """Ausnahme erteilen oder ändern; eine bereits dauerhafte § 10.3-Sperre wird aufgehoben."""
    _who(bsnr, username)
    with ctx.unit_of_work() as session:
        lock_exceptions.grant(
            session,
            bsnr=bsnr,
            username=username,
            until=until,
            reason=reason,
            decision_ref=decision_ref,
            decided_by=decided_by,
            actor=ctx.actor,
            now=ctx.now(),
            quarters=ctx.settings.lock_after_quarters,
        )
    click.echo(f"Ausnahme für {bsnr or username} bis einschließlich {until:%d.%m.%Y}")


@exception_group.command("list")
@pass_context
def exception_list(ctx: CliContext) -> None:
    """Ausnahmen mit ihrem Ende, die nächste zuerst."""
    with ctx.reading() as session:
        listed = lock_exceptions.listing(session)
        click.echo(f"Ausnahmen: {len(listed)}")
        for exception in listed:
            echo_text(
                f"  {lock_exceptions.subject_label(exception)}: bis {exception.until:%d.%m.%Y} "
                f"(Az. {exception.decision_ref}, {exception.decided_by}): {exception.reason}"
            )


@exception_group.command("end")
@click.option("--practice", "bsnr", help="BSNR")
@click.option("--user", "username", help="Benutzername")
@click.option("--reason", required=True, help="Grund")
@pass_context
def exception_end(ctx: CliContext, bsnr: str | None, username: str | None, reason: str) -> None:
    """Ausnahme vorzeitig beenden: die Daten gelten ab sofort wieder."""
    _who(bsnr, username)
    with ctx.unit_of_work() as session:
        lock_exceptions.end(
            session, bsnr=bsnr, username=username, reason=reason, actor=ctx.actor, now=ctx.now()
        )
    click.echo(f"Ausnahme für {bsnr or username} beendet")


@yubikey.command("return")
@click.argument("serial")
@click.option("--date", "received_on", type=DATE, help="Eingang (Standard: heute)")
@click.option(
    "--condition",
    required=True,
    type=click.Choice([c.value for c in ReturnCondition]),
    help="good: nach Neuprogrammierung wieder ins Lager; damaged: ausmustern",
)
@click.option("--note", default=None, help="Anmerkung, z. B. zum Zustand")
@pass_context
def yubikey_return(
    ctx: CliContext, serial: str, received_on: date | None, condition: str, note: str | None
) -> None:
    """Eingang eines zurückgegebenen Yubikeys erfassen (§ 10.2)."""
    with ctx.unit_of_work() as session:
        token = returns.record_return(
            session,
            serial=serial,
            received_on=received_on or ctx.today(),
            condition=ReturnCondition(condition),
            note=note,
            actor=ctx.actor,
            now=ctx.now(),
        )
        status = token.status
    if status is TokenStatus.RETURNED:
        click.echo(
            f"Yubikey {serial} eingegangen; zurück ins Lager erst nach Neuprogrammierung "
            "(flexnet yubikey import mit neuen Schlüsseln)"
        )
    else:
        click.echo(f"Yubikey {serial} eingegangen und ausgemustert")


@yubikey.command("overdue")
@click.option(
    "--days",
    type=click.IntRange(min=0),
    default=None,
    help="Gesperrt seit mindestens so vielen Tagen (Standard: FLEXNET_RETURN_REMINDER_DAYS)",
)
@pass_context
def yubikey_overdue(ctx: CliContext, days: int | None) -> None:
    """Gesperrte Yubikeys, die nicht zurückgekommen sind, mit Anschrift der Praxis."""
    wait = ctx.settings.return_reminder_days if days is None else days
    with ctx.reading() as session:
        keys = returns.overdue(session, locked_before=ctx.now() - timedelta(days=wait))
    click.echo(f"Nicht zurückgegeben (gesperrt seit mindestens {wait} Tagen): {len(keys)}")
    for key in keys:
        reminded = f", erinnert am {key.reminded_on:%d.%m.%Y}" if key.reminded_on else ""
        echo_text(
            f"  {key.serial}  BSNR {key.bsnr} {key.practice_name}, {key.address}; "
            f"gesperrt am {key.locked_on:%d.%m.%Y}{reminded}"
        )


@practice.command("terminate")
@click.argument("bsnr")
@click.option("--by", "by", required=True, type=click.Choice([b.value for b in TerminationBy]))
@click.option("--notice-date", required=True, type=DATE, help="Eingang der Kündigung")
@click.option("--requested-date", type=DATE, help="Gewünschtes späteres Ende")
@click.option("--reason", default=None, help="Grund (bei außerordentlicher Kündigung nötig)")
@pass_context
def practice_terminate(
    ctx: CliContext,
    bsnr: str,
    by: str,
    notice_date: date,
    requested_date: date | None,
    reason: str | None,
) -> None:
    """Kündigung erfassen (§ 10.2); gibt den letzten Tag mit Zugang aus."""
    kind = TerminationBy(by)
    if kind is TerminationBy.EXTRAORDINARY and not (reason and reason.strip()):
        raise click.UsageError("Eine außerordentliche Kündigung braucht --reason")
    with ctx.unit_of_work() as session:
        terminated = locks.terminate(
            session,
            bsnr=bsnr,
            by=kind,
            notice_date=notice_date,
            requested=requested_date,
            reason=reason,
            actor=ctx.actor,
            now=ctx.now(),
        )
        last_day = terminated.access_ends_on
    if last_day is None:
        click.echo(f"BSNR {terminated.bsnr} außerordentlich gekündigt und sofort gesperrt")
    else:
        click.echo(
            f"BSNR {terminated.bsnr} gekündigt; letzter Tag mit Zugang {last_day:%d.%m.%Y}, "
            f"gesperrt ab dem Folgetag 00:00 Uhr"
        )


@cli.command("lock")
@click.argument("what", type=click.Choice([target.value for target in locks.LockTarget]))
@click.argument("identifier", metavar="ID")
@click.option("--reason", required=True, help="Grund der Sperre")
@click.option("--cause", type=click.Choice(list(_CAUSES)), default="manual", help=_CAUSE_HELP)
@click.option(
    "--all-practice-credentials",
    is_flag=True,
    help="Zugleich alle Zugänge der Praxis sperren (§ 7.2)",
)
@pass_context
def lock(
    ctx: CliContext,
    what: str,
    identifier: str,
    reason: str,
    cause: str,
    all_practice_credentials: bool,
) -> None:
    """Benutzer, Yubikey oder Betriebsstätte sperren; laufende Sitzungen werden getrennt."""
    with ctx.unit_of_work() as session:
        outcome = locks.lock(
            session,
            what=locks.LockTarget(what),
            identifier=identifier,
            cause=_CAUSES[cause],
            reason=reason,
            all_practice_credentials=all_practice_credentials,
            actor=ctx.actor,
            now=ctx.now(),
            loss_fee_cents=ctx.settings.letters.loss_fee_cents,
        )
    click.echo(outcome.text)


@cli.command("unlock")
@click.argument("what", type=click.Choice([target.value for target in locks.LockTarget]))
@click.argument("identifier", metavar="ID")
@click.option("--reason", required=True, help="Grund der Entsperrung")
@pass_context
def unlock(ctx: CliContext, what: str, identifier: str, reason: str) -> None:
    """Sperre aufheben; ein Yubikey allein nach Selbstsperre oder Missbrauchsverdacht
    (ein verlorener bleibt ausgemustert, er wird ersetzt)."""
    target = locks.LockTarget(what)
    with ctx.unit_of_work() as session:
        name = locks.unlock(
            session,
            what=target,
            identifier=identifier,
            reason=reason,
            actor=ctx.actor,
            now=ctx.now(),
            quarters=ctx.settings.lock_after_quarters,
        )
    prefix = {locks.LockTarget.PRACTICE: "BSNR ", locks.LockTarget.KEY: "Yubikey "}
    click.echo(f"{prefix.get(target, '')}{name} entsperrt")
