"""/api/v1 for data that changes over the years: list filters (status, kind, terms
version, lock date range), a member's end of activity, terms versions published and
accepted. Several practices, as the association's systems see them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.accounts import practices, users
from flexnet.clients import apiclients
from flexnet.db import utcnow
from flexnet.lifecycle import locks
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import LockCause, PracticeKind, StaffRole, TermsChannel, UserKind
from flexnet.web import state
from tests.conftest import STAFF
from tests.support.seed import lanr

TODAY = datetime.now(BERLIN).date()


def practice(db: object, bsnr: str, name: str, *, kind: PracticeKind = PracticeKind.MEMBER,
             terms: str | None = "1.0") -> None:  # fmt: skip
    practices.add_practice(
        db,  # type: ignore[arg-type]
        bsnr=bsnr, name=name, street="Breiter Weg 1", zip_code="39104", city="Magdeburg",
        kind=kind, actor=STAFF, now=utcnow(),
    )  # fmt: skip
    if terms:
        practices.accept_terms(
            db,  # type: ignore[arg-type]
            bsnr=bsnr, version=terms, channel=TermsChannel.PAPER,
            accepted_on=TODAY - timedelta(days=30), actor=STAFF, now=utcnow(),
        )  # fmt: skip


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """Six practices: active, pending, locked, a third party, one ending within the range
    asked for, one whose only member ends later."""
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    application = create_app()
    ended = TODAY - timedelta(days=400)  # the § 10.3 lock lies a few months ahead
    with state(application).database.session() as db:
        practice(db, "881000001", "Aktiv")
        practice(db, "881000002", "Wartend", terms=None)
        practice(db, "881000003", "Gesperrt")
        practice(db, "881000004", "Dritter", kind=PracticeKind.THIRD_PARTY)
        practice(db, "881000005", "Endet")
        practice(db, "881000006", "Mitglied endet")
        db.flush()
        locks.lock_practice(
            db, bsnr="881000003", cause=LockCause.MANUAL, reason="Verstoß", actor=STAFF,
            now=utcnow(),
        )  # fmt: skip
        practices.end_activity(db, bsnr="881000005", ended_on=ended, actor=STAFF, now=utcnow())
        users.create_user(
            db, username="mitglied", bsnr="881000006", kind=UserKind.MEMBER, name="Dr. M",
            lanr=lanr(6), actor=STAFF, now=utcnow(),
        )  # fmt: skip
        users.create_user(
            db, username="mfa", bsnr="881000006", kind=UserKind.STAFF, actor=STAFF, now=utcnow()
        )
        _, key = apiclients.add_client(
            db, name="portal", require_otp=False, role=StaffRole.HELPDESK, actor=STAFF, now=utcnow()
        )
    application.config["KEY"] = key
    yield application
    state(application).database.dispose()


def call(app: Flask, method: str, path: str, body: object = None) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {app.config['KEY']}"}
    response = app.test_client().open(f"/api/v1{path}", method=method, json=body, headers=headers)
    return response.status_code, response.get_json() or {}


def bsnrs(app: Flask, query: str) -> list[str]:
    status, body = call(app, "GET", f"/practices?{query}")
    assert status == 200, body
    return [item["bsnr"] for item in body["items"]]  # type: ignore[union-attr, index]


def test_practice_lists_filter_by_status_kind_terms_and_lock_date(app: Flask) -> None:
    lock_day = activity_lock_day()

    assert bsnrs(app, "status=pending") == ["881000002"]
    assert bsnrs(app, "status=locked") == ["881000003"]
    assert bsnrs(app, "kind=third_party") == ["881000004"]
    assert bsnrs(app, "terms_version=1.0&kind=member&status=active") == [
        "881000001",
        "881000005",
        "881000006",
    ]
    assert bsnrs(app, "terms_version=none") == ["881000002"]
    assert bsnrs(app, f"lock_from={lock_day}&lock_to={lock_day}") == ["881000005"]
    assert bsnrs(app, f"lock_to={lock_day - timedelta(days=1)}") == []
    bad = call(app, "GET", "/practices?status=irgendwie")
    assert bad[0] == 400 and "status" in str(bad[1]["detail"])
    assert call(app, "GET", "/practices?lock_from=2026-13-01")[0] == 400


def activity_lock_day() -> date:
    from flexnet.lifecycle.rules import automatic_lock_instant

    return automatic_lock_instant(TODAY - timedelta(days=400)).date()


def test_a_member_leaves_and_the_staff_follow_through_the_api(app: Flask) -> None:
    ended = (TODAY - timedelta(days=400)).isoformat()

    refused = call(app, "POST", "/users/mfa/activity-end", {"ended_on": ended})
    done = call(app, "POST", "/users/mitglied/activity-end", {"ended_on": ended})
    unreasoned = call(app, "POST", "/users/mitglied/activity-end", {"clear": True})
    listed = call(app, "GET", f"/users?bsnr=881000006&lock_from={activity_lock_day()}")
    cleared = call(
        app, "POST", "/users/mitglied/activity-end", {"clear": True, "reason": "irrtümlich"}
    )

    assert refused[0] == 400 and "kein Mitglied" in str(refused[1]["detail"])
    assert done[0] == 200 and done[1]["activity_ended_on"] == ended
    assert unreasoned[0] == 400 and "Grund" in str(unreasoned[1]["detail"])
    assert [u["username"] for u in listed[1]["items"]] == ["mfa", "mitglied"]  # type: ignore[index, union-attr]
    assert cleared[0] == 200 and cleared[1]["activity_ended_on"] is None
    assert bsnrs(app, f"lock_from={activity_lock_day()}") == ["881000005"]


def test_terms_published_listed_and_accepted_through_the_api(app: Flask) -> None:
    effective, deadline = TODAY + timedelta(days=30), TODAY + timedelta(days=90)

    published = call(
        app,
        "POST",
        "/terms",
        {
            "version": "2.0",
            "effective_on": effective.isoformat(),
            "accept_by": deadline.isoformat(),
        },
    )
    accepted = call(
        app,
        "POST",
        "/practices/881000001/terms",
        {"version": "2.0", "accepted_on": TODAY.isoformat()},
    )
    listed = call(app, "GET", "/terms")

    assert published[0] == 201 and published[1]["version"] == "2.0"
    assert accepted[0] == 201 and accepted[1]["terms_due_version"] is None
    assert listed[1]["versions"] == [
        {
            "version": "2.0",
            "effective_on": effective.isoformat(),
            "accept_by": deadline.isoformat(),
            "published_by": "portal",
            "accepted_by": 1,
        }
    ]
    assert listed[1]["pending"] == 4  # the other practices with an acceptance
    assert bsnrs(app, "terms_version=2.0") == ["881000001"]
    pending = call(app, "GET", "/practices?terms_due=true")
    assert [item["bsnr"] for item in pending[1]["items"]] == [  # type: ignore[index, union-attr]
        "881000003",
        "881000004",
        "881000005",
        "881000006",
    ]
