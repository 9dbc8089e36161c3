"""Terminations (§ 10.2) and exceptions to the automatic lock (§ 10.3 sentence 2) from
the practice page (helpdesk, admin); the same services as the CLI."""

from __future__ import annotations

from flask import abort, g, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Optional

from flexnet.accounts import users
from flexnet.db import utcnow
from flexnet.errors import NotFoundError, ValidationError
from flexnet.lifecycle import lock_exceptions, locks
from flexnet.models import TerminationBy
from flexnet.textrules import REASON_MAX_LENGTH
from flexnet.web import state
from flexnet.web.admin import (
    HELPDESK,
    allowed,
    blueprint,
    dialog,
    form_page,
    practice_or_404,
    typed,
)
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import DayField, chosen, one_line

REQUIRED = "Bitte ausfüllen."


class TerminationForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    by = chosen(
        "Gekündigt durch",
        [
            SelectChoice(TerminationBy.MEMBER.value, "die Praxis / den Dritten (zwei Wochen)"),
            SelectChoice(
                TerminationBy.ASSOCIATION.value,
                "die KVSA (acht Wochen zum Quartalsende)",
            ),
            SelectChoice(TerminationBy.EXTRAORDINARY.value, "außerordentlich (sofort)"),
        ],
        "Bitte wählen, wer kündigt.",
    )
    notice_date = DayField("Eingang der Kündigung", validators=[InputRequired(REQUIRED)])
    requested_date = DayField("Gewünschtes späteres Ende (optional)", validators=[Optional()])
    reason = TextAreaField(
        "Grund (bei außerordentlicher Kündigung nötig)",
        validators=[one_line("Grund", REASON_MAX_LENGTH)],
    )
    confirm = StringField("Zur Bestätigung die BSNR eingeben", validators=[DataRequired(REQUIRED)])


class ExceptionForm(FlaskForm):  # type: ignore[misc]
    until = DayField("Letzter Tag mit Zugang", validators=[InputRequired(REQUIRED)])
    reason = TextAreaField(
        "Begründung", validators=[DataRequired(REQUIRED), one_line("Begründung", 1000)]
    )
    decision_ref = StringField(
        "Aktenzeichen der Entscheidung",
        validators=[DataRequired(REQUIRED), one_line("Aktenzeichen", 100)],
    )
    decided_by = StringField(
        "Entschieden von", validators=[DataRequired(REQUIRED), one_line("Entschieden von", 200)]
    )


@blueprint.route("/practices/<bsnr>/terminate", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def terminate(bsnr: str) -> ResponseReturnValue:
    number = practice_or_404(bsnr)
    form = TerminationForm()

    def act(db: Session) -> tuple[str, str]:
        by = TerminationBy(form.by.data)
        if by is TerminationBy.EXTRAORDINARY and not (form.reason.data or "").strip():
            raise ValidationError("Eine außerordentliche Kündigung braucht einen Grund")
        practice = locks.terminate(
            db,
            bsnr=number,
            by=by,
            notice_date=form.notice_date.data,
            requested=form.requested_date.data,
            reason=form.reason.data,
            actor=g.staff.actor,
            now=utcnow(),
        )
        last_day = practice.access_ends_on
        message = (
            f"Kündigung erfasst; letzter Tag mit Zugang {last_day:%d.%m.%Y}."
            if last_day
            else "Außerordentlich gekündigt und sofort gesperrt."
        )
        return message, url_for("admin.practice", bsnr=number)

    confirmed = typed(number, "Die BSNR zur Bestätigung stimmt nicht; nichts erfasst.")
    return form_page(form, "admin/terminate.html", act, {"confirm": [confirmed]}, bsnr=number)


@blueprint.route("/practices/<bsnr>/exception", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def exception(bsnr: str) -> ResponseReturnValue:
    number = practice_or_404(bsnr)
    form = ExceptionForm()

    def act(db: Session) -> tuple[str, str]:
        lock_exceptions.grant(
            db,
            bsnr=number,
            until=form.until.data,
            reason=form.reason.data or "",
            decision_ref=form.decision_ref.data or "",
            decided_by=form.decided_by.data or "",
            actor=g.staff.actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
        message = f"Ausnahme bis {form.until.data:%d.%m.%Y} erfasst."
        return message, url_for("admin.practice", bsnr=number)

    return form_page(form, "admin/exception.html", act, bsnr=number)


@blueprint.route("/users/<username>/exception", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def user_exception(username: str) -> ResponseReturnValue:
    """One member's exception (``flexnet exception grant --user``): his own end of activity
    (§ 10 Abs. 3) does not lock him until the day granted."""
    with state().database.reader() as db:
        try:
            name = users.get_user(db, username).username
        except NotFoundError:
            abort(404)
    form = ExceptionForm()

    def act(db: Session) -> tuple[str, str]:
        lock_exceptions.grant(
            db,
            username=name,
            until=form.until.data,
            reason=form.reason.data or "",
            decision_ref=form.decision_ref.data or "",
            decided_by=form.decided_by.data or "",
            actor=g.staff.actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
        message = f"Ausnahme für {name} bis {form.until.data:%d.%m.%Y} erfasst."
        return message, url_for("admin.user", username=name)

    return dialog(
        form,
        act,
        title=f"Ausnahme von der automatischen Sperre: {name}",
        intro=[
            "§ 10 Abs. 3 Satz 2: Zugang über das Ende der Frist hinaus bis zu einem Tag, mit "
            "Begründung und Aktenzeichen; gilt nur für diesen Benutzer."
        ],
        fields=["until", "reason", "decision_ref", "decided_by"],
        button="Ausnahme erfassen",
        back=url_for("admin.user", username=name),
    )
