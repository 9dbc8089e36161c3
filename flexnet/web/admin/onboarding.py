"""Onboarding (helpdesk, admin): a practice with its accepted terms, its users (each
queues a credentials letter), and its Yubikey from stock (queues the key letter); the
key stock with a file import. The same services as the CLI."""

from __future__ import annotations

from datetime import date, timedelta

from flask import g, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from wtforms import StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from flexnet import labels
from flexnet.accounts import practices, users
from flexnet.db import utcnow
from flexnet.errors import ValidationError
from flexnet.lifecycle import returns
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    PracticeKind,
    ReturnCondition,
    TermsChannel,
    Token,
    TokenStatus,
    UserKind,
)
from flexnet.otp import importer
from flexnet.provisioning import issuance
from flexnet.web import state
from flexnet.web.admin import (
    HELPDESK,
    allowed,
    blank,
    blueprint,
    flash_and_redirect,
    form_page,
    practice_or_404,
    submit,
)
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import DayField, chosen, maybe_chosen, one_line

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


class ReturnForm(FlaskForm):  # type: ignore[misc]
    serial = StringField("Seriennummer", validators=[DataRequired(REQUIRED)])
    received_on = DayField("Eingegangen am", validators=[InputRequired(REQUIRED)])
    condition = chosen(
        "Zustand",
        [
            SelectChoice(ReturnCondition.GOOD.value, "gut: nach Neuprogrammierung ins Lager"),
            SelectChoice(ReturnCondition.DAMAGED.value, "beschädigt: ausmustern"),
        ],
        "Bitte den Zustand wählen.",
    )
    note = StringField("Anmerkung", validators=[Optional(), one_line("Anmerkung", 200)])


class ImportForm(FlaskForm):  # type: ignore[misc]
    file = FileField(
        "Datei (ykman-CSV, ykpersonalize-Log oder PSKC)",
        validators=[FileRequired("Bitte eine Datei wählen.")],
    )


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


@blueprint.route("/keys", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def keys() -> ResponseReturnValue:
    """The stock: counts by status, the keys ready to hand out, overdue returns, the
    receipt of a returned key, and the import."""
    form = ImportForm()

    def act(db: Session) -> str:
        data = form.file.data.read(MAX_IMPORT_BYTES + 1)
        if len(data) > MAX_IMPORT_BYTES:
            raise ValidationError("Die Datei ist größer als 5 MB")
        parsed = importer.parse(data, importer.Format.AUTO)  # before any row is read
        summary = importer.import_keys(
            db, parsed, box=state().secret_box, actor=g.staff.actor, now=utcnow()
        )
        return f"{summary.total} Yubikeys importiert ({summary.reprogrammed} neu programmiert)."

    return submit(
        form,
        act,
        done=lambda message: flash_and_redirect(message, url_for("admin.keys")),
        again=lambda problems, status: _keys_page(
            form, blank(ReturnForm, received_on=_today()), problems, status
        ),
    )


@blueprint.post("/keys/return")
@reshows_stale_form
@allowed(HELPDESK)
def key_return() -> ResponseReturnValue:
    """Record a key that came back (§ 10.2)."""
    form = ReturnForm()

    def act(db: Session) -> str:
        token = returns.record_return(
            db,
            serial=form.serial.data or "",
            received_on=form.received_on.data,
            condition=ReturnCondition(form.condition.data),
            note=form.note.data or None,
            actor=g.staff.actor,
            now=utcnow(),
        )
        returned = token.status is TokenStatus.RETURNED
        return f"Yubikey {form.serial.data} eingegangen; " + (
            "ins Lager erst nach Neuprogrammierung." if returned else "ausgemustert."
        )

    return submit(
        form,
        act,
        done=lambda message: flash_and_redirect(message, url_for("admin.keys")),
        again=lambda problems, status: _keys_page(blank(ImportForm), form, problems, status),
    )


def _keys_page(
    form: ImportForm, return_form: ReturnForm, problems: list[str], status: int
) -> ResponseReturnValue:
    settings = state().settings
    with state().database.reader() as db:
        overdue = returns.overdue(
            db, locked_before=utcnow() - timedelta(days=settings.return_reminder_days)
        )
        counts = dict(db.execute(select(Token.status, func.count()).group_by(Token.status)).all())
        ready = list(
            db.scalars(
                select(Token.serial)
                .where(Token.status == TokenStatus.STOCK)
                .order_by(Token.serial)
                .limit(100)
            )
        )
    return render_template(
        "admin/keys.html",
        form=form,
        return_form=return_form,
        problems=problems,
        counts=counts,
        ready=ready,
        overdue=overdue,
        staff=g.staff,
    ), status
