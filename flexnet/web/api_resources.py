"""``/api/v1`` resources for the association's other systems (e.g. the member portal's
terms checkbox, § 1.3): the same services as the CLI and the admin UI, as JSON.

Each client has a role (``flexnet api-client add --role``): auditors read, helpdesk and
admin also change. Errors are RFC 9457 problem details; lists are paginated (``page``,
``per_page`` ≤ 100, a ``Link`` header). The document is ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from functools import wraps
from typing import Any

from flask import Response, g, jsonify, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flexnet import days
from flexnet.accounts import practices, servicerequests, users
from flexnet.audit import Actor
from flexnet.clients import apiclients
from flexnet.db import utcnow
from flexnet.errors import NotFoundError, ValidationError
from flexnet.lifecycle import locks, terms
from flexnet.lifecycle.rules import BERLIN
from flexnet.lifecycle.status import practice_status, user_status
from flexnet.models import (
    MailRun,
    Practice,
    PracticeKind,
    RequestStatus,
    ServiceRequest,
    StaffRole,
    TerminationBy,
    TermsChannel,
    Token,
    User,
    UserKind,
)
from flexnet.otp.stock import get_token
from flexnet.provisioning import issuance, mailruns
from flexnet.web import state
from flexnet.web.api import api_key, blueprint, problem

READ = frozenset(StaffRole)
WRITE = frozenset({StaffRole.ADMIN, StaffRole.HELPDESK})
MAX_PER_PAGE = 100
MAX_PAGE = 100_000  # 10 million rows; more would overflow the database's offset


def client_with(roles: frozenset[StaffRole]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The view runs for an active client whose role is one of ``roles``. A domain error
    it raises becomes a problem document with the status its class carries
    (``web.errors``)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with state().database.reader() as db:
                client = apiclients.authenticate_client(db, api_key())
                name, role = (client.name, client.role) if client else (None, None)
            if name is None:
                return problem(401, "API-Schlüssel fehlt oder ist ungültig")
            if role not in roles:
                return problem(403, "Dieser API-Client darf das nicht")
            g.api_actor = Actor.api_client(name)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def _body(
    required: Mapping[str, type], optional: Mapping[str, type] | None = None
) -> dict[str, Any]:
    """The JSON object of the request with these fields and types (strings are stripped)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationError("Erwartet wird ein JSON-Objekt")
    fields = {**required, **(optional or {})}
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise ValidationError(f"Unbekannte Felder: {', '.join(unknown)}")
    for name, kind in fields.items():
        if name not in body or body[name] is None:
            if name in required:
                raise ValidationError(f"Feld {name} fehlt")
            continue
        if not isinstance(body[name], kind) or (kind is int and isinstance(body[name], bool)):
            raise ValidationError(f"Feld {name} hat den falschen Typ")
    return body


def _date(value: Any, field: str) -> date:
    return days.parse_day(str(value), field=f"Feld {field}")


def _choice(enum_type: Any, value: Any, field: str) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum_type)
        raise ValidationError(f"Feld {field}: erlaubt sind {allowed}") from None


def _page_args() -> tuple[int, int]:
    try:
        page = int(request.args.get("page", "1"))
        per_page = int(request.args.get("per_page", "50"))
    except ValueError:
        raise ValidationError("page und per_page sind ganze Zahlen") from None
    if not 1 <= page <= MAX_PAGE or not 1 <= per_page <= MAX_PER_PAGE:
        raise ValidationError(
            f"page zwischen 1 und {MAX_PAGE}, per_page zwischen 1 und {MAX_PER_PAGE}"
        )
    return page, per_page


def _window(query: Any, page: int, per_page: int) -> Any:
    return query.offset((page - 1) * per_page).limit(per_page)


