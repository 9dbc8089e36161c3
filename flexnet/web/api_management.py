"""``/api/v1`` for mistakes undone, fees owed and the management's reports: the same
services as the command line (``fees``, ``termination``, ``unlock key``, ``exception``,
``report``); described in ``openapi_management``. Lists come as JSON or, with
``?format=csv``, as the CSV German spreadsheets open without a wizard."""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify, request

from flexnet.db import utcnow
from flexnet.errors import ValidationError
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import LossFee
from flexnet.provisioning import fees as ledger
from flexnet.web import state
from flexnet.web.api import blueprint
from flexnet.web.api_resources import READ, WRITE, _body, _date, client_with


def _format() -> str:
    value = request.args.get("format", "json")
    if value not in ("json", "csv"):
        raise ValidationError("format: erlaubt sind json, csv")
    return value


def csv_response(content: bytes, name: str) -> Response:
    return Response(
        content,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


# --- the fee ledger (§ 6.3) ---------------------------------------------------------------


def fee_json(fee: LossFee) -> dict[str, Any]:
    def day(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": fee.id,
        "bsnr": fee.practice.bsnr,
        "serial": fee.serial,
        "amount_cents": fee.amount_cents,
        "owed_on": fee.owed_on.isoformat(),
        "state": ledger.state_label(fee),
        "invoiced_on": day(fee.invoiced_on),
        "paid_on": day(fee.paid_on),
        "waived_on": day(fee.waived_on),
        "waive_reason": fee.waive_reason,
    }


@blueprint.get("/fees")
@client_with(READ)
def fees_list() -> Response:
    """The ledger, oldest first; ``open=true``: neither paid nor waived."""
    from flexnet.cli.fees_cmds import csv_rows  # the CLI's columns, one definition

    open_only = request.args.get("open", "false") == "true"
    as_format = _format()
    with state().database.reader() as db:
        rows = ledger.fees(db, open_only=open_only)
        if as_format == "csv":
            return csv_response(csv_rows(rows), "gebuehren")
        return jsonify(items=[fee_json(fee) for fee in rows])


def _today() -> Any:
    return utcnow().astimezone(BERLIN).date()


@blueprint.post("/fees/<int:fee_id>/invoiced")
@client_with(WRITE)
def fees_invoiced(fee_id: int) -> Response:
    body = _body({}, {"on": str})
    on = _date(body["on"], "on") if body.get("on") else _today()
    with state().database.session() as db:
        fee = ledger.invoice(db, fee_id=fee_id, on=on, actor=g.api_actor, now=utcnow())
        return jsonify(fee_json(fee))


@blueprint.post("/fees/<int:fee_id>/paid")
@client_with(WRITE)
def fees_paid(fee_id: int) -> Response:
    body = _body({}, {"on": str})
    on = _date(body["on"], "on") if body.get("on") else _today()
    with state().database.session() as db:
        fee = ledger.pay(db, fee_id=fee_id, on=on, actor=g.api_actor, now=utcnow())
        return jsonify(fee_json(fee))


@blueprint.post("/fees/<int:fee_id>/waived")
@client_with(WRITE)
def fees_waived(fee_id: int) -> Response:
    body = _body({"reason": str})
    with state().database.session() as db:
        fee = ledger.waive(
            db, fee_id=fee_id, reason=body["reason"], actor=g.api_actor, now=utcnow()
        )
        return jsonify(fee_json(fee))
