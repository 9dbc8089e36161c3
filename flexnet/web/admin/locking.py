"""Lock and unlock from the practice page (helpdesk and admin): § 7.2 loss or misuse,
§ 10.1 breach, § 14.2 objection. The same services as ``flexnet lock``/``unlock``;
confirmed by typing the BSNR (or the username)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import g, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired

from flexnet.accounts import users
from flexnet.accounts.practices import get_practice
from flexnet.db import utcnow
from flexnet.errors import ConflictError, NotFoundError, ValidationError
from flexnet.lifecycle import locks
from flexnet.lifecycle.locks import LockTarget
from flexnet.models import LockCause, Practice, PracticeStatus, TokenStatus
from flexnet.otp import stock
from flexnet.otp.verify import USABLE_STATUSES
from flexnet.textrules import REASON_MAX_LENGTH
from flexnet.web import state
from flexnet.web.admin import (
    HELPDESK,
    allowed,
    blueprint,
    flash_and_redirect,
    named_person,
    person_choices,
    submit,
    typed,
)
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import chosen, chosen_radio, one_line

REQUIRED = "Bitte ausfüllen."
MISTYPED = "Die Eingabe stimmt nicht; nichts geändert."
CAUSE_LABELS = {
    LockCause.MANUAL: "Verstoß oder anderer wichtiger Grund (§ 10 Abs. 1)",
    LockCause.MISUSE: "Verdacht auf Missbrauch (§ 7 Abs. 2)",
    LockCause.LOSS: "Verlust (§ 7 Abs. 2): ein Yubikey bleibt dauerhaft gesperrt",
    LockCause.OBJECTION: "Widerspruch gegen geänderte Bedingungen (§ 14 Abs. 2)",
}


class LockForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    what = chosen_radio(
        "Was wird gesperrt?",
        [
            SelectChoice(
                LockTarget.PRACTICE.value, "die Betriebsstätte mit allen Zugängen und dem Yubikey"
            ),
            SelectChoice(LockTarget.KEY.value, "der Yubikey"),
            SelectChoice(LockTarget.USER.value, "ein Benutzer"),
        ],
        "Bitte wählen, was gesperrt wird.",
    )
    user = SelectField("Benutzer", choices=[], validate_choice=False)
    cause = chosen(
        "Anlass",
        [SelectChoice(c.value, label) for c, label in CAUSE_LABELS.items()],
        "Bitte den Anlass der Sperre wählen.",
    )
    reason = TextAreaField(
        "Grund", validators=[DataRequired(REQUIRED), one_line("Grund", REASON_MAX_LENGTH)]
    )
    all_credentials = BooleanField("Zugleich alle Zugänge der Betriebsstätte sperren (§ 7 Abs. 2)")
    confirm = StringField("Zur Bestätigung die BSNR eingeben", validators=[DataRequired(REQUIRED)])


class UnlockForm(FlaskForm):  # type: ignore[misc]
    reason = TextAreaField(
        "Grund der Entsperrung",
        validators=[DataRequired(REQUIRED), one_line("Grund", REASON_MAX_LENGTH)],
    )
    confirm = StringField("Zur Bestätigung eingeben", validators=[DataRequired(REQUIRED)])


def _load(bsnr: str) -> tuple[list[str], list[str], str, str]:
    """The practice's usernames, usable key serials, BSNR and name (404 if unknown)."""
    with state().database.reader() as db:
        try:
            practice: Practice = get_practice(db, bsnr)
        except (NotFoundError, ValidationError):
            raise NotFound from None
        keys = [t.serial for t in practice.tokens if t.status in USABLE_STATUSES]
        return [u.username for u in practice.users], keys, practice.bsnr, practice.name


