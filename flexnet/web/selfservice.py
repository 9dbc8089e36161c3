"""``/self-service``: what practice users do themselves.

Login with username, password and Yubikey OTP through the same pipeline as RADIUS;
change the password (forced when it expired or came by letter); lock the access at once.
Sessions end after 15 minutes without activity, whenever the user's password changes or
the user is locked (the session epoch), and as soon as the user may no longer log in (the
effective status); not when the browser closes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy.orm import joinedload
from wtforms import BooleanField, PasswordField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.validators import ValidationError as FieldError

from flexnet.accounts import selflock, users
from flexnet.accounts.selflock import Target
from flexnet.authn import passwords, pipeline
from flexnet.authn.pipeline import Channel, Client
from flexnet.db import utcnow
from flexnet.errors import FlexnetError
from flexnet.lifecycle.status import user_status
from flexnet.models import TakenOverPassword, User
from flexnet.web import state
from flexnet.web.errors import reshows_stale_form
from flexnet.web.fields import PasswordFits

blueprint = Blueprint("selfservice", __name__, url_prefix="/self-service")
REQUIRED = "Bitte ausfüllen."
IDLE_SECONDS = 15 * 60
_KEYS = ("ss_user", "ss_epoch", "ss_seen", "ss_change_only")


class LoginForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    username = StringField("Benutzername", validators=[DataRequired(REQUIRED)])
    password = PasswordField("Kennwort", validators=[DataRequired(REQUIRED), PasswordFits()])
    otp = PasswordField("Einmalkennwort (Yubikey antippen)", validators=[DataRequired(REQUIRED)])


class PasswordForm(FlaskForm):  # type: ignore[misc]
    old = PasswordField("Bisheriges Kennwort", validators=[DataRequired(REQUIRED), PasswordFits()])
    new = PasswordField("Neues Kennwort", validators=[DataRequired(REQUIRED), PasswordFits()])
    repeat = PasswordField(
        "Neues Kennwort wiederholen", validators=[DataRequired(REQUIRED), PasswordFits()]
    )


def _end_session() -> None:
    for key in _KEYS:
        session.pop(key, None)


def _current_user() -> User | None:
    """The logged-in user, or None after logout, idle time, a password change or a lock.

    A lock raises the session epoch too; the effective status is checked as well (the
    rule the login applies) because not every end of access touches the user's row: a
    termination's last day (§ 10.2) or the § 10.3 date passing before the nightly job
    has run locks the user by the dates alone.
    """
    user_id = session.get("ss_user")
    if user_id is None:
        return None
    if time.time() - float(session.get("ss_seen", 0)) > IDLE_SECONDS:
        _end_session()
        return None
    flexnet = state()
    with flexnet.database.reader() as db:
        user = db.get(User, user_id, options=[joinedload(User.practice)])
        if (
            user is None
            or user.session_epoch != session.get("ss_epoch")
            or not user_status(user, utcnow(), flexnet.settings.lock_after_quarters).may_log_in
        ):
            _end_session()
            return None
        db.expunge(user)
    session["ss_seen"] = time.time()
    return user


def login_required(
    view: Callable[[User], ResponseReturnValue],
) -> Callable[[], ResponseReturnValue]:
    @wraps(view)
    def wrapped() -> ResponseReturnValue:
        user = _current_user()
        if user is None:
            flash("Bitte melden Sie sich an.")
            return redirect(url_for("selfservice.login"))
        if session.get("ss_change_only") and view.__name__ != "password":
            return redirect(url_for("selfservice.password"))
        return view(user)

    return wrapped


@blueprint.route("/login", methods=["GET", "POST"])
@reshows_stale_form
def login() -> ResponseReturnValue:
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("selfservice/login.html", form=form), (
            400 if request.method == "POST" else 200
        )
    flexnet = state()
    with flexnet.database.session() as db:
        decision = flexnet.authenticator.authenticate(
            db,
            username=form.username.data or "",
            password=form.password.data or "",
            otp=(form.otp.data or "").strip(),
            client=Client(Channel.SELF_SERVICE, "self-service", request.remote_addr),
            now=utcnow(),
        )
        user = db.get(User, decision.user_id) if decision.user_id else None
        epoch = user.session_epoch if user else None
    change_only = decision.must_change_password
    if user is None or not (decision.accepted or change_only):
        form.password.data = form.otp.data = ""
        flash(decision.reply_message or pipeline.GENERIC_REJECT)
        return render_template("selfservice/login.html", form=form), 401
    session.clear()  # a fresh session: no fixation
    session.update(ss_user=user.id, ss_epoch=epoch, ss_seen=time.time(), ss_change_only=change_only)
    return redirect(url_for("selfservice.password" if change_only else "selfservice.home"))


@blueprint.get("/")
@login_required
def home(user: User) -> ResponseReturnValue:
    settings = state().settings.auth
    status = passwords.password_status(
        set_at=user.password_set_at,
        must_change=user.password_must_change,
        now=utcnow(),
        max_age_days=settings.password_max_age_days,
        warning_days=settings.password_warning_days,
        initial_days=settings.initial_password_days,
        weak=user.taken_over_password is TakenOverPassword.WEAK,
    )
    return render_template("selfservice/home.html", user=user, status=status)


@blueprint.route("/password", methods=["GET", "POST"])
@reshows_stale_form
@login_required
def password(user: User) -> ResponseReturnValue:
    form = PasswordForm()
    policy = state().settings.password_policy
    problems: list[str] = []
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        if form.new.data != form.repeat.data:
            problems = ["Die beiden neuen Kennwörter stimmen nicht überein."]
        else:
            with state().database.session() as db:
                fresh = db.get_one(User, user.id)
                change = users.change_own_password(
                    db,
                    user=fresh,
                    old_password=form.old.data or "",
                    new_password=form.new.data or "",
                    channel=Channel.SELF_SERVICE.value,
                    now=utcnow(),
                    auth=state().settings.auth,
                    source_ip=request.remote_addr,
                    policy=policy,
                )
                epoch = fresh.session_epoch
            if change.changed:
                session.update(ss_epoch=epoch, ss_change_only=False)  # keep this session only
                flash("Ihr Kennwort ist geändert. Andere Sitzungen wurden beendet.")
                return redirect(url_for("selfservice.home"))
            problems, status = change.problems, 429 if change.throttled else 400
    # (rule id for the page's script, text); the server checks all of them regardless.
    rules = [
        ("length", f"mindestens {policy.min_length}, höchstens {passwords.MAX_LENGTH} Zeichen"),
        (
            "classes",
            "drei der vier Zeichenarten: Kleinbuchstaben, Großbuchstaben, Ziffern, Sonderzeichen",
        ),
        ("personal", "nicht Ihr Benutzername, Name, die BSNR oder der Praxisname"),
        ("common", f"kein häufig verwendetes Kennwort, keines der letzten {policy.history}"),
        ("match", "beide Eingaben des neuen Kennworts gleich"),
    ]
    return render_template(
        "selfservice/password.html",
        form=form,
        problems=problems,
        rules=rules,
        forced=session.get("ss_change_only"),
        min_length=policy.min_length,
        max_length=passwords.MAX_LENGTH,
    ), status


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    user = _current_user()
    if user is not None:
        # Revokes this cookie on the server: a copy replayed later is refused.
        with state().database.session() as db:
            db.get_one(User, user.id).session_epoch += 1
    _end_session()
    flash("Sie sind abgemeldet.")
    return redirect(url_for("selfservice.login"))


class LockForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    username = StringField("Benutzername", validators=[DataRequired(REQUIRED)])
    password = PasswordField("Kennwort", validators=[DataRequired(REQUIRED), PasswordFits()])
    target = RadioField(
        "Was soll gesperrt werden?",
        choices=[
            SelectChoice(Target.ACCOUNT.value, "Mein Zugang (z. B. Kennwort bekannt geworden)"),
            SelectChoice(
                Target.KEY.value, "Der Yubikey der Praxis (verloren oder in fremden Händen)"
            ),
        ],
        default=Target.ACCOUNT.value,
    )
    phone = StringField(
        "Telefon für Rückfragen des IT-Service (optional)", validators=[Length(max=40)]
    )
    key_for_all = BooleanField(
        "Nur beim Yubikey: Mir ist klar, dass er für alle Benutzer der Praxis gesperrt wird; "
        "bis zum Ersatz kann sich niemand der Praxis per VPN anmelden."
    )

    def validate_key_for_all(self, field: Any) -> None:
        """Locking the practice's key hits every colleague: confirmed, never by default."""
        if self.target.data == Target.KEY.value and not field.data:
            raise FieldError(
                "Bitte bestätigen, dass der Yubikey für die ganze Praxis gesperrt wird."
            )


@blueprint.route("/lock", methods=["GET", "POST"])
@reshows_stale_form
def lock() -> ResponseReturnValue:
    """'Zugang sofort sperren': username and password only, the key may be lost."""
    form = LockForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("selfservice/lock.html", form=form, problem=None), status
    flexnet = state()
    try:
        with flexnet.database.session() as session:
            result = selflock.lock_own_access(
                session,
                username=form.username.data or "",
                password=form.password.data or "",
                target=Target(form.target.data),
                client=Client(Channel.SELF_SERVICE, "self-service", request.remote_addr),
                now=utcnow(),
                authenticator=flexnet.authenticator,
                phone=form.phone.data or "",
            )
    except FlexnetError as error:
        page = render_template("selfservice/lock.html", form=form, problem=error.message)
        return page, error.status
    if not result.locked:
        problem = (
            "Benutzername oder Kennwort stimmen nicht, oder der Zugang ist bereits gesperrt. "
            "Rufen Sie bitte sofort den IT-Service an: 0391 627 7000."
        )
        form.password.data = ""
        return render_template("selfservice/lock.html", form=form, problem=problem), 400
    return render_template("selfservice/locked.html", result=result)
