"""The lists of practices, users and Yubikeys (every role reads): filters, sorting by
column headers, paging with totals, and the same rows as CSV (``tables``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import g, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from flexnet import labels
from flexnet.accounts import lists
from flexnet.accounts.users import kind_label
from flexnet.db import utcnow
from flexnet.lifecycle.rules import BERLIN
from flexnet.lifecycle.status import practice_status
from flexnet.models import (
    LockException,
    Practice,
    PracticeKind,
    PracticeStatus,
    TermsAcceptance,
    Token,
    TokenKind,
    TokenStatus,
    User,
    UserKind,
    UserStatus,
)
from flexnet.otp.verify import USABLE_STATUSES
from flexnet.web import state
from flexnet.web.admin import ALL_ROLES, allowed, blueprint
from flexnet.web.admin.tables import Column, Filters, csv_download, page_of, wants_csv

LOCK_WINDOWS = {
    "4": ("4 Wochen", timedelta(weeks=4)),
    "8": ("8 Wochen", timedelta(weeks=8)),
    "13": ("ein Quartal (13 Wochen)", timedelta(weeks=13)),
    "26": ("ein halbes Jahr", timedelta(weeks=26)),
    "52": ("ein Jahr", timedelta(weeks=52)),
}
HOLDERS = {
    "practice": "einer Betriebsstätte",
    "staff": "einem Mitarbeiter (zweiter Faktor)",
    "none": "niemandem (Lager, zurück, ausgemustert)",
}


# --- practices ------------------------------------------------------------------------------

PRACTICE_COLUMNS = (
    Column("bsnr", "BSNR", Practice.bsnr),
    Column("name", "Name", Practice.name),
    Column("city", "Ort", Practice.city),
    Column("kind", "Art", Practice.kind),
    Column("status", "Status", Practice.status),
    Column("terms", "Bedingungen", lists.latest_terms_version()),
    Column("users", "Benutzer", lists.user_count(), numeric=True),
    Column("key", "Yubikey"),
    Column("lock", "Sperre ab"),
    Column("created", "angelegt", Practice.created_at),
)


def _practice_filter(chosen: Filters) -> lists.PracticeFilter:
    window = chosen.choice("lock", "Sperre innerhalb", {k: v[1] for k, v in LOCK_WINDOWS.items()})
    return lists.PracticeFilter(
        text=chosen.text("q"),
        status=chosen.choice("status", "Status", {s.value: s for s in PracticeStatus}),
        kind=chosen.choice("kind", "Art", {k.value: k for k in PracticeKind}),
        terms=chosen.text("terms", limit=32),
        city=chosen.text("city"),
        locks_within=window,
    )


def _practice_query(chosen: lists.PracticeFilter) -> Select[Any]:
    settings = state().settings
    return lists.practices(chosen, now=utcnow(), quarters=settings.lock_after_quarters).add_columns(
        lists.latest_terms_version(), lists.user_count()
    )


def _current_key(practice: Practice) -> Token | None:
    """The practice's key in use, else its newest."""
    usable = [t for t in practice.tokens if t.status in USABLE_STATUSES]
    return (usable or sorted(practice.tokens, key=lambda t: t.id))[-1] if practice.tokens else None


@blueprint.get("/practices")
@allowed(ALL_ROLES)
def practices() -> ResponseReturnValue:
    chosen = Filters()
    wanted = _practice_filter(chosen)
    query = _practice_query(wanted)
    quarters, now = state().settings.lock_after_quarters, utcnow()
    if wants_csv():
        return _practices_csv(query, now, quarters)
    with state().database.reader() as db:
        page = page_of(
            db,
            query,
            columns=PRACTICE_COLUMNS,
            default_sort="bsnr",
            tiebreak=Practice.id,
            endpoint="admin.practices",
            args=chosen.args,
        )
        rows = [
            (
                practice,
                practice_status(practice, now, quarters),
                version,
                count,
                _current_key(practice),
            )
            for practice, version, count in page.rows
        ]
        versions = db.scalars(select(TermsAcceptance.version).distinct()).all()
        options = {
            "status": [(s.value, label) for s, label in labels.PRACTICE_STATUS_LABEL.items()],
            "kind": [(k.value, label) for k, label in labels.PRACTICE_KIND_LABEL.items()],
            "terms": [(lists.NO_TERMS, "nicht angenommen")]
            + [(v, f"Version {v}") for v in sorted(versions, reverse=True)],
            "lock": [(key, label) for key, (label, _) in LOCK_WINDOWS.items()],
        }
        return render_template(
            "admin/practices.html",
            page=page,
            rows=rows,
            problems=chosen.problems,
            options=options,
            labels=labels,
            staff=g.staff,
        )


