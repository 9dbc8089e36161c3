"""A letter that came back undeliverable (helpdesk, admin): it is queued again, the
practice's letters wait for the corrected address, a password in it stops at once. The
same service as ``flexnet letters returned``."""

from __future__ import annotations

from flask import g, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import StringField
from wtforms.validators import DataRequired, InputRequired

from flexnet.db import utcnow
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import Letter, LetterKind
from flexnet.provisioning import mailruns, returnmail
from flexnet.web.admin import HELPDESK, allowed, blueprint, dialog
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import DayField

REQUIRED = "Bitte ausfüllen."


class ReturnedForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    letter = StringField(
        "Briefnummer („Unser Zeichen“)",
        validators=[DataRequired(REQUIRED)],
        description="z. B. FN-000123",
    )
    returned_on = DayField("zurückgekommen am", validators=[InputRequired(REQUIRED)])


def _lines(letter: Letter, resend: Letter | None) -> list[str]:
    kind = mailruns.kind_label(letter.kind)
    lines = [f"Brief {mailruns.reference(letter)} ({kind}) als unzustellbar erfasst."]
    if letter.kind is LetterKind.KEY and letter.token is not None:
        lines.append(
            f"Yubikey {letter.token.serial} ist wieder im Haus; die Kennwortbriefe warten auf "
            "den neuen Versand des Begleitschreibens (§ 3 Abs. 2)."
        )
    if letter.kind in mailruns.PASSWORD_LETTERS and letter.user is not None:
        lines.append(f"Das Kennwort darin gilt nicht mehr ({letter.user.username}).")
    lines.append(
        f"Neuer Brief {mailruns.reference(resend)} vorgemerkt."
        if resend is not None
        else "Kein neuer Brief nötig (inzwischen ersetzt)."
    )
    lines.append(
        "Die Briefe an die Betriebsstätte warten, bis die Anschrift berichtigt oder bestätigt ist."
    )
    return lines


@blueprint.route("/letters/returned", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def letter_returned() -> ResponseReturnValue:
    today = utcnow().astimezone(BERLIN).date()
    form = ReturnedForm()
    if not form.is_submitted():
        form.letter.data = request.args.get("letter", "")[:20]
        form.returned_on.data = today

    def act(db: Session) -> tuple[str, str]:
        letter_id = mailruns.parse_reference(form.letter.data or "")
        resend = returnmail.record_return(
            db,
            letter_id=letter_id,
            returned_on=form.returned_on.data,
            today=today,
            actor=g.staff.actor,
            now=utcnow(),
        )
        letter = db.get_one(Letter, letter_id)
        return " ".join(_lines(letter, resend)), url_for(
            "admin.practice_edit", bsnr=letter.practice.bsnr
        )

    return dialog(
        form,
        act,
        title="Unzustellbaren Brief erfassen",
        intro=[
            "Der Brief wird neu vorgemerkt; die Briefe an die Betriebsstätte warten, bis die "
            "Anschrift berichtigt oder bestätigt ist. Ein Kennwort in dem Brief gilt sofort "
            "nicht mehr.",
        ],
        fields=["letter", "returned_on"],
        button="Als unzustellbar erfassen",
        back=url_for("admin.letters"),
    )