def _dialog(form: LockForm, bsnr: str, problems: list[str], status: int) -> ResponseReturnValue:
    usernames, keys, number, name = _load(bsnr)
    form.user.choices = person_choices(usernames)
    if not form.is_submitted():  # opened from a user's page: that user, else nobody
        form.user.data = named_person(request.args.get("user", ""), usernames)
        if form.user.data:
            form.what.data = LockTarget.USER.value
        elif request.args.get("what") in {t.value for t in LockTarget}:
            form.what.data = request.args["what"]  # opened from a key's page
        if request.args.get("cause") in {c.value for c in CAUSE_LABELS}:
            form.cause.data = request.args["cause"]  # opened for a loss report
    return render_template(
        "admin/lock.html",
        form=form,
        bsnr=number,
        name=name,
        keys=keys,
        problems=problems,
        staff=g.staff,
    ), status


@blueprint.get("/practices/<bsnr>/lock")
@allowed(HELPDESK)
def lock_dialog(bsnr: str) -> ResponseReturnValue:
    return _dialog(LockForm(), bsnr, [], 200)


@blueprint.post("/practices/<bsnr>/lock")
@reshows_stale_form
@allowed(HELPDESK)
def lock(bsnr: str) -> ResponseReturnValue:
    form = LockForm()
    usernames, keys, number, _ = _load(bsnr)
    actor, now = g.staff.actor, utcnow()

    def act(db: Session) -> str:
        what = LockTarget(form.what.data)
        outcomes = [
            locks.lock(
                db,
                what=what,
                identifier=identifier,
                cause=LockCause(form.cause.data),
                reason=form.reason.data or "",
                all_practice_credentials=form.all_credentials.data,
                actor=actor,
                now=now,
                loss_fee_cents=state().settings.letters.loss_fee_cents,
            )
            for identifier in _named(what, number, keys, usernames, form.user.data)
        ]
        done = "; ".join(outcome.text for outcome in outcomes)
        return done[:1].upper() + done[1:]  # the CLI's line, as a sentence

    return submit(
        form,
        act,
        done=lambda done: flash_and_redirect(
            f"{done}. Laufende VPN-Sitzungen werden getrennt.",
            url_for("admin.practice", bsnr=number),
        ),
        again=lambda problems, status: _dialog(form, bsnr, problems, status),
        extra_validators={"confirm": [typed(number, "Die BSNR stimmt nicht; nichts gesperrt.")]},
    )


def _named(
    what: LockTarget, bsnr: str, keys: list[str], usernames: list[str], chosen: str | None
) -> list[str]:
    """What the dialog locks, by name: the practice, its keys in use, or the chosen user
    (one of the practice's)."""
    if what is LockTarget.PRACTICE:
        return [bsnr]
    if what is LockTarget.KEY:
        if not keys:
            raise ValidationError("Die Betriebsstätte hat keinen Yubikey in Gebrauch")
        return keys
    if chosen not in usernames:
        raise ValidationError("Bitte einen Benutzer der Betriebsstätte wählen")
    return [chosen]


def _unlock(
    *,
    title: str,
    expected: str,
    confirmation: Callable[[Any, Any], None],
    back: str,
    act: Callable[[Session, str], object],
    done: str,
    form: UnlockForm | None = None,
) -> ResponseReturnValue:
    """The unlock form: a reason, and ``expected`` typed to confirm; ``act`` unlocks."""
    form = form or UnlockForm()

    def again(problems: list[str], status: int) -> ResponseReturnValue:
        page = render_template(
            "admin/unlock.html",
            form=form,
            title=title,
            expected=expected,
            back=back,
            problems=problems,
            staff=g.staff,
        )
        return page, status

    return submit(
        form,
        lambda db: act(db, form.reason.data or ""),
        done=lambda _: flash_and_redirect(g.get("unlocked") or done, back),
        again=again,
        extra_validators={"confirm": [confirmation]},
    )


class PracticeUnlockForm(UnlockForm):
    what = SelectField("Was wird entsperrt?", choices=[], validate_choice=False)


