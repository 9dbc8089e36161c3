"""The login log (every role reads): each decision of the authentication pipeline with
time, user, practice, channel, NAS or client (behind a proxy also the concentrator),
source address, outcome and the reason in German; filters, paging with totals, CSV.
Kept ``FLEXNET_CONNECTION_LOG_DAYS`` days."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, time, timedelta
from typing import Any

from flask import g, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from flexnet import loglabels
from flexnet.authn import loginlog
from flexnet.db import utcnow
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import ApiClient, AuthEvent, NasClient
from flexnet.web import state
from flexnet.web.admin import ALL_ROLES, allowed, blueprint
from flexnet.web.admin.tables import Column, Filters, csv_download, page_of, wants_csv

COLUMNS = (
    Column("at", "Zeit", AuthEvent.at),
    Column("username", "Benutzer", AuthEvent.username),
    Column("bsnr", "Betriebsstätte", AuthEvent.bsnr),
    Column("channel", "Weg", AuthEvent.channel),
    Column("client", "NAS / Client", AuthEvent.client),
    Column("source", "Quelle", AuthEvent.source_ip),
    Column("outcome", "Ergebnis", AuthEvent.outcome),
    Column("reason", "Grund"),
)
SINCE = {
    "1h": ("letzte Stunde", timedelta(hours=1)),
    "24h": ("letzte 24 Stunden", timedelta(hours=24)),
    "7d": ("letzte 7 Tage", timedelta(days=7)),
}


def _start(day: Any) -> datetime:
    return datetime.combine(day, time(), tzinfo=BERLIN)


def _filter(chosen: Filters, now: datetime) -> loginlog.AuthFilter:
    since = chosen.day("from", "Von")
    until = chosen.day("to", "Bis")
    recent = chosen.choice("recent", "Zeitraum", {k: v[1] for k, v in SINCE.items()})
    return loginlog.AuthFilter(
        username=chosen.text("username", limit=64),
        bsnr=chosen.text("bsnr", limit=9),
        channel=chosen.choice("channel", "Weg", {k: k for k in loglabels.CHANNEL_LABEL}),
        outcome=chosen.choice("outcome", "Ergebnis", {k: k for k in loglabels.OUTCOME_LABEL}),
        client=chosen.text("client", limit=100),
        concentrator=chosen.text("concentrator", limit=320),
        source=chosen.text("source", limit=45),
        since=now - recent if recent else _start(since) if since else None,
        until=_start(until + timedelta(days=1)) if until else None,
    )


@blueprint.get("/logins")
@allowed(ALL_ROLES)
def logins() -> ResponseReturnValue:
    chosen = Filters()
    query = loginlog.events(_filter(chosen, utcnow()))
    if wants_csv():
        return _csv(query)
    with state().database.reader() as db:
        page = page_of(
            db,
            query,
            columns=COLUMNS,
            default_sort="at",
            default_descending=True,
            tiebreak=AuthEvent.id,
            endpoint="admin.logins",
            args=chosen.args,
        )
        clients = [*db.scalars(select(NasClient.name)), *db.scalars(select(ApiClient.name))]
    options = {
        "channel": list(loglabels.CHANNEL_LABEL.items()),
        "outcome": list(loglabels.OUTCOME_LABEL.items()),
        "recent": [(key, label) for key, (label, _) in SINCE.items()],
        "client": [(name, name) for name in sorted({*clients, "self-service"})],
    }
    return render_template(
        "admin/logins.html",
        page=page,
        problems=chosen.problems,
        options=options,
        loglabels=loglabels,
        keep_days=state().settings.connection_log_days,
        staff=g.staff,
    )


def _csv(query: Select[Any]) -> ResponseReturnValue:
    header = [
        "Zeit",
        "Benutzer",
        "BSNR",
        "Weg",
        "NAS / Client",
        "Konzentrator",
        "Quelle",
        "Ergebnis",
        "Grund",
    ]

    def rows(db: Session) -> Iterator[Sequence[Any]]:
        for event in db.scalars(
            query.order_by(AuthEvent.id.desc()).execution_options(yield_per=500)
        ):
            yield (
                event.at,
                event.username,
                event.bsnr,
                loglabels.CHANNEL_LABEL.get(event.channel, event.channel),
                event.client,
                event.concentrator,
                event.source_ip,
                loglabels.OUTCOME_LABEL.get(event.outcome, event.outcome),
                loglabels.auth_reason_label(event.reason),
            )

    return csv_download("anmeldeprotokoll.csv", header, rows)
