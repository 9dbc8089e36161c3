"""A practice changes hands (§ 2.3; helpdesk, admin): the old owner's credentials and key
end, the key is replaced and asked back, the new owner gets users of its own and accepts
the terms. The same service as ``flexnet practice takeover``."""

from __future__ import annotations

import re

from flask import abort, g, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from flexnet import labels
from flexnet.accounts.practices import get_practice
from flexnet.db import utcnow
from flexnet.errors import NotFoundError, ValidationError
from flexnet.lifecycle import terms
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import TermsChannel, UserKind
from flexnet.provisioning import mailruns, takeover
from flexnet.web import state
from flexnet.web.admin import HELPDESK, allowed, blueprint, dialog, typed
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import NOBODY, Chosen, DayField, chosen

REQUIRED = "Bitte ausfüllen."
CONFIRM = "Zur Bestätigung bitte genau die bisherige BSNR eingeben."


class TakeoverForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    on = DayField("Erster Tag des neuen Inhabers", validators=[InputRequired(REQUIRED)])
    new_name = StringField(
        "Name der Praxis unter dem neuen Inhaber", validators=[DataRequired(REQUIRED)]
    )
    new_bsnr = StringField("Neue BSNR (leer: die bisherige geht weiter)", validators=[Optional()])
    members = TextAreaField(
        "Mitglieder des neuen Inhabers",
        validators=[Length(max=4000)],
        description="Je Zeile: Benutzername; LANR; Name – z. B. „dr-neu; 123456601; Dr. Eva Neu“",
    )
    staff = TextAreaField(
        "Praxispersonal",
        validators=[Length(max=4000)],
        description="Je Zeile: Benutzername; Name",
    )
    practice_access = StringField(
        "Neuer Praxiszugang (Benutzername, optional)", validators=[Optional()]
    )
    new_key = StringField(
        "Neuer Yubikey aus dem Lager (Seriennummer, optional)", validators=[Optional()]
    )
    terms_version = SelectField(
        "Angenommene Version der Nutzungsbedingungen", choices=[], validate_choice=False
    )
    terms_channel = chosen(
        "angenommen über",
        [SelectChoice(c.value, label) for c, label in labels.TERMS_CHANNEL_LABEL.items()],
        "Bitte wählen, wie angenommen wurde.",
    )
    accepted_on = DayField("angenommen am", validators=[InputRequired(REQUIRED)])
    street = StringField("Neue Anschrift: Straße (leer: die bisherige)", validators=[Optional()])
    zip_code = StringField("PLZ", validators=[Optional()])
    city = StringField("Ort", validators=[Optional()])
    phone = StringField("Telefon für Rückrufe", validators=[Optional()])
    contact_person = StringField("Ansprechpartner", validators=[Optional()])
    confirm = StringField(
        "Zur Bestätigung die bisherige BSNR eingeben", validators=[DataRequired(CONFIRM)]
    )


def _lines(text: str, parts: int, what: str) -> list[list[str]]:
    """Lines of ``parts`` fields separated by ";" (the last may hold more)."""
    rows = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        fields = [part.strip() for part in re.split(r"\s*;\s*", line.strip(), maxsplit=parts - 1)]
        if len(fields) != parts or not all(fields[:-1]):
            raise ValidationError(
                f"{what}, Zeile {number}: erwartet werden {parts} Angaben, getrennt durch „;“"
            )
        rows.append(fields)
    return rows


def _new_users(form: TakeoverForm) -> list[takeover.NewUser]:
    found = [
        takeover.NewUser(username, UserKind.MEMBER, name or None, lanr)
        for username, lanr, name in _lines(form.members.data, 3, "Mitglieder")
    ]
    found += [
        takeover.NewUser(username, UserKind.STAFF, name or None)
        for username, name in _lines(form.staff.data, 2, "Praxispersonal")
    ]
    if (form.practice_access.data or "").strip():
        found.append(takeover.NewUser(form.practice_access.data.strip(), UserKind.PRACTICE_ACCESS))
    return found


def _optional(value: str | None) -> str | None:
    return (value or "").strip() or None


@blueprint.route("/practices/<bsnr>/takeover", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def takeover_dialog(bsnr: str) -> ResponseReturnValue:
    settings = state().settings
    with state().database.reader() as db:
        try:
            practice = get_practice(db, bsnr)
        except (NotFoundError, ValidationError):
            abort(404)
        number, name = practice.bsnr, practice.name
        published = [v.version for v in terms.versions(db)]
    form = TakeoverForm()
    form.terms_version.choices = [
        NOBODY,
        *(SelectChoice(v, f"Version {v}") for v in reversed(published)),
    ]
    if not form.is_submitted():
        form.accepted_on.data = utcnow().astimezone(BERLIN).date()

    def act(db: Session) -> tuple[str, str]:
        result = takeover.take_over(
            db,
            bsnr=number,
            on=form.on.data,
            new_name=form.new_name.data or "",
            new_bsnr=_optional(form.new_bsnr.data),
            terms_version=form.terms_version.data,
            terms_channel=TermsChannel(form.terms_channel.data),
            accepted_on=form.accepted_on.data,
            new_users=_new_users(form),
            new_key=_optional(form.new_key.data),
            address=takeover.Address(
                _optional(form.street.data),
                _optional(form.zip_code.data),
                _optional(form.city.data),
                None,
                _optional(form.phone.data),
                _optional(form.contact_person.data),
            ),
            actor=g.staff.actor,
            now=utcnow(),
            quarters=settings.lock_after_quarters,
        )
        successor = result.practice.bsnr
        letters = ", ".join(mailruns.reference(letter) for letter in result.letters) or "keine"
        ended = ", ".join(sorted(result.ended)) or "keine"
        message = (
            f"Übernahme am {form.on.data:%d.%m.%Y}: BSNR {successor} – {result.practice.name}. "
            f"Zugänge des bisherigen Inhabers beendet: {ended}. Briefe vorgemerkt: {letters}."
        )
        if not _optional(form.new_key.data):
            message += " Bitte einen neuen Yubikey zuweisen."
        return message, url_for("admin.practice", bsnr=successor)

    return dialog(
        form,
        act,
        title=f"Praxisübernahme: {number} – {name}",
        intro=[
            "Zugangsdaten und Yubikey des bisherigen Inhabers sind nicht übertragbar (§ 2 Abs. 3): "
            "sie enden mit der Übernahme, der Yubikey wird zurückgefordert. Der neue Inhaber "
            "bekommt eigene Benutzer (Briefe) und nimmt die Nutzungsbedingungen an.",
        ],
        fields=[
            "on",
            "new_name",
            "new_bsnr",
            "members",
            "staff",
            "practice_access",
            "new_key",
            "terms_version",
            "terms_channel",
            "accepted_on",
            "street",
            "zip_code",
            "city",
            "phone",
            "contact_person",
            "confirm",
        ],
        extra_validators={
            "terms_version": [Chosen(published, "Bitte die angenommene Version wählen.")],
            "confirm": [typed(number, CONFIRM)],
        },
        button="Übernahme erfassen",
        danger=True,
        back=url_for("admin.practice", bsnr=number),
    )
