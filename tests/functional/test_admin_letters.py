"""Letters and requests for every role: auditors read the mail runs and the requests (no
forms); a run's page lists its letters without a password; a reprint is a PDF download
and a password letter's reprint replaces the password; a request links to the dialog that
fulfils it; a typed confirmation never shows the expected value as its placeholder."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.accounts import servicerequests, users
from flexnet.audit import Actor
from flexnet.clients import nas
from flexnet.db import utcnow
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import Letter, LetterKind, RequestKind, StaffRole, User, UserKind
from flexnet.provisioning import issuance, mailruns
from flexnet.web import state
from tests.conftest import BOX
from tests.support.admin import add_staff, csrf, signed_in
from tests.support.seed import add_login

BSNR = "881234500"
ANNA = Actor.staff("anna")
USERS = [f"mfa{n:02d}" for n in range(60)]


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    settings = state(application).settings
    today = utcnow().astimezone(BERLIN).date()
    with state(application).database.session() as db:
        add_staff(db, "anna", StaffRole.ADMIN)
        add_staff(db, "carla", StaffRole.AUDITOR)
        add_login(db, BOX, bsnr=BSNR, username="emuster", serial="9000001")
        issuance.reissue_password(db, username="emuster", at_once=True, actor=ANNA, now=utcnow())
        produced = mailruns.produce_run(
            db,
            today=today,
            out=io.BytesIO(),
            templates=mailruns.templates_for(settings),
            settings=settings,
            actor=ANNA,
            now=utcnow(),
        )
        assert produced is not None
        nas.add_nas(
            db,
            name="asa-1",
            address="192.0.2.1",
            secret="ein-langes-gemeinsames-Geheimnis-1",
            box=BOX,
            actor=ANNA,
            now=utcnow(),
        )
    with state(application).database.session() as db:
        for username in USERS:  # more letters due than one page shows
            users.create_user(
                db, username=username, bsnr=BSNR, kind=UserKind.STAFF, actor=ANNA, now=utcnow()
            )
            issuance.reissue_password(db, username=username, at_once=True, actor=ANNA, now=utcnow())
        servicerequests.file_request(
            db,
            bsnr=BSNR,
            usernames="emuster",
            kind=RequestKind.UNLOCK,
            contact_person="Frau Muster",
            phone="0391 123456",
            message="Bitte entsperren",
            source_ip=None,
            now=utcnow(),
        )
    yield application
    state(application).database.dispose()


def test_an_auditor_reads_mail_runs_and_requests_without_their_forms(app: Flask) -> None:
    auditor = signed_in(app, "carla")

    letters = auditor.get("/admin/letters")
    run = auditor.get("/admin/letters/runs/1")
    queue = auditor.get("/admin/requests")
    one = auditor.get("/admin/requests/1")

    assert [r.status_code for r in (letters, run, queue, one)] == [200] * 4
    for response in (letters, run, one):
        page = response.get_data(as_text=True)
        assert '<form method="post"' not in page.split("</header>", 1)[1]
    assert auditor.post("/admin/letters/run", data={}).status_code in (400, 403)
    assert auditor.get("/admin/letters/1/reprint").status_code == 403


def test_the_due_letters_are_paged(app: Flask) -> None:
    admin = signed_in(app, "anna")

    first = admin.get("/admin/letters").get_data(as_text=True)
    second = admin.get("/admin/letters?due=2").get_data(as_text=True)

    assert "Heute fällig (60)" in first
    due = first[first.index("Heute fällig") : first.index("Zurückgehalten")]
    assert len(re.findall(r"<tr><td>FN-", due)) == 50
    assert "Seite 1 von 2" in due
    due2 = second[second.index("Heute fällig") : second.index("Zurückgehalten")]
    assert len(re.findall(r"<tr><td>FN-", due2)) == 10


def test_a_run_s_page_lists_its_letters_and_a_reprint_replaces_the_password(app: Flask) -> None:
    admin = signed_in(app, "anna")
    with state(app).database.reader() as db:
        letter = db.scalars(select(Letter).where(Letter.run_id == 1)).one()
        before = db.scalar(select(User.password_hash).where(User.username == "emuster"))
    reference = mailruns.reference(letter)

    run = admin.get("/admin/letters/runs/1").get_data(as_text=True)
    dialog = admin.get(f"/admin/letters/{letter.id}/reprint").get_data(as_text=True)
    pdf = admin.post(
        f"/admin/letters/{letter.id}/reprint",
        data={"csrf_token": csrf(admin, f"/admin/letters/{letter.id}/reprint")},
    )

    assert reference in run and "emuster" in run and "Kennwort:" not in run
    assert f"/admin/letters/{letter.id}/reprint" in run
    assert "das bisherige gilt danach nicht mehr" in dialog
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.headers["Cache-Control"] == "no-store"
    with state(app).database.reader() as db:
        assert db.scalar(select(User.password_hash).where(User.username == "emuster")) != before
        assert letter.kind is LetterKind.NEW_PASSWORD


def test_an_unlock_request_links_to_the_unlock_dialog_of_the_user_it_names(app: Flask) -> None:
    admin = signed_in(app, "anna")

    page = admin.get("/admin/requests/1").get_data(as_text=True)

    assert 'href="/admin/users/emuster/unlock"' in page
    assert "Entsperren-Dialog für emuster" in page


def test_typed_confirmations_do_not_show_the_expected_value(app: Flask) -> None:
    admin = signed_in(app, "anna")

    pages = {
        path: admin.get(path).get_data(as_text=True)
        for path in ("/admin/letters", "/admin/staff", "/admin/clients")
    }

    placeholders = {
        path: re.findall(r'placeholder="([^"]*)"', page) for path, page in pages.items()
    }
    assert "1" not in placeholders["/admin/letters"]
    assert not [p for p in placeholders["/admin/staff"] if "anna" in p or "carla" in p]
    assert placeholders["/admin/clients"] and "asa-1" not in placeholders["/admin/clients"]
