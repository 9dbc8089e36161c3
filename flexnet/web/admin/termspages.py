"""Versions of the terms of use (every role reads; admins publish): each version with how
many practices accepted it last, the practices still to accept the newest (paged, CSV),
and publishing a version, which asks each of them by letter. ``flexnet terms …``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from flask import g, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from wtforms import StringField
from wtforms.validators import DataRequired, InputRequired

from flexnet.accounts import lists
from flexnet.db import utcnow
from flexnet.lifecycle import terms
from flexnet.models import Practice, PracticeStatus
from flexnet.web import state
from flexnet.web.admin import (
    ADMIN,
    ALL_ROLES,
    allowed,
    blank,
    blueprint,
    flash_and_redirect,
    submit,
)
from flexnet.web.admin.tables import Column, Filters, csv_download, page_of, wants_csv
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import DayField

REQUIRED = "Bitte ausfüllen."


class PublishForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    version = StringField("Version (z. B. 2.0)", validators=[DataRequired(REQUIRED)])
    effective_on = DayField("gilt ab", validators=[InputRequired(REQUIRED)])
    accept_by = DayField("anzunehmen bis (letzter Tag)", validators=[InputRequired(REQUIRED)])


COLUMNS = (
    Column("bsnr", "BSNR", Practice.bsnr),
    Column("name", "Betriebsstätte", Practice.name),
    Column("accepted", "zuletzt angenommen", lists.latest_terms_version()),
    Column("due", "anzunehmen", Practice.terms_due_version),
    Column("by", "bis", Practice.terms_due_by),
)


def _pending() -> Select[Practice, str | None]:
    """Practices (that accepted some version) still to accept the newest: as
    ``terms.pending``, a statement to page."""
    return (
        select(Practice, lists.latest_terms_version())
        .where(Practice.terms_due_version.is_not(None), Practice.terms_due_by.is_not(None))
        .where(Practice.status != PracticeStatus.PENDING)
    )


def _page(form: PublishForm, problems: Sequence[str], status: int) -> ResponseReturnValue:
    version = lists.latest_terms_version().label("version")
    with state().database.reader() as db:
        published = terms.versions(db)
        counts = dict(
            db.execute(select(version, func.count()).select_from(Practice).group_by(version)).all()
        )
        page = page_of(
            db,
            _pending(),
            columns=COLUMNS,
            default_sort="by",
            tiebreak=Practice.id,
            endpoint="admin.terms_page",
            args=Filters().args,
        )
        return render_template(
            "admin/terms.html",
            published=list(reversed(published)),
            counts=counts,
            page=page,
            form=form,
            problems=problems,
            today=utcnow().date(),
            staff=g.staff,
        ), status


@blueprint.get("/terms")
@allowed(ALL_ROLES)
def terms_page() -> ResponseReturnValue:
    if wants_csv():
        return _csv()
    return _page(blank(PublishForm), [], 200)


@blueprint.post("/terms")
@reshows_stale_form
@allowed(ADMIN)
def terms_publish() -> ResponseReturnValue:
    """Publish a version: each practice on an older one gets a letter asking it to accept."""
    form = PublishForm()

    def act(db: Session) -> str:
        published = terms.publish(
            db,
            version=form.version.data or "",
            effective_on=form.effective_on.data,
            accept_by=form.accept_by.data,
            actor=g.staff.actor,
            now=utcnow(),
        )
        asked = len(terms.pending(db))
        return (
            f"Nutzungsbedingungen {published.version} veröffentlicht: gelten ab "
            f"{published.effective_on:%d.%m.%Y}, anzunehmen bis {published.accept_by:%d.%m.%Y}; "
            f"{asked} Betriebsstätten haben sie noch nicht angenommen (Briefe vorgemerkt)."
        )

    return submit(
        form,
        act,
        done=lambda message: flash_and_redirect(message, url_for("admin.terms_page")),
        again=lambda problems, status: _page(form, problems, status),
    )


def _csv() -> ResponseReturnValue:
    header = ["BSNR", "Betriebsstätte", "zuletzt angenommen", "anzunehmen", "bis"]

    def rows(db: Session) -> Iterator[Sequence[Any]]:
        for practice, version in db.execute(
            _pending().order_by(Practice.bsnr).execution_options(yield_per=500)
        ):
            yield (
                practice.bsnr,
                practice.name,
                version or "keine",
                practice.terms_due_version,
                practice.terms_due_by,
            )

    return csv_download("nutzungsbedingungen-offen.csv", header, rows)