def _paged(items: list[Any], total: int, page: int, per_page: int, endpoint: str) -> Response:
    response = jsonify(items=items, page=page, per_page=per_page, total=total)
    links = []
    if page * per_page < total:
        links.append(f'<{url_for(endpoint, page=page + 1, per_page=per_page)}>; rel="next"')
    if page > 1:
        links.append(f'<{url_for(endpoint, page=page - 1, per_page=per_page)}>; rel="prev"')
    if links:
        response.headers["Link"] = ", ".join(links)
    return response


# --- representations ------------------------------------------------------------------


def _day(day: date | None) -> str | None:
    return day.isoformat() if day else None


def practice_json(practice: Practice, *, detail: bool = False) -> dict[str, Any]:
    settings = state().settings
    status = practice_status(practice, utcnow(), settings.lock_after_quarters)
    body: dict[str, Any] = {
        "bsnr": practice.bsnr,
        "name": practice.name,
        "kind": practice.kind.value,
        "status": status.state.value,
        "status_reason": status.reason,
        "lock_at": status.lock_at.isoformat() if status.lock_at else None,
        "terms_version": practice.terms_acceptance.version if practice.terms_acceptance else None,
        "terms_due_version": practice.terms_due_version,
        "terms_due_by": _day(practice.terms_due_by),
        "activity_ended_on": _day(practice.activity_ended_on),
    }
    if detail:
        body["address"] = {
            "extra": practice.address_extra,
            "street": practice.street,
            "zip_code": practice.zip_code,
            "city": practice.city,
        }
        body["phone"] = practice.phone
        body["contact_person"] = practice.contact_person
        body["users"] = [user.username for user in practice.users]
        body["keys"] = [{"serial": t.serial, "status": t.status.value} for t in practice.tokens]
    return body


def user_json(user: User) -> dict[str, Any]:
    status = user_status(user, utcnow(), state().settings.lock_after_quarters)
    return {
        "username": user.username,
        "bsnr": user.practice.bsnr,
        "kind": user.kind.value,
        "name": user.name,
        "lanr": user.lanr,
        "activity_ended_on": _day(user.activity_ended_on),
        "status": status.state.value,
        "status_reason": status.reason,
        "lock_at": status.lock_at.isoformat() if status.lock_at else None,
    }


def token_json(token: Token) -> dict[str, Any]:
    return {
        "serial": token.serial,
        "kind": token.kind.value,
        "status": token.status.value,
        "bsnr": token.practice.bsnr if token.practice else None,
        "lock_reason": token.lock_reason,
        "returned_on": token.returned_on.isoformat() if token.returned_on else None,
    }


# --- practices and users ------------------------------------------------------------------


@blueprint.post("/practices")
@client_with(WRITE)
def practices_create() -> tuple[Response, int]:
    text = {"bsnr": str, "name": str, "street": str, "zip_code": str, "city": str}
    body = _body(text, {"address_extra": str, "kind": str})
    kind = _choice(PracticeKind, body.get("kind", "member"), "kind")
    with state().database.session() as db:
        practice = practices.add_practice(
            db,
            bsnr=body["bsnr"],
            name=body["name"],
            street=body["street"],
            zip_code=body["zip_code"],
            city=body["city"],
            address_extra=body.get("address_extra") or None,
            kind=kind,
            actor=g.api_actor,
            now=utcnow(),
        )
        return jsonify(practice_json(practice, detail=True)), 201


def _practice(db: Session, bsnr: str) -> Practice:
    try:
        return practices.get_practice(db, bsnr)
    except ValidationError:
        raise NotFoundError(f"Keine Betriebsstätte mit BSNR {bsnr}") from None


@blueprint.get("/practices/<bsnr>")
@client_with(READ)
def practices_show(bsnr: str) -> Response:
    with state().database.reader() as db:
        return jsonify(practice_json(_practice(db, bsnr), detail=True))


_PRACTICE_FIELDS = ("name", "street", "zip_code", "city", "address_extra", "phone")


