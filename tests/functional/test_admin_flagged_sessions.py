"""Staff see sessions of accounts that may not be on the VPN (a concentrator that
re-admitted a session from before a lock): on the live sessions page, the dashboard, and
the user's and the practice's page."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy.orm import Session

from flexnet.accounts import users, vpn
from flexnet.clients import nas
from flexnet.db import utcnow
from flexnet.models import LockCause, NasClient
from flexnet.web import state
from tests.conftest import BOX, STAFF
from tests.functional import test_admin_workflows
from tests.support.admin import signed_in

app = test_admin_workflows.app  # the served app with staff and the practice 881234500


def start(username: str, session_id: str) -> vpn.AccountingRecord:
    return vpn.AccountingRecord(
        status="Start",
        session_id=session_id,
        username=username,
        framed_ip=None,
        calling_station=None,
        input_octets=0,
        output_octets=0,
        terminate_cause=None,
        nas_address="192.0.2.1",
    )


def concentrator(db: Session, name: str) -> NasClient:
    return nas.add_nas(
        db,
        name=name,
        address="192.0.2.1",
        secret=f"ein-langes-gemeinsames-Geheimnis-{name}",
        box=BOX,
        actor=STAFF,
        now=utcnow(),
    )


def test_flagged_sessions_are_shown_on_the_sessions_page_and_counted(app: Flask) -> None:
    with state(app).database.session() as db:
        client = concentrator(db, "ocserv-1")
        user = users.get_user(db, "emuster")
        users.lock_one(
            db, user=user, cause=LockCause.MANUAL, reason="Test", actor=STAFF, now=utcnow()
        )
        for username, session_id in (("emuster", "c-1"), ("emuster", "c-2"), ("fremd", "c-3")):
            vpn.record_accounting(
                db, nas_id=client.id, record=start(username, session_id), now=utcnow()
            )
    helpdesk = signed_in(app, "bernd")

    listed = helpdesk.get("/admin/sessions").get_data(as_text=True)
    dashboard = helpdesk.get("/admin/").get_data(as_text=True)

    assert listed.count("Zugang gesperrt") == 2
    assert listed.count("Benutzer in flexnet unbekannt") == 1
    flagged = re.search(
        r"VPN-Sitzungen ohne Berechtigung</th><td[^>]*><a [^>]*>(\d+)</a>", dashboard
    )
    assert flagged is not None and flagged.group(1) == "3"


def test_the_users_and_the_practices_page_say_why_a_session_may_not_be_there(
    app: Flask,
) -> None:
    with state(app).database.session() as db:
        client = concentrator(db, "ocserv-2")
        vpn.record_accounting(db, nas_id=client.id, record=start("emuster", "c-1"), now=utcnow())
        user = users.get_user(db, "emuster")
        users.lock_one(
            db, user=user, cause=LockCause.MANUAL, reason="Test", actor=STAFF, now=utcnow()
        )
        vpn.record_accounting(db, nas_id=client.id, record=start("emuster", "c-2"), now=utcnow())
    helpdesk = signed_in(app, "bernd")

    user_page = helpdesk.get("/admin/users/emuster").get_data(as_text=True)
    practice_page = helpdesk.get("/admin/practices/881234500").get_data(as_text=True)

    for page in (user_page, practice_page):
        sessions = page[page.index("VPN-Sitzungen</h2>") :]
        lines = re.findall(r"<li>([^<]*ocserv-2[^<]*)</li>", sessions)
        # The lock cut the session from before it; the one a concentrator let in after
        # it is flagged as well as cut.
        assert sorted(line.split(" - ", 1)[1] for line in lines) == [
            "aktiv, Trennung: angefordert",
            "aktiv, ohne Berechtigung: Zugang gesperrt, Trennung: angefordert",
        ]
