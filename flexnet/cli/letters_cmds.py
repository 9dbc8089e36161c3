"""Letters and mail runs: due, run, dispatched, cancel, reprint, returned (split shipment,
§ 3.2)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from flexnet.cli import DATE, CliContext, cli, echo_text, pass_context
from flexnet.errors import ConflictError, ValidationError
from flexnet.models import Letter, LetterKind, MailRun
from flexnet.provisioning import mailruns, returnmail

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

OUT = click.Path(dir_okay=False, writable=True, path_type=Path)


@cli.group()
def letters() -> None:
    """Briefe und Versandläufe (getrennter Versand von Yubikey und Kennwort, § 3.2)."""


@letters.command("due")
@click.option("--today", type=DATE, help="Stichtag (Standard: heute)")
@pass_context
def letters_due(ctx: CliContext, today: date | None) -> None:
    """Zeigen, was ein Versandlauf heute enthielte und was warum zurückgehalten wird."""
    day = today or ctx.today()
    with ctx.reading() as session:
        listing = mailruns.due_letters(
            session,
            today=day,
            delay_days=ctx.settings.letters.credentials_delay_days,
            quarters=ctx.settings.lock_after_quarters,
        )
        for letter in listing.due:
            echo_text(_line(letter))
        for waiting in listing.waiting:
            echo_text(f"{_line(waiting.letter)}  wartet: {waiting.reason}")
    click.echo(f"{len(listing.due)} fällig, {len(listing.waiting)} zurückgehalten ({day:%d.%m.%Y})")


def _line(letter: Letter) -> str:
    who = f"  {letter.user.username}" if letter.user else ""
    return (
        f"{mailruns.reference(letter)}  {mailruns.kind_label(letter.kind):<26}"
        f"  BSNR {letter.practice.bsnr}  {letter.practice.name}{who}"
    )


@letters.command("run")
@click.option("--out", "out_path", type=OUT, required=True, help="PDF-Datei (wird neu angelegt)")
@click.option("--today", type=DATE, help="Stichtag (Standard: heute)")
@pass_context
def letters_run(ctx: CliContext, out_path: Path, today: date | None) -> None:
    """Alle fälligen Briefe in ein PDF drucken; die letzte Zeile ist die Nummer des Laufs.

    Kennwörter entstehen erst jetzt und stehen nur in diesem PDF: nach dem Druck löschen.
    """
    day = today or ctx.today()
    if day > ctx.today():
        # The split-shipment clock must not be run ahead (§ 3.2); `letters due` may look.
        raise ValidationError("Ein Versandlauf kann nicht für einen künftigen Tag entstehen")
    settings = ctx.settings
    templates = mailruns.templates_for(settings)
    try:
        with contextlib.ExitStack() as stack:
            out, commit = stack.enter_context(_pdf_file(out_path))
            session = stack.enter_context(ctx.unit_of_work())
            bars: list[ProgressBar[int]] = []

            def due(count: int) -> None:
                """The bar, once the run has read how many letters it carries."""
                if not count:
                    raise _NothingDue
                bar = click.progressbar(length=count, label="Briefe", file=sys.stderr)
                bars.append(stack.enter_context(bar))

            produced = mailruns.produce_run(
                session,
                today=day,
                out=out,
                templates=templates,
                settings=settings,
                actor=ctx.actor,
                now=ctx.now(),
                progress=lambda done: bars[0].update(done),
                on_due=due,
            )
            if produced is None:  # another run took the letters meanwhile
                raise ConflictError("Die fälligen Briefe wurden inzwischen gedruckt")
            commit(f"Versandlauf {produced.run.id}")
    except _NothingDue:
        # Nothing was written: the transaction is rolled back and no PDF is left behind.
        click.echo(f"Keine Briefe fällig ({day:%d.%m.%Y}); kein Lauf erstellt.", err=True)
        return
    click.echo(f"{produced.letters} Briefe in {out_path}")
    if produced.plain_pages:
        click.echo(f"Seiten 1–{produced.plain_pages}: Briefpapier")
    if produced.security_pages:
        first = produced.plain_pages + 1
        last = produced.plain_pages + produced.security_pages
        click.echo(f"Seiten {first}–{last}: Sicherheitspapier (Kennwörter)")
    click.echo(produced.run.id)


class _NothingDue(Exception):
    """No letter is due: the run stops before it has printed or written anything."""


@contextlib.contextmanager
def _pdf_file(path: Path) -> Iterator[tuple[BinaryIO, Callable[[str], None]]]:
    """A new PDF at ``path``, readable by its owner only (it holds passwords).

    The caller writes, then calls ``commit(what)`` just before its transaction commits:
    the file is then complete on disk. It is moved into place after the commit; if
    anything fails before, neither the file nor a change remains.
    """
    if path.exists():
        raise ConflictError(f"{path} existiert bereits; bitte einen neuen Dateinamen wählen")
    partial = path.with_name(f".{path.name}.partial")
    try:
        handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise ConflictError(f"{partial} lässt sich nicht anlegen: {error.strerror}") from None
    done: list[str] = []
    out = os.fdopen(handle, "wb")

    def commit(what: str) -> None:
        out.flush()
        os.fsync(out.fileno())
        out.close()
        done.append(what)

    try:
        yield out, commit
    except BaseException:
        out.close()
        partial.unlink(missing_ok=True)
        raise
    try:
        os.replace(partial, path)
    except OSError as error:
        raise ConflictError(
            f"{done[0] if done else 'Der Lauf'} ist gespeichert, aber {path} fehlt "
            f"({error.strerror}); das PDF liegt in {partial} oder der Lauf ist zu verwerfen"
        ) from None


def _close_run(
    ctx: CliContext, action: Callable[..., MailRun], run_id: int, **extra: object
) -> MailRun:
    with ctx.unit_of_work() as session:
        return action(session, run_id=run_id, actor=ctx.actor, now=ctx.now(), **extra)


@letters.command("dispatched")
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--date", "dispatched_on", type=DATE, help="Tag der Einlieferung (Standard: heute)")
@pass_context
def letters_dispatched(ctx: CliContext, run_id: int, dispatched_on: date | None) -> None:
    """Versand eines Laufs bestätigen; ab diesem Tag läuft die Frist für die Kennwortbriefe."""
    today = ctx.today()
    run = _close_run(
        ctx, mailruns.confirm_dispatch, run_id, dispatched_on=dispatched_on or today, today=today
    )
    click.echo(
        f"Versandlauf {run.id}: {len(run.letters)} Briefe versandt am {run.dispatched_on:%d.%m.%Y}"
    )


@letters.command("cancel")
@click.argument("run_id", metavar="RUN", type=int)
@pass_context
def letters_cancel(ctx: CliContext, run_id: int) -> None:
    """Einen nicht versandten Lauf verwerfen: seine Kennwörter werden ungültig."""
    run = _close_run(ctx, mailruns.cancel_run, run_id)
    click.echo(f"Versandlauf {run.id} verworfen; die Briefe sind wieder fällig")


@letters.command("reprint")
@click.argument("letter_ref", metavar="LETTER")
@click.option("--out", "out_path", type=OUT, required=True, help="PDF-Datei (wird neu angelegt)")
@pass_context
def letters_reprint(ctx: CliContext, letter_ref: str, out_path: Path) -> None:
    """Einen Brief erneut drucken; ein Kennwortbrief bekommt ein neues Kennwort."""
    letter_id = mailruns.parse_reference(letter_ref)
    templates = mailruns.templates_for(ctx.settings)
    with _pdf_file(out_path) as (out, commit), ctx.unit_of_work() as session:
        letter = mailruns.reprint(
            session,
            letter_id=letter_id,
            out=out,
            templates=templates,
            settings=ctx.settings,
            today=ctx.today(),
            actor=ctx.actor,
            now=ctx.now(),
        )
        note = (
            "; das bisherige Kennwort gilt nicht mehr"
            if letter.kind in mailruns.PASSWORD_LETTERS
            else ""
        )
        commit(f"Brief {mailruns.reference(letter)}")
    click.echo(f"Brief {mailruns.reference(letter)} in {out_path}{note}")


@letters.command("returned")
@click.argument("letter_ref", metavar="LETTER")
@click.option("--date", "returned_on", type=DATE, help="Tag der Rücksendung (Standard: heute)")
@pass_context
def letters_returned(ctx: CliContext, letter_ref: str, returned_on: date | None) -> None:
    """Einen Brief als unzustellbar erfassen: er wird neu vorgemerkt, die Briefe der Praxis
    warten auf die berichtigte Anschrift; ein Kennwort darin gilt sofort nicht mehr."""
    letter_id = mailruns.parse_reference(letter_ref)
    today = ctx.today()
    with ctx.unit_of_work() as session:
        resend = returnmail.record_return(
            session,
            letter_id=letter_id,
            returned_on=returned_on or today,
            today=today,
            actor=ctx.actor,
            now=ctx.now(),
        )
        letter = session.get_one(Letter, letter_id)
        lines = _return_lines(letter, resend)
    for line in lines:
        echo_text(line)


def _return_lines(letter: Letter, resend: Letter | None) -> list[str]:
    reference, bsnr = mailruns.reference(letter), letter.practice.bsnr
    lines = [f"Brief {reference} ({mailruns.kind_label(letter.kind)}) als unzustellbar erfasst"]
    if letter.kind is LetterKind.KEY and letter.token is not None:
        lines.append(
            f"Yubikey {letter.token.serial} ist wieder im Haus; die Kennwortbriefe warten auf "
            "den neuen Versand des Begleitschreibens (§ 3.2)"
        )
    if letter.kind in mailruns.PASSWORD_LETTERS and letter.user is not None:
        lines.append(f"Das Kennwort darin gilt nicht mehr ({letter.user.username})")
    if resend is not None:
        lines.append(f"Neuer Brief {mailruns.reference(resend)} vorgemerkt")
    else:
        lines.append("Kein neuer Brief nötig (inzwischen ersetzt)")
    lines.append(
        f"Die Briefe an BSNR {bsnr} warten, bis die Anschrift berichtigt oder bestätigt ist: "
        f"flexnet practice edit {bsnr} --street … (oder die bisherige Anschrift erneut)"
    )
    return lines