def _locked_keys(bsnr: str) -> tuple[str, list[tuple[str, TokenStatus]], bool]:
    """The BSNR as stored, its keys that are locked or lost, and whether the practice is
    locked (404 for an unknown practice)."""
    with state().database.reader() as db:
        try:
            practice = get_practice(db, bsnr)
        except (NotFoundError, ValidationError):
            raise NotFound from None
        locked = practice.status is PracticeStatus.LOCKED
        # A key locked with its practice comes back with it: not offered on its own.
        keys: list[tuple[str, TokenStatus]] = [
            (t.serial, t.status)
            for t in practice.tokens
            if t.status in (TokenStatus.LOCKED, TokenStatus.LOST)
            and not (
                locked and (t.lock_cause, t.locked_at) == (practice.lock_cause, practice.locked_at)
            )
        ]
        return practice.bsnr, keys, locked


def _unlock_key(db: Session, serial: str, reason: str) -> object:
    """A key alone after a false alarm (``locks.unlock_key``); a lost key is refused with
    the way the practice gets a new one, in the words of this UI."""
    token = stock.get_practice_key(db, serial)
    if token.status is TokenStatus.LOST:
        raise ConflictError(
            f"Yubikey {token.serial} ist als verloren gemeldet und bleibt ausgemustert "
            "(§ 7 Abs. 2): auch wenn er wieder auftaucht, wird er nicht entsperrt. Die "
            "Betriebsstätte bekommt einen Ersatz („Yubikey ersetzen“ auf ihrer Seite)."
        )
    return locks.unlock_key(db, serial=serial, reason=reason, actor=g.staff.actor, now=utcnow())


@blueprint.route("/practices/<bsnr>/unlock", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def unlock_practice(bsnr: str) -> ResponseReturnValue:
    """The practice, or one of its keys after a false alarm (a self-lock, a suspicion
    of misuse), as ``flexnet unlock practice BSNR`` and ``flexnet unlock key SERIAL``."""
    number, keys, practice_locked = _locked_keys(bsnr)
    choices = (
        [SelectChoice("practice", "die Betriebsstätte mit ihren Zugängen")]
        if practice_locked
        else []
    )
    for serial, status in keys:
        note = " (als verloren gemeldet: bleibt ausgemustert)" if status is TokenStatus.LOST else ""
        choices.append(SelectChoice(f"key:{serial}", f"der Yubikey {serial}{note}"))
    if not choices:
        choices = [SelectChoice("practice", "die Betriebsstätte mit ihren Zugängen")]
    form = PracticeUnlockForm()
    form.what.choices = choices
    if not form.is_submitted():
        wanted = f"key:{request.args.get('key', '')}"
        form.what.data = wanted if wanted in {c.value for c in choices} else choices[0].value

    def act(db: Session, reason: str) -> object:
        what = form.what.data or choices[0].value  # a form without the choice: the first
        if what == "practice":
            return locks.unlock(
                db,
                what=LockTarget.PRACTICE,
                identifier=number,
                reason=reason,
                actor=g.staff.actor,
                now=utcnow(),
                quarters=state().settings.lock_after_quarters,
            )
        serial = what.removeprefix("key:")
        if not what.startswith("key:") or serial not in {s for s, _ in keys}:
            raise ValidationError("Bitte wählen, was entsperrt wird.")
        g.unlocked = f"Yubikey {serial} entsperrt."
        return _unlock_key(db, serial, reason)

    return _unlock(
        title=f"Betriebsstätte {number} entsperren",
        expected="die BSNR",
        confirmation=typed(number, MISTYPED),
        back=url_for("admin.practice", bsnr=number),
        act=act,
        done=f"BSNR {number} entsperrt.",
        form=form,
    )


@blueprint.route("/users/<username>/unlock", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def unlock_user(username: str) -> ResponseReturnValue:
    with state().database.reader() as db:
        try:
            name = users.get_user(db, username).username
        except NotFoundError:
            raise NotFound from None
    return _unlock(
        title=f"Benutzer {name} entsperren",
        expected="den Benutzernamen",
        confirmation=typed(name, MISTYPED, any_case=True),
        back=url_for("admin.user", username=name),
        act=lambda db, reason: locks.unlock(
            db,
            what=LockTarget.USER,
            identifier=name,
            reason=reason,
            actor=g.staff.actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        ),
        done=f"{name} entsperrt.",
    )
