"""A practice's key replaced (lost with the § 6.3 fee, defective, after a takeover) and a
user's password issued again by letter (§ 7.3), helpdesk and admin. The same services as
``flexnet yubikey replace`` and ``flexnet user reissue``."""

from __future__ import annotations

from flask import abort, g, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired

from flexnet import labels
from flexnet.accounts import users
from flexnet.accounts.practices import get_practice
from flexnet.db import utcnow
from flexnet.errors import NotFoundError, ValidationError
from flexnet.otp.verify import USABLE_STATUSES
from flexnet.provisioning import issuance, mailruns
from flexnet.provisioning.issuance import Replacement
from flexnet.web import state
from flexnet.web.admin import HELPDESK, allowed, blueprint, dialog, typed
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import chosen, chosen_radio

REQUIRED = "Bitte ausfüllen."
CONFIRM = "Zur Bestätigung bitte genau die BSNR eingeben."
AT_ONCE, ON_FIRST_USE = "at_once", "on_first_use"


class ReplaceForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    why = chosen(
        "Grund des Ersatzes",
        [
            SelectChoice(Replacement.LOST.value, "Verlust (§ 6 Abs. 3: Kostenersatz)"),
            SelectChoice(Replacement.DEFECTIVE.value, "defekt (kostenfrei)"),
            SelectChoice(
                Replacement.TAKEOVER.value,
                "Praxisübernahme (§ 2 Abs. 3: der alte wird gesperrt und zurückgefordert)",
            ),
        ],
        "Bitte den Grund des Ersatzes wählen.",
    )
    new_serial = StringField(
        "Ersatz-Yubikey aus dem Lager (Seriennummer)", validators=[DataRequired(REQUIRED)]
    )
    old_stops = chosen_radio(
        "Der bisherige Yubikey gilt",
        [
            SelectChoice(AT_ONCE, "ab sofort nicht mehr"),
            SelectChoice(ON_FIRST_USE, "bis zur ersten Verwendung des neuen (nur bei Defekt)"),
        ],
        "Bitte wählen, ab wann der bisherige Yubikey nicht mehr gilt.",
    )
    confirm = StringField("Zur Bestätigung die BSNR eingeben", validators=[DataRequired(CONFIRM)])


class ReissueForm(FlaskForm):  # type: ignore[misc]
    old_stops = chosen_radio(
        "Das bisherige Kennwort gilt",
        [
            SelectChoice(AT_ONCE, "nicht mehr, sobald der Brief gedruckt ist"),
            SelectChoice(ON_FIRST_USE, "bis das neue zum ersten Mal benutzt wird"),
        ],
        "Bitte wählen, ab wann das bisherige Kennwort nicht mehr gilt.",
    )


@blueprint.route("/practices/<bsnr>/replace", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def key_replace(bsnr: str) -> ResponseReturnValue:
    settings = state().settings
    with state().database.reader() as db:
        try:
            practice = get_practice(db, bsnr)
        except (NotFoundError, ValidationError):
            abort(404)
        number, name = practice.bsnr, practice.name
        current = [t.serial for t in practice.tokens if t.status in USABLE_STATUSES]
    form = ReplaceForm()
    if not form.is_submitted() and request.args.get("why") in {r.value for r in Replacement}:
        form.why.data = request.args["why"]  # opened from a request in the queue
    fee = labels.euro(settings.letters.loss_fee_cents)

    def act(db: Session) -> tuple[str, str]:
        why = Replacement(form.why.data)
        on_first_use = form.old_stops.data == ON_FIRST_USE
        if on_first_use and why is not Replacement.DEFECTIVE:
            raise ValidationError("Nur ein defekter Yubikey gilt bis zur ersten Nutzung des neuen")
        queued = issuance.replace_key(
            db,
            bsnr=number,
            new_serial=form.new_serial.data or "",
            why=why,
            at_once=not on_first_use,
            fee_cents=settings.letters.loss_fee_cents,
            actor=g.staff.actor,
            now=utcnow(),
            quarters=settings.lock_after_quarters,
        )
        letters = ", ".join(mailruns.reference(letter) for letter in queued) or "keine"
        serial = (form.new_serial.data or "").strip()
        message = f"Yubikey {serial} ersetzt den bisherigen; Briefe vorgemerkt: {letters}."
        if why is Replacement.LOST:
            message += f" Kostenersatz {fee} erfasst."
        return message, url_for("admin.practice", bsnr=number)

    return dialog(
        form,
        act,
        title=f"Yubikey ersetzen: {number} – {name}",
        intro=[
            "Ein verlorener Yubikey ist sofort und für immer gesperrt; ein defekter auf Wunsch "
            "erst mit der ersten Verwendung des neuen. Der Ersatz kommt mit Begleitschreiben.",
        ],
        facts=[
            ("Bisheriger Yubikey", ", ".join(current) or "keiner in Gebrauch"),
            ("Kostenersatz bei Verlust", fee),
        ],
        fields=["why", "new_serial", "old_stops", "confirm"],
        extra_validators={"confirm": [typed(number, CONFIRM)]},
        button="Yubikey ersetzen",
        danger=True,
        back=url_for("admin.practice", bsnr=number),
    )


@blueprint.route("/users/<username>/reissue", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def user_reissue(username: str) -> ResponseReturnValue:
    """§ 7.3: new credentials on request, free of charge, by letter (never on screen)."""
    settings = state().settings
    with state().database.reader() as db:
        try:
            name = users.get_user(db, username).username
        except NotFoundError:
            abort(404)
    form = ReissueForm()

    def act(db: Session) -> tuple[str, str]:
        on_first_use = form.old_stops.data == ON_FIRST_USE
        letter = issuance.reissue_password(
            db,
            username=name,
            at_once=not on_first_use,
            actor=g.staff.actor,
            now=utcnow(),
            quarters=settings.lock_after_quarters,
        )
        when = "bei erster Nutzung des neuen" if on_first_use else "beim Druck des Briefs"
        return (
            f"Kennwortbrief {mailruns.reference(letter)} vorgemerkt; das bisherige Kennwort "
            f"endet {when}.",
            url_for("admin.user", username=name),
        )

    return dialog(
        form,
        act,
        title=f"Neues Kennwort für {name}",
        intro=[
            "Das neue Kennwort geht als Brief an die hinterlegte Anschrift der Praxis "
            "(§ 7 Abs. 3, kostenfrei), nie am Bildschirm.",
        ],
        fields=["old_stops"],
        button="Kennwortbrief vormerken",
        back=url_for("admin.user", username=name),
    )
