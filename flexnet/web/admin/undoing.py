"""Undoing from the practice page (helpdesk, admin): a termination corrected or withdrawn
(§ 10 Abs. 2), a terminated practice taking part again, an exception ended early
(§ 10 Abs. 3). The same services as ``flexnet termination correct|withdraw``,
``flexnet practice reactivate`` and ``flexnet exception end``; every step asks for a
reason, is audited with the signed-in staff member and is confirmed once more."""

from __future__ import annotations

from collections.abc import Callable

from flask import g, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from wtforms import StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Optional

from flexnet import labels
from flexnet.accounts import users
from flexnet.accounts.practices import get_practice
from flexnet.db import utcnow
from flexnet.errors import NotFoundError, ValidationError
from flexnet.lifecycle import lock_exceptions, terminations, terms
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import LockException, Practice, TermsChannel
from flexnet.provisioning import mailruns, reactivation
from flexnet.textrules import REASON_MAX_LENGTH
from flexnet.web import state
from flexnet.web.admin import HELPDESK, allowed, blank, blueprint, confirm_first, dialog
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import DayField, chosen, one_line

REQUIRED = "Bitte ausfüllen."


def _reason_field(label: str = "Grund") -> TextAreaField:
    return TextAreaField(
        label, validators=[DataRequired(REQUIRED), one_line("Grund", REASON_MAX_LENGTH)]
    )


class CorrectForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    notice_date = DayField("Eingang der Kündigung", validators=[InputRequired(REQUIRED)])
    requested_date = DayField("Gewünschtes späteres Ende (optional)", validators=[Optional()])
    reason = _reason_field("Grund der Berichtigung")


class ReasonForm(FlaskForm):  # type: ignore[misc]
    reason = _reason_field()


class ReactivateForm(FlaskForm):  # type: ignore[misc]
    version = StringField(
        "Angenommene Version der Nutzungsbedingungen",
        validators=[DataRequired(REQUIRED), one_line("Version", 32)],
    )
    channel = chosen(
        "angenommen über",
        [SelectChoice(c.value, label) for c, label in labels.TERMS_CHANNEL_LABEL.items()],
        "Bitte wählen, wie angenommen wurde.",
    )
    accepted_on = DayField("angenommen am", validators=[InputRequired(REQUIRED)])
    key_serial = StringField(
        "Neuer Yubikey aus dem Lager (Seriennummer; nötig, wenn der bisherige zurückgefordert ist)",
        validators=[Optional(), one_line("Seriennummer", 32)],
    )
    reason = _reason_field("Grund, z. B. neue Teilnahmeerklärung")


def _practice(bsnr: str) -> tuple[str, str]:
    """The BSNR as stored and what the practice's termination says (404 if unknown)."""
    with state().database.reader() as db:
        try:
            practice: Practice = get_practice(db, bsnr)
        except (NotFoundError, ValidationError):
            raise NotFound from None
        return practice.bsnr, _termination_text(practice)


def _termination_text(practice: Practice) -> str:
    if practice.terminated_by is None:
        return "nicht gekündigt"
    by = labels.TERMINATION_BY_LABEL.get(practice.terminated_by, "")
    notice = practice.termination_notice_on
    text = f"{by}, eingegangen am {notice:%d.%m.%Y}" if notice else by
    if practice.access_ends_on:
        text += f"; letzter Tag mit Zugang {practice.access_ends_on:%d.%m.%Y}"
    return text


def _undone_message(head: str, undone: terminations.Undone) -> str:
    parts = [head]
    if undone.lifted:
        parts.append("Die Sperre durch die Kündigung ist aufgehoben.")
    if undone.cancelled:
        parts.append(f"Nicht mehr gedruckt: {', '.join(undone.cancelled)}.")
    if undone.sent:
        parts.append(
            f"Bereits versandt: {', '.join(undone.sent)}; der Praxis bitte schriftlich "
            "bestätigen, dass der Zugang bleibt."
        )
    return " ".join(parts)


def _asked(
    form: FlaskForm, title: str, lines: list[str], button: str, back: str
) -> ResponseReturnValue | None:
    """The second question before a step that hits the practice, once the form is valid."""
    if request.method != "POST" or g.get("stale_form") or not form.validate():
        return None
    return confirm_first(title=title, lines=lines, button=button, back=back)


