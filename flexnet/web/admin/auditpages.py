"""The audit trail with filters and its chain status, and the live VPN sessions with a
disconnect button; every role reads, helpdesk and admin disconnect."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from flexnet import audit, days
from flexnet.accounts import vpn
from flexnet.db import utcnow
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import AuditEntry, VpnSession
from flexnet.web import state
from flexnet.web.admin import ALL_ROLES, HELPDESK, ButtonForm, allowed, blueprint, confirm_first
from flexnet.web.errors import reshows_stale_form

PAGE_SIZE = 100


def _day(name: str, label: str) -> date | None:
    raw = request.args.get(name, "").strip()
    return days.parse_day(raw, field=label) if raw else None


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=BERLIN)


@blueprint.get("/audit")
@allowed(ALL_ROLES)
def audit_trail() -> ResponseReturnValue:
    """Newest first; filters: subject (BSNR, username, serial …), actor, tag prefix, days."""
    subject = request.args.get("subject", "").strip()[:64]
    actor = request.args.get("actor", "").strip()[:128]
    tag = request.args.get("tag", "").strip()[:64]
    since, until = _day("from", "Von"), _day("to", "Bis")
    before = request.args.get("before", type=int)
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(PAGE_SIZE)
    if subject:
        query = query.where(AuditEntry.subject_id == subject)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if tag:
        query = query.where(AuditEntry.tag.startswith(tag, autoescape=True))
    if since:
        query = query.where(AuditEntry.at >= _start(since))
    if until:
        query = query.where(AuditEntry.at < _start(until + timedelta(days=1)))
    if before and 0 < before < 2**62:
        query = query.where(AuditEntry.id < before)
    with state().database.reader() as db:
        entries = list(db.scalars(query))
    filters = {"subject": subject, "actor": actor, "tag": tag}
    days = {"from": since.isoformat() if since else "", "to": until.isoformat() if until else ""}
    values: dict[str, Any] = {**filters, **days}
    older = (
        url_for("admin.audit_trail", before=entries[-1].id, **values)
        if len(entries) == PAGE_SIZE
        else None
    )
    return render_template(
        "admin/audit.html",
        entries=entries,
        filters=filters,
        since=since,
        until=until,
        older=older,
        staff=g.staff,
    )


@blueprint.get("/audit/verify")
@allowed(ALL_ROLES)
def audit_verify() -> ResponseReturnValue:
    """The whole chain checked now (it reads every entry: a button, not on every page)."""
    with state().database.reader() as db:
        report = audit.verify_chain(db, retention_years=state().settings.audit_retention_years)
    return render_template("admin/audit_verify.html", report=report, staff=g.staff)


@blueprint.get("/sessions")
@allowed(ALL_ROLES)
def vpn_sessions() -> ResponseReturnValue:
    with state().database.reader() as db:
        live = list(
            db.scalars(
                select(VpnSession)
                .where(VpnSession.stopped_at.is_(None))
                .options(joinedload(VpnSession.nas))
                .order_by(VpnSession.started_at.desc())
                .limit(500)
            )
        )
        return render_template(
            "admin/sessions.html",
            sessions=live,
            form=ButtonForm(),
            staff=g.staff,
        )


@blueprint.post("/sessions/<int(max=2147483647):session_id>/disconnect")
@reshows_stale_form
@allowed(HELPDESK)
def vpn_disconnect(session_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    with state().database.reader() as db:
        live = db.get(VpnSession, session_id)
        if live is None:
            abort(404)
        since = live.started_at.astimezone(BERLIN)
        who = f"{live.username} ({live.framed_ip or 'ohne Adresse'}, seit {since:%d.%m.%Y %H:%M})"
    asked = confirm_first(
        title="VPN-Sitzung trennen",
        lines=[
            f"Die Sitzung von {who} wird beendet: die Praxis verliert die Verbindung sofort "
            "und muss sich neu anmelden."
        ],
        button="Ja, Sitzung trennen",
        back=url_for("admin.vpn_sessions"),
    )
    if asked is not None:
        return asked
    with state().database.session() as db:
        queued = vpn.request_session_disconnect(
            db, session_id=session_id, actor=g.staff.actor, now=utcnow()
        )
    if queued:
        flash("Trennung angefordert; der RADIUS-Server sendet sie an den Konzentrator.")
    else:
        flash("Die Sitzung ist bereits beendet oder ihre Trennung angefordert.")
    return redirect(url_for("admin.vpn_sessions"))
