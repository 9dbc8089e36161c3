"""Letters one by one: inside a mail run (every role reads; passwords are never shown
again), a reprint (``flexnet letters reprint``), and a letter that came back undeliverable
(``flexnet letters returned``): it is queued again, the practice's letters wait for the
corrected address, a password in it stops at once."""

from __future__ import annotations

from io import BytesIO

from flask import Response, abort, g, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from wtforms import StringField
from wtforms.validators import DataRequired, InputRequired

from flexnet.db import utcnow
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import Letter, LetterKind, MailRun, Practice
from flexnet.provisioning import mailruns, returnmail
from flexnet.web import state
from flexnet.web.admin import ALL_ROLES, HELPDESK, allowed, blueprint, dialog, submit
from flexnet.web.admin.tables import Column, page_of
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import DayField

REQUIRED = "Bitte ausfüllen."


class ReturnedForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    letter = StringField(
        "Briefnummer („Unser Zeichen“)",
        validators=[DataRequired(REQUIRED)],
        description="z. B. FN-000123",
    )
    returned_on = DayField("zurückgekommen am", validators=[InputRequired(REQUIRED)])


def _lines(letter: Letter, resend: Letter | None) -> list[str]:
    kind = mailruns.kind_label(letter.kind)
    lines = [f"Brief {mailruns.reference(letter)} ({kind}) als unzustellbar erfasst."]
    if letter.kind is LetterKind.KEY and letter.token is not None:
        lines.append(
            f"Yubikey {letter.token.serial} ist wieder im Haus; die Kennwortbriefe warten auf "
            "den neuen Versand des Begleitschreibens (§ 3 Abs. 2)."
        )
    if letter.kind in mailruns.PASSWORD_LETTERS and letter.user is not None:
        lines.append(f"Das Kennwort darin gilt nicht mehr ({letter.user.username}).")
    lines.append(
        f"Neuer Brief {mailruns.reference(resend)} vorgemerkt."
        if resend is not None
        else "Kein neuer Brief nötig (inzwischen ersetzt)."
    )
    lines.append(
        "Die Briefe an die Betriebsstätte warten, bis die Anschrift berichtigt oder bestätigt ist."
    )
    return lines


@blueprint.route("/letters/returned", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def letter_returned() -> ResponseReturnValue:
    today = utcnow().astimezone(BERLIN).date()
    form = ReturnedForm()
    if not form.is_submitted():
        form.letter.data = request.args.get("letter", "")[:20]
        form.returned_on.data = today

    def act(db: Session) -> tuple[str, str]:
        letter_id = mailruns.parse_reference(form.letter.data or "")
        resend = returnmail.record_return(
            db,
            letter_id=letter_id,
            returned_on=form.returned_on.data,
            today=today,
            actor=g.staff.actor,
            now=utcnow(),
        )
        letter = db.get_one(Letter, letter_id)
        return " ".join(_lines(letter, resend)), url_for(
            "admin.practice_edit", bsnr=letter.practice.bsnr
        )

    return dialog(
        form,
        act,
        title="Unzustellbaren Brief erfassen",
        intro=[
            "Der Brief wird neu vorgemerkt; die Briefe an die Betriebsstätte warten, bis die "
            "Anschrift berichtigt oder bestätigt ist. Ein Kennwort in dem Brief gilt sofort "
            "nicht mehr.",
        ],
        fields=["letter", "returned_on"],
        button="Als unzustellbar erfassen",
        back=url_for("admin.letters"),
    )


# --- inside a mail run: its letters, and a reprint ----------------------------------------

RUN_COLUMNS = (
    Column("reference", "Zeichen", Letter.id),
    Column("kind", "Art", Letter.kind),
    Column("bsnr", "Betriebsstätte", Practice.bsnr),
    Column("user", "Benutzer"),
    Column("status", "Status", Letter.status),
)


@blueprint.get("/letters/runs/<int(max=2147483647):run_id>")
@allowed(ALL_ROLES)
def mail_run(run_id: int) -> ResponseReturnValue:
    """A run's letters and where each stands; its passwords are never shown again (a
    password letter is reprinted with a new one)."""
    with state().database.reader() as db:
        run = db.get(MailRun, run_id)
        if run is None:
            abort(404)
        page = page_of(
            db,
            select(Letter, Practice)
            .join(Practice, Letter.practice_id == Practice.id)
            .where(Letter.run_id == run_id)
            .options(selectinload(Letter.user)),
            columns=RUN_COLUMNS,
            default_sort="reference",
            tiebreak=Letter.id,
            endpoint="admin.mail_run",
            args={},
            view_args={"run_id": run_id},
            per_page=100,
        )
        return render_template(
            "admin/mail_run.html",
            run=run,
            page=page,
            kind_label=mailruns.kind_label,
            staff=g.staff,
        )


class ReprintForm(FlaskForm):  # type: ignore[misc]
    pass


@blueprint.route("/letters/<int(max=2147483647):letter_id>/reprint", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def letter_reprint(letter_id: int) -> ResponseReturnValue:
    """Print one letter again as a PDF; a password letter gets a new password."""
    settings = state().settings
    with state().database.reader() as db:
        letter = db.get(Letter, letter_id)
        if letter is None:
            abort(404)
        reference = mailruns.reference(letter)
        kind = mailruns.kind_label(letter.kind)
        password = letter.kind in mailruns.PASSWORD_LETTERS
        bsnr, run_id = letter.practice.bsnr, letter.run_id
        who = letter.user.username if letter.user else "–"
    form = ReprintForm()
    out = BytesIO()

    def act(db: Session) -> str:
        mailruns.reprint(
            db,
            letter_id=letter_id,
            out=out,
            templates=mailruns.templates_for(settings),
            settings=settings,
            today=utcnow().astimezone(BERLIN).date(),
            actor=g.staff.actor,
            now=utcnow(),
        )
        return reference

    def download(_: str) -> Response:
        return Response(
            out.getvalue(),
            mimetype="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="brief-{reference}.pdf"',
                "Cache-Control": "no-store",
            },
        )

    def again(problems: list[str], status: int) -> ResponseReturnValue:
        intro = ["Der Brief entsteht noch einmal als PDF (mit den heutigen Angaben)."]
        if password:
            intro.append(
                "Ein Kennwortbrief bekommt ein neues Kennwort: das bisherige gilt danach nicht "
                "mehr. Das PDF enthält das Kennwort; nach dem Druck löschen."
            )
        back = url_for("admin.mail_run", run_id=run_id) if run_id else url_for("admin.letters")
        return render_template(
            "admin/dialog.html",
            form=form,
            problems=problems,
            title=f"Brief {reference} erneut drucken",
            intro=intro,
            facts=[("Art", kind), ("Betriebsstätte", bsnr), ("Benutzer", who)],
            form_fields=[],
            button="Neues Kennwort erzeugen und drucken" if password else "Erneut drucken",
            back=back,
            danger=password,
            staff=g.staff,
        ), status

    return submit(form, act, done=download, again=again)
