"""REST API /api/v1: keys and roles per client, problem details, pagination, and the
workflows other systems use (a practice from the member portal with its terms, users,
locks)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.accounts import practices, servicerequests
from flexnet.accounts.servicerequests import TooManyRequests
from flexnet.clients import apiclients
from flexnet.db import utcnow
from flexnet.errors import (
    ConfigError,
    ConflictError,
    FlexnetError,
    NotFoundError,
    PreconditionError,
    ValidationError,
)
from flexnet.models import (
    AuditEntry,
    Letter,
    LetterKind,
    LetterStatus,
    MailRun,
    MailRunStatus,
    RequestKind,
    StaffRole,
)
from flexnet.provisioning import mailruns
from flexnet.web import state
from flexnet.web.api_resources import READ, client_with
from tests.conftest import BOX, STAFF
from tests.support.seed import add_login

BSNR = "881234500"


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    application = create_app()
    keys = {}
    with state(application).database.session() as db:
        add_login(db, BOX, bsnr=BSNR, username="emuster", password="Sommer-Regen-2026!")
        for name, role in (("portal", StaffRole.HELPDESK), ("revision", StaffRole.AUDITOR)):
            _, keys[name] = apiclients.add_client(
                db, name=name, require_otp=False, role=role, actor=STAFF, now=utcnow()
            )
        _, keys["login-only"] = apiclients.add_client(
            db, name="login-only", require_otp=False, actor=STAFF, now=utcnow()
        )
    application.config["KEYS"] = keys
    yield application
    state(application).database.dispose()


def call(
    app: Flask, client: str | None, method: str, path: str, body: object = None
) -> tuple[int, dict[str, object], dict[str, str]]:
    headers = {"Authorization": f"Bearer {app.config['KEYS'][client]}"} if client else {}
    response = app.test_client().open(f"/api/v1{path}", method=method, json=body, headers=headers)
    return response.status_code, response.get_json() or {}, dict(response.headers)


def test_keys_and_roles_decide_who_may_do_what(app: Flask) -> None:
    missing = call(app, None, "GET", "/practices")
    login_only = call(app, "login-only", "GET", "/practices")
    reader = call(app, "revision", "GET", f"/practices/{BSNR}")
    reader_writes = call(app, "revision", "POST", "/locks", {})

    assert missing[0] == 401 and missing[2]["Content-Type"] == "application/problem+json"
    assert login_only[0] == 403
    assert reader[0] == 200 and reader[1]["users"] == ["emuster"]
    assert (
        reader_writes[0] == 403 and reader_writes[1]["title"] == "Dieser API-Client darf das nicht"
    )


def test_a_practice_from_the_portal_with_terms_and_a_user(app: Flask) -> None:
    created = call(
        app,
        "portal",
        "POST",
        "/practices",
        {
            "bsnr": "881234577",
            "name": "Praxis Neu",
            "street": "Weg 1",
            "zip_code": "39104",
            "city": "Halle",
        },
    )
    duplicate = call(
        app,
        "portal",
        "POST",
        "/practices",
        {
            "bsnr": "881234577",
            "name": "Praxis Neu",
            "street": "Weg 1",
            "zip_code": "39104",
            "city": "Halle",
        },
    )
    terms = call(
        app,
        "portal",
        "POST",
        "/practices/881234577/terms",
        {"version": "1.0", "accepted_on": utcnow().date().isoformat()},
    )
    user = call(
        app, "portal", "POST", "/practices/881234577/users", {"username": "neu", "kind": "staff"}
    )
    wrong = call(
        app, "portal", "POST", "/practices/881234577/users", {"username": "x", "kind": "boss"}
    )

    assert created[0] == 201 and created[1]["status"] == "pending"
    assert duplicate[0] == 409 and "bereits angelegt" in str(duplicate[1]["detail"])
    assert terms[0] == 201 and terms[1]["status"] == "active" and terms[1]["terms_version"] == "1.0"
    assert user[0] == 201 and user[1]["username"] == "neu"
    assert wrong[0] == 400 and "kind" in str(wrong[1]["detail"])
    with state(app).database.reader() as db:
        letter = db.scalars(select(Letter).where(Letter.kind == LetterKind.CREDENTIALS)).one()
        assert letter.user is not None and letter.user.username == "neu"


def test_a_terminated_practice_gets_no_new_user(app: Flask) -> None:
    terminated = call(
        app,
        "portal",
        "POST",
        f"/practices/{BSNR}/termination",
        {"by": "extraordinary", "notice_date": "2026-11-20", "reason": "Weitergabe an Dritte"},
    )

    status, body, headers = call(
        app, "portal", "POST", f"/practices/{BSNR}/users", {"username": "neu", "kind": "staff"}
    )

    assert terminated[0] == 200
    assert status == 409 and headers["Content-Type"] == "application/problem+json"
    assert body["title"] == "Konflikt mit dem Stand"
    assert str(body["detail"]).startswith(
        f"BSNR {BSNR} ist gesperrt (außerordentliche Kündigung (§ 10.2): Weitergabe an Dritte)"
    )
    assert call(app, "portal", "GET", "/users/neu")[0] == 404
    with state(app).database.reader() as db:
        assert db.scalars(select(Letter).where(Letter.kind == LetterKind.CREDENTIALS)).all() == []


def test_locks_and_bad_bodies(app: Flask) -> None:
    lock = {"what": "user", "id": "emuster", "cause": "misuse", "reason": "Meldung Portal"}

    first = call(app, "portal", "POST", "/locks", lock)
    again = call(app, "portal", "POST", "/locks", lock)
    unknown_field = call(app, "portal", "POST", "/locks", {**lock, "force": True})
    not_json = app.test_client().post(
        "/api/v1/locks",
        data="what=user",
        headers={"Authorization": f"Bearer {app.config['KEYS']['portal']}"},
    )
    shown = call(app, "revision", "GET", "/users/emuster")

    assert first == (200, {"locked": ["emuster"]}, first[2])
    assert again[1] == {"locked": []}
    assert unknown_field[0] == 400 and "force" in str(unknown_field[1]["detail"])
    assert not_json.status_code == 400
    assert shown[1]["status"] == "locked" and shown[1]["status_reason"] == "Meldung Portal"


def test_keys_and_practices_are_locked_by_their_names(app: Flask) -> None:
    other = "881234600"
    with state(app).database.session() as db:
        for bsnr, serial in ((BSNR, "9000101"), (other, "9000102")):
            add_login(db, BOX, bsnr=bsnr, username=f"u{serial}", password=None, serial=serial)
    why = {"cause": "misuse", "reason": "Meldung Portal"}

    key = call(app, "portal", "POST", "/locks", {"what": "key", "id": "9000101", **why})
    lost = call(
        app, "portal", "POST", "/locks", {"what": "key", "id": "9000102"} | why | {"cause": "loss"}
    )
    practice = call(app, "portal", "POST", "/locks", {"what": "practice", "id": other, **why})
    malformed = call(app, "portal", "POST", "/locks", {"what": "practice", "id": "12", **why})
    unknown = call(app, "portal", "POST", "/locks", {"what": "practice", "id": "889999900", **why})
    nothing = call(app, "portal", "POST", "/locks", {"what": "nas", "id": other, **why})

    assert key[:2] == (200, {"locked": ["9000101"], "status": "locked"})
    assert lost[:2] == (200, {"locked": ["9000102"], "status": "lost"})
    assert practice[:2] == (200, {"locked": [other]})
    assert malformed[0] == 400 and "BSNR" in str(malformed[1]["detail"])
    assert unknown[0] == 404 and nothing[0] == 400
    assert call(app, "revision", "GET", f"/practices/{other}")[1]["status"] == "locked"
    assert call(app, "revision", "GET", f"/practices/{BSNR}")[1]["status"] == "active"


def test_pages_carry_totals_and_links(app: Flask) -> None:
    for n in range(3):
        call(
            app,
            "portal",
            "POST",
            "/practices",
            {
                "bsnr": f"88123460{n}",
                "name": f"P{n}",
                "street": "W",
                "zip_code": "39104",
                "city": "H",
            },
        )

    first = call(app, "revision", "GET", "/practices?per_page=2")
    last = call(app, "revision", "GET", "/practices?page=2&per_page=2")
    bad = call(app, "revision", "GET", "/practices?per_page=1000")

    assert first[1]["total"] == 4 and len(first[1]["items"]) == 2  # type: ignore[arg-type]
    assert 'rel="next"' in first[2]["Link"]
    assert len(last[1]["items"]) == 2 and 'rel="prev"' in last[2]["Link"]  # type: ignore[arg-type]
    assert bad[0] == 400


def test_unknown_paths_are_problems_and_the_document_is_public(app: Flask) -> None:
    missing = app.test_client().get("/api/v1/nothing")
    document = app.test_client().get("/api/v1/openapi.json").get_json()

    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    assert document["openapi"].startswith("3.1") and "/practices/{bsnr}/terms" in document["paths"]


def test_a_regenerated_key_replaces_the_old_one_at_once(app: Flask) -> None:
    old = app.config["KEYS"]["portal"]
    with state(app).database.session() as db:
        new = apiclients.regenerate_key(db, name="portal", actor=STAFF, now=utcnow())
    app.config["KEYS"]["portal"], app.config["KEYS"]["old"] = new, old

    assert call(app, "old", "GET", "/practices")[0] == 401
    assert call(app, "portal", "GET", "/practices")[0] == 200


def test_a_disabled_client_is_refused_until_enabled_again(app: Flask) -> None:
    def switch(active: bool) -> None:
        with state(app).database.session() as db:
            apiclients.set_active(db, name="portal", active=active, actor=STAFF, now=utcnow())

    switch(False)
    refused = call(app, "portal", "GET", "/practices")
    switch(True)

    assert refused[0] == 401 and refused[2]["Content-Type"] == "application/problem+json"
    assert refused[1]["title"] == call(app, None, "GET", "/practices")[1]["title"]
    assert call(app, "portal", "GET", "/practices")[0] == 200


@pytest.mark.parametrize(
    ("error", "status", "title"),
    [
        (ValidationError("Feld fehlt"), 400, "Ungültige Anfrage"),
        (NotFoundError("Kein Benutzer x"), 404, "Nicht gefunden"),
        (ConflictError("bereits gesperrt"), 409, "Konflikt mit dem Stand"),
        (PreconditionError("Bedingungen nicht angenommen"), 409, "Voraussetzung nicht erfüllt"),
        (TooManyRequests("Zu viele Anfragen von dieser Adresse"), 429, "Zu viele Anfragen"),
        (ConfigError("FLEXNET_LETTERS_DIR", "fehlt"), 500, "Fehler in der Einrichtung"),
    ],
)
def test_a_domain_error_is_answered_with_the_status_its_kind_carries(
    app: Flask, error: FlexnetError, status: int, title: str
) -> None:
    """The same kind gets the same answer wherever it is met: in an API view (problem
    JSON) and in any page (the German error page)."""

    def fails() -> str:
        raise error

    app.add_url_rule("/api/v1/probe", "probe_api", client_with(READ)(fails))
    app.add_url_rule("/probe", "probe_page", fails)

    api = call(app, "revision", "GET", "/probe")
    page = app.test_client().get("/probe")

    assert api[0] == status and api[2]["Content-Type"] == "application/problem+json"
    assert api[1] == {"type": "about:blank", "title": title, "status": status, "detail": str(error)}
    assert page.status_code == status and page.mimetype == "text/html"
    assert title in page.get_data(as_text=True) and str(error) in page.get_data(as_text=True)


def test_patch_edits_a_practice_and_a_user_with_the_old_values_in_the_audit(app: Flask) -> None:
    address = {"street": "Breiter Weg 10", "zip_code": "06108", "city": "Halle (Saale)"}
    bad_phone = call(app, "portal", "PATCH", f"/practices/{BSNR}", {**address, "phone": "ab"})
    nothing = call(app, "portal", "PATCH", f"/practices/{BSNR}", {})
    moved = call(app, "portal", "PATCH", f"/practices/{BSNR}", {**address, "phone": "0345 123"})
    renamed = call(app, "portal", "PATCH", "/users/emuster", {"name": "Erika Muster-Lang"})
    reader = call(app, "revision", "PATCH", "/users/emuster", {"name": "X"})

    assert bad_phone[0] == 400 and "Telefonnummer" in str(bad_phone[1]["detail"])
    assert nothing[0] == 400 and "Keine Änderung" in str(nothing[1]["detail"])
    assert moved[0] == 200 and moved[1]["phone"] == "0345 123"
    assert moved[1]["address"] == {"extra": None, **address}
    assert renamed[0] == 200 and renamed[1]["name"] == "Erika Muster-Lang"
    assert reader[0] == 403
    with state(app).database.reader() as db:
        entries = db.execute(
            select(AuditEntry.actor, AuditEntry.data)
            .where(AuditEntry.tag.in_(("practice:record:edit", "account:user:edit")))
            .order_by(AuditEntry.id)
        ).all()
    assert [actor for actor, _ in entries] == ["portal", "portal"]
    assert '"street":{"new":"Breiter Weg 10","old":"Weg 1"}' in entries[0][1]


def test_the_request_queue_names_the_stored_number_to_call_back(app: Flask) -> None:
    call(app, "portal", "PATCH", f"/practices/{BSNR}", {"phone": "0391 555 12 34"})
    with state(app).database.session() as db:
        for bsnr in (BSNR, "999999999"):
            servicerequests.file_request(
                db,
                bsnr=bsnr,
                usernames="emuster",
                kind=RequestKind.NEW_PASSWORD,
                contact_person="Jemand",
                phone="0171 666 66 66",
                message="",
                source_ip="192.0.2.1",
                now=utcnow(),
            )

    status, body, _ = call(app, "portal", "GET", "/requests")

    assert status == 200
    items = {item["bsnr"]: item for item in body["items"]}  # type: ignore[union-attr]
    assert items[BSNR]["practice_phone"] == "0391 555 12 34"
    assert items["999999999"]["practice_phone"] is None


def test_a_returned_letter_through_the_api(app: Flask) -> None:
    with state(app).database.session() as db:
        practice = practices.get_practice(db, BSNR)
        letter = mailruns.queue(
            db, kind=LetterKind.LOCK_NOTICE, practice=practice, actor=STAFF, now=utcnow()
        )
        run = MailRun(
            status=MailRunStatus.DISPATCHED,
            run_date=date(2026, 11, 2),
            produced_at=utcnow(),
            produced_by="test",
            dispatched_on=date(2026, 11, 2),
        )
        letter.run, letter.status = run, LetterStatus.DISPATCHED
        reference = mailruns.reference(letter)

    back = call(
        app, "portal", "POST", f"/letters/{reference}/returned", {"returned_on": "2026-11-05"}
    )
    again = call(app, "portal", "POST", f"/letters/{reference}/returned", {})
    unknown = call(app, "portal", "POST", "/letters/FN-999999/returned", {})

    assert back[0] == 200 and back[1]["letter"] == reference and back[1]["resend"]
    assert again[0] == 409 and unknown[0] == 404


def test_a_takeover_through_the_api(app: Flask) -> None:
    body = {
        "on": "2026-11-01",
        "new_name": "Praxis Dr. Neu",
        "new_bsnr": "889999900",
        "terms_version": "2.0",
        "terms_channel": "portal",
        "accepted_on": "2026-10-28",
        "members": [{"username": "lneu", "lanr": "234567701", "name": "Dr. Lena Neu"}],
        "staff": [{"username": "nneu", "name": "Nina Neu"}],
    }

    bad = call(app, "portal", "POST", f"/practices/{BSNR}/takeover", {**body, "members": [1]})
    done = call(app, "portal", "POST", f"/practices/{BSNR}/takeover", body)
    old = call(app, "revision", "GET", f"/practices/{BSNR}")
    again = call(app, "portal", "POST", f"/practices/{BSNR}/takeover", body)

    assert bad[0] == 400
    assert done[0] == 201, done[1]
    assert done[1]["practice"]["bsnr"] == "889999900"  # type: ignore[index]
    assert done[1]["practice"]["users"] == ["lneu", "nneu"]  # type: ignore[index]
    assert done[1]["ended"] == ["emuster"]
    assert old[1]["status"] == "locked" and "§ 2.3" in str(old[1]["status_reason"])
    assert again[0] == 409  # the old record is locked: taken over once
