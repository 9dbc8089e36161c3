"""The fee ledger in the browser (§ 6 Abs. 3: lost Yubikeys): the list with filters, its
sum and its CSV for accounting (every role reads), and the steps invoiced, paid and
waived (helpdesk, admin) through the same service as ``flexnet fees``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from flask import abort, g, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload
from wtforms import TextAreaField
from wtforms.validators import DataRequired, InputRequired

from flexnet.db import utcnow
from flexnet.labels import euro as format_euro
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import LossFee, Practice
from flexnet.provisioning import fees as ledger
from flexnet.textrules import REASON_MAX_LENGTH
from flexnet.web import state
from flexnet.web.admin import (
    ALL_ROLES,
    HELPDESK,
    allowed,
    blank,
    blueprint,
    confirm_first,
    dialog,
)
from flexnet.web.admin.tables import Column, Filters, csv_download, page_of, wants_csv
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import DayField, one_line

REQUIRED = "Bitte ausfüllen."
# The filter values of the list and the rows each one keeps, as ``ledger.state_label``.
STATES = {
    "offen": "offen (noch nicht berechnet)",
    "berechnet": "berechnet, nicht bezahlt",
    "unbezahlt": "offen oder berechnet (weder bezahlt noch erlassen)",
    "bezahlt": "bezahlt",
    "erlassen": "erlassen",
}
COLUMNS = (
    Column("id", "Nr.", LossFee.id, numeric=True),
    Column("bsnr", "BSNR", Practice.bsnr),
    Column("name", "Betriebsstätte", Practice.name),
    Column("serial", "Yubikey", LossFee.serial),
    Column("amount", "Betrag", LossFee.amount_cents, numeric=True),
    Column("owed", "fällig seit", LossFee.owed_on),
    Column("state", "Stand"),
    Column("actions", "Aktionen"),
)


def _where(query: Select[Any], chosen: str | None, bsnr: str | None) -> Select[Any]:
    unpaid = (LossFee.paid_on.is_(None), LossFee.waived_on.is_(None))
    if chosen == "offen":
        query = query.where(*unpaid, LossFee.invoiced_on.is_(None))
    elif chosen == "berechnet":
        query = query.where(*unpaid, LossFee.invoiced_on.is_not(None))
    elif chosen == "unbezahlt":
        query = query.where(*unpaid)
    elif chosen == "bezahlt":
        query = query.where(LossFee.paid_on.is_not(None))
    elif chosen == "erlassen":
        query = query.where(LossFee.waived_on.is_not(None))
    if bsnr:
        query = query.where(Practice.bsnr == bsnr)
    return query


def _csv_rows(query: Select[Any]) -> Any:
    def rows(db: Session) -> Iterator[Sequence[Any]]:
        ordered = query.options(selectinload(LossFee.practice)).order_by(
            LossFee.owed_on, LossFee.id
        )
        for (fee,) in db.execute(ordered.execution_options(yield_per=500)):
            yield ledger.csv_row(fee)

    return rows


@blueprint.get("/fees")
@allowed(ALL_ROLES)
def fee_list() -> ResponseReturnValue:
    """The ledger, oldest first, with the sum of what the filters keep."""
    chosen = Filters()
    wanted = chosen.choice("state", "Stand", {key: key for key in STATES})
    bsnr = chosen.text("bsnr", limit=9)
    query = _where(select(LossFee).join(LossFee.practice), wanted, bsnr)
    if wants_csv():
        return csv_download("gebuehren.csv", ledger.CSV_HEADER, _csv_rows(query))
    with state().database.reader() as db:
        total = db.scalar(
            _where(
                select(func.coalesce(func.sum(LossFee.amount_cents), 0)).join(LossFee.practice),
                wanted,
                bsnr,
            )
        )
        page = page_of(
            db,
            query.options(selectinload(LossFee.practice)),
            columns=COLUMNS,
            default_sort="owed",
            tiebreak=LossFee.id,
            endpoint="admin.fee_list",
            args=chosen.args,
        )
        return render_template(
            "admin/fees.html",
            page=page,
            total=format_euro(total or 0),
            states=list(STATES.items()),
            chosen=chosen,
            problems=chosen.problems,
            state_label=ledger.state_label,
            euro=format_euro,
            staff=g.staff,
        )


class DayForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    on = DayField("Datum", validators=[InputRequired(REQUIRED)])


class WaiveForm(FlaskForm):  # type: ignore[misc]
    reason = TextAreaField(
        "Grund des Erlasses",
        validators=[DataRequired(REQUIRED), one_line("Grund", REASON_MAX_LENGTH)],
    )


def _fee_facts(fee_id: int) -> list[tuple[str, str]]:
    with state().database.reader() as db:
        fee = db.get(LossFee, fee_id)
        if fee is None:
            abort(404)
        return [
            ("Betriebsstätte", f"BSNR {fee.practice.bsnr} – {fee.practice.name}"),
            ("Yubikey", fee.serial),
            ("Betrag", format_euro(fee.amount_cents)),
            ("Fällig seit", f"{fee.owed_on:%d.%m.%Y}"),
            ("Stand", ledger.state_label(fee)),
        ]


def _back() -> str:
    return url_for("admin.fee_list", state="unbezahlt")


def _today() -> Any:
    return utcnow().astimezone(BERLIN).date()


@blueprint.route("/fees/<int(max=2147483647):fee_id>/invoiced", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def fee_invoiced(fee_id: int) -> ResponseReturnValue:
    facts = _fee_facts(fee_id)
    form = DayForm() if request.method == "POST" else blank(DayForm, on=_today())
    form.on.label.text = "Rechnungsdatum"

    def act(db: Session) -> tuple[str, str]:
        ledger.invoice(db, fee_id=fee_id, on=form.on.data, actor=g.staff.actor, now=utcnow())
        return f"Gebühr Nr. {fee_id} als berechnet erfasst.", _back()

    return dialog(
        form,
        act,
        title=f"Gebühr Nr. {fee_id} berechnet",
        intro=["Die Rechnung an die Betriebsstätte ist geschrieben (einmal je Gebühr)."],
        facts=facts,
        fields=["on"],
        button="Als berechnet erfassen",
        back=_back(),
    )


@blueprint.route("/fees/<int(max=2147483647):fee_id>/paid", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def fee_paid(fee_id: int) -> ResponseReturnValue:
    facts = _fee_facts(fee_id)
    form = DayForm() if request.method == "POST" else blank(DayForm, on=_today())
    form.on.label.text = "Zahlungseingang am"

    def act(db: Session) -> tuple[str, str]:
        ledger.pay(db, fee_id=fee_id, on=form.on.data, actor=g.staff.actor, now=utcnow())
        return f"Zahlungseingang für Gebühr Nr. {fee_id} erfasst.", _back()

    return dialog(
        form,
        act,
        title=f"Gebühr Nr. {fee_id} bezahlt",
        intro=["Der Betrag ist eingegangen; die Gebühr ist damit erledigt."],
        facts=facts,
        fields=["on"],
        button="Zahlung erfassen",
        back=_back(),
    )


@blueprint.route("/fees/<int(max=2147483647):fee_id>/waive", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def fee_waive(fee_id: int) -> ResponseReturnValue:
    facts = _fee_facts(fee_id)
    form = WaiveForm()
    if request.method == "POST" and not g.get("stale_form") and form.validate():
        asked = confirm_first(
            title=f"Gebühr Nr. {fee_id} erlassen?",
            lines=[
                *(f"{label}: {value}" for label, value in facts),
                f"Grund: {form.reason.data}",
                "Ein Erlass lässt sich nicht zurücknehmen; die Gebühr wird nicht mehr berechnet.",
            ],
            button="Ja, Gebühr erlassen",
            back=_back(),
        )
        if asked is not None:
            return asked

    def act(db: Session) -> tuple[str, str]:
        ledger.waive(
            db, fee_id=fee_id, reason=form.reason.data or "", actor=g.staff.actor, now=utcnow()
        )
        return f"Gebühr Nr. {fee_id} erlassen.", _back()

    return dialog(
        form,
        act,
        title=f"Gebühr Nr. {fee_id} erlassen",
        intro=[
            "Ein Erlass braucht einen Grund (z. B. der Yubikey fand sich vor dem Ersatz "
            "wieder) und kann nicht zurückgenommen werden."
        ],
        facts=facts,
        fields=["reason"],
        button="Erlassen …",
        back=_back(),
        danger=True,
    )
