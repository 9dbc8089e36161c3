"""Data that changes, in the admin UI: a practice's name, address, phone and contact
person; a user's name and LANR; the end of activity of one member and of the practice;
a terms version accepted. The same services as the CLI; the audit names the staff member."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.accounts import practices, users
from flexnet.audit import Actor, AuditTag
from flexnet.authn import passwords
from flexnet.db import utcnow
from flexnet.lifecycle import terms
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    AuditEntry,
    Letter,
    Practice,
    StaffRole,
    TermsChannel,
    TokenStatus,
    User,
    UserKind,
)
from flexnet.otp import stock
from flexnet.provisioning import issuance, mailruns
from flexnet.web import state
from tests.conftest import BOX
from tests.support.admin import add_staff, csrf, signed_in
from tests.support.seed import add_login

BSNR = "881234500"
ANNA = Actor.staff("anna")


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    with state(application).database.session() as db:
        add_staff(db, "bernd", StaffRole.HELPDESK)
        add_staff(db, "carla", StaffRole.AUDITOR)
        add_login(db, BOX, bsnr=BSNR, username="emuster", serial="9000001")
        users.create_user(
            db,
            username="drweiss",
            bsnr=BSNR,
            kind=UserKind.MEMBER,
            name="Dr. Anna Weiß",
            lanr="123456601",
            actor=ANNA,
            now=utcnow(),
        )
    yield application
    state(application).database.dispose()


def post(client: FlaskClient, path: str, **fields: str) -> tuple[int, str]:
    response = client.post(path, data={"csrf_token": csrf(client, path), **fields})
    return response.status_code, response.get_data(as_text=True)


def follow(client: FlaskClient, path: str, **fields: str) -> str:
    response = client.post(
        path, data={"csrf_token": csrf(client, path), **fields}, follow_redirects=True
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def test_the_edit_form_starts_with_the_current_values_and_changes_only_what_was_typed(
    app: Flask,
) -> None:
    helpdesk = signed_in(app, "bernd")
    path = f"/admin/practices/{BSNR}/edit"
    form = helpdesk.get(path).get_data(as_text=True)
    current = dict(re.findall(r'name="(\w+)"[^>]*type="text" value="([^"]*)"', form))

    page = follow(
        helpdesk,
        path,
        **{**current, "phone": "0391 627 87 00", "contact_person": "Frau Müller"},
    )

    assert "Telefon: – → 0391 627 87 00" in page
    assert "Ansprechpartner: – → Frau Müller" in page
    with state(app).database.reader() as db:
        practice = practices.get_practice(db, BSNR)
        assert (practice.phone, practice.contact_person) == ("0391 627 87 00", "Frau Müller")
        entry = db.scalars(
            select(AuditEntry).where(AuditEntry.tag == AuditTag.PRACTICE_EDIT.value)
        ).one()
        assert entry.actor == "bernd"
        assert set(json.loads(entry.data)["changes"]) == {"phone", "contact_person"}
    shown = helpdesk.get(f"/admin/practices/{BSNR}").get_data(as_text=True)
    assert "0391 627 87 00" in shown and "Frau Müller" in shown


def test_a_bad_phone_number_is_refused_in_german_and_the_input_kept(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    path = f"/admin/practices/{BSNR}/edit"
    form = helpdesk.get(path).get_data(as_text=True)
    current = dict(re.findall(r'name="(\w+)"[^>]*type="text" value="([^"]*)"', form))

    status, page = post(
        helpdesk, path, **{**current, "phone": "bitte anrufen", "city": "Wernigerode"}
    )

    assert status == 400
    assert "Telefon" in page and 'value="bitte anrufen"' in page and 'value="Wernigerode"' in page
    with state(app).database.reader() as db:
        assert practices.get_practice(db, BSNR).city != "Wernigerode"


def test_a_member_s_end_of_activity_dates_his_lock_and_a_correction_needs_a_reason(
    app: Flask,
) -> None:
    helpdesk = signed_in(app, "bernd")
    path = "/admin/users/drweiss/end"
    ended = utcnow().astimezone(BERLIN).date() - timedelta(days=10)

    first = follow(helpdesk, path, ended_on=f"{ended}")
    status, again = post(helpdesk, path, ended_on=f"{ended - timedelta(days=5)}")

    assert f"Ende der Tätigkeit für drweiss: {ended:%d.%m.%Y}; automatische Sperre ab" in first
    assert status == 400 and "bitte einen Grund angeben" in again
    with state(app).database.reader() as db:
        assert db.scalar(select(User.activity_ended_on).where(User.username == "drweiss")) == ended
    assert helpdesk.get("/admin/users/emuster/end").status_code == 404  # staff: no own end


def test_a_user_s_name_is_changed_and_a_wrong_lanr_refused(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    path = "/admin/users/drweiss/edit"

    page = follow(helpdesk, path, name="Dr. Anna Weiß-Schäfer", lanr="123456601")
    status, wrong = post(helpdesk, path, name="Dr. Anna Weiß-Schäfer", lanr="123456701")

    assert "Name: Dr. Anna Weiß → Dr. Anna Weiß-Schäfer" in page
    assert status == 400 and "LANR" in wrong


def test_the_practice_s_end_and_a_new_terms_version_accepted(app: Flask) -> None:
    today = utcnow().astimezone(BERLIN).date()
    with state(app).database.session() as db:
        terms.publish(
            db,
            version="2.0",
            effective_on=today,
            accept_by=today + timedelta(days=30),
            actor=ANNA,
            now=utcnow(),
        )
    helpdesk = signed_in(app, "bernd")

    ended = follow(helpdesk, f"/admin/practices/{BSNR}/end", ended_on=f"{today}")
    refused, page = post(helpdesk, f"/admin/practices/{BSNR}/terms", accepted_on=f"{today}")
    accepted = follow(
        helpdesk,
        f"/admin/practices/{BSNR}/terms",
        version="2.0",
        channel="paper",
        accepted_on=f"{today}",
    )

    assert f"Ende der Tätigkeit: {today:%d.%m.%Y}; Sperre nach Daten ab" in ended
    assert refused == 400
    assert "Bitte die angenommene Version wählen." in page
    assert "Bitte wählen, wie angenommen wurde." in page
    assert f"Nutzungsbedingungen 2.0 am {today:%d.%m.%Y} angenommen." in accepted
    with state(app).database.reader() as db:
        practice = db.scalars(select(Practice)).one()
        assert practice.terms_acceptance is not None
        assert practice.terms_acceptance.version == "2.0"


def test_an_auditor_reads_but_may_not_change(app: Flask) -> None:
    auditor = signed_in(app, "carla")

    for path in (f"/admin/practices/{BSNR}/edit", "/admin/users/drweiss/end"):
        assert auditor.get(path).status_code == 403
    page = auditor.get(f"/admin/practices/{BSNR}").get_data(as_text=True)
    assert "Angaben ändern" not in page


def _publish(app: Flask, version: str) -> None:
    today = utcnow().astimezone(BERLIN).date()
    with state(app).database.session() as db:
        terms.publish(
            db,
            version=version,
            effective_on=today,
            accept_by=today + timedelta(days=30),
            actor=ANNA,
            now=utcnow(),
        )


def test_a_takeover_ends_the_old_owner_s_access_and_creates_the_new_owner_s_users(
    app: Flask,
) -> None:
    _publish(app, "2.0")
    helpdesk = signed_in(app, "bernd")
    path = f"/admin/practices/{BSNR}/takeover"
    today = utcnow().astimezone(BERLIN).date()
    fields = {
        "on": f"{today}",
        "new_name": "Praxis Dr. Eva Neu",
        "members": "dr-neu; 234567701; Dr. Eva Neu",
        "staff": "mfa-neu; Petra Schön",
        "terms_version": "2.0",
        "terms_channel": "paper",
        "accepted_on": f"{today}",
    }

    wrong_line, bad = post(helpdesk, path, **{**fields, "staff": "nur-ein-wort", "confirm": BSNR})
    unconfirmed, _ = post(helpdesk, path, **{**fields, "confirm": "881234599"})
    page = follow(helpdesk, path, **{**fields, "confirm": BSNR})

    assert wrong_line == 400 and "Praxispersonal, Zeile 1: erwartet werden 2 Angaben" in bad
    assert 'value="Praxis Dr. Eva Neu"' in bad
    assert unconfirmed == 400
    assert f"Übernahme am {today:%d.%m.%Y}: BSNR {BSNR} – Praxis Dr. Eva Neu." in page
    assert "Zugänge des bisherigen Inhabers beendet: drweiss, emuster." in page
    with state(app).database.reader() as db:
        assert users.get_user(db, "dr-neu").practice.bsnr == BSNR
        assert users.get_user(db, "emuster").status.value == "locked"


def test_the_terms_page_lists_who_has_not_accepted_and_an_admin_publishes(app: Flask) -> None:
    with state(app).database.session() as db:
        add_staff(db, "anna", StaffRole.ADMIN)
        practices.accept_terms(
            db,
            bsnr=BSNR,
            version="1.0",
            channel=TermsChannel.PAPER,
            accepted_on=utcnow().astimezone(BERLIN).date(),
            actor=ANNA,
            now=utcnow(),
        )
    _publish(app, "1.0")
    admin = signed_in(app, "anna")
    helpdesk = signed_in(app, "bernd")
    today = utcnow().astimezone(BERLIN).date()

    refused = helpdesk.post("/admin/terms", data={"csrf_token": csrf(helpdesk, "/admin/terms")})
    page = follow(
        admin,
        "/admin/terms",
        version="2.0",
        effective_on=f"{today}",
        accept_by=f"{today + timedelta(days=30)}",
    )

    assert refused.status_code == 403
    assert "Nutzungsbedingungen 2.0 veröffentlicht" in page
    assert "1 Betriebsstätten haben sie noch nicht angenommen" in page
    assert "Betriebsstätten 1–1 von 1" in page and BSNR in page
    csv_text = admin.get("/admin/terms?format=csv").get_data().decode("utf-8-sig")
    assert csv_text.splitlines()[1].startswith(f"{BSNR};")


def test_a_returned_letter_is_queued_again_and_the_practice_s_letters_wait(app: Flask) -> None:
    settings = state(app).settings
    today = utcnow().astimezone(BERLIN).date()
    with state(app).database.session() as db:
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
        mailruns.confirm_dispatch(
            db, run_id=produced.run.id, dispatched_on=today, today=today, actor=ANNA, now=utcnow()
        )
        reference = mailruns.reference(db.scalars(select(Letter)).one())
    helpdesk = signed_in(app, "bernd")
    shown = helpdesk.get(f"/admin/practices/{BSNR}").get_data(as_text=True)
    assert f"/admin/letters/returned?letter={reference}" in shown

    wrong, message = post(
        helpdesk, "/admin/letters/returned", letter="123x", returned_on=f"{today}"
    )
    page = follow(helpdesk, "/admin/letters/returned", letter=reference, returned_on=f"{today}")

    assert wrong == 400 and "ist keine Briefnummer" in message
    assert f"Brief {reference} (" in page and "als unzustellbar erfasst" in page
    assert "Das Kennwort darin gilt nicht mehr (emuster)." in page
    with state(app).database.reader() as db:
        assert practices.get_practice(db, BSNR).undeliverable_since == today


def _in_stock(app: Flask, serial: str, public_id: str) -> None:
    with state(app).database.session() as db:
        stock.register_remote(db, serial=serial, public_id=public_id, actor=ANNA, now=utcnow())


def test_a_lost_key_is_replaced_with_its_fee_and_only_a_defective_one_may_overlap(
    app: Flask,
) -> None:
    _in_stock(app, "7000001", "cccccccccccb")
    helpdesk = signed_in(app, "bernd")
    path = f"/admin/practices/{BSNR}/replace"
    fields = {"why": "lost", "new_serial": "7000001", "confirm": BSNR}

    nothing, unchosen = post(helpdesk, path, new_serial="7000001", confirm=BSNR)
    overlap, refused = post(helpdesk, path, **fields, old_stops="on_first_use")
    page = follow(helpdesk, path, **fields, old_stops="at_once")

    assert nothing == 400
    assert "Bitte den Grund des Ersatzes wählen." in unchosen
    assert "Bitte wählen, ab wann der bisherige Yubikey nicht mehr gilt." in unchosen
    assert overlap == 400 and "Nur ein defekter Yubikey" in refused
    assert "Yubikey 7000001 ersetzt den bisherigen" in page
    assert "Kostenersatz 60,00 € erfasst." in page
    with state(app).database.reader() as db:
        assert stock.get_token(db, "9000001").status is TokenStatus.LOST
        assert stock.get_token(db, "7000001").status is TokenStatus.ASSIGNED


def test_a_new_password_goes_by_letter_and_the_old_one_ends_as_chosen(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    path = "/admin/users/emuster/reissue"

    unchosen, page = post(helpdesk, path)
    done = follow(helpdesk, path, old_stops="on_first_use")
    again, twice = post(helpdesk, path, old_stops="at_once")

    assert unchosen == 400 and "Bitte wählen, ab wann das bisherige Kennwort" in page
    assert re.search(r"Kennwortbrief FN-\d{6} vorgemerkt; das bisherige Kennwort endet bei", done)
    assert again == 409 and "bereits ein Kennwortbrief vorgemerkt" in twice


def test_users_of_the_previous_system_are_imported_all_or_nothing(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    path = "/admin/users/import"
    hashed = passwords.hash_password("Sommer-Regen-2026!")
    header = "username,bsnr,kind,name,lanr,password_hash\n"
    good = f'alt1,{BSNR},staff,Erika Alt,,"{hashed}"\nalt2,{BSNR},staff,Neue Kraft,,\n'
    bad = good + f"alt3,{BSNR},chef,,,\n"

    def send(text: str) -> tuple[int, str]:
        response = helpdesk.post(
            path,
            data={
                "csrf_token": csrf(helpdesk, path),
                "file": (io.BytesIO((header + text).encode()), "altsystem.csv"),
            },
            content_type="multipart/form-data",
            follow_redirects=True,
        )
        return response.status_code, response.get_data(as_text=True)

    refused, problems = send(bad)
    with state(app).database.reader() as db:
        assert db.scalar(select(User.id).where(User.username == "alt1")) is None
    done, page = send(good)

    assert refused == 400 and "Zeile 4" in problems
    assert done == 200, re.findall(r"class=\"(?:alert|error)\"[^>]*>([^<]*)<", page)
    assert "2 Benutzer angelegt; Kennwörter übernommen: 1" in page
    assert "alt1" in page  # the list of users with a taken-over password


def test_the_registry_is_tried_then_imported_in_the_browser_and_a_bad_file_changes_nothing(
    app: Flask,
) -> None:
    """``flexnet registry import`` on a page: the trial run (the default) shows the diff and
    changes nothing, the import applies it as the signed-in staff member, a bad row is
    named with its line and nothing changes, auditors may not."""
    helpdesk = signed_in(app, "bernd")
    auditor = signed_in(app, "carla")
    path = "/admin/registry"
    header = "BSNR;Praxis;Adresszusatz;Strasse;PLZ;Ort;Telefon;LANR;Name;Beginn;Ende\n"
    good = (
        header
        + "881234600;MVZ Nord;Haus 2;Lübecker Str. 3;39124;Magdeburg;0391 555;;;;\n"
        + "881234600;MVZ Nord;Haus 2;Lübecker Str. 3;39124;Magdeburg;0391 555;234567701;"
        "Dr. Jörg Schäfer;;\n"
    )
    bad = good + "88123;Kurz;;Weg 1;39100;Magdeburg;;;;;\n"

    def send(client: FlaskClient, text: str, *, trial: bool) -> tuple[int, str]:
        data = {
            "csrf_token": csrf(client, path),
            "file": (io.BytesIO(text.encode()), "register.csv"),
        }
        if trial:
            data["trial"] = "y"
        response = client.post(path, data=data, content_type="multipart/form-data")
        return response.status_code, response.get_data(as_text=True)

    form = helpdesk.get(path).get_data(as_text=True)
    refused, problems = send(helpdesk, bad, trial=False)
    tried, diff = send(helpdesk, good, trial=True)
    with state(app).database.reader() as db:
        before = db.scalar(select(Practice.id).where(Practice.bsnr == "881234600"))
    done, applied = send(helpdesk, good, trial=False)
    again, nothing = send(helpdesk, good, trial=False)
    forbidden = auditor.get(path).status_code
    with state(app).database.reader() as db:
        created = db.scalar(select(Practice).where(Practice.bsnr == "881234600"))
        member = db.scalar(select(User).where(User.lanr == "234567701"))
        actors = set(
            db.scalars(select(AuditEntry.actor).where(AuditEntry.subject_id == "881234600"))
        )

    assert '<input checked id="trial" name="trial" type="checkbox"' in form  # trial by default
    assert refused == 400 and "Zeile 4" in problems and "nichts geändert" in problems
    assert tried == 200 and "Probelauf: das würde sich ändern" in diff
    assert "Neu: Betriebsstätte 881234600 MVZ Nord, Haus 2, Lübecker Str. 3" in diff
    assert "Neu: Mitglied LANR 234567701 Dr. Jörg Schäfer bei BSNR 881234600" in diff
    assert before is None  # the trial changed nothing
    assert done == 200 and "Übernommen: 1 Betriebsstätten neu" in applied
    assert again == 200 and "Nichts zu ändern" in nothing
    assert created is not None and member is not None and member.practice_id == created.id
    assert actors == {"bernd"}  # the signed-in staff member, as the CLI names its actor
    assert forbidden == 403
