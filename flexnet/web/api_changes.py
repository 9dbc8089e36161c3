"""``/api/v1`` for data that changes over the years: lists with filters, a member's end
of activity, takeovers (§ 2.3), letters returned by the post, versions of the terms of
use. The same services as the command line; described in ``openapi_changes``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from flask import Response, g, jsonify, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from flexnet import days
from flexnet.db import utcnow
from flexnet.errors import NotFoundError, ValidationError
from flexnet.lifecycle import activity, terms
from flexnet.lifecycle.rules import BERLIN
from flexnet.lifecycle.status import EffectiveStatus, State, practice_status, user_status
from flexnet.models import (
    Practice,
    PracticeKind,
    TermsAcceptance,
    TermsChannel,
    TermsVersion,
    User,
    UserKind,
)
from flexnet.provisioning import mailruns, returnmail, takeover
from flexnet.web import state
from flexnet.web.api import blueprint
from flexnet.web.api_resources import (
    READ,
    WRITE,
    _body,
    _choice,
    _date,
    _page_args,
    _paged,
    _practice,
    _window,
    client_with,
    practice_json,
    user_json,
)

# --- lists with filters -------------------------------------------------------------------


def _arg_choice(name: str, allowed: Iterable[str]) -> str | None:
    value = request.args.get(name)
    if value is not None and value not in allowed:
        raise ValidationError(f"{name}: erlaubt sind {', '.join(allowed)}")
    return value


def _arg_day(name: str) -> date | None:
    value = request.args.get(name)
    return days.parse_day(value, field=name) if value else None


def _status_filter() -> Callable[[EffectiveStatus], bool] | None:
    """The filters on the effective status (at this moment): state and lock date range;
    None when none is asked for, so that the database pages the list."""
    wanted = _arg_choice("status", [state.value for state in State])
    first, last = _arg_day("lock_from"), _arg_day("lock_to")
    if wanted is None and first is None and last is None:
        return None

    def keep(status: EffectiveStatus) -> bool:
        if wanted is not None and status.state.value != wanted:
            return False
        if first is None and last is None:
            return True
        if status.lock_at is None:
            return False
        day = status.lock_at.astimezone(BERLIN).date()
        return (first is None or day >= first) and (last is None or day <= last)

    return keep


def _listed(
    db: Session,
    query: Any,
    keep: Callable[[EffectiveStatus], bool] | None,
    status_of: Callable[[Any], EffectiveStatus],
    as_json: Callable[[Any], dict[str, Any]],
    endpoint: str,
) -> Response:
    page, per_page = _page_args()
    if keep is None:
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        items = [as_json(row) for row in db.scalars(_window(query, page, per_page))]
        return _paged(items, total, page, per_page, endpoint)
    # The effective status follows from the dates at this moment: decided per row.
    rows = [row for row in db.scalars(query) if keep(status_of(row))]
    window = rows[(page - 1) * per_page : page * per_page]
    return _paged([as_json(row) for row in window], len(rows), page, per_page, endpoint)


@blueprint.get("/practices")
@client_with(READ)
def practices_list() -> Response:
    """Practices by status, kind, terms version (latest accepted; ``none``), terms still
    due, and the day the dates lock them (``lock_from``/``lock_to``)."""
    kind = _arg_choice("kind", [kind.value for kind in PracticeKind])
    version = request.args.get("terms_version")
    due = _arg_choice("terms_due", ["true", "false"])
    keep = _status_filter()
    query = select(Practice).order_by(Practice.bsnr)
    if kind:
        query = query.where(Practice.kind == PracticeKind(kind))
    if version is not None:
        query = _by_terms_version(query, version)
    if due is not None:
        accepted = select(TermsAcceptance.id).where(TermsAcceptance.practice_id == Practice.id)
        is_due = Practice.terms_due_version.is_not(None) & accepted.exists()
        query = query.where(is_due if due == "true" else ~is_due)
    if keep is not None:
        query = query.options(
            selectinload(Practice.users).selectinload(User.lock_exception),
            selectinload(Practice.lock_exception),
            selectinload(Practice.terms_acceptances),
        )
    quarters = state().settings.lock_after_quarters
    now = utcnow()
    with state().database.reader() as db:
        return _listed(
            db,
            query,
            keep,
            lambda practice: practice_status(practice, now, quarters),
            practice_json,
            "api.practices_list",
        )


def _by_terms_version(query: Any, version: str) -> Any:
    """Practices whose latest acceptance is ``version`` (``none``: no acceptance yet)."""
    latest = (
        select(TermsAcceptance.practice_id, func.max(TermsAcceptance.id).label("id"))
        .group_by(TermsAcceptance.practice_id)
        .subquery()
    )
    if version == "none":
        return query.where(Practice.id.not_in(select(latest.c.practice_id)))
    return query.where(
        Practice.id.in_(
            select(latest.c.practice_id)
            .join(TermsAcceptance, TermsAcceptance.id == latest.c.id)
            .where(TermsAcceptance.version == version)
        )
    )


@blueprint.get("/users")
@client_with(READ)
def users_list() -> Response:
    """Users by status, kind, practice and the day the dates lock them."""
    kind = _arg_choice("kind", [kind.value for kind in UserKind])
    bsnr = request.args.get("bsnr")
    keep = _status_filter()
    query = select(User).order_by(User.username)
    if kind:
        query = query.where(User.kind == UserKind(kind))
    if bsnr:
        query = query.join(Practice, User.practice_id == Practice.id).where(Practice.bsnr == bsnr)
    if keep is not None:
        query = query.options(
            selectinload(User.lock_exception),
            selectinload(User.practice).selectinload(Practice.lock_exception),
            selectinload(User.practice).selectinload(Practice.users),
        )
    quarters = state().settings.lock_after_quarters
    now = utcnow()
    with state().database.reader() as db:
        return _listed(
            db,
            query,
            keep,
            lambda user: user_status(user, now, quarters),
            user_json,
            "api.users_list",
        )


# --- the end of activity ------------------------------------------------------------------


def _end_body() -> tuple[date | None, str | None]:
    body = _body({}, {"ended_on": str, "clear": bool, "reason": str})
    clear, ended_on = bool(body.get("clear")), body.get("ended_on")
    if clear == (ended_on is not None):
        raise ValidationError("Bitte entweder ended_on oder clear angeben")
    return (None if clear else _date(ended_on, "ended_on")), body.get("reason")


@blueprint.post("/users/<username>/activity-end")
@client_with(WRITE)
def users_activity_end(username: str) -> Response:
    """A member's own end of activity (§ 10.3), corrected or cleared with a reason."""
    ended_on, reason = _end_body()
    with state().database.session() as db:
        user = activity.record_member_end(
            db,
            username=username,
            ended_on=ended_on,
            reason=reason,
            actor=g.api_actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
        return jsonify(user_json(user))


@blueprint.post("/practices/<bsnr>/activity-end")
@client_with(WRITE)
def practices_activity_end(bsnr: str) -> Response:
    """The practice's own end of activity (the practice as a whole)."""
    ended_on, reason = _end_body()
    with state().database.session() as db:
        practice = activity.record_practice_end(
            db,
            bsnr=_practice(db, bsnr).bsnr,
            ended_on=ended_on,
            reason=reason,
            actor=g.api_actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
        return jsonify(practice_json(practice, detail=True))


# --- versions of the terms of use ---------------------------------------------------------


def _version_json(version: TermsVersion, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "version": version.version,
        "effective_on": version.effective_on.isoformat(),
        "accept_by": version.accept_by.isoformat(),
        "published_by": version.published_by,
        "accepted_by": counts.get(version.version, 0),
    }


@blueprint.get("/terms")
@client_with(READ)
def terms_list() -> Response:
    """The published versions, how many practices accepted each last, how many wait."""
    with state().database.reader() as db:
        counts = terms.accepted_counts(db)
        return jsonify(
            versions=[_version_json(version, counts) for version in terms.versions(db)],
            pending=len(terms.pending(db)),
        )


@blueprint.post("/terms")
@client_with(WRITE)
def terms_publish() -> tuple[Response, int]:
    """Publish a version with the day it takes effect and the last day to accept it."""
    body = _body({"version": str, "effective_on": str, "accept_by": str})
    with state().database.session() as db:
        published = terms.publish(
            db,
            version=body["version"],
            effective_on=_date(body["effective_on"], "effective_on"),
            accept_by=_date(body["accept_by"], "accept_by"),
            actor=g.api_actor,
            now=utcnow(),
        )
        return jsonify(_version_json(published, {})), 201


# --- takeovers and returned letters ---------------------------------------------------


_PERSON = {"username": str, "name": str, "lanr": str}


def _people(items: Any, kind: UserKind, field: str) -> list[takeover.NewUser]:
    """A JSON list of users of one kind: objects with username (and name, lanr)."""
    people = []
    for item in items or []:
        if not isinstance(item, dict) or not isinstance(item.get("username"), str):
            raise ValidationError(f"Feld {field}: eine Liste von Objekten mit username")
        if any(key not in _PERSON or not isinstance(v, str) for key, v in item.items()):
            raise ValidationError(f"Feld {field}: erlaubt sind username, name, lanr (Text)")
        people.append(takeover.NewUser(item["username"], kind, item.get("name"), item.get("lanr")))
    return people


@blueprint.post("/practices/<bsnr>/takeover")
@client_with(WRITE)
def practices_takeover(bsnr: str) -> tuple[Response, int]:
    """A new owner continues the practice (§ 2.3), under its BSNR or a new one."""
    address_fields = ("street", "zip_code", "city", "address_extra", "phone", "contact_person")
    body = _body(
        {"on": str, "new_name": str, "terms_version": str, "members": list},
        {
            "new_bsnr": str,
            "terms_channel": str,
            "accepted_on": str,
            "staff": list,
            "practice_access": str,
            "key": str,
            **dict.fromkeys(address_fields, str),
        },
    )
    new_users = _people(body["members"], UserKind.MEMBER, "members")
    new_users += _people(body.get("staff"), UserKind.STAFF, "staff")
    if body.get("practice_access"):
        new_users.append(takeover.NewUser(body["practice_access"], UserKind.PRACTICE_ACCESS))
    channel = _choice(TermsChannel, body.get("terms_channel", "portal"), "terms_channel")
    accepted = body.get("accepted_on")
    with state().database.session() as db:
        result = takeover.take_over(
            db,
            bsnr=_practice(db, bsnr).bsnr,
            on=_date(body["on"], "on"),
            new_name=body["new_name"],
            new_bsnr=body.get("new_bsnr") or None,
            terms_version=body["terms_version"],
            terms_channel=channel,
            accepted_on=_date(accepted, "accepted_on")
            if accepted
            else utcnow().astimezone(BERLIN).date(),
            new_users=new_users,
            new_key=body.get("key") or None,
            address=takeover.Address(**{field: body.get(field) for field in address_fields}),
            actor=g.api_actor,
            now=utcnow(),
            quarters=state().settings.lock_after_quarters,
        )
        db.flush()
        db.refresh(result.practice)
        return jsonify(
            practice=practice_json(result.practice, detail=True),
            ended=sorted(result.ended),
            letters=[mailruns.reference(letter) for letter in result.letters],
        ), 201


@blueprint.post("/letters/<reference>/returned")
@client_with(WRITE)
def letters_returned(reference: str) -> Response:
    """A dispatched letter came back undeliverable: re-sent as a new letter, which waits
    with the practice's others for the corrected address; a password in it stops."""
    body = _body({}, {"returned_on": str})
    try:
        letter_id = mailruns.parse_reference(reference)
    except ValidationError:
        raise NotFoundError(f"Keinen Brief {reference}") from None
    today = utcnow().astimezone(BERLIN).date()
    day = body.get("returned_on")
    with state().database.session() as db:
        resend = returnmail.record_return(
            db,
            letter_id=letter_id,
            returned_on=_date(day, "returned_on") if day else today,
            today=today,
            actor=g.api_actor,
            now=utcnow(),
        )
        return jsonify(
            letter=mailruns.reference(letter_id),
            status="returned",
            resend=mailruns.reference(resend) if resend else None,
        )