def _practices_csv(query: Select[Any], now: datetime, quarters: int) -> ResponseReturnValue:
    header = [
        "BSNR",
        "Name",
        "Zusatz",
        "Straße",
        "PLZ",
        "Ort",
        "Art",
        "Status",
        "Grund",
        "Nutzungsbedingungen",
        "Benutzer",
        "Yubikey",
        "Yubikey-Status",
        "Sperre ab",
        "angelegt am",
    ]

    def rows(db: Session) -> Iterator[Sequence[Any]]:
        for practice, version, count in db.execute(
            query.order_by(Practice.bsnr).execution_options(yield_per=500)
        ):
            status = practice_status(practice, now, quarters)
            key = _current_key(practice)
            yield (
                practice.bsnr,
                practice.name,
                practice.address_extra,
                practice.street,
                practice.zip_code,
                practice.city,
                labels.PRACTICE_KIND_LABEL[practice.kind],
                labels.STATE_LABEL[status.state],
                status.reason,
                version or "nicht angenommen",
                count,
                key.serial if key else None,
                labels.token_status_label(key.status.value) if key else None,
                status.lock_at,
                practice.created_at,
            )

    return csv_download("betriebsstaetten.csv", header, rows)


# --- users ----------------------------------------------------------------------------------

USER_COLUMNS = (
    Column("username", "Benutzername", User.username),
    Column("name", "Name", User.name),
    Column("kind", "Art", User.kind),
    Column("lanr", "LANR", User.lanr),
    Column("bsnr", "Betriebsstätte", Practice.bsnr),
    Column("status", "Status", User.status),
    Column("last_login", "letzte Anmeldung", User.last_login_at),
    Column("failed", "Fehlversuche", User.failed_logins, numeric=True),
)


def _user_filter(chosen: Filters) -> lists.UserFilter:
    return lists.UserFilter(
        text=chosen.text("q"),
        status=chosen.choice("status", "Status", {s.value: s for s in UserStatus}),
        kind=chosen.choice("kind", "Art", {k.value: k for k in UserKind}),
        bsnr=chosen.text("bsnr", limit=9),
        taken_over=chosen.flag("taken_over"),
        failed=chosen.flag("failed"),
    )


@blueprint.get("/users")
@allowed(ALL_ROLES)
def users() -> ResponseReturnValue:
    chosen = Filters()
    query = lists.users(_user_filter(chosen))
    if wants_csv():
        return _users_csv(query)
    with state().database.reader() as db:
        page = page_of(
            db,
            query,
            columns=USER_COLUMNS,
            default_sort="username",
            tiebreak=User.id,
            endpoint="admin.users",
            args=chosen.args,
        )
        options = {
            "status": [(s.value, label) for s, label in labels.USER_STATUS_LABEL.items()],
            "kind": [(k.value, kind_label(k)) for k in UserKind],
        }
        return render_template(
            "admin/users.html",
            page=page,
            problems=chosen.problems,
            options=options,
            kind_label=kind_label,
            labels=labels,
            staff=g.staff,
        )


def _users_csv(query: Any) -> ResponseReturnValue:
    header = [
        "Benutzername",
        "Name",
        "Art",
        "LANR",
        "BSNR",
        "Betriebsstätte",
        "Status",
        "Kennwort gesetzt am",
        "Kennwort übernommen",
        "letzte Anmeldung",
        "Fehlversuche",
        "eigenes Tätigkeitsende",
    ]

    def rows(db: Session) -> Iterator[Sequence[Any]]:
        for user, practice in db.execute(
            query.order_by(User.username).execution_options(yield_per=500)
        ):
            yield (
                user.username,
                user.name,
                kind_label(user.kind),
                user.lanr,
                practice.bsnr,
                practice.name,
                labels.USER_STATUS_LABEL[user.status],
                user.password_set_at,
                user.taken_over_password is not None,
                user.last_login_at,
                user.failed_logins,
                user.activity_ended_on,
            )

    return csv_download("benutzer.csv", header, rows)


