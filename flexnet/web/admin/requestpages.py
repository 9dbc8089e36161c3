"""The request queue (helpdesk, admin): verify (call back to the practice's known number),
fulfil (a new password is issued here), reject; every step with a note, audited."""

from __future__ import annotations

from flask import abort, g, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import BooleanField, RadioField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired

from flexnet.accounts import servicerequests
from flexnet.db import utcnow
from flexnet.models import Practice, RequestKind, RequestStatus, ServiceRequest
from flexnet.otp.verify import USABLE_STATUSES
from flexnet.web import state
from flexnet.web.admin import (
    ALL_ROLES,
    HELPDESK,
    allowed,
    blueprint,
    flash_and_redirect,
    named_person,
    person_choices,
    submit,
)
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import one_line

PAGE_SIZE = 50
STATUS_LABELS = {
    RequestStatus.OPEN: "offen",
    RequestStatus.VERIFIED: "bestätigt",
    RequestStatus.FULFILLED: "erledigt",
    RequestStatus.REJECTED: "abgelehnt",
}

_DONE = {"verify": "bestätigt", "fulfil": "erledigt", "reject": "abgelehnt"}


class HandleForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    step = RadioField(
        "Schritt",
        choices=[
            SelectChoice("verify", "bestätigt (Rückruf unter der bekannten Rufnummer)"),
            SelectChoice("fulfil", "erledigen"),
            SelectChoice("reject", "ablehnen"),
        ],
        validators=[DataRequired("Bitte einen Schritt wählen.")],
    )
    user = SelectField("Benutzer (bei neuem Kennwort)", choices=[], validate_choice=False)
    on_first_use = BooleanField("Altes Kennwort gilt bis zur ersten Nutzung des neuen (§ 7.3)")
    note = TextAreaField(
        "Vermerk",
        validators=[DataRequired("Bitte einen Vermerk eingeben."), one_line("Vermerk", 1000)],
    )


@blueprint.get("/requests")
@allowed(ALL_ROLES)
def requests() -> ResponseReturnValue:
    show_all = request.args.get("all") == "1"
    page = max(1, min(request.args.get("page", 1, type=int) or 1, 100_000))
    with state().database.reader() as db:
        query = select(ServiceRequest).order_by(ServiceRequest.id.desc())
        if not show_all:
            query = query.where(
                ServiceRequest.status.in_((RequestStatus.OPEN, RequestStatus.VERIFIED))
            )
        items = list(db.scalars(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    return render_template(
        "admin/requests.html",
        items=items[:PAGE_SIZE],
        page=page,
        more=len(items) > PAGE_SIZE,
        show_all=show_all,
        kinds=servicerequests.KIND_LABELS,
        statuses=STATUS_LABELS,
        staff=g.staff,
    )


def _detail(
    request_id: int, form: HandleForm, problems: list[str], status: int
) -> ResponseReturnValue:
    with state().database.reader() as db:
        item = db.get(ServiceRequest, request_id)
        if item is None:
            abort(404)
        practice = db.get(Practice, item.practice_id) if item.practice_id else None
        usernames = [u.username for u in practice.users] if practice else []
        form.user.choices = person_choices(usernames)
        if not form.is_submitted():
            form.user.data = named_person(item.usernames, usernames)
        named = named_person(item.usernames, usernames)
        keys = (
            [t.serial for t in practice.tokens if t.status in USABLE_STATUSES] if practice else []
        )
        key = keys[0] if keys else None
        return render_template(
            "admin/request.html",
            item=item,
            practice=practice,
            form=form,
            problems=problems,
            kinds=servicerequests.KIND_LABELS,
            statuses=STATUS_LABELS,
            new_password=item.kind is RequestKind.NEW_PASSWORD,
            self_lock=item.kind is RequestKind.SELF_LOCK,
            action=_action(item.kind, practice.bsnr if practice else None, named, key),
            staff=g.staff,
        ), status


def _action(
    kind: RequestKind, bsnr: str | None, named: str | None, key: str | None
) -> tuple[str, str] | None:
    """The page that fulfils a request of ``kind`` (after the call-back): its label and
    address, for the practice and the person the request names."""
    if bsnr is None:
        return None
    if kind is RequestKind.UNLOCK:
        if named:
            return "Entsperren-Dialog für " + named, url_for("admin.unlock_user", username=named)
        return "Entsperren-Dialog der Betriebsstätte", url_for("admin.unlock_practice", bsnr=bsnr)
    if kind is RequestKind.NEW_PASSWORD and named:
        return f"Neues Kennwort für {named} ausgeben", url_for("admin.user_reissue", username=named)
    if kind is RequestKind.KEY_LOST:
        return "Ersatz für den verlorenen Yubikey ausgeben (sperrt ihn, Gebühr)", url_for(
            "admin.key_replace", bsnr=bsnr, why="lost"
        )
    if kind is RequestKind.KEY_DEFECTIVE:
        return "Defekten Yubikey ersetzen", url_for("admin.key_replace", bsnr=bsnr, why="defective")
    if kind is RequestKind.RESYNC and key:
        return f"Yubikey {key} resynchronisieren", url_for("admin.key_detail", serial=key)
    if kind is RequestKind.NEW_USER:
        return "Benutzer anlegen", url_for("admin.user_new", bsnr=bsnr)
    if kind is RequestKind.END_OF_ACCESS:
        return "Kündigung erfassen", url_for("admin.terminate", bsnr=bsnr)
    if kind is RequestKind.SELF_LOCK:
        return "Entsperren nach Fehlalarm", url_for("admin.unlock_practice", bsnr=bsnr)
    return None


@blueprint.get("/requests/<int(max=2147483647):request_id>")
@allowed(ALL_ROLES)
def request_detail(request_id: int) -> ResponseReturnValue:
    return _detail(request_id, HandleForm(), [], 200)


@blueprint.post("/requests/<int(max=2147483647):request_id>")
@reshows_stale_form
@allowed(HELPDESK)
def request_handle(request_id: int) -> ResponseReturnValue:
    form = HandleForm()

    def act(db: Session) -> None:
        actor, now, note = g.staff.actor, utcnow(), form.note.data or ""
        if form.step.data == "verify":
            servicerequests.verify(db, request_id=request_id, note=note, actor=actor, now=now)
        elif form.step.data == "fulfil":
            servicerequests.fulfil(
                db,
                request_id=request_id,
                note=note,
                username=form.user.data or None,
                at_once=not form.on_first_use.data,
                actor=actor,
                now=now,
                quarters=state().settings.lock_after_quarters,
            )
        else:
            servicerequests.reject(db, request_id=request_id, note=note, actor=actor, now=now)

    return submit(
        form,
        act,
        done=lambda _: flash_and_redirect(
            f"Anfrage {request_id}: {_DONE[form.step.data]}.",
            url_for("admin.request_detail", request_id=request_id),
        ),
        again=lambda problems, status: _detail(request_id, form, problems, status),
    )