@blueprint.patch("/practices/<bsnr>")
@client_with(WRITE)
def practices_edit(bsnr: str) -> Response:
    """Name, address, phone number or contact person; an empty optional value clears it."""
    body = _body({}, dict.fromkeys((*_PRACTICE_FIELDS, "contact_person"), str))
    with state().database.session() as db:
        practice = _practice(db, bsnr)
        practices.edit_practice(
            db,
            bsnr=practice.bsnr,
            **{field: body.get(field) for field in (*_PRACTICE_FIELDS, "contact_person")},
            actor=g.api_actor,
            now=utcnow(),
        )
        return jsonify(practice_json(practice, detail=True))


@blueprint.post("/practices/<bsnr>/terms")
@client_with(WRITE)
def practices_terms(bsnr: str) -> tuple[Response, int]:
    """The terms accepted (e.g. the member portal's checkbox, § 1.3)."""
    body = _body({"version": str, "accepted_on": str}, {"channel": str})
    channel = _choice(TermsChannel, body.get("channel", "portal"), "channel")
    with state().database.session() as db:
        practice = _practice(db, bsnr)
        terms.accept(
            db,
            bsnr=practice.bsnr,
            version=body["version"],
            channel=channel,
            accepted_on=_date(body["accepted_on"], "accepted_on"),
            actor=g.api_actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
        db.refresh(practice)
        return jsonify(practice_json(practice, detail=True)), 201


@blueprint.post("/practices/<bsnr>/users")
@client_with(WRITE)
def practices_add_user(bsnr: str) -> tuple[Response, int]:
    """A user; the credentials letter is queued (the password travels only by letter)."""
    body = _body({"username": str, "kind": str}, {"name": str, "lanr": str})
    kind = _choice(UserKind, body["kind"], "kind")
    with state().database.session() as db:
        practice = _practice(db, bsnr)
        user, _ = issuance.add_user(
            db,
            username=body["username"],
            bsnr=practice.bsnr,
            kind=kind,
            name=body.get("name") or None,
            lanr=body.get("lanr") or None,
            actor=g.api_actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
        return jsonify(user_json(user)), 201


@blueprint.post("/practices/<bsnr>/termination")
@client_with(WRITE)
def practices_terminate(bsnr: str) -> Response:
    body = _body({"by": str, "notice_date": str}, {"requested_date": str, "reason": str})
    by = _choice(TerminationBy, body["by"], "by")
    if by is TerminationBy.EXTRAORDINARY and not (body.get("reason") or "").strip():
        raise ValidationError("Eine außerordentliche Kündigung braucht einen Grund")
    requested = body.get("requested_date")
    with state().database.session() as db:
        practice = locks.terminate(
            db,
            bsnr=_practice(db, bsnr).bsnr,
            by=by,
            notice_date=_date(body["notice_date"], "notice_date"),
            requested=_date(requested, "requested_date") if requested else None,
            reason=body.get("reason"),
            actor=g.api_actor,
            now=utcnow(),
        )
        last_day = practice.access_ends_on
        return jsonify(
            practice=practice_json(practice),
            last_day=last_day.isoformat() if last_day else None,
        )


@blueprint.get("/users/<username>")
@client_with(READ)
def users_show(username: str) -> Response:
    with state().database.reader() as db:
        return jsonify(user_json(users.get_user(db, username)))


@blueprint.patch("/users/<username>")
@client_with(WRITE)
def users_edit(username: str) -> Response:
    """A user's name, a member's LANR (check digit; not another person's)."""
    body = _body({}, {"name": str, "lanr": str})
    with state().database.session() as db:
        user = users.get_user(db, username)
        users.edit_user(
            db,
            username=user.username,
            name=body.get("name"),
            lanr=body.get("lanr"),
            actor=g.api_actor,
            now=utcnow(),
        )
        return jsonify(user_json(user))


@blueprint.get("/tokens/<serial>")
@client_with(READ)
def tokens_show(serial: str) -> Response:
    with state().database.reader() as db:
        return jsonify(token_json(get_token(db, serial)))


# --- locks, requests, letters ------------------------------------------------------------

_LOCK_CAUSES = {cause.value: cause for cause in locks.STAFF_CAUSES}


@blueprint.post("/locks")
@client_with(WRITE)
def locks_create() -> Response:
    """Lock a user, key or practice with cause and reason (§ 7.2, § 10.1, § 14.2)."""
    body = _body(
        {"what": str, "id": str, "cause": str, "reason": str},
        {"all_practice_credentials": bool},
    )
    what = _choice(locks.LockTarget, body["what"], "what")
    if body["cause"] not in _LOCK_CAUSES:
        raise ValidationError(f"Feld cause: erlaubt sind {', '.join(_LOCK_CAUSES)}")
    with state().database.session() as db:
        outcome = locks.lock(
            db,
            what=what,
            identifier=body["id"],
            cause=_LOCK_CAUSES[body["cause"]],
            reason=body["reason"],
            all_practice_credentials=bool(body.get("all_practice_credentials")),
            actor=g.api_actor,
            now=utcnow(),
            loss_fee_cents=state().settings.letters.loss_fee_cents,
        )
    if outcome.key_status is not None:
        return jsonify(locked=outcome.locked, status=outcome.key_status.value)
    return jsonify(locked=outcome.locked)


@blueprint.get("/requests")
@client_with(WRITE)
def requests_list() -> Response:
    page, per_page = _page_args()
    open_only = request.args.get("status", "open") == "open"
    query = select(ServiceRequest)
    if open_only:
        query = query.where(ServiceRequest.status.in_((RequestStatus.OPEN, RequestStatus.VERIFIED)))
    with state().database.reader() as db:
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = list(db.scalars(_window(query.order_by(ServiceRequest.id.desc()), page, per_page)))
        # Staff verify a request by calling back the practice's stored number, never the
        # one typed into the form.
        known = {item.practice_id for item in rows if item.practice_id}
        phones = dict(
            db.execute(select(Practice.id, Practice.phone).where(Practice.id.in_(known))).all()
        )
        items = [
            {
                "id": item.id,
                "created_at": item.created_at.isoformat(),
                "bsnr": item.bsnr,
                "known_practice": item.practice_id is not None,
                "practice_phone": phones.get(item.practice_id) if item.practice_id else None,
                "kind": item.kind.value,
                "kind_label": servicerequests.KIND_LABELS[item.kind],
                "status": item.status.value,
            }
            for item in rows
        ]
    return _paged(items, total, page, per_page, "api.requests_list")


def _letter_json(letter: Any, reason: str | None = None) -> dict[str, Any]:
    return {
        "reference": mailruns.reference(letter),
        "kind": letter.kind.value,
        "bsnr": letter.practice.bsnr,
        "username": letter.user.username if letter.user else None,
        "waiting_because": reason,
    }


@blueprint.get("/letters/due")
@client_with(WRITE)
def letters_due() -> Response:
    today = utcnow().astimezone(BERLIN).date()
    with state().database.reader() as db:
        settings = state().settings
        listing = mailruns.due_letters(
            db,
            today=today,
            delay_days=settings.letters.credentials_delay_days,
            quarters=settings.lock_after_quarters,
        )
        return jsonify(
            day=today.isoformat(),
            due=[_letter_json(letter) for letter in listing.due],
            waiting=[_letter_json(w.letter, w.reason) for w in listing.waiting],
        )


@blueprint.get("/letters/runs")
@client_with(WRITE)
def letters_runs() -> Response:
    page, per_page = _page_args()
    with state().database.reader() as db:
        total = db.scalar(select(func.count()).select_from(MailRun)) or 0
        rows = db.scalars(
            select(MailRun)
            .order_by(MailRun.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
        items = [
            {
                "id": run.id,
                "status": run.status.value,
                "run_date": run.run_date.isoformat(),
                "letters": len(run.letters),
                "dispatched_on": run.dispatched_on.isoformat() if run.dispatched_on else None,
            }
            for run in rows
        ]
    return _paged(items, total, page, per_page, "api.letters_runs")
