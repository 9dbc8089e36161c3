"""Staff see sessions of accounts that may not be on the VPN (a concentrator that
re-admitted a session from before a lock): on the live sessions page and the dashboard."""

from __future__ import annotations

import re

from flask import Flask

from flexnet.accounts import users, vpn
from flexnet.clients import nas
from flexnet.db import utcnow
from flexnet.models import LockCause
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


def test_flagged_sessions_are_shown_on_the_sessions_page_and_counted(app: Flask) -> None:
    with state(app).database.session() as db:
        client = nas.add_nas(
            db,
            name="ocserv-1",
            address="192.0.2.1",
            secret="ein-langes-gemeinsames-Geheimnis-1",
            box=BOX,
            actor=STAFF,
            now=utcnow(),
        )
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
