"""``/requests/new``: the public form on which practices ask the IT service for help."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from flexnet.accounts import servicerequests
from flexnet.accounts.servicerequests import FORM_KINDS, KIND_LABELS
from flexnet.db import utcnow
from flexnet.errors import FlexnetError
from flexnet.models import RequestKind
from flexnet.web import state
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import chosen

blueprint = Blueprint("requests", __name__, url_prefix="/requests")
REQUIRED = "Bitte ausfüllen."


class RequestForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    bsnr = StringField(
        "Betriebsstättennummer (BSNR, 9 Ziffern)",
        validators=[DataRequired(REQUIRED), Length(9, 9, "Genau 9 Ziffern.")],
    )
    usernames = StringField(
        "Betroffene Benutzer (Benutzernamen, durch Leerzeichen getrennt)",
        validators=[Length(max=500)],
    )
    kind = chosen(
        "Anliegen",
        [SelectChoice(kind.value, KIND_LABELS[kind]) for kind in FORM_KINDS],
        "Bitte Ihr Anliegen wählen.",
    )
    contact_person = StringField(
        "Ansprechpartner in der Praxis", validators=[DataRequired(REQUIRED), Length(max=200)]
    )
    phone = StringField(
        "Telefon für den Rückruf", validators=[DataRequired(REQUIRED), Length(max=40)]
    )
    message = TextAreaField("Nachricht (optional)", validators=[Length(max=2000)])


@blueprint.route("/new", methods=["GET", "POST"])
@reshows_stale_form
def new() -> ResponseReturnValue:
    form = RequestForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("requests/new.html", form=form, problem=None), status
    flexnet = state()
    try:
        with flexnet.database.session() as session:
            servicerequests.file_request(
                session,
                bsnr=form.bsnr.data or "",
                usernames=form.usernames.data or "",
                kind=RequestKind(form.kind.data),
                contact_person=form.contact_person.data or "",
                phone=form.phone.data or "",
                message=form.message.data or "",
                source_ip=request.remote_addr,
                now=utcnow(),
            )
    except FlexnetError as error:
        return render_template("requests/new.html", form=form, problem=error.message), error.status
    return render_template("requests/done.html")
