"""Staff accounts (admin only): list, add, change role, deactivate (MD § 6), reset a
second factor and hand out the one-time enrolment code for a new one (shown once)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from flexnet.db import utcnow
from flexnet.errors import NotFoundError
from flexnet.models import StaffAccount, StaffRole, Token, TokenStatus
from flexnet.otp import stock
from flexnet.staff import accounts as staff_accounts
from flexnet.web import state
from flexnet.web.admin import (
    ADMIN,
    ROLE_LABELS,
    ButtonForm,
    allowed,
    blank,
    blueprint,
    confirm_first,
    dialog,
    flash_and_redirect,
    submit,
    typed,
)
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import chosen

REQUIRED = "Bitte ausfüllen."
CONFIRM = "Zur Bestätigung bitte genau den Benutzernamen eingeben."
_ROLE_CHOICES = [SelectChoice(role.value, label) for role, label in ROLE_LABELS.items()]


class AddForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    username = StringField("Benutzername", validators=[DataRequired(REQUIRED), Length(max=64)])
    name = StringField("Name", validators=[Length(max=200)])
    role = chosen("Rolle", _ROLE_CHOICES, "Bitte eine Rolle wählen.")
    password = PasswordField(
        "Erstkennwort (mindestens 12 Zeichen, der Mitarbeiter richtet dann den zweiten Faktor ein)",
        validators=[DataRequired(REQUIRED)],
    )


class PasswordResetForm(FlaskForm):  # type: ignore[misc]
    password = PasswordField(
        "Neues Erstkennwort (mindestens 12 Zeichen; wird bei der nächsten Anmeldung geändert)",
        validators=[DataRequired(REQUIRED)],
    )
    confirm = StringField(
        "Zur Bestätigung den Benutzernamen eingeben", validators=[DataRequired(REQUIRED)]
    )


class RoleForm(FlaskForm):  # type: ignore[misc]
    role = SelectField("Rolle", choices=_ROLE_CHOICES)


class DeactivateForm(FlaskForm):  # type: ignore[misc]
    confirm = StringField(
        "Zur Bestätigung den Benutzernamen eingeben", validators=[DataRequired(REQUIRED)]
    )


def _page(
    form: AddForm,
    problems: list[str],
    status: int,
    shown_code: staff_accounts.EnrolmentCode | None = None,
) -> ResponseReturnValue:
    with state().database.reader() as db:
        staff_keys = dict(
            db.execute(
                select(Token.staff_id, Token.serial).where(
                    Token.staff_id.is_not(None), Token.status == TokenStatus.ACTIVE
                )
            ).all()
        )
        accounts = list(
            db.scalars(
                select(StaffAccount).order_by(StaffAccount.active.desc(), StaffAccount.username)
            )
        )
        admins = staff_accounts.active_admin_count(db)
    return render_template(
        "admin/staff.html",
        accounts=accounts,
        admins=admins,
        form=form,
        role_form=blank(RoleForm),
        deactivate_form=blank(DeactivateForm),
        yubikey_form=blank(YubikeyForm),
        code_form=blank(ButtonForm),
        staff_keys=staff_keys,
        shown_code=shown_code,
        problems=problems,
        role_labels=ROLE_LABELS,
        staff=g.staff,
    ), status


def _again(problems: list[str], status: int) -> ResponseReturnValue:
    """The staff page again after a refused action on one account (the add form blank)."""
    return _page(blank(AddForm), problems, status)


def _shown(code: staff_accounts.EnrolmentCode) -> ResponseReturnValue:
    """A new enrolment code, on this answer only (the page is not a redirect target)."""
    return _page(blank(AddForm), [], 200, shown_code=code)


def _back_to_staff(message: str) -> ResponseReturnValue:
    return flash_and_redirect(message, url_for("admin.staff_page"))


@blueprint.get("/staff")
@allowed(ADMIN)
def staff_page() -> ResponseReturnValue:
    return _page(blank(AddForm), [], 200)


@blueprint.post("/staff")
@reshows_stale_form
@allowed(ADMIN)
def staff_add() -> ResponseReturnValue:
    form = AddForm()

    def act(db: Session) -> staff_accounts.EnrolmentCode:
        account = staff_accounts.add_staff(
            db,
            username=form.username.data or "",
            name=form.name.data or None,
            role=StaffRole(form.role.data),
            password=form.password.data or "",
            actor=g.staff.actor,
            now=utcnow(),
        )
        db.flush()
        return staff_accounts.issue_enrolment_code(
            db, username=account.username, actor=g.staff.actor, now=utcnow()
        )

    def added(code: staff_accounts.EnrolmentCode) -> ResponseReturnValue:
        flash(f"Mitarbeiter {code.username} angelegt.")
        return _shown(code)

    def again(problems: list[str], status: int) -> ResponseReturnValue:
        form.password.data = ""  # a password typed is never sent back
        return _page(form, problems, status)

    return submit(form, act, done=added, again=again)


@blueprint.post("/staff/<username>/role")
@reshows_stale_form
@allowed(ADMIN)
def staff_role(username: str) -> ResponseReturnValue:
    form = RoleForm()
    if form.validate_on_submit() and not g.get("stale_form"):
        new = ROLE_LABELS[StaffRole(form.role.data)]
        own = username.strip().lower() == g.staff.username
        asked = confirm_first(
            title=f"Rolle von {username} ändern",
            lines=[f"Neue Rolle: {new}. Die Rechte gelten ab der nächsten Seite."],
            warning=(
                "Sie ändern Ihre eigene Rolle: ohne Administration können Sie Mitarbeiter "
                "und Einstellungen danach nicht mehr verwalten."
                if own and form.role.data != StaffRole.ADMIN.value
                else None
            ),
            button=f"Ja, Rolle auf {new} ändern",
            back=url_for("admin.staff_page"),
        )
        if asked is not None:
            return asked
    return submit(
        form,
        lambda db: staff_accounts.change_role(
            db, username=username, role=StaffRole(form.role.data), actor=g.staff.actor, now=utcnow()
        ),
        done=lambda _: _back_to_staff(f"Rolle von {username} geändert."),
        again=_again,
        invalid="Bitte eine Rolle wählen.",
    )


def _confirmed(username: str) -> dict[str, list[Any]]:
    """The username typed to confirm a destructive action on the account (any case)."""
    return {"confirm": [typed(username, CONFIRM, any_case=True)]}


@blueprint.post("/staff/<username>/deactivate")
@reshows_stale_form
@allowed(ADMIN)
def staff_deactivate(username: str) -> ResponseReturnValue:
    def deactivated(_: object) -> ResponseReturnValue:
        flash(f"{username} ist deaktiviert; laufende Sitzungen sind beendet.")
        if username.lower() == g.staff.username:
            return redirect(url_for("admin.login"))
        return redirect(url_for("admin.staff_page"))

    return submit(
        DeactivateForm(),
        lambda db: staff_accounts.deactivate_staff(
            db, username=username, actor=g.staff.actor, now=utcnow()
        ),
        done=deactivated,
        again=_again,
        invalid=CONFIRM,
        extra_validators=_confirmed(username),
    )


@blueprint.post("/staff/<username>/totp-reset")
@reshows_stale_form
@allowed(ADMIN)
def staff_totp_reset(username: str) -> ResponseReturnValue:
    """A lost or replaced phone or Yubikey: live sessions end, and the next sign-in enrols
    anew with the enrolment code shown here once (confirmed by the name)."""

    def act(db: Session) -> staff_accounts.EnrolmentCode:
        staff_accounts.reset_second_factor(db, username=username, actor=g.staff.actor, now=utcnow())
        return staff_accounts.issue_enrolment_code(
            db, username=username, actor=g.staff.actor, now=utcnow()
        )

    def reset(code: staff_accounts.EnrolmentCode) -> ResponseReturnValue:
        flash(
            f"Zweiter Faktor von {code.username} zurückgesetzt; die nächste Anmeldung richtet "
            "ihn mit dem Einrichtungscode neu ein."
        )
        return _shown(code)

    return submit(
        DeactivateForm(),
        act,
        done=reset,
        again=_again,
        invalid=CONFIRM,
        extra_validators=_confirmed(username),
    )


@blueprint.post("/staff/<username>/enrolment-code")
@reshows_stale_form
@allowed(ADMIN)
def staff_enrolment_code(username: str) -> ResponseReturnValue:
    """A new one-time enrolment code for an account without a second factor (the last
    one expired), shown once; an earlier one stops working."""
    return submit(
        ButtonForm(),
        lambda db: staff_accounts.issue_enrolment_code(
            db, username=username, actor=g.staff.actor, now=utcnow()
        ),
        done=_shown,
        again=_again,
        invalid="Das Formular war abgelaufen; bitte erneut.",
    )


class YubikeyForm(FlaskForm):  # type: ignore[misc]
    serial = StringField("Seriennummer aus dem Lager", validators=[DataRequired(REQUIRED)])


@blueprint.post("/staff/<username>/yubikey")
@reshows_stale_form
@allowed(ADMIN)
def staff_yubikey(username: str) -> ResponseReturnValue:
    """Hand a Yubikey from stock to a staff member as their second factor."""
    form = YubikeyForm()
    return submit(
        form,
        lambda db: stock.assign_to_staff(
            db,
            serial=form.serial.data or "",
            staff=staff_accounts.get_staff(db, username),
            actor=g.staff.actor,
            now=utcnow(),
        ),
        done=lambda _: _back_to_staff(
            f"Yubikey {form.serial.data} an {username} ausgegeben (zweiter Faktor)."
        ),
        again=_again,
        invalid="Bitte die Seriennummer angeben.",
    )


@blueprint.route("/staff/<username>/password-reset", methods=["GET", "POST"])
@reshows_stale_form
@allowed(ADMIN)
def staff_password_reset(username: str) -> ResponseReturnValue:
    """A colleague forgot the password: a new first password, changed at the next
    sign-in; the second factor stays (a lost one: "Zweiten Faktor zurücksetzen")."""
    with state().database.reader() as db:
        try:
            name = staff_accounts.get_staff(db, username).username
        except NotFoundError:
            abort(404)
    form = PasswordResetForm()

    def act(db: Session) -> tuple[str, str]:
        staff_accounts.reset_password(
            db,
            username=name,
            password=form.password.data or "",
            actor=g.staff.actor,
            now=utcnow(),
        )
        return (
            f"Kennwort von {name} zurückgesetzt; die Sitzungen sind beendet, bei der nächsten "
            "Anmeldung wird es geändert.",
            url_for("admin.staff_page"),
        )

    return dialog(  # a PasswordField never shows what was typed
        form,
        act,
        title=f"Kennwort zurücksetzen: {name}",
        intro=[
            "Das neue Erstkennwort bitte persönlich oder telefonisch nach Rückruf mitteilen. "
            "Der zweite Faktor bleibt; ist auch er verloren, zusätzlich „Zweiten Faktor "
            "zurücksetzen“ (dann gibt es einen Einrichtungscode)."
        ],
        fields=["password", "confirm"],
        extra_validators={"confirm": [typed(name, CONFIRM, any_case=True)]},
        button="Kennwort zurücksetzen",
        back=url_for("admin.staff_page"),
        danger=True,
    )
