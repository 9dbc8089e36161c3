"""Onboarding (helpdesk, admin): a practice with its accepted terms, its users (each
queues a credentials letter), and its Yubikey from stock (queues the key letter); the
key stock with a file import. The same services as the CLI."""

from __future__ import annotations

from datetime import date

from flask import g, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy.orm import Session
from wtforms import StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from flexnet import labels
from flexnet.accounts import practices, users
from flexnet.db import utcnow
from flexnet.errors import ValidationError
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    PracticeKind,
    TermsChannel,
    UserKind,
)
from flexnet.provisioning import issuance, userimport
from flexnet.web import state
from flexnet.web.admin import (
    HELPDESK,
    allowed,
    blueprint,
    dialog,
    form_page,
    practice_or_404,
)
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import DayField, chosen, maybe_chosen

REQUIRED = "Bitte ausfüllen."
MAX_IMPORT_BYTES = 5 * 1024 * 1024


def _today() -> date:
    return utcnow().astimezone(BERLIN).date()


class PracticeForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    bsnr = StringField("BSNR (9 Ziffern)", validators=[DataRequired(REQUIRED)])
    name = StringField("Name der Betriebsstätte", validators=[DataRequired(REQUIRED)])
    address_extra = StringField("Zusatz (z. B. z. Hd.)", validators=[Optional(), Length(max=200)])
    street = StringField("Straße und Hausnummer", validators=[DataRequired(REQUIRED)])
    zip_code = StringField("PLZ", validators=[DataRequired(REQUIRED)])
    city = StringField("Ort", validators=[DataRequired(REQUIRED)])
    kind = chosen(
        "Art",
        [SelectChoice(k.value, label) for k, label in labels.PRACTICE_KIND_LABEL.items()],
        "Bitte die Art wählen.",
    )
    terms_version = StringField("Nutzungsbedingungen: Version", validators=[Optional()])
    terms_channel = maybe_chosen(
        "angenommen über",
        [SelectChoice(c.value, label) for c, label in labels.TERMS_CHANNEL_LABEL.items()],
    )
    terms_date = DayField("angenommen am", validators=[Optional()])


class UserForm(FlaskForm):  # type: ignore[misc]
    username = StringField("Benutzername", validators=[DataRequired(REQUIRED)])
    kind = chosen(
        "Art",
        [SelectChoice(k.value, users.kind_label(k)) for k in UserKind],
        "Bitte die Art des Benutzers wählen.",
    )
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    lanr = StringField("LANR (bei Mitgliedern)", validators=[Optional()])


class AssignForm(FlaskForm):  # type: ignore[misc]
    serial = StringField("Seriennummer aus dem Lager", validators=[DataRequired(REQUIRED)])


@blueprint.route("/practices/new", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def practice_new() -> ResponseReturnValue:
    form = PracticeForm()

    def act(db: Session) -> tuple[str, str]:
        bsnr = _add_practice(db, form)
        return f"BSNR {bsnr} angelegt.", url_for("admin.practice", bsnr=bsnr)

    return form_page(form, "admin/practice_new.html", act)


def _add_practice(db: Session, form: PracticeForm) -> str:
    """Practice and, if given, its terms acceptance in one transaction."""
    version, accepted_on = (form.terms_version.data or "").strip(), form.terms_date.data
    channel = form.terms_channel.data
    if not (bool(version) == bool(accepted_on) == bool(channel)):
        raise ValidationError(
            "Für die Nutzungsbedingungen Version, Weg und Datum angeben (oder nichts davon)"
        )
    actor, now = g.staff.actor, utcnow()
    practice = practices.add_practice(
        db,
        bsnr=form.bsnr.data or "",
        name=form.name.data or "",
        address_extra=form.address_extra.data or None,
        street=form.street.data or "",
        zip_code=form.zip_code.data or "",
        city=form.city.data or "",
        kind=PracticeKind(form.kind.data),
        actor=actor,
        now=now,
    )
    if version and accepted_on:
        practices.accept_terms(
            db,
            bsnr=practice.bsnr,
            version=version,
            channel=TermsChannel(channel),
            accepted_on=accepted_on,
            actor=actor,
            now=now,
        )
    return practice.bsnr


@blueprint.route("/practices/<bsnr>/users/new", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def user_new(bsnr: str) -> ResponseReturnValue:
    number = practice_or_404(bsnr)
    form = UserForm()

    def act(db: Session) -> tuple[str, str]:
        user, _ = issuance.add_user(
            db,
            username=form.username.data or "",
            bsnr=number,
            kind=UserKind(form.kind.data),
            name=form.name.data or None,
            lanr=form.lanr.data or None,
            actor=g.staff.actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
        message = f"Benutzer {user.username} angelegt; der Zugangsdaten-Brief ist vorgemerkt."
        return message, url_for("admin.practice", bsnr=number)

    return form_page(form, "admin/user_new.html", act, bsnr=number)


@blueprint.route("/practices/<bsnr>/key", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def key_assign(bsnr: str) -> ResponseReturnValue:
    number = practice_or_404(bsnr)
    form = AssignForm()

    def act(db: Session) -> tuple[str, str]:
        issuance.issue_key(
            db,
            serial=form.serial.data or "",
            bsnr=number,
            actor=g.staff.actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
        message = f"Yubikey {form.serial.data} zugewiesen; das Begleitschreiben ist vorgemerkt."
        return message, url_for("admin.practice", bsnr=number)

    return form_page(form, "admin/key_assign.html", act, bsnr=number)


class UserImportForm(FlaskForm):  # type: ignore[misc]
    file = FileField(
        "CSV-Datei aus dem Altsystem (siehe docs/IMPORT_FORMATS.md)",
        validators=[FileRequired("Bitte eine Datei wählen.")],
    )


@blueprint.route("/users/import", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def user_import() -> ResponseReturnValue:
    """Users of the previous system with their password hash: all or nothing."""
    form = UserImportForm()
    settings = state().settings

    def act(db: Session) -> tuple[str, str]:
        data = form.file.data.read(MAX_IMPORT_BYTES + 1)
        if len(data) > MAX_IMPORT_BYTES:
            raise ValidationError("Die Datei ist größer als 5 MB")
        rows = userimport.parse(data)  # every problem with its line, before any row is read
        summary = userimport.import_users(
            db,
            rows,
            actor=g.staff.actor,
            now=utcnow(),
            quarters=settings.lock_after_quarters,
        )
        return (
            f"{summary.users} Benutzer angelegt; Kennwörter übernommen: {summary.taken_over} "
            "(ob sie der Richtlinie genügen, zeigt die erste Anmeldung); ohne Kennwort, "
            f"Zugangsdaten-Brief vorgemerkt: {summary.letters}.",
            url_for("admin.users", taken_over="1"),
        )

    return dialog(
        form,
        act,
        title="Benutzer aus dem Altsystem übernehmen",
        intro=[
            "Alles oder nichts: eine fehlerhafte Zeile verwirft die ganze Datei, und die "
            "Fehler werden mit ihrer Zeile genannt. Übernommene Kennwörter gelten weiter; wer "
            "die Kennwortrichtlinie verletzt, muss bei der ersten Anmeldung ändern.",
        ],
        fields=["file"],
        button="Importieren",
        back=url_for("admin.users"),
    )