@blueprint.route("/practices/<bsnr>/termination/correct", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def termination_correct(bsnr: str) -> ResponseReturnValue:
    number, recorded = _practice(bsnr)
    back = url_for("admin.practice", bsnr=number)
    with state().database.reader() as db:
        notice = get_practice(db, number).termination_notice_on
    form = CorrectForm() if request.method == "POST" else blank(CorrectForm, notice_date=notice)
    asked = _asked(
        form,
        f"Kündigung der BSNR {number} berichtigen?",
        [
            f"Bisher: {recorded}.",
            f"Neu: Eingang am {form.notice_date.data:%d.%m.%Y}"
            + (
                f", gewünschtes Ende {form.requested_date.data:%d.%m.%Y}."
                if form.requested_date.data
                else ", kein gewünschtes späteres Ende."
            )
            if form.notice_date.data
            else "",
            f"Grund: {form.reason.data}",
        ],
        "Ja, berichtigen",
        back,
    )
    if asked is not None:
        return asked

    def act(db: Session) -> tuple[str, str]:
        undone = terminations.correct(
            db,
            bsnr=number,
            notice_date=form.notice_date.data,
            requested=form.requested_date.data,
            reason=form.reason.data or "",
            actor=g.staff.actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
        last_day = undone.practice.access_ends_on
        head = "Kündigung berichtigt" + (
            f"; letzter Tag mit Zugang {last_day:%d.%m.%Y}." if last_day else "."
        )
        return _undone_message(head, undone), back

    return dialog(
        form,
        act,
        title=f"Kündigung berichtigen: BSNR {number}",
        intro=[
            "Eingangsdatum oder gewünschtes Ende war falsch erfasst: der letzte Tag mit Zugang "
            "folgt neu nach § 10 Abs. 2. Eine außerordentliche Kündigung wird nicht "
            "berichtigt, sondern zurückgenommen.",
        ],
        facts=[("Erfasst", recorded)],
        fields=["notice_date", "requested_date", "reason"],
        button="Berichtigen …",
        back=back,
        danger=True,
    )


@blueprint.route("/practices/<bsnr>/termination/withdraw", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def termination_withdraw(bsnr: str) -> ResponseReturnValue:
    number, recorded = _practice(bsnr)
    back = url_for("admin.practice", bsnr=number)
    form = ReasonForm()
    asked = _asked(
        form,
        f"Kündigung der BSNR {number} zurücknehmen?",
        [
            f"Erfasst: {recorded}.",
            "Die Kündigung gilt als nicht gegeben; eine Sperre durch sie (nur diese) wird "
            "aufgehoben, noch nicht gedruckte Briefe zu ihr entfallen.",
            f"Grund: {form.reason.data}",
        ],
        "Ja, zurücknehmen",
        back,
    )
    if asked is not None:
        return asked

    def act(db: Session) -> tuple[str, str]:
        undone = terminations.withdraw(
            db,
            bsnr=number,
            reason=form.reason.data or "",
            actor=g.staff.actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
        return _undone_message("Kündigung zurückgenommen.", undone), back

    return dialog(
        form,
        act,
        title=f"Kündigung zurücknehmen: BSNR {number}",
        intro=["Die Praxis bleibt dabei, oder die Kündigung war ein Irrtum."],
        facts=[("Erfasst", recorded)],
        fields=["reason"],
        button="Zurücknehmen …",
        back=back,
        danger=True,
    )


@blueprint.route("/practices/<bsnr>/reactivate", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def practice_reactivate(bsnr: str) -> ResponseReturnValue:
    number, recorded = _practice(bsnr)
    back = url_for("admin.practice", bsnr=number)
    with state().database.reader() as db:
        published = [v.version for v in terms.versions(db)]
    today = utcnow().astimezone(BERLIN).date()
    form = (
        ReactivateForm() if request.method == "POST" else blank(ReactivateForm, accepted_on=today)
    )
    if request.method == "POST" and not g.get("stale_form") and form.validate():
        asked = confirm_first(
            title=f"BSNR {number} wieder teilnehmen lassen?",
            lines=[
                f"Bisher: {recorded}.",
                f"Nutzungsbedingungen Version {form.version.data}, angenommen am "
                f"{form.accepted_on.data:%d.%m.%Y}.",
                "Alle Benutzer bekommen neue Zugangsdaten per Brief (vorgemerkt für den "
                "nächsten Versandlauf).",
                f"Grund: {form.reason.data}",
            ],
            button="Ja, wieder teilnehmen lassen",
            back=back,
        )
        if asked is not None:
            return asked

    def act(db: Session) -> tuple[str, str]:
        result = reactivation.reactivate(
            db,
            bsnr=number,
            version=form.version.data,
            channel=TermsChannel(form.channel.data),
            accepted_on=form.accepted_on.data,
            key_serial=(form.key_serial.data or "").strip() or None,
            reason=form.reason.data or "",
            actor=g.staff.actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
        numbers = ", ".join(mailruns.reference(letter) for letter in result.letters)
        message = f"BSNR {number} nimmt wieder teil; Briefe vorgemerkt: {numbers or 'keine'}."
        if result.users:
            message += f" Neue Zugangsdaten für: {', '.join(result.users)}."
        return message, back

    return dialog(
        form,
        act,
        title=f"Wieder teilnehmen: BSNR {number}",
        intro=[
            "Eine Betriebsstätte, deren Kündigung wirksam wurde, nimmt wieder teil: mit einer "
            "neuen Annahme der Nutzungsbedingungen und neuen Zugangsdaten-Briefen. Eine "
            "noch nicht wirksame Kündigung wird stattdessen zurückgenommen.",
        ],
        facts=[
            ("Kündigung", recorded),
            ("Veröffentlichte Versionen", ", ".join(published) or "keine"),
        ],
        fields=["version", "channel", "accepted_on", "key_serial", "reason"],
        button="Wieder teilnehmen lassen …",
        back=back,
        danger=True,
    )


@blueprint.route("/practices/<bsnr>/exception/end", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def exception_end(bsnr: str) -> ResponseReturnValue:
    number, _ = _practice(bsnr)
    with state().database.reader() as db:
        granted = get_practice(db, number).lock_exception
        until = _until(granted)
    return _end_exception(
        f"BSNR {number}",
        until,
        url_for("admin.practice", bsnr=number),
        lambda db, reason: lock_exceptions.end(
            db, bsnr=number, reason=reason, actor=g.staff.actor, now=utcnow()
        ),
    )


@blueprint.route("/users/<username>/exception/end", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def user_exception_end(username: str) -> ResponseReturnValue:
    with state().database.reader() as db:
        try:
            user = users.get_user(db, username)
        except NotFoundError:
            raise NotFound from None
        name, until = user.username, _until(user.lock_exception)
    return _end_exception(
        name,
        until,
        url_for("admin.user", username=name),
        lambda db, reason: lock_exceptions.end(
            db, username=name, reason=reason, actor=g.staff.actor, now=utcnow()
        ),
    )


def _until(granted: LockException | None) -> str:
    return f"bis {granted.until:%d.%m.%Y} (Az. {granted.decision_ref})" if granted else "keine"


def _end_exception(
    whose: str, until: str, back: str, end: Callable[[Session, str], None]
) -> ResponseReturnValue:
    """Ending the exception of a practice or a user: a reason, confirmed once more."""
    form = ReasonForm()
    asked = _asked(
        form,
        f"Ausnahme für {whose} beenden?",
        [
            f"Ausnahme {until}.",
            "Ab sofort gelten wieder die Daten: liegt das Ende der Frist schon zurück, "
            "sperrt der nächste nächtliche Lauf.",
            f"Grund: {form.reason.data}",
        ],
        "Ja, Ausnahme beenden",
        back,
    )
    if asked is not None:
        return asked

    def act(db: Session) -> tuple[str, str]:
        end(db, form.reason.data or "")
        return f"Ausnahme für {whose} beendet; die Daten gelten wieder.", back

    return dialog(
        form,
        act,
        title=f"Ausnahme vorzeitig beenden: {whose}",
        intro=[
            "§ 10 Abs. 3 Satz 2: die Ausnahme endet vor ihrem Tag, z. B. weil ihr Grund entfiel."
        ],
        facts=[("Ausnahme", until)],
        fields=["reason"],
        button="Beenden …",
        back=back,
        danger=True,
    )
