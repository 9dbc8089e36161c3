"""Mail runs in the admin UI (every role reads; helpdesk and admin act): what is due and
why letters wait (paged), produce the run as a PDF download, confirm its dispatch (starts
the § 3.2 clock) or cancel it.

The PDF holds fresh passwords: it is made in memory, sent once with ``no-store`` and
kept nowhere by flexnet. If the download is lost, cancel the run (its passwords stop
working) and produce it again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from io import BytesIO
from typing import Any

from flask import Response, g, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import StringField
from wtforms.validators import InputRequired

from flexnet.db import utcnow
from flexnet.errors import ConflictError
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import MailRun
from flexnet.provisioning import mailruns
from flexnet.web import state
from flexnet.web.admin import (
    ALL_ROLES,
    HELPDESK,
    ButtonForm,
    allowed,
    blank,
    blueprint,
    confirm_first,
    flash_and_redirect,
    submit,
    typed,
)
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import DayField


class DispatchForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    dispatched_on = DayField(
        "Zur Post gegeben am", validators=[InputRequired("Bitte ein Datum angeben.")]
    )


class CancelForm(FlaskForm):  # type: ignore[misc]
    confirm = StringField("Zur Bestätigung die Nummer des Laufs eingeben")


SLICE = 50


@dataclass(frozen=True)
class Slice:
    """One page of a list the domain computed whole (each waiting letter has its reason)."""

    rows: Sequence[Any]
    number: int
    pages: int

    @classmethod
    def of(cls, rows: Sequence[Any], name: str) -> Slice:
        pages = max(1, math.ceil(len(rows) / SLICE))
        number = min(max(1, request.args.get(name, 1, type=int) or 1), pages)
        return cls(rows[(number - 1) * SLICE : number * SLICE], number, pages)


def _today() -> date:
    return utcnow().astimezone(BERLIN).date()


def _page(problems: list[str], status: int) -> ResponseReturnValue:
    settings = state().settings
    with state().database.reader() as db:
        listing = mailruns.due_letters(
            db,
            today=_today(),
            delay_days=settings.letters.credentials_delay_days,
            quarters=settings.lock_after_quarters,
        )
        runs = list(db.scalars(select(MailRun).order_by(MailRun.id.desc()).limit(20)))
        return render_template(
            "admin/letters.html",
            listing=listing,
            due=Slice.of(listing.due, "due"),
            waiting=Slice.of(listing.waiting, "waiting"),
            runs=runs,
            reference=mailruns.reference,
            kind_label=mailruns.kind_label,
            dispatch_form=blank(DispatchForm, dispatched_on=_today()),
            plain_form=blank(ButtonForm),
            cancel_form=blank(CancelForm),
            problems=problems,
            staff=g.staff,
        ), status


@blueprint.get("/letters")
@allowed(ALL_ROLES)
def letters() -> ResponseReturnValue:
    return _page([], 200)


@blueprint.post("/letters/run")
@reshows_stale_form
@allowed(HELPDESK)
def letters_run() -> ResponseReturnValue:
    settings = state().settings
    out = BytesIO()

    def act(db: Session) -> int:
        produced = mailruns.produce_run(
            db,
            today=_today(),
            out=out,
            templates=mailruns.templates_for(settings),
            settings=settings,
            actor=g.staff.actor,
            now=utcnow(),
        )
        if produced is None:
            raise ConflictError("Keine Briefe fällig; kein Lauf erstellt.")
        return produced.run.id

    def download(run_id: int) -> Response:
        return Response(
            out.getvalue(),
            mimetype="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="versandlauf-{run_id}.pdf"',
                "Cache-Control": "no-store",
            },
        )

    return submit(
        ButtonForm(),
        act,
        done=download,
        again=_page,
        invalid="Die Seite war veraltet; bitte erneut versuchen.",
    )


@blueprint.post("/letters/runs/<int(max=2147483647):run_id>/dispatched")
@reshows_stale_form
@allowed(HELPDESK)
def letters_dispatched(run_id: int) -> ResponseReturnValue:
    form = DispatchForm()
    if form.validate_on_submit() and not g.get("stale_form"):
        asked = confirm_first(
            title=f"Versand von Lauf {run_id} bestätigen",
            lines=[
                f"Zur Post gegeben am {form.dispatched_on.data:%d.%m.%Y}. Damit beginnen die "
                "Fristen (§ 3 Abs. 2: Zugangsdaten erst nach dem Yubikey); der Lauf kann "
                "danach nicht mehr storniert werden.",
            ],
            button="Ja, Versand bestätigen",
            back=url_for("admin.letters"),
        )
        if asked is not None:
            return asked
    return submit(
        form,
        lambda db: mailruns.confirm_dispatch(
            db,
            run_id=run_id,
            dispatched_on=form.dispatched_on.data,
            today=_today(),
            actor=g.staff.actor,
            now=utcnow(),
        ),
        done=lambda _: flash_and_redirect(
            f"Versandlauf {run_id}: Versand bestätigt.", url_for("admin.letters")
        ),
        again=_page,
        invalid="Bitte das Datum angeben, an dem der Lauf zur Post ging.",
    )


@blueprint.post("/letters/runs/<int(max=2147483647):run_id>/cancel")
@reshows_stale_form
@allowed(HELPDESK)
def letters_cancel(run_id: int) -> ResponseReturnValue:
    """Destructive (its passwords stop working): confirmed by typing the run's number."""
    mistyped = "Zum Stornieren bitte die Nummer des Laufs eingeben; nichts geändert."
    return submit(
        CancelForm(),
        lambda db: mailruns.cancel_run(db, run_id=run_id, actor=g.staff.actor, now=utcnow()),
        done=lambda _: flash_and_redirect(
            f"Versandlauf {run_id} storniert; seine Kennwörter gelten nicht mehr.",
            url_for("admin.letters"),
        ),
        again=_page,
        invalid=mistyped,
        extra_validators={"confirm": [typed(str(run_id), mistyped)]},
    )
