"""``/api/v1`` for mistakes undone, fees owed and the management's reports: the same
services as the command line (``fees``, ``termination``, ``unlock key``, ``exception``,
``report``); described in ``openapi_management``. Lists come as JSON or, with
``?format=csv``, as the CSV German spreadsheets open without a wizard."""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify, request

from flexnet.db import utcnow
from flexnet.errors import NotFoundError, ValidationError
from flexnet.lifecycle import lock_exceptions, locks, terminations
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import LockException, LossFee, TermsChannel
from flexnet.ops import reports
from flexnet.provisioning import fees as ledger
from flexnet.provisioning import mailruns, reactivation
from flexnet.web import state
from flexnet.web.api import blueprint
from flexnet.web.api_resources import (
    READ,
    WRITE,
    _body,
    _choice,
    _date,
    _practice,
    client_with,
    practice_json,
)


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


# --- mistakes undone ----------------------------------------------------------------------


@blueprint.post("/unlocks")
@client_with(WRITE)
def unlocks_create() -> Response:
    """Lift a user's, practice's or (after a false alarm) a key's lock, with a reason."""
    body = _body({"what": str, "id": str, "reason": str})
    what = _choice(locks.LockTarget, body["what"], "what")
    with state().database.session() as db:
        name = locks.unlock(
            db,
            what=what,
            identifier=body["id"],
            reason=body["reason"],
            actor=g.api_actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
    return jsonify(unlocked=name)


def _undone_json(undone: terminations.Undone) -> dict[str, Any]:
    last_day = undone.practice.access_ends_on
    return {
        "practice": practice_json(undone.practice),
        "last_day": last_day.isoformat() if last_day else None,
        "lock_lifted": undone.lifted,
        "cancelled": undone.cancelled,
        "already_sent": undone.sent,
    }


@blueprint.post("/practices/<bsnr>/termination/correction")
@client_with(WRITE)
def termination_correct(bsnr: str) -> Response:
    """Correct a termination's notice date or requested end (§ 10.2), with a reason."""
    body = _body({"reason": str}, {"notice_date": str, "requested_date": str})
    notice, requested = body.get("notice_date"), body.get("requested_date")
    with state().database.session() as db:
        undone = terminations.correct(
            db,
            bsnr=_practice(db, bsnr).bsnr,
            notice_date=_date(notice, "notice_date") if notice else None,
            requested=_date(requested, "requested_date") if requested else None,
            reason=body["reason"],
            actor=g.api_actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
        return jsonify(_undone_json(undone))


@blueprint.post("/practices/<bsnr>/termination/withdrawal")
@client_with(WRITE)
def termination_withdraw(bsnr: str) -> Response:
    """Withdraw a termination, with a reason: the lock it caused (only that) is lifted."""
    body = _body({"reason": str})
    with state().database.session() as db:
        undone = terminations.withdraw(
            db,
            bsnr=_practice(db, bsnr).bsnr,
            reason=body["reason"],
            actor=g.api_actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
        return jsonify(_undone_json(undone))


@blueprint.post("/practices/<bsnr>/reactivation")
@client_with(WRITE)
def practices_reactivate(bsnr: str) -> tuple[Response, int]:
    """A terminated practice takes part again: new terms acceptance, new key, new
    credentials letters (``reactivation``)."""
    body = _body(
        {"terms_version": str, "channel": str, "reason": str}, {"accepted_on": str, "key": str}
    )
    channel = _choice(TermsChannel, body["channel"], "channel")
    accepted = body.get("accepted_on")
    with state().database.session() as db:
        result = reactivation.reactivate(
            db,
            bsnr=_practice(db, bsnr).bsnr,
            version=body["terms_version"],
            channel=channel,
            accepted_on=_date(accepted, "accepted_on") if accepted else _today(),
            key_serial=body.get("key") or None,
            reason=body["reason"],
            actor=g.api_actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
        return jsonify(
            practice=practice_json(result.practice),
            credentials_for=result.users,
            letters=[mailruns.reference(letter) for letter in result.letters],
        ), 201


@blueprint.get("/exceptions")
@client_with(READ)
def exceptions_list() -> Response:
    """Exceptions to the automatic lock (§ 10.3 sentence 2) with their end, soonest first."""
    with state().database.reader() as db:
        items = [
            {
                "bsnr": _owner_bsnr(e),
                "username": e.user.username if e.user else None,
                "until": e.until.isoformat(),
                "reason": e.reason,
                "decision_ref": e.decision_ref,
                "decided_by": e.decided_by,
            }
            for e in lock_exceptions.listing(db)
        ]
    return jsonify(items=items)


def _owner_bsnr(exception: LockException) -> str | None:
    practice = exception.practice or (exception.user.practice if exception.user else None)
    return practice.bsnr if practice else None


@blueprint.post("/exceptions/end")
@client_with(WRITE)
def exceptions_end() -> Response:
    """End an exception early: the dates apply again from now."""
    body = _body({"reason": str}, {"bsnr": str, "username": str})
    with state().database.session() as db:
        lock_exceptions.end(
            db,
            bsnr=body.get("bsnr"),
            username=body.get("username"),
            reason=body["reason"],
            actor=g.api_actor,
            now=utcnow(),
        )
    return jsonify(ended=body.get("bsnr") or body.get("username"))


# --- reports ------------------------------------------------------------------------------


@blueprint.get("/reports/<name>")
@client_with(READ)
def reports_show(name: str) -> Response:
    """A management report at this instant, as JSON or CSV (``format=csv``)."""
    as_format = _format()
    if name not in reports.REPORTS:
        raise NotFoundError(f"Keinen Bericht {name!r}; es gibt {', '.join(reports.REPORTS)}")
    with state().database.reader() as db:
        made = reports.make(db, name, now=utcnow(), quarters=state().settings.lock_after_quarters)
    if as_format == "csv":
        return csv_response(made.as_csv(), f"bericht-{name}")
    return jsonify(made.as_json())
