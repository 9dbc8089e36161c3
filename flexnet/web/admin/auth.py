"""Staff sign-in: password, then the second factor (enrolled at the first sign-in), logout."""

from __future__ import annotations

from io import BytesIO
from urllib.parse import urlsplit

import qrcode
import qrcode.image.svg
from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Regexp

from flexnet import staffauth
from flexnet.db import utcnow
from flexnet.models import StaffSession
from flexnet.staffauth import Refusal
from flexnet.web import state
from flexnet.web.admin import blueprint, clear_cookie, principal, set_cookie

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
}


class LoginForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    username = StringField("Benutzername", validators=[DataRequired(REQUIRED)])
    password = PasswordField("Kennwort", validators=[DataRequired(REQUIRED)])
    next = HiddenField()


class CodeForm(FlaskForm):  # type: ignore[misc]
    code = StringField(
        "Code aus der Authenticator-App",
        validators=[
            DataRequired(REQUIRED),
            Regexp(r"^\s*\d{3}\s?\d{3}\s*$", message="Der Code hat sechs Ziffern."),
        ],
    )
    next = HiddenField()


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: a page of the admin UI, never another site."""
    default = url_for("admin.dashboard")
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or "\\" in value or not value.startswith("/admin/"):
        return default
    return value.rstrip("?")


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    form = LoginForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("admin/login.html", form=form), status
    with state().database.session() as db:
        opened = staffauth.open_session(
            db,
            username=form.username.data or "",
            password=form.password.data or "",
            source_ip=request.remote_addr,
            now=utcnow(),
        )
        enrolled = (
            isinstance(opened, staffauth.Opened)
            and opened.record.staff.totp_enrolled_at is not None
        )
    if isinstance(opened, Refusal):
        form.password.data = ""
        flash(_REFUSED[opened])
        status = 429 if opened is Refusal.THROTTLED else 401
        return render_template("admin/login.html", form=form), status
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


def _finish(record_id: int, form: CodeForm, verify: str) -> ResponseReturnValue | None:
    """Check the code (``verify``: pass or enrol); on success a fresh token and onwards."""
    flexnet = state()
    with flexnet.database.session() as db:
        record = db.get_one(StaffSession, record_id)
        check = staffauth.confirm_enrolment if verify == "enrol" else staffauth.pass_second_factor
        refused = check(db, record, form.code.data or "", box=flexnet.secret_box, now=utcnow())
        token = staffauth.reissue_token(record) if refused is None else None
    if refused is not None or token is None:
        form.code.data = ""
        flash(_CODE_REFUSED[refused or Refusal.INVALID])
        return None
    response = redirect(safe_next(form.next.data))
    set_cookie(response, token)
    return response


@blueprint.route("/login/code", methods=["GET", "POST"])
def code() -> ResponseReturnValue:
    pending = _pending()
    if pending is None:
        return redirect(url_for("admin.login"))
    form = CodeForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        done = _finish(pending, form, "pass")
        if done is not None:
            return done
        return render_template("admin/code.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("admin/code.html", form=form), status


@blueprint.route("/login/enrol", methods=["GET", "POST"])
def enrol() -> ResponseReturnValue:
    """First sign-in: set up the authenticator app; nothing else is possible before."""
    pending = _pending()
    if pending is None:
        return redirect(url_for("admin.login"))
    flexnet = state()
    with flexnet.database.session() as db:
        staff = db.get_one(StaffSession, pending).staff
        if staff.totp_enrolled_at is not None:
            return redirect(url_for("admin.code", next=request.args.get("next", "")))
        seed = staffauth.pending_seed(staff, box=flexnet.secret_box) or (
            staffauth.begin_enrolment(db, staff, box=flexnet.secret_box)
        )
    form = CodeForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        done = _finish(pending, form, "enrol")
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
        staff = db.get_one(StaffSession, pending).staff
        seed = staffauth.pending_seed(staff, box=flexnet.secret_box)
        uri = staffauth.provisioning_uri(staff, seed) if seed else None
    if uri is None:
        return Response(status=404)
    out = BytesIO()
    qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8).save(out)
    return Response(out.getvalue(), mimetype="image/svg+xml")


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    staff = principal()
    if staff is not None:
        with state().database.session() as db:
            record = db.get_one(StaffSession, staff.session_id)
            staffauth.end(db, record, reason="logout", now=utcnow())
    response = redirect(url_for("admin.login"))
    clear_cookie(response)
    flash("Sie sind abgemeldet.")
    return response
