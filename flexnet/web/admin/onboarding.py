"""Onboarding (helpdesk, admin): a practice with its accepted terms, its users (each
queues a credentials letter), and its Yubikey from stock (queues the key letter); the
key stock with a file import. The same services as the CLI."""

from __future__ import annotations

from datetime import date, timedelta

from flask import flash, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import func, select
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from flexnet.accounts import practices, users
from flexnet.db import utcnow
from flexnet.errors import FlexnetError, ValidationError
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
from flexnet.web.admin import HELPDESK, allowed, blank, blueprint, form_page, practice_or_404
from flexnet.web.forms import DayField, one_line

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
    kind = SelectField(
        "Art",
        choices=[
            SelectChoice(PracticeKind.MEMBER.value, "Mitgliedspraxis"),
            SelectChoice(PracticeKind.THIRD_PARTY.value, "Dritter (§ 1 Abs. 1)"),
        ],
    )
    terms_version = StringField("Nutzungsbedingungen: Version", validators=[Optional()])
    terms_channel = SelectField(
        "angenommen über",
        choices=[
            SelectChoice(TermsChannel.PAPER.value, "Teilnahmeerklärung (Papier)"),
            SelectChoice(TermsChannel.PORTAL.value, "Portal (KVSAonline)"),
        ],
    )
    terms_date = DayField("angenommen am", validators=[Optional()])


class UserForm(FlaskForm):  # type: ignore[misc]
    username = StringField("Benutzername", validators=[DataRequired(REQUIRED)])
    kind = SelectField(
        "Art", choices=[SelectChoice(k.value, users.kind_label(k)) for k in UserKind]
    )
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    lanr = StringField("LANR (bei Mitgliedern)", validators=[Optional()])


class AssignForm(FlaskForm):  # type: ignore[misc]
    serial = StringField("Seriennummer aus dem Lager", validators=[DataRequired(REQUIRED)])


class ReturnForm(FlaskForm):  # type: ignore[misc]
    serial = StringField("Seriennummer", validators=[DataRequired(REQUIRED)])
    received_on = DayField("Eingegangen am", validators=[InputRequired(REQUIRED)])
    condition = SelectField(
        "Zustand",
        choices=[
            SelectChoice(ReturnCondition.GOOD.value, "gut: nach Neuprogrammierung ins Lager"),
            SelectChoice(ReturnCondition.DAMAGED.value, "beschädigt: ausmustern"),
        ],
    )
    note = StringField("Anmerkung", validators=[Optional(), one_line("Anmerkung", 200)])


class ImportForm(FlaskForm):  # type: ignore[misc]
    file = FileField(
        "Datei (ykman-CSV, ykpersonalize-Log oder PSKC)",
        validators=[FileRequired("Bitte eine Datei wählen.")],
    )


@blueprint.route("/practices/new", methods=["GET", "POST"])
@allowed(HELPDESK)
def practice_new() -> ResponseReturnValue:
    form = PracticeForm()

    def act() -> tuple[str, str]:
        bsnr = _add_practice(form)
        return f"BSNR {bsnr} angelegt.", url_for("admin.practice", bsnr=bsnr)

    return form_page(form, "admin/practice_new.html", act)


def _add_practice(form: PracticeForm) -> str:
    """Practice and, if given, its terms acceptance in one transaction."""
    version, accepted_on = (form.terms_version.data or "").strip(), form.terms_date.data
    if bool(version) != bool(accepted_on):
        raise ValidationError("Für die Nutzungsbedingungen Version und Datum angeben (oder keins)")
    actor, now = g.staff.actor, utcnow()
    with state().database.session() as db:
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
                channel=TermsChannel(form.terms_channel.data),
                accepted_on=accepted_on,
                actor=actor,
                now=now,
            )
        return practice.bsnr


@blueprint.route("/practices/<bsnr>/users/new", methods=["GET", "POST"])
@allowed(HELPDESK)
def user_new(bsnr: str) -> ResponseReturnValue:
    number = practice_or_404(bsnr)
    form = UserForm()

    def act() -> tuple[str, str]:
        with state().database.session() as db:
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
@allowed(HELPDESK)
def key_assign(bsnr: str) -> ResponseReturnValue:
    number = practice_or_404(bsnr)
    form = AssignForm()

    def act() -> tuple[str, str]:
        with state().database.session() as db:
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
@allowed(HELPDESK)
def keys() -> ResponseReturnValue:
    """The stock: counts by status, the keys ready to hand out, overdue returns, the
    receipt of a returned key, and the import."""
    form = ImportForm()
    problems: list[str] = []
    if form.validate_on_submit():
        data = form.file.data.read(MAX_IMPORT_BYTES + 1)
        try:
            if len(data) > MAX_IMPORT_BYTES:
                raise ValidationError("Die Datei ist größer als 5 MB")
            flexnet = state()
            parsed = importer.parse(data, importer.Format.AUTO)
            with flexnet.database.session() as db:
                summary = importer.import_keys(
                    db, parsed, box=flexnet.secret_box, actor=g.staff.actor, now=utcnow()
                )
        except importer.ImportFailed as failed:
            problems = [
                f"Import abgebrochen, nichts übernommen ({failed.summary}):",
                *failed.errors,
            ]
        except FlexnetError as error:
            problems = [error.message]
        else:
            flash(f"{summary.total} Yubikeys importiert ({summary.reprogrammed} neu programmiert).")
            return redirect(url_for("admin.keys"))
    return _keys_page(form, blank(ReturnForm, received_on=_today()), problems)


@blueprint.post("/keys/return")
@allowed(HELPDESK)
def key_return() -> ResponseReturnValue:
    """Record a key that came back (§ 10.2)."""
    form = ReturnForm()
    problems: list[str] = []
    if form.validate_on_submit():
        try:
            with state().database.session() as db:
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
        except FlexnetError as error:
            problems = [error.message]
        else:
            flash(
                f"Yubikey {form.serial.data} eingegangen; "
                + ("ins Lager erst nach Neuprogrammierung." if returned else "ausgemustert.")
            )
            return redirect(url_for("admin.keys"))
    return _keys_page(blank(ImportForm), form, problems)


def _keys_page(
    form: ImportForm, return_form: ReturnForm, problems: list[str]
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
    status = 400 if problems or form.errors or return_form.errors else 200
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
