"""``/self-service``: what practice users do themselves. Today: lock their access at once."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired

from flexnet import selflock
from flexnet.authn import Channel, Client
from flexnet.db import utcnow
from flexnet.selflock import Target
from flexnet.web import state

blueprint = Blueprint("selfservice", __name__, url_prefix="/self-service")
REQUIRED = "Bitte ausfüllen."


class LockForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    username = StringField("Benutzername", validators=[DataRequired(REQUIRED)])
    password = PasswordField("Kennwort", validators=[DataRequired(REQUIRED)])
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


@blueprint.route("/lock", methods=["GET", "POST"])
def lock() -> ResponseReturnValue:
    """'Zugang sofort sperren': username and password only, the key may be lost."""
    form = LockForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("selfservice/lock.html", form=form, problem=None), status
    flexnet = state()
    with flexnet.database.session() as session:
        result = selflock.lock_own_access(
            session,
            username=form.username.data or "",
            password=form.password.data or "",
            target=Target(form.target.data),
            client=Client(Channel.SELF_SERVICE, "self-service", request.remote_addr),
            now=utcnow(),
            settings=flexnet.settings,
            box=flexnet.secret_box,
        )
    if not result.locked:
        problem = (
            "Benutzername oder Kennwort stimmen nicht, oder der Zugang ist bereits gesperrt. "
            "Rufen Sie bitte sofort den IT-Service an: 0391 627 7000."
        )
        form.password.data = ""
        return render_template("selfservice/lock.html", form=form, problem=problem), 400
    return render_template("selfservice/locked.html", result=result)
