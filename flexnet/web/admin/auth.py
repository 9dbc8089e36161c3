"""Staff sign-in: password, then the second factor (enrolled at the first sign-in), logout."""

from __future__ import annotations

import enum
import posixpath
from io import BytesIO
from urllib.parse import urlsplit

import qrcode
import qrcode.image.svg
from flask import Response, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from flexnet.db import utcnow
from flexnet.models import StaffSession
from flexnet.staff import factor, signin
from flexnet.staff.signin import Refusal
from flexnet.web import state
from flexnet.web.admin import ALL_ROLES, allowed, blueprint, clear_cookie, principal, set_cookie
from flexnet.web.errors import reshows_stale_form
from flexnet.web.fields import PasswordFits

REQUIRED = "Bitte ausfüllen."
_REFUSED = {
    Refusal.INVALID: "Anmeldung fehlgeschlagen: Benutzername oder Kennwort ist falsch.",
    Refusal.THROTTLED: (
        "Zu viele Fehlversuche. Bitte versuchen Sie es in 15 Minuten erneut "
        "oder wenden Sie sich an einen Administrator."
    ),
}
_CODE_REFUSED = {
    Refusal.INVALID: (
        "Der Code stimmt nicht oder wurde schon verwendet. Bitte den nächsten Code "
        "Ihrer Authenticator-App eingeben."
    ),
    Refusal.THROTTLED: _REFUSED[Refusal.THROTTLED],
    Refusal.ENROLMENT_CODE: (
        "Der Einrichtungscode stimmt nicht, ist abgelaufen oder wurde schon verwendet. "
        "Einen neuen gibt Ihnen eine Administration (Seite „Mitarbeiter“)."
    ),
}


class LoginForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    username = StringField("Benutzername", validators=[DataRequired(REQUIRED)])
    password = PasswordField("Kennwort", validators=[DataRequired(REQUIRED), PasswordFits()])
    next = HiddenField()


class CodeForm(FlaskForm):  # type: ignore[misc]
    code = StringField(
        "Code aus der Authenticator-App (oder Ihren Yubikey antippen)",
        validators=[
            DataRequired(REQUIRED),
            Regexp(
                r"^\s*([0-9]{3}\s?[0-9]{3}|[cbdefghijklnrtuv]{32,64})\s*$",
                message="Sechs Ziffern aus der App, oder das Einmalkennwort des Yubikeys.",
            ),
        ],
    )
    next = HiddenField()


class EnrolForm(CodeForm):
    enrolment_code = StringField(
        "Einrichtungscode (von einer Administration erhalten)",
        validators=[DataRequired(REQUIRED), Length(max=64, message="Höchstens 64 Zeichen.")],
    )


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: a page of the admin UI, never another site or page."""
    default = url_for("admin.dashboard")
    if not value or any(not ch.isprintable() or ch in "\\" for ch in value):
        return default
    parts = urlsplit(value)
    path = posixpath.normpath(parts.path)
    if parts.scheme or parts.netloc or not path.startswith("/admin/") or path.startswith("//"):
        return default
    return path + (f"?{parts.query}" if parts.query else "")


# Why the last session ended, as the sign-in page says it (``StaffSession.end_reason``).
ENDED = {
    "idle": (
        "Ihre Sitzung wurde nach 15 Minuten ohne Aktivität beendet. Bitte melden Sie sich "
        "erneut an; danach geht es auf der zuletzt geöffneten Seite weiter."
    ),
    "lifetime": (
        "Ihre Sitzung endete 12 Stunden nach der Anmeldung. Bitte melden Sie sich erneut an; "
        "danach geht es auf der zuletzt geöffneten Seite weiter."
    ),
    "password": "Ihre Sitzung wurde beendet, weil das Kennwort des Kontos geändert wurde.",
    "totp_reset": "Ihre Sitzung wurde beendet, weil der zweite Faktor zurückgesetzt wurde.",
    "enrolled": (
        "Ihre Sitzung wurde beendet, weil für das Konto ein zweiter Faktor eingerichtet wurde."
    ),
    "password_reset": (
        "Ihre Sitzung wurde beendet, weil eine Administration Ihr Kennwort zurückgesetzt hat."
    ),
    "deactivated": "Das Konto ist deaktiviert.",
    "logout": "Sie hatten sich abgemeldet.",
}


def _login_page(form: LoginForm, status: int) -> ResponseReturnValue:
    ended = ENDED.get(request.args.get("ended", ""))
    return render_template("admin/login.html", form=form, ended=ended), status


@blueprint.route("/login", methods=["GET", "POST"])
@reshows_stale_form
def login() -> ResponseReturnValue:
    form = LoginForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        return _login_page(form, 400 if request.method == "POST" else 200)
    with state().database.session() as db:
        opened = signin.open_session(
            db,
            username=form.username.data or "",
            password=form.password.data or "",
            source_ip=request.remote_addr,
            now=utcnow(),
        )
        enrolled = isinstance(opened, signin.Opened) and factor.has_second_factor(
            db, opened.record.staff
        )
    if isinstance(opened, Refusal):
        form.password.data = ""
        flash(_REFUSED[opened])
        return _login_page(form, 429 if opened is Refusal.THROTTLED else 401)
    target = "admin.code" if enrolled else "admin.enrol"
    response = redirect(url_for(target, next=safe_next(form.next.data)))
    set_cookie(response, opened.token)
    return response


def _pending() -> int | None:
    """This request's session id if the password is passed and the factor is not."""
    staff = principal()
    if staff is None or staff.verified:
        return None
    return staff.session_id


