"""Data that changes over the years (helpdesk, admin): a practice's name, address, phone
number and contact person; a user's name and LANR; the end of activity of the practice
and of one member (§ 10.3); a terms version accepted. The same services as ``flexnet
practice edit``, ``user edit``, ``practice end``, ``user end`` and ``terms accept``; the
audit trail names the signed-in staff member."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import abort, g, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Optional

from flexnet import labels
from flexnet.accounts import practices, users
from flexnet.accounts.practices import get_practice
from flexnet.db import utcnow
from flexnet.errors import NotFoundError, ValidationError
from flexnet.lifecycle import activity, terms
from flexnet.lifecycle.rules import BERLIN
from flexnet.lifecycle.status import practice_status, user_lock_instant
from flexnet.models import Practice, TermsChannel, User, UserKind
from flexnet.textrules import REASON_MAX_LENGTH
from flexnet.web import state
from flexnet.web.admin import HELPDESK, allowed, blank, blueprint, dialog
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import NOBODY, Chosen, DayField, chosen, one_line

REQUIRED = "Bitte ausfüllen."
ADDRESS = ("street", "zip_code", "city", "address_extra")
PRACTICE_FIELDS = ("name", "address_extra", "street", "zip_code", "city", "phone", "contact_person")


class PracticeEditForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    name = StringField("Name der Betriebsstätte", validators=[DataRequired(REQUIRED)])
    address_extra = StringField("Zusatz (z. B. z. Hd.)", validators=[Optional()])
    street = StringField("Straße und Hausnummer", validators=[DataRequired(REQUIRED)])
    zip_code = StringField("PLZ", validators=[DataRequired(REQUIRED)])
    city = StringField("Ort", validators=[DataRequired(REQUIRED)])
    phone = StringField(
        "Telefon für Rückrufe", validators=[Optional()], description="z. B. 0391 627 87 00"
    )
    contact_person = StringField("Ansprechpartner in der Praxis", validators=[Optional()])
    address_confirmed = BooleanField(
        "Die Anschrift ist richtig (nach einem unzustellbaren Brief bestätigt)"
    )


class UserEditForm(FlaskForm):  # type: ignore[misc]
    name = StringField("Vor- und Nachname", validators=[Optional()])
    lanr = StringField("LANR (nur Mitglieder)", validators=[Optional()])


class EndForm(FlaskForm):  # type: ignore[misc]
    ended_on = DayField(
        "Ende der Tätigkeit (leer: erfasstes Ende streichen)", validators=[Optional()]
    )
    reason = TextAreaField(
        "Grund (für eine Korrektur oder Streichung)",
        validators=[Optional(), one_line("Grund", REASON_MAX_LENGTH)],
    )


class AcceptForm(FlaskForm):  # type: ignore[misc]
    version = SelectField("Version", choices=[], validate_choice=False)
    channel = chosen(
        "angenommen über",
        [SelectChoice(c.value, label) for c, label in labels.TERMS_CHANNEL_LABEL.items()],
        "Bitte wählen, wie angenommen wurde.",
    )
    accepted_on = DayField("angenommen am", validators=[InputRequired(REQUIRED)])


def _practice(db: Session, bsnr: str) -> Practice:
    try:
        return get_practice(db, bsnr)
    except (NotFoundError, ValidationError):
        abort(404)


def _user(db: Session, username: str) -> User:
    try:
        return users.get_user(db, username)
    except NotFoundError:
        abort(404)


def _posted() -> bool:
    return request.method == "POST"


def _changed(what: str, changes: Mapping[str, Mapping[str, Any]]) -> str:
    if not changes:
        return f"{what}: nichts geändert (die Angaben stimmen schon)."
    return f"{what} geändert: " + "; ".join(labels.change_lines(changes)) + "."


@blueprint.route("/practices/<bsnr>/edit", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def practice_edit(bsnr: str) -> ResponseReturnValue:
    """Name, address, phone, contact person: later letters use the new values."""
    with state().database.reader() as db:
        record = _practice(db, bsnr)
        current = {field: getattr(record, field) or "" for field in PRACTICE_FIELDS}
        undeliverable = record.undeliverable_since
        number, name = record.bsnr, record.name
    form = PracticeEditForm() if _posted() else blank(PracticeEditForm, **current)

    def act(db: Session) -> tuple[str, str]:
        typed = {field: (form[field].data or "").strip() for field in PRACTICE_FIELDS}
        given: dict[str, str | None] = {
            field: value if value != current[field] else None for field, value in typed.items()
        }
        if undeliverable and form.address_confirmed.data:  # the address as it stands is right
            given.update({field: typed[field] for field in ADDRESS})
        if all(value is None for value in given.values()):
            return _changed(f"Betriebsstätte {number}", {}), url_for("admin.practice", bsnr=number)
        changes = practices.edit_practice(
            db, bsnr=number, actor=g.staff.actor, now=utcnow(), **given
        )
        return _changed(f"Betriebsstätte {number}", changes), url_for("admin.practice", bsnr=number)

    intro = ["Spätere Briefe tragen die neuen Angaben; die bisherigen bleiben im Protokoll."]
    fields = [*PRACTICE_FIELDS]
    if undeliverable:
        intro.append(
            f"Am {undeliverable:%d.%m.%Y} kam ein Brief als unzustellbar zurück: die Briefe an "
            "diese Betriebsstätte warten, bis die Anschrift berichtigt oder bestätigt ist."
        )
        fields.append("address_confirmed")
    return dialog(
        form,
        act,
        title=f"Angaben ändern: {number} – {name}",
        intro=intro,
        fields=fields,
        button="Speichern",
        back=url_for("admin.practice", bsnr=number),
    )


@blueprint.route("/users/<username>/edit", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def user_edit(username: str) -> ResponseReturnValue:
    with state().database.reader() as db:
        record = _user(db, username)
        current = {"name": record.name or "", "lanr": record.lanr or ""}
        name, member = record.username, record.kind is UserKind.MEMBER
    form = UserEditForm() if _posted() else blank(UserEditForm, **current)

    def act(db: Session) -> tuple[str, str]:
        typed = {field: (form[field].data or "").strip() for field in current}
        given = {
            field: value if value != current[field] else None for field, value in typed.items()
        }
        back = url_for("admin.user", username=name)
        if all(value is None for value in given.values()):
            return _changed(f"Benutzer {name}", {}), back
        changes = users.edit_user(db, username=name, actor=g.staff.actor, now=utcnow(), **given)
        return _changed(f"Benutzer {name}", changes), back

    return dialog(
        form,
        act,
        title=f"Angaben ändern: {name}",
        intro=[
            "Spätere Briefe tragen den neuen Namen; die bisherigen Angaben bleiben im Protokoll."
        ],
        fields=["name", "lanr"] if member else ["name"],
        button="Speichern",
        back=url_for("admin.user", username=name),
    )


def _lock_text(instant: Any) -> str:
    return f"{instant.astimezone(BERLIN):%d.%m.%Y %H:%M}" if instant else "–"


@blueprint.route("/users/<username>/end", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def user_end(username: str) -> ResponseReturnValue:
    """§ 10.3 for one member: his access ends four quarters after his own end."""
    quarters = state().settings.lock_after_quarters
    with state().database.reader() as db:
        record = _user(db, username)
        if record.kind is not UserKind.MEMBER:
            abort(404)
        name, previous = record.username, record.activity_ended_on
    form = EndForm() if _posted() else blank(EndForm, ended_on=previous)

    def act(db: Session) -> tuple[str, str]:
        member = activity.record_member_end(
            db,
            username=name,
            ended_on=form.ended_on.data,
            reason=form.reason.data or None,
            actor=g.staff.actor,
            now=utcnow(),
            quarters=quarters,
        )
        lock = _lock_text(user_lock_instant(member, quarters))
        if form.ended_on.data is None:
            message = f"Ende der Tätigkeit für {name} gestrichen; Sperre nach Daten ab {lock}."
        else:
            message = (
                f"Ende der Tätigkeit für {name}: {form.ended_on.data:%d.%m.%Y}; "
                f"automatische Sperre ab {lock}."
            )
        return message, url_for("admin.user", username=name)

    return dialog(
        form,
        act,
        title=f"Ende der Tätigkeit: {name}",
        intro=[
            "Der Zugang des Mitglieds endet vier Quartale nach dem Ende seiner Tätigkeit "
            "(§ 10 Abs. 3); Praxispersonal und Praxiszugang, wenn kein Mitglied der "
            "Betriebsstätte mehr Zugang hat.",
            "Ein erfasstes Ende zu korrigieren oder zu streichen braucht einen Grund.",
        ],
        facts=[("Bisher erfasst", f"{previous:%d.%m.%Y}" if previous else "nichts")],
        fields=["ended_on", "reason"],
        button="Erfassen",
        back=url_for("admin.user", username=name),
    )


@blueprint.route("/practices/<bsnr>/end", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def practice_end(bsnr: str) -> ResponseReturnValue:
    """§ 10.3 for the practice: its access ends four quarters later."""
    settings = state().settings
    with state().database.reader() as db:
        record = _practice(db, bsnr)
        number, previous = record.bsnr, record.activity_ended_on
    form = EndForm() if _posted() else blank(EndForm, ended_on=previous)

    def act(db: Session) -> tuple[str, str]:
        practice = activity.record_practice_end(
            db,
            bsnr=number,
            ended_on=form.ended_on.data,
            reason=form.reason.data or None,
            actor=g.staff.actor,
            now=utcnow(),
            quarters=settings.lock_after_quarters,
        )
        status = practice_status(practice, utcnow(), settings.lock_after_quarters)
        what = (
            f"Ende der Tätigkeit: {form.ended_on.data:%d.%m.%Y}"
            if form.ended_on.data
            else "Ende der Tätigkeit gestrichen"
        )
        return f"{what}; Sperre nach Daten ab {_lock_text(status.lock_at)}.", url_for(
            "admin.practice", bsnr=number
        )

    return dialog(
        form,
        act,
        title=f"Ende der Tätigkeit der Betriebsstätte {number}",
        intro=[
            "Die Zugänge der Betriebsstätte enden vier Quartale nach dem Ende der Tätigkeit "
            "(§ 10 Abs. 3), wenn keine Ausnahme gilt.",
            "Ein erfasstes Ende zu korrigieren oder zu streichen braucht einen Grund.",
        ],
        facts=[("Bisher erfasst", f"{previous:%d.%m.%Y}" if previous else "nichts")],
        fields=["ended_on", "reason"],
        button="Erfassen",
        back=url_for("admin.practice", bsnr=number),
    )


@blueprint.route("/practices/<bsnr>/terms", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def terms_accept(bsnr: str) -> ResponseReturnValue:
    """A terms version the practice accepted (paper or portal): opens a refused access."""
    settings = state().settings
    with state().database.reader() as db:
        number = _practice(db, bsnr).bsnr
        published = [v.version for v in terms.versions(db)]
    form = AcceptForm()
    form.version.choices = [NOBODY, *(SelectChoice(v, f"Version {v}") for v in reversed(published))]
    if not form.is_submitted():
        form.accepted_on.data = utcnow().astimezone(BERLIN).date()

    def act(db: Session) -> tuple[str, str]:
        acceptance = terms.accept(
            db,
            bsnr=number,
            version=form.version.data,
            channel=TermsChannel(form.channel.data),
            accepted_on=form.accepted_on.data,
            actor=g.staff.actor,
            now=utcnow(),
            quarters=settings.lock_after_quarters,
        )
        return (
            f"Nutzungsbedingungen {acceptance.version} am {acceptance.accepted_on:%d.%m.%Y} "
            "angenommen.",
            url_for("admin.practice", bsnr=number),
        )

    return dialog(
        form,
        act,
        title=f"Nutzungsbedingungen angenommen: {number}",
        intro=["Öffnet einen wegen ausstehender Annahme verweigerten Zugang wieder."],
        fields=["version", "channel", "accepted_on"],
        extra_validators={"version": [Chosen(published, "Bitte die angenommene Version wählen.")]},
        button="Annahme erfassen",
        back=url_for("admin.practice", bsnr=number),
    )
