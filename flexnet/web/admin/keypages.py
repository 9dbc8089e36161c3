"""Yubikeys: the stock (counts, import, keys checked by an external service, returns),
the keys not returned (§ 10.2), and one key's page with its history and the
resynchronisation (§ 6.1). Every role reads; helpdesk and admin change. The same
services as ``flexnet yubikey …``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

from flask import abort, g, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from wtforms import StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Optional

from flexnet import labels, loglabels
from flexnet.db import utcnow
from flexnet.errors import NotFoundError, ValidationError
from flexnet.lifecycle import returns
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    AuditEntry,
    Practice,
    ReturnCondition,
    StaffAccount,
    Token,
    TokenStatus,
)
from flexnet.otp import importer, stock
from flexnet.otp.verify import USABLE_STATUSES, OtpReason
from flexnet.web import state
from flexnet.web.admin import (
    ALL_ROLES,
    HELPDESK,
    allowed,
    blank,
    blueprint,
    flash_and_redirect,
    submit,
)
from flexnet.web.admin.tables import Column, Filters, csv_download, page_of, wants_csv
from flexnet.web.errors import reshows_stale_form
from flexnet.web.forms import DayField, chosen, one_line

REQUIRED = "Bitte ausfüllen."
MAX_IMPORT_BYTES = 5 * 1024 * 1024
# Below this many keys in stock the stock page and the dashboard warn.
LOW_STOCK = 10


def _today() -> date:
    return utcnow().astimezone(BERLIN).date()


class ReturnForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    serial = StringField("Seriennummer", validators=[DataRequired(REQUIRED)])
    received_on = DayField("Eingegangen am", validators=[InputRequired(REQUIRED)])
    condition = chosen(
        "Zustand",
        [
            SelectChoice(ReturnCondition.GOOD.value, "gut: nach Neuprogrammierung ins Lager"),
            SelectChoice(ReturnCondition.DAMAGED.value, "beschädigt: ausmustern"),
        ],
        "Bitte den Zustand wählen.",
    )
    note = StringField("Anmerkung", validators=[Optional(), one_line("Anmerkung", 200)])


class ImportForm(FlaskForm):  # type: ignore[misc]
    file = FileField(
        "Datei (ykman-CSV, ykpersonalize-Log oder PSKC)",
        validators=[FileRequired("Bitte eine Datei wählen.")],
    )


class RemoteForm(FlaskForm):  # type: ignore[misc]
    serial = StringField("Seriennummer", validators=[DataRequired(REQUIRED)])
    public_id = StringField(
        "Öffentliche Kennung (12 Modhex-Zeichen)", validators=[DataRequired(REQUIRED)]
    )


class ResyncForm(FlaskForm):  # type: ignore[misc]
    first = StringField("Erstes Einmalkennwort", validators=[DataRequired(REQUIRED)])
    second = StringField(
        "Zweites Einmalkennwort (direkt danach erzeugt)", validators=[DataRequired(REQUIRED)]
    )


# --- the stock ------------------------------------------------------------------------------


def _stock_page(
    form: ImportForm | None = None,
    return_form: ReturnForm | None = None,
    remote_form: RemoteForm | None = None,
    problems: Sequence[str] = (),
    status: int = 200,
) -> ResponseReturnValue:
    with state().database.reader() as db:
        counts = dict(db.execute(select(Token.status, func.count()).group_by(Token.status)).all())
    return render_template(
        "admin/keys.html",
        form=form or blank(ImportForm),
        return_form=return_form or blank(ReturnForm, received_on=_today()),
        remote_form=remote_form or blank(RemoteForm),
        problems=problems,
        counts=[(s, labels.token_status_label(s), counts.get(s, 0)) for s in TokenStatus],
        in_stock=counts.get(TokenStatus.STOCK, 0),
        low_stock=LOW_STOCK,
        staff=g.staff,
    ), status


@blueprint.get("/keys")
@allowed(ALL_ROLES)
def keys() -> ResponseReturnValue:
    """The stock: counts by status, the import, keys checked elsewhere, returns."""
    return _stock_page()


def _back_to_stock(message: str) -> ResponseReturnValue:
    return flash_and_redirect(message, url_for("admin.keys"))


@blueprint.post("/keys")
@reshows_stale_form
@allowed(HELPDESK)
def keys_import() -> ResponseReturnValue:
    form = ImportForm()

    def act(db: Session) -> str:
        data = form.file.data.read(MAX_IMPORT_BYTES + 1)
        if len(data) > MAX_IMPORT_BYTES:
            raise ValidationError("Die Datei ist größer als 5 MB")
        parsed = importer.parse(data, importer.Format.AUTO)  # before any row is read
        summary = importer.import_keys(
            db, parsed, box=state().secret_box, actor=g.staff.actor, now=utcnow()
        )
        return f"{summary.total} Yubikeys importiert ({summary.reprogrammed} neu programmiert)."

    return submit(
        form,
        act,
        done=_back_to_stock,
        again=lambda problems, status: _stock_page(form=form, problems=problems, status=status),
    )


@blueprint.post("/keys/return")
@reshows_stale_form
@allowed(HELPDESK)
def key_return() -> ResponseReturnValue:
    """Record a key that came back (§ 10.2)."""
    form = ReturnForm()

    def act(db: Session) -> str:
        token = returns.record_return(
            db,
            serial=form.serial.data or "",
            received_on=form.received_on.data,
            condition=ReturnCondition(form.condition.data),
            note=form.note.data or None,
            actor=g.staff.actor,
            now=utcnow(),
        )
        returned = token.status is TokenStatus.RETURNED
        return f"Yubikey {form.serial.data} eingegangen; " + (
            "ins Lager erst nach Neuprogrammierung." if returned else "ausgemustert."
        )

    return submit(
        form,
        act,
        done=_back_to_stock,
        again=lambda problems, status: _stock_page(
            return_form=form, problems=problems, status=status
        ),
    )


@blueprint.post("/keys/remote")
@reshows_stale_form
@allowed(HELPDESK)
def key_register_remote() -> ResponseReturnValue:
    """A key whose secret stays with an external Yubico validation service."""
    form = RemoteForm()

    def act(db: Session) -> str:
        token = stock.register_remote(
            db,
            serial=form.serial.data or "",
            public_id=form.public_id.data or "",
            actor=g.staff.actor,
            now=utcnow(),
        )
        return f"Yubikey {token.serial} im Lager (Prüfung durch den externen Dienst)."

    return submit(
        form,
        act,
        done=_back_to_stock,
        again=lambda problems, status: _stock_page(
            remote_form=form, problems=problems, status=status
        ),
    )


# --- keys not returned (§ 10.2) -------------------------------------------------------------

OVERDUE_COLUMNS = (
    Column("serial", "Seriennummer", Token.serial),
    Column("bsnr", "Betriebsstätte", Practice.bsnr),
    Column("address", "Anschrift"),
    Column("locked", "gesperrt am", Token.locked_at),
    Column("reason", "Grund"),
    Column("reminded", "erinnert am", Token.return_reminded_on),
)


@blueprint.get("/keys/overdue")
@allowed(ALL_ROLES)
def keys_overdue() -> ResponseReturnValue:
    """Locked keys not back after ``FLEXNET_RETURN_REMINDER_DAYS`` (or as chosen)."""
    settings = state().settings
    chosen_filters = Filters()
    days = request_days(chosen_filters, settings.return_reminder_days)
    query = (
        returns.overdue_query(utcnow() - timedelta(days=days))
        .order_by(None)
        .join(Practice, Token.practice_id == Practice.id)
        .add_columns(Practice)
    )
    if wants_csv():
        return _overdue_csv(query)
    with state().database.reader() as db:
        page = page_of(
            db,
            query,
            columns=OVERDUE_COLUMNS,
            default_sort="locked",
            tiebreak=Token.id,
            endpoint="admin.keys_overdue",
            args=chosen_filters.args,
        )
        return render_template(
            "admin/keys_overdue.html",
            page=page,
            days=days,
            problems=chosen_filters.problems,
            staff=g.staff,
        )


def request_days(chosen_filters: Filters, default: int) -> int:
    raw = chosen_filters.text("days", limit=4)
    if raw is None:
        return default
    if not raw.isdigit() or not 0 <= int(raw) <= 3650:
        chosen_filters.args.pop("days")
        chosen_filters.problems.append(
            "Tage seit der Sperre: bitte eine Zahl von 0 bis 3650; es gilt die Voreinstellung."
        )
        return default
    return int(raw)


def _overdue_csv(query: Any) -> ResponseReturnValue:
    header = ["Seriennummer", "BSNR", "Betriebsstätte", "Anschrift", "gesperrt am", "Grund"]
    header.append("erinnert am")

    def rows(db: Session) -> Iterator[Sequence[Any]]:
        for token, practice in db.execute(
            query.order_by(Token.locked_at).execution_options(yield_per=500)
        ):
            extra = f"{practice.address_extra}, " if practice.address_extra else ""
            yield (
                token.serial,
                practice.bsnr,
                practice.name,
                f"{extra}{practice.street}, {practice.zip_code} {practice.city}",
                token.locked_at,
                token.lock_reason,
                token.return_reminded_on,
            )

    return csv_download("yubikeys-nicht-zurueck.csv", header, rows)


# --- one key ---------------------------------------------------------------------------------


def _key_page(
    serial: str, form: ResyncForm, problems: list[str], status: int
) -> ResponseReturnValue:
    with state().database.reader() as db:
        try:
            token = stock.get_token(db, serial)
        except NotFoundError:
            abort(404)
        practice = db.get(Practice, token.practice_id) if token.practice_id else None
        holder = db.get(StaffAccount, token.staff_id) if token.staff_id else None
        replaced_by = db.get(Token, token.replaced_by_id) if token.replaced_by_id else None
        history = list(
            db.scalars(
                select(AuditEntry)
                .where(AuditEntry.subject_kind == "token", AuditEntry.subject_id == token.serial)
                .order_by(AuditEntry.id.desc())
                .limit(100)
            )
        )
        return render_template(
            "admin/key.html",
            token=token,
            practice=practice,
            holder=holder,
            replaced_by=replaced_by,
            usable=token.status in USABLE_STATUSES,
            history=history,
            form=form,
            problems=problems,
            staff=g.staff,
        ), status


@blueprint.get("/yubikeys/<serial>")
@allowed(ALL_ROLES)
def key_detail(serial: str) -> ResponseReturnValue:
    return _key_page(serial, blank(ResyncForm), [], 200)


@blueprint.post("/yubikeys/<serial>/resync")
@reshows_stale_form
@allowed(HELPDESK)
def key_resync(serial: str) -> ResponseReturnValue:
    """§ 6.1: two OTPs the practice reads out (or sends) one after the other."""
    form = ResyncForm()

    def act(db: Session) -> str:
        reason = stock.resync(
            db,
            serial=serial,
            first=form.first.data or "",
            second=form.second.data or "",
            box=state().secret_box,
            actor=g.staff.actor,
            now=utcnow(),
        )
        if reason is not OtpReason.OK:
            raise ValidationError(
                "Resynchronisierung nicht möglich: "
                f"{loglabels.auth_reason_label(reason.value)}. Bitte zwei direkt "
                "nacheinander erzeugte Einmalkennwörter dieses Yubikeys eingeben"
            )
        return serial

    def again(problems: list[str], status: int) -> ResponseReturnValue:
        form.first.data = form.second.data = ""  # a used OTP is worth nothing; type new ones
        return _key_page(serial, form, problems, status)

    return submit(
        form,
        act,
        done=lambda _: flash_and_redirect(
            f"Yubikey {serial} resynchronisiert.", url_for("admin.key_detail", serial=serial)
        ),
        again=again,
    )