class Step(enum.Enum):
    """Which check a code goes through: the enrolment's first code, or a sign-in."""

    ENROL = "enrol"
    SIGN_IN = "sign_in"


def _finish(record_id: int, form: CodeForm, step: Step) -> ResponseReturnValue | None:
    """Check the code; on success a fresh token and onwards (None: refused, flashed)."""
    flexnet = state()
    with flexnet.database.session() as db:
        record = db.get_one(StaffSession, record_id)
        code, box, now = form.code.data or "", flexnet.secret_box, utcnow()
        if step is Step.ENROL:
            refused = factor.confirm_enrolment(
                db, record, code, enrolment_code=form.enrolment_code.data or "", box=box, now=now
            )
        else:
            refused = factor.pass_second_factor(
                db, record, code, box=box, otp_settings=flexnet.settings.otp, now=now
            )
        token = signin.reissue_token(record) if refused is None else None
        must_change = record.staff.must_change_password
    if refused is not None or token is None:
        form.code.data = ""
        flash(_CODE_REFUSED[refused or Refusal.INVALID])
        return None
    target = safe_next(form.next.data)
    if must_change:
        target = url_for("admin.password", next=target)
    response = redirect(target)
    set_cookie(response, token)
    return response


def _enrolled(record_id: int) -> bool:
    """The account has a second factor: an enrolled app or its own Yubikey."""
    with state().database.reader() as db:
        return factor.has_second_factor(db, db.get_one(StaffSession, record_id).staff)


@blueprint.route("/login/code", methods=["GET", "POST"])
@reshows_stale_form
def code() -> ResponseReturnValue:
    pending = _pending()
    if pending is None:
        return redirect(url_for("admin.login"))
    if not _enrolled(pending):
        return redirect(url_for("admin.enrol", next=request.args.get("next", "")))
    form = CodeForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        done = _finish(pending, form, Step.SIGN_IN)
        if done is not None:
            return done
        return render_template("admin/code.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("admin/code.html", form=form), status


@blueprint.route("/login/enrol", methods=["GET", "POST"])
@reshows_stale_form
def enrol() -> ResponseReturnValue:
    """First sign-in: set up the authenticator app; nothing else is possible before."""
    pending = _pending()
    if pending is None:
        return redirect(url_for("admin.login"))
    if _enrolled(pending):
        return redirect(url_for("admin.code", next=request.args.get("next", "")))
    flexnet = state()
    with flexnet.database.session() as db:
        seed = factor.enrolment_seed(db.get_one(StaffSession, pending), box=flexnet.secret_box)
    form = EnrolForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        done = _finish(pending, form, Step.ENROL)
        if done is not None:
            flash("Der zweite Faktor ist eingerichtet.")
            return done
        status = 401
    else:
        status = 400 if request.method == "POST" else 200
    grouped = " ".join(seed[i : i + 4] for i in range(0, len(seed), 4))
    return render_template("admin/enrol.html", form=form, seed=grouped), status


@blueprint.get("/login/enrol/qr.svg")
def enrol_qr() -> ResponseReturnValue:
    """The enrolment QR code, only for the session that is enrolling."""
    pending = _pending()
    if pending is None:
        return Response(status=404)
    flexnet = state()
    with flexnet.database.reader() as db:
        record = db.get_one(StaffSession, pending)
        if record.enrol_secret is None or record.staff.totp_enrolled_at is not None:
            return Response(status=404)
        seed = factor.enrolment_seed(record, box=flexnet.secret_box)
        uri = factor.provisioning_uri(record.staff, seed)
    out = BytesIO()
    qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8).save(out)
    return Response(out.getvalue(), mimetype="image/svg+xml")


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    staff = principal()
    if staff is not None:
        with state().database.session() as db:
            record = db.get_one(StaffSession, staff.session_id)
            signin.end(db, record, reason="logout", now=utcnow())
    response = redirect(url_for("admin.login"))
    clear_cookie(response)
    flash("Sie sind abgemeldet.")
    return response


class PasswordForm(FlaskForm):  # type: ignore[misc]
    old = PasswordField("Bisheriges Kennwort", validators=[DataRequired(REQUIRED), PasswordFits()])
    new = PasswordField("Neues Kennwort", validators=[DataRequired(REQUIRED), PasswordFits()])
    repeat = PasswordField(
        "Neues Kennwort wiederholen", validators=[DataRequired(REQUIRED), PasswordFits()]
    )
    next = HiddenField()


@blueprint.route("/password", methods=["GET", "POST"])
@reshows_stale_form
@allowed(ALL_ROLES)
def password() -> ResponseReturnValue:
    """The own password; forced after the first sign-in (someone else chose it). Every
    other session of the account ends."""
    form = PasswordForm(next=request.args.get("next", ""))
    problems: list[str] = []
    status = 400 if form.is_submitted() else 200
    if form.validate_on_submit():
        if form.new.data != form.repeat.data:
            problems = ["Die beiden neuen Kennwörter stimmen nicht überein."]
        else:
            flexnet = state()
            with flexnet.database.session() as db:
                change = signin.change_password(
                    db,
                    db.get_one(StaffSession, g.staff.session_id),
                    old=form.old.data or "",
                    new=form.new.data or "",
                    policy=flexnet.settings.password_policy,
                    now=utcnow(),
                )
            if change.changed:
                flash("Ihr Kennwort ist geändert; andere Sitzungen sind beendet.")
                return redirect(safe_next(form.next.data))
            problems, status = change.problems, 429 if change.throttled else 400
    form.old.data = form.new.data = form.repeat.data = ""
    return render_template(
        "admin/password.html", form=form, problems=problems, staff=g.staff
    ), status