# --- keys -----------------------------------------------------------------------------------

KEY_COLUMNS = (
    Column("serial", "Seriennummer", Token.serial),
    Column("kind", "Art", Token.kind),
    Column("status", "Status", Token.status),
    Column("holder", "bei", Practice.bsnr),
    Column("last_used", "zuletzt verwendet", Token.last_used_at),
    Column("locked", "gesperrt am", Token.locked_at),
    Column("created", "im Bestand seit", Token.created_at),
)


def _key_filter(chosen: Filters) -> lists.KeyFilter:
    return lists.KeyFilter(
        text=chosen.text("q", limit=32),
        status=chosen.choice("status", "Status", {s.value: s for s in TokenStatus}),
        kind=chosen.choice("kind", "Art", {k.value: k for k in TokenKind}),
        bsnr=chosen.text("bsnr", limit=9),
        holder=chosen.choice("holder", "bei", {k: k for k in HOLDERS}),
    )


@blueprint.get("/yubikeys")
@allowed(ALL_ROLES)
def key_list() -> ResponseReturnValue:
    chosen = Filters()
    query = lists.keys(_key_filter(chosen))
    if wants_csv():
        return _keys_csv(query)
    with state().database.reader() as db:
        page = page_of(
            db,
            query,
            columns=KEY_COLUMNS,
            default_sort="serial",
            tiebreak=Token.id,
            endpoint="admin.key_list",
            args=chosen.args,
        )
        options = {
            "status": [(s.value, labels.token_status_label(s.value)) for s in TokenStatus],
            "kind": [(k.value, label) for k, label in labels.TOKEN_KIND_LABEL.items()],
            "holder": list(HOLDERS.items()),
        }
        return render_template(
            "admin/key_list.html",
            page=page,
            problems=chosen.problems,
            options=options,
            labels=labels,
            staff=g.staff,
        )


def _keys_csv(query: Any) -> ResponseReturnValue:
    header = [
        "Seriennummer",
        "Art",
        "öffentliche Kennung",
        "Status",
        "BSNR",
        "Betriebsstätte",
        "Mitarbeiter",
        "zuletzt verwendet",
        "gesperrt am",
        "Sperrgrund",
        "zurück am",
        "im Bestand seit",
    ]

    def rows(db: Session) -> Iterator[Sequence[Any]]:
        for token, practice, staff in db.execute(
            query.order_by(Token.serial).execution_options(yield_per=500)
        ):
            yield (
                token.serial,
                labels.TOKEN_KIND_LABEL[token.kind],
                token.public_id,
                labels.token_status_label(token.status.value),
                practice.bsnr if practice else None,
                practice.name if practice else None,
                staff.username if staff else None,
                token.last_used_at,
                token.locked_at,
                token.lock_reason,
                token.returned_on,
                token.created_at,
            )

    return csv_download("yubikeys.csv", header, rows)


# --- exceptions from the automatic lock (§ 10.3) ------------------------------------------

EXCEPTION_COLUMNS = (
    Column("until", "gilt bis", LockException.until),
    Column("who", "für"),
    Column("reason", "Grund"),
    Column("ref", "Aktenzeichen", LockException.decision_ref),
    Column("by", "entschieden von", LockException.decided_by),
    Column("created", "erteilt am", LockException.created_at),
    Column("actions", "Aktionen"),
)


@blueprint.get("/exceptions")
@allowed(ALL_ROLES)
def exceptions() -> ResponseReturnValue:
    """Every exception in force, soonest ending first (granting: the practice's page)."""
    query = select(LockException).options(
        selectinload(LockException.practice), selectinload(LockException.user)
    )
    with state().database.reader() as db:
        page = page_of(
            db,
            query,
            columns=EXCEPTION_COLUMNS,
            default_sort="until",
            tiebreak=LockException.id,
            endpoint="admin.exceptions",
            args={},
        )
        return render_template(
            "admin/exceptions.html",
            page=page,
            today=utcnow().astimezone(BERLIN).date(),
            staff=g.staff,
        )
