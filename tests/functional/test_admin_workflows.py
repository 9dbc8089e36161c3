"""Admin workflows: staff accounts (never without an admin, deactivation ends sessions)
and the lock dialog (confirmation by BSNR, input kept on error, unlock)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import date
from io import BytesIO

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.engine import URL
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from flexnet import create_app
from flexnet.accounts import servicerequests, users
from flexnet.clients import apiclients, nas
from flexnet.db import utcnow
from flexnet.errors import NotFoundError
from flexnet.lifecycle import locks
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    AuditEntry,
    Letter,
    LetterKind,
    LockCause,
    MailRun,
    MailRunStatus,
    RequestKind,
    RequestStatus,
    ServiceRequest,
    StaffRole,
    TerminationBy,
    Token,
    UserStatus,
    VpnSession,
    WsapiClient,
)
from flexnet.otp import wsapi
from flexnet.otp.secrets import wsapi_client_context
from flexnet.otp.stock import get_token
from flexnet.staff import accounts as staff_accounts
from flexnet.web import state
from tests.conftest import BOX, STAFF
from tests.functional.test_cli_keys import ykman_line
from tests.support.admin import add_staff, change_password, csrf, enrol, password_step, signed_in
from tests.support.seed import add_login
from tests.support.yubikeys import SimulatedKey

BSNR = "881234500"


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    with state(application).database.session() as db:
        for name, role in (("anna", StaffRole.ADMIN), ("bernd", StaffRole.HELPDESK)):
            add_staff(db, name, role)
        add_login(
            db, BOX, bsnr=BSNR, username="emuster", password="Sommer-Regen-2026!", serial="9000001"
        )
    yield application
    state(application).database.dispose()


def post(client: FlaskClient, path: str, form_page: str, **fields: str) -> tuple[int, str]:
    response = client.post(path, data={"csrf_token": csrf(client, form_page), **fields})
    return response.status_code, response.get_data(as_text=True)


# --- staff accounts -------------------------------------------------------------------


def test_the_last_admin_can_be_neither_demoted_nor_deactivated(app: Flask) -> None:
    admin = signed_in(app, "anna")

    demoted = post(admin, "/admin/staff/anna/role", "/admin/staff", role="helpdesk", confirmed="1")
    deactivated = post(admin, "/admin/staff/anna/deactivate", "/admin/staff", confirm="anna")

    assert demoted[0] == deactivated[0] == 409
    assert "letzte aktive Administration" in demoted[1]
    assert "Es gibt 1 aktive Administration" in demoted[1]


def test_an_added_staff_member_signs_in_and_a_deactivation_ends_the_session(
    app: Flask,
) -> None:
    admin = signed_in(app, "anna")
    status, answer = post(
        admin,
        "/admin/staff",
        "/admin/staff",
        username="dora",
        name="Dora Neu",
        role="auditor",
        password="Noch-ein-Dienst-Kennwort-7",
    )
    assert status == 200 and "Mitarbeiter dora angelegt" in answer
    handed_out = re.search(r'<code class="seed" id="enrolment-code">([A-Z0-9-]+)</code>', answer)
    assert handed_out, answer  # shown once, on this answer only
    assert handed_out.group(1) not in admin.get("/admin/staff").get_data(as_text=True)
    with state(app).database.reader() as db:
        assert staff_accounts.get_staff(db, "dora").role is StaffRole.AUDITOR
    dora = app.test_client()
    password_step(dora, "dora", "Noch-ein-Dienst-Kennwort-7")
    _, forced = enrol(dora, enrolment_code=handed_out.group(1))
    assert forced == "/admin/password?next=/admin/"  # an admin chose it: changed first
    assert dora.get("/admin/").headers["Location"].startswith("/admin/password")
    assert change_password(dora, "Noch-ein-Dienst-Kennwort-7", "Eigenes-Wort-Tulpe-93") == (
        302,
        "/admin/",
    )
    assert dora.get("/admin/").status_code == 200
    assert dora.get("/admin/staff").status_code == 403  # an auditor reads, does not manage

    wrong = post(admin, "/admin/staff/dora/deactivate", "/admin/staff", confirm="dor")
    right = post(admin, "/admin/staff/dora/deactivate", "/admin/staff", confirm="dora")

    assert wrong[0] == 400 and "genau den Benutzernamen" in wrong[1]
    assert right[0] == 302
    assert dora.get("/admin/").status_code == 302  # signed out at once


def test_a_form_error_keeps_what_was_typed_but_not_the_password(app: Flask) -> None:
    admin = signed_in(app, "anna")

    status, page = post(
        admin,
        "/admin/staff",
        "/admin/staff",
        username="bernd",
        name="Zweiter Bernd",
        role="helpdesk",
        password="Noch-ein-Dienst-Kennwort-7",
    )

    assert status == 409
    assert "bereits angelegt" in page
    assert 'value="Zweiter Bernd"' in page
    assert "Noch-ein-Dienst-Kennwort-7" not in page


def test_a_refused_role_change_leaves_the_add_form_as_it_was(app: Flask) -> None:
    admin = signed_in(app, "anna")

    status, page = post(
        admin, "/admin/staff/anna/role", "/admin/staff", role="auditor", confirmed="1"
    )

    assert status == 409 and "letzte aktive Administration" in page
    add_form = page[page.index("<h2>Mitarbeiter anlegen</h2>") :]
    first = r'name="role"[^>]*>\s*<option (?:selected )?value="">– bitte wählen –'
    assert re.search(first, add_form), add_form
    assert 'selected value="auditor"' not in add_form


# --- the lock dialog ------------------------------------------------------------------


def test_a_wrong_bsnr_locks_nothing_and_keeps_the_input(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    dialog = f"/admin/practices/{BSNR}/lock"

    status, page = post(
        helpdesk,
        dialog,
        dialog,
        what="user",
        user="emuster",
        cause="misuse",
        reason="Anruf: Zugangsdaten weitergegeben",
        confirm="881234599",
    )

    assert status == 400
    assert "Die BSNR stimmt nicht" in page
    assert "Anruf: Zugangsdaten weitergegeben" in page
    with state(app).database.reader() as db:
        assert users.get_user(db, "emuster").status is UserStatus.ACTIVE


def test_locking_a_user_and_unlocking_with_reasons(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    dialog = f"/admin/practices/{BSNR}/lock"

    locked = helpdesk.post(
        dialog,
        data={
            "csrf_token": csrf(helpdesk, dialog),
            "what": "user",
            "user": "emuster",
            "cause": "misuse",
            "reason": "Anruf: Zugangsdaten weitergegeben",
            "confirm": BSNR,
        },
    )
    page = helpdesk.get("/admin/users/emuster").get_data(as_text=True)
    unlock = "/admin/users/emuster/unlock"
    unlocked = post(helpdesk, unlock, unlock, reason="neues Kennwort versandt", confirm="emuster")

    assert locked.status_code == 302
    assert "Anruf: Zugangsdaten weitergegeben" in page
    assert unlocked[0] == 302
    with state(app).database.reader() as db:
        user = users.get_user(db, "emuster")
        assert user.status is not UserStatus.LOCKED and user.lock_cause is None


def test_an_unlock_the_termination_outlasts_is_refused_with_the_reason(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    with state(app).database.session() as db:
        locks.terminate(
            db,
            bsnr=BSNR,
            by=TerminationBy.MEMBER,
            notice_date=date(2020, 1, 2),
            actor=STAFF,
            now=utcnow(),
        )
        locks.lock_practice(
            db, bsnr=BSNR, cause=LockCause.MANUAL, reason="Verstoß", actor=STAFF, now=utcnow()
        )
    unlock = f"/admin/practices/{BSNR}/unlock"

    status, page = post(helpdesk, unlock, unlock, reason="Verstoß geklärt", confirm=BSNR)

    assert status == 409
    assert (
        f"BSNR {BSNR} bleibt gesperrt (Kündigung durch die Praxis zum 16.01.2020 (§ 10.2))" in page
    )
    assert "Verstoß geklärt</textarea>" in page  # the reason typed is kept
    with state(app).database.reader() as db:
        assert users.get_user(db, "emuster").status is UserStatus.LOCKED


def test_a_lost_key_is_locked_for_good_from_the_dialog(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    dialog = f"/admin/practices/{BSNR}/lock"

    status, _ = post(
        helpdesk,
        dialog,
        dialog,
        what="key",
        cause="loss",
        reason="Verlustmeldung per Telefon",
        all_credentials="y",
        confirm=BSNR,
    )

    assert status == 302
    with state(app).database.reader() as db:
        assert get_token(db, "9000001").status.value == "lost"
        user = users.get_user(db, "emuster")
        assert user.status is UserStatus.LOCKED and user.lock_cause is LockCause.LOSS


# --- requests, onboarding, key stock, mail runs -----------------------------------------


def file_reset_request(app: Flask, usernames: str = "emuster") -> int:
    with state(app).database.session() as db:
        filed = servicerequests.file_request(
            db,
            bsnr=BSNR,
            usernames=usernames,
            kind=RequestKind.NEW_PASSWORD,
            contact_person="Frau Muster",
            phone="0391 123456",
            message="Kennwort vergessen",
            source_ip="192.0.2.9",
            now=utcnow(),
        )
        return filed.id


def test_a_request_is_fulfilled_only_after_verification_and_for_its_own_practice(
    app: Flask,
) -> None:
    helpdesk = signed_in(app, "bernd")
    number = file_reset_request(app)
    path = f"/admin/requests/{number}"

    early = post(helpdesk, path, path, step="fulfil", user="emuster", note="sofort")
    verified = post(helpdesk, path, path, step="verify", note="Rückruf bestätigt")
    no_note = post(helpdesk, path, path, step="fulfil", user="emuster", note="")
    done = post(helpdesk, path, path, step="fulfil", user="emuster", note="Brief vorgemerkt")

    assert early[0] == 409 and "erst nach der Bestätigung" in early[1]
    assert verified[0] == 302
    assert no_note[0] == 400 and "Bitte einen Vermerk eingeben" in no_note[1]
    assert done[0] == 302
    page = helpdesk.get(path).get_data(as_text=True)
    assert "erledigt (bernd" in page and "Rückruf bestätigt" in page
    with state(app).database.reader() as db:
        letter = db.scalars(select(Letter).where(Letter.kind == LetterKind.NEW_PASSWORD)).one()
        assert letter.user is not None and letter.user.username == "emuster"


def test_onboarding_form_errors_keep_the_input(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")

    status, page = post(
        helpdesk,
        "/admin/practices/new",
        "/admin/practices/new",
        bsnr=BSNR,
        name="Praxis Doppelt",
        street="Weg 2",
        zip_code="39104",
        city="Halle",
        kind="member",
    )

    assert status == 409
    assert f"Die BSNR {BSNR} ist bereits angelegt" in page
    assert 'value="Praxis Doppelt"' in page


def test_a_locked_practice_gets_no_user_and_no_key_and_the_form_keeps_the_input(
    app: Flask,
) -> None:
    helpdesk = signed_in(app, "bernd")
    stock = ykman_line("7000001", SimulatedKey.random()).encode()
    imported = helpdesk.post(
        "/admin/keys",
        data={"csrf_token": csrf(helpdesk, "/admin/keys"), "file": (BytesIO(stock), "keys.csv")},
        content_type="multipart/form-data",
    )
    with state(app).database.session() as db:
        locks.lock_practice(
            db,
            bsnr=BSNR,
            cause=LockCause.OBJECTION,
            reason="Widerspruch ohne Grund (§ 14.2)",
            actor=STAFF,
            now=utcnow(),
        )
    users_page, key_page = f"/admin/practices/{BSNR}/users/new", f"/admin/practices/{BSNR}/key"

    user = post(helpdesk, users_page, users_page, username="neu", kind="staff", name="Neue Kraft")
    key = post(helpdesk, key_page, key_page, serial="7000001")

    assert imported.status_code == 302
    refusal = f"BSNR {BSNR} ist gesperrt (Widerspruch ohne Grund (§ 14.2))"
    assert user[0] == 409 and refusal in user[1]
    assert 'value="neu"' in user[1] and 'value="Neue Kraft"' in user[1]
    assert key[0] == 409 and refusal in key[1] and 'value="7000001"' in key[1]
    with state(app).database.reader() as db:
        assert get_token(db, "7000001").status.value == "stock"
        assert db.scalar(select(Letter.id).where(Letter.kind == LetterKind.KEY)) is None
        with pytest.raises(NotFoundError):
            users.get_user(db, "neu")


def test_a_broken_key_file_imports_nothing_and_names_its_lines(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    broken = b"7000001,vvcccccccccc,zz,00112233445566778899aabbccddeeff,,2026-11-20T10:00:00,\n"

    response = helpdesk.post(
        "/admin/keys",
        data={"csrf_token": csrf(helpdesk, "/admin/keys"), "file": (BytesIO(broken), "keys.csv")},
        content_type="multipart/form-data",
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Import abgebrochen, nichts übernommen" in page and "Zeile 1" in page
    with state(app).database.reader() as db:
        assert db.scalar(select(Token.id).where(Token.serial == "7000001")) is None


def test_a_key_file_of_five_megabytes_of_bad_lines_gets_the_first_errors_and_the_count(
    app: Flask,
) -> None:
    helpdesk = signed_in(app, "bernd")
    bad = b"7000001,kaputt\n" * 340_000  # 5.1 MB, every line wrong
    assert len(bad) <= 5 * 1024 * 1024

    # Encoded in memory: the test client would spool a body this large to a temporary
    # file it never closes.
    boundary, body = encode_multipart(
        {
            "csrf_token": csrf(helpdesk, "/admin/keys"),
            "file": FileStorage(BytesIO(bad), filename="keys.csv"),
        }
    )

    response = helpdesk.post(
        "/admin/keys", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert len(page) < 50_000
    assert "340.000 Fehler" in page and "die ersten 50" in page
    assert "Zeile 50:" in page and "Zeile 51:" not in page
    with state(app).database.reader() as db:
        assert db.scalar(select(Token.id).where(Token.serial == "7000001")) is None


def test_the_mail_run_page_says_when_nothing_is_due(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")

    status, page = post(helpdesk, "/admin/letters/run", "/admin/letters")

    assert status == 409 and "Keine Briefe fällig" in page


# --- audit trail, live sessions, terminations, exceptions -------------------------------


def test_the_audit_trail_filters_and_reports_its_chain(app: Flask) -> None:
    auditor_like = signed_in(app, "bernd")

    filtered = auditor_like.get(f"/admin/audit?subject={BSNR}&tag=practice:").get_data(as_text=True)
    chain = auditor_like.get("/admin/audit/verify").get_data(as_text=True)

    assert "practice:record:create" in filtered and "account:user:create" not in filtered
    assert "Intakt:" in chain and "extern festhalten" in chain


def test_staff_disconnect_one_live_session(app: Flask) -> None:
    with state(app).database.session() as db:
        nas_client = nas.add_nas(
            db,
            name="asa-1",
            address="192.0.2.1",
            secret="ein-langes-gemeinsames-Geheimnis-1",
            box=BOX,
            actor=STAFF,
            now=utcnow(),
        )
        db.add(
            VpnSession(
                nas_id=nas_client.id,
                acct_session_id="s-1",
                username="emuster",
                user_id=users.get_user(db, "emuster").id,
                started_at=utcnow(),
                updated_at=utcnow(),
                input_octets=0,
                output_octets=0,
            )
        )
    helpdesk = signed_in(app, "bernd")

    listed = helpdesk.get("/admin/sessions").get_data(as_text=True)
    first = post(helpdesk, "/admin/sessions/1/disconnect", "/admin/sessions", confirmed="1")
    again = helpdesk.post(
        "/admin/sessions/1/disconnect",
        data={"csrf_token": csrf(helpdesk, "/admin/sessions"), "confirmed": "1"},
    )

    assert "emuster" in listed and "Trennen" in listed
    assert first[0] == 302
    assert "bereits beendet oder ihre Trennung angefordert" in helpdesk.get(
        again.headers["Location"]
    ).get_data(as_text=True)
    with state(app).database.reader() as db:
        assert db.scalars(select(VpnSession)).one().disconnect_requested_at is not None


def test_a_termination_from_the_practice_page(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    path = f"/admin/practices/{BSNR}/terminate"

    extraordinary = post(
        helpdesk, path, path, by="extraordinary", notice_date="2026-11-20", confirm=BSNR
    )
    by_practice = post(helpdesk, path, path, by="member", notice_date="2026-11-20", confirm=BSNR)

    assert extraordinary[0] == 400 and "braucht einen Grund" in extraordinary[1]
    assert by_practice[0] == 302
    page = helpdesk.get(f"/admin/practices/{BSNR}").get_data(as_text=True)
    assert "letzter Tag mit Zugang 04.12.2026" in page
    assert "§ 10.2: Kündigung, letzter Tag 04.12.2026" in page


def test_an_exception_from_the_practice_page(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    path = f"/admin/practices/{BSNR}/exception"

    missing = post(helpdesk, path, path, until="2099-12-31", reason="x")
    granted = post(
        helpdesk,
        path,
        path,
        until="2099-12-31",
        reason="Praxisabwicklung",
        decision_ref="V-17",
        decided_by="Vorstand",
    )

    assert missing[0] == 400
    assert granted[0] == 302
    assert "bis 31.12.2099: Praxisabwicklung (Az. V-17" in helpdesk.get(
        f"/admin/practices/{BSNR}"
    ).get_data(as_text=True)


# --- clients (admin) ----------------------------------------------------------------------


def test_an_admin_adds_clients_and_each_key_is_shown_once(app: Flask) -> None:
    admin = signed_in(app, "anna")

    nas_added = post(
        admin,
        "/admin/clients/nas",
        "/admin/clients",
        **{
            "nas-name": "asa-2",
            "nas-address": "192.0.2.0/28",
            "nas-secret": "ein-langes-gemeinsames-Geheimnis-2",
        },
    )
    short_secret = post(
        admin,
        "/admin/clients/nas",
        "/admin/clients",
        **{"nas-name": "asa-3", "nas-address": "192.0.2.99", "nas-secret": "x"},
    )
    api_added = post(
        admin,
        "/admin/clients/api",
        "/admin/clients",
        **{"api-name": "portal", "api-role": "auditor"},
    )
    listing = admin.get("/admin/clients").get_data(as_text=True)

    assert nas_added[0] == 302
    assert "asa-2" in listing and "192.0.2.0/28" in listing
    assert short_secret[0] == 400 and "ein-langes" not in short_secret[1]
    key = re.search(r'<code class="seed">(fx_[^<]+)</code>', api_added[1])
    assert key is not None
    assert key.group(1) not in listing  # shown once, on the answer page only
    with state(app).database.reader() as db:
        assert apiclients.authenticate_client(db, key.group(1)) is not None


NAS_SECRET = "ein-langes-gemeinsames-Geheimnis-1"


def add_one_client_of_each_kind(app: Flask) -> str:
    """NAS asa-1, API client portal, validation client KVSAonline; returns portal's key."""
    with state(app).database.session() as db:
        nas.add_nas(
            db,
            name="asa-1",
            address="192.0.2.10",
            secret=NAS_SECRET,
            box=BOX,
            actor=STAFF,
            now=utcnow(),
        )
        _, key = apiclients.add_client(
            db, name="portal", require_otp=False, actor=STAFF, now=utcnow()
        )
        wsapi.add_client(db, name="KVSAonline", box=BOX, actor=STAFF, now=utcnow())
    return key


def test_an_admin_changes_a_nas_secret_typed_twice(app: Flask) -> None:
    admin = signed_in(app, "anna")
    add_one_client_of_each_kind(app)
    new = "ein-neues-gemeinsames-Geheimnis-2"

    typo = post(
        admin,
        "/admin/clients/nas/secret",
        "/admin/clients",
        **{"secret-name": "asa-1", "secret-secret": new, "secret-repeat": new + "x"},
    )
    unknown = post(
        admin,
        "/admin/clients/nas/secret",
        "/admin/clients",
        **{"secret-name": "asa-9", "secret-secret": new, "secret-repeat": new},
    )
    changed = post(
        admin,
        "/admin/clients/nas/secret",
        "/admin/clients",
        **{"secret-name": "asa-1", "secret-secret": new, "secret-repeat": new},
    )
    listing = admin.get("/admin/clients").get_data(as_text=True)

    assert typo[0] == 400 and "Die Eingaben stimmen nicht überein." in typo[1]
    assert unknown[0] == 404 and "Kein NAS-Client" in unknown[1]
    assert new not in typo[1] + unknown[1] + listing  # a secret is never sent back
    assert changed[0] == 302 and "Geheimnis von NAS asa-1 geändert" in listing
    with state(app).database.reader() as db:
        (entry,) = nas.load_active(db, BOX)
    assert entry.secret == new.encode()


def test_an_admin_switches_an_old_nas_over_in_place(app: Flask) -> None:
    """Message-Authenticator rule, CoA port and address changed on the Clients page; a
    wrong entry is shown again as typed with a German message and changes nothing."""
    admin = signed_in(app, "anna")
    add_one_client_of_each_kind(app)

    bad_port = post(
        admin,
        "/admin/clients/nas/change",
        "/admin/clients",
        **{"change-name": "asa-1", "change-coa_port": "drei", "change-address": "192.0.2.77"},
    )
    bad_address = post(
        admin,
        "/admin/clients/nas/change",
        "/admin/clients",
        **{"change-name": "asa-1", "change-address": "192.0.2.300"},
    )
    changed = post(
        admin,
        "/admin/clients/nas/change",
        "/admin/clients",
        **{
            "change-name": "asa-1",
            "change-allow_missing_ma": "yes",
            "change-coa_port": "3799",
            "change-address": "",
        },
    )
    listing = admin.get("/admin/clients").get_data(as_text=True)

    assert bad_port[0] == 400 and "Bitte eine Zahl von 0 bis 65535." in bad_port[1]
    assert 'value="192.0.2.77"' in bad_port[1]  # what was typed stays
    assert bad_address[0] == 400 and "keine IP-Adresse" in bad_address[1]
    assert changed[0] == 302 and "NAS asa-1 geändert" in listing
    with state(app).database.reader() as db:
        stored = nas.get_nas(db, "asa-1")
        tags = list(db.scalars(select(AuditEntry.tag).where(AuditEntry.subject_id == "asa-1")))
    assert (stored.address, stored.coa_port) == ("192.0.2.10/32", 3799)
    assert stored.allow_missing_message_authenticator
    assert tags.count("radius:nas:change") == 1


def test_an_admin_marks_a_nas_as_a_proxy_and_pins_and_removes_its_tls_certificate(
    app: Flask,
) -> None:
    """Every NAS property the CLI changes, the Clients page changes too (issue 18)."""
    admin = signed_in(app, "anna")
    add_one_client_of_each_kind(app)
    fingerprint = "SHA256 Fingerprint=" + ":".join(["AB"] * 32)

    both = post(
        admin,
        "/admin/clients/nas/change",
        "/admin/clients",
        **{"change-name": "asa-1", "change-tls_fingerprint": fingerprint, "change-tls_remove": "y"},
    )
    bad = post(
        admin,
        "/admin/clients/nas/change",
        "/admin/clients",
        **{"change-name": "asa-1", "change-tls_fingerprint": "kein Fingerabdruck"},
    )
    pinned = post(
        admin,
        "/admin/clients/nas/change",
        "/admin/clients",
        **{"change-name": "asa-1", "change-proxy": "yes", "change-tls_fingerprint": fingerprint},
    )
    listing = admin.get("/admin/clients").get_data(as_text=True)
    with state(app).database.reader() as db:
        stored = nas.get_nas(db, "asa-1")
        assert (stored.proxy, stored.tls_fingerprint) == (True, "ab" * 32)
    removed = post(
        admin,
        "/admin/clients/nas/change",
        "/admin/clients",
        **{"change-name": "asa-1", "change-tls_remove": "y"},
    )
    with state(app).database.reader() as db:
        after = nas.get_nas(db, "asa-1")
        tags = list(db.scalars(select(AuditEntry.tag).where(AuditEntry.subject_id == "asa-1")))

    assert both[0] == 400 and "entweder einen Fingerabdruck angeben oder entfernen" in both[1]
    assert bad[0] == 400 and 'value="kein Fingerabdruck"' in bad[1]  # what was typed stays
    assert pinned[0] == 302 and "<td>Proxy</td>" in listing and "abababababababab…" in listing
    assert removed[0] == 302
    assert (after.proxy, after.tls_fingerprint) == (True, None)
    assert tags.count("radius:nas:change") == 2


def test_an_admin_disables_and_enables_each_kind_of_client_by_its_name(app: Flask) -> None:
    admin = signed_in(app, "anna")
    api_key = add_one_client_of_each_kind(app)
    clients = (("nas", "asa-1"), ("api", "portal"), ("wsapi", "KVSAonline"))

    unconfirmed = post(admin, "/admin/clients/api/disable", "/admin/clients")
    unknown = post(admin, "/admin/clients/nas/disable", "/admin/clients", name="asa-2")
    disabled = [
        post(admin, f"/admin/clients/{kind}/disable", "/admin/clients", name=name)[0]
        for kind, name in clients
    ]
    again = post(admin, "/admin/clients/nas/disable", "/admin/clients", name="asa-1")
    listing = admin.get("/admin/clients").get_data(as_text=True)
    with state(app).database.reader() as db:
        while_disabled = (
            nas.load_active(db, BOX),
            apiclients.authenticate_client(db, api_key),
            db.scalars(select(WsapiClient.active)).one(),
        )
    enabled = [
        post(admin, f"/admin/clients/{kind}/enable", "/admin/clients", name=name)[0]
        for kind, name in clients
    ]
    after = admin.get("/admin/clients").get_data(as_text=True)

    assert unconfirmed[0] == 400 and "Zur Bestätigung bitte den Namen" in unconfirmed[1]
    assert unknown[0] == 404 and "Kein NAS-Client" in unknown[1]
    assert disabled == enabled == [302, 302, 302]
    assert again[0] == 409 and "ist bereits deaktiviert" in again[1]
    assert while_disabled == ([], None, False)
    assert listing.count("<strong>deaktiviert</strong>") == 3
    assert listing.count("Aktivieren</button>") == 3
    assert (
        "<strong>deaktiviert</strong>" not in after
        and "Prüfdienst-Client KVSAonline wieder aktiv" in after
    )
    with state(app).database.reader() as db:
        assert apiclients.authenticate_client(db, api_key) is not None


def test_an_admin_gives_api_and_validation_clients_new_keys_shown_once(app: Flask) -> None:
    admin = signed_in(app, "anna")
    old_api_key = add_one_client_of_each_kind(app)

    api_page = admin.post(
        "/admin/clients/api/regenerate",
        data={"csrf_token": csrf(admin, "/admin/clients"), "name": "portal"},
    )
    wsapi_page = admin.post(
        "/admin/clients/wsapi/regenerate",
        data={"csrf_token": csrf(admin, "/admin/clients"), "name": "KVSAonline"},
    )
    listing = admin.get("/admin/clients").get_data(as_text=True)

    api_key = re.search(r'<code class="seed">(fx_[^<]+)</code>', api_page.get_data(as_text=True))
    shown = re.search(
        r'<code class="seed">id=(\d+) key=([^<]+)</code>', wsapi_page.get_data(as_text=True)
    )
    assert api_key is not None and shown is not None
    assert api_page.headers["Cache-Control"] == wsapi_page.headers["Cache-Control"] == "no-store"
    assert api_key.group(1) not in listing and shown.group(2) not in listing
    with state(app).database.reader() as db:
        assert apiclients.authenticate_client(db, old_api_key) is None
        assert apiclients.authenticate_client(db, api_key.group(1)) is not None
        client_id = int(shown.group(1))
        sealed = db.get_one(WsapiClient, client_id).api_key
    opened = BOX.open(sealed, context=wsapi_client_context(client_id))
    assert opened == base64.b64decode(shown.group(2))


def test_helpdesk_may_not_manage_clients(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")

    assert helpdesk.get("/admin/clients").status_code == 403


def test_a_returned_key_is_recorded_on_the_stock_page(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    with state(app).database.session() as db:
        locks.lock_key(
            db,
            serial="9000001",
            cause=LockCause.MANUAL,
            reason="Kündigung",
            actor=STAFF,
            now=utcnow(),
        )
    today = utcnow().astimezone(BERLIN).date().isoformat()

    unknown = post(
        helpdesk,
        "/admin/keys/return",
        "/admin/keys",
        serial="9000002",
        received_on=today,
        condition="good",
    )
    done = post(
        helpdesk,
        "/admin/keys/return",
        "/admin/keys",
        serial="9000001",
        received_on=today,
        condition="good",
    )

    assert unknown[0] == 404 and "Kein Yubikey mit Seriennummer 9000002" in unknown[1]
    assert done[0] == 302
    with state(app).database.reader() as db:
        assert get_token(db, "9000001").status.value == "returned"


def test_cancelling_a_run_needs_its_number_typed(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    with state(app).database.session() as db:
        db.add(
            MailRun(
                status=MailRunStatus.PRODUCED,
                run_date=utcnow().date(),
                produced_at=utcnow(),
                produced_by="bernd",
            )
        )

    wrong = post(helpdesk, "/admin/letters/runs/1/cancel", "/admin/letters", confirm="2")
    right = post(helpdesk, "/admin/letters/runs/1/cancel", "/admin/letters", confirm="1")

    assert wrong[0] == 400 and "Nummer des Laufs eingeben" in wrong[1]
    assert right[0] == 302
    with state(app).database.reader() as db:
        assert db.get_one(MailRun, 1).status is MailRunStatus.CANCELLED


def test_a_refusal_answers_with_the_status_its_kind_carries_and_keeps_the_input(
    app: Flask,
) -> None:
    """Not found is 404, a conflict 409, bad input 400, on every admin page alike: the
    status comes from the kind of refusal, not from the page that meets it."""
    admin, helpdesk = signed_in(app, "anna"), signed_in(app, "bernd")
    with state(app).database.session() as db:
        db.add(
            MailRun(
                status=MailRunStatus.PRODUCED,
                run_date=utcnow().date(),
                produced_at=utcnow(),
                produced_by="bernd",
            )
        )
        locks.lock_practice(
            db,
            bsnr=BSNR,
            cause=LockCause.OBJECTION,
            reason="Widerspruch",
            actor=STAFF,
            now=utcnow(),
        )
    today = utcnow().astimezone(BERLIN).date().isoformat()
    user_page = f"/admin/practices/{BSNR}/users/new"

    no_staff = post(
        admin, "/admin/staff/niemand/role", "/admin/staff", role="helpdesk", confirmed="1"
    )
    no_run = post(
        helpdesk,
        "/admin/letters/runs/4711/dispatched",
        "/admin/letters",
        dispatched_on=today,
        confirmed="1",
    )
    future = post(
        helpdesk,
        "/admin/letters/runs/1/dispatched",
        "/admin/letters",
        dispatched_on="2099-01-01",
        confirmed="1",
    )
    withdrawn = post(helpdesk, user_page, user_page, username="neu", kind="staff", name="Neue")
    no_nas = post(admin, "/admin/clients/nas/enable", "/admin/clients", name="asa-9")

    assert no_staff[0] == 404 and "Kein Mitarbeiter" in no_staff[1]
    assert no_run[0] == 404 and "Keinen Versandlauf 4711" in no_run[1]
    assert future[0] == 400 and "in der Zukunft" in future[1]
    assert withdrawn[0] == 409 and f"BSNR {BSNR} ist gesperrt" in withdrawn[1]
    assert 'value="neu"' in withdrawn[1] and 'value="Neue"' in withdrawn[1]
    assert no_nas[0] == 404 and "Kein NAS-Client" in no_nas[1]


def test_a_refused_dispatch_date_stays_with_its_own_run(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    with state(app).database.session() as db:
        for _ in range(3):
            db.add(
                MailRun(
                    status=MailRunStatus.PRODUCED,
                    run_date=utcnow().date(),
                    produced_at=utcnow(),
                    produced_by="bernd",
                )
            )
    future = "2099-01-01"

    status, page = post(
        helpdesk,
        "/admin/letters/runs/2/dispatched",
        "/admin/letters",
        dispatched_on=future,
        confirmed="1",
    )

    assert status == 400 and "in der Zukunft" in page
    today = utcnow().astimezone(BERLIN).date().isoformat()
    dates = re.findall(r'id="sent-(\d+)" type="date" name="dispatched_on" value="([^"]*)"', page)
    assert sorted(dates) == [("1", today), ("2", today), ("3", today)]


def test_the_request_queue_pages(app: Flask) -> None:
    for _ in range(3):  # 3 per BSNR and hour may be filed; the rest by another BSNR
        file_reset_request(app)
    helpdesk = signed_in(app, "bernd")
    with state(app).database.session() as db:
        for n in range(50):
            db.add(
                ServiceRequest(
                    created_at=utcnow(),
                    bsnr="881234599",
                    kind=RequestKind.UNLOCK,
                    contact_person=f"Person {n}",
                    phone="0391 1",
                    status=RequestStatus.OPEN,
                )
            )

    first = helpdesk.get("/admin/requests").get_data(as_text=True)
    second = helpdesk.get("/admin/requests?page=2").get_data(as_text=True)

    assert first.count('href="/admin/requests/') == 50 and "Ältere" in first
    assert second.count('href="/admin/requests/') == 3 and "Neuere" in second


def test_an_admin_sets_an_access_profile_checked_against_the_dictionary(app: Flask) -> None:
    admin = signed_in(app, "anna")

    bad = post(
        admin,
        "/admin/clients/profile",
        "/admin/clients",
        **{"profile-name": "praxis", "profile-attributes": "Foo-Bar=1"},
    )
    good = post(
        admin,
        "/admin/clients/profile",
        "/admin/clients",
        **{
            "profile-name": "praxis",
            "profile-description": "Praxisnetz",
            "profile-attributes": "Filter-Id=praxis\nSession-Timeout=28800",
        },
    )

    without_description = post(
        admin,
        "/admin/clients/profile",
        "/admin/clients",
        **{"profile-name": "gast", "profile-attributes": "Filter-Id=gast"},
    )
    listing = admin.get("/admin/clients").get_data(as_text=True)

    assert bad[0] == 400 and "kein erlaubtes Antwort-Attribut" in bad[1]
    assert good[0] == without_description[0] == 302  # post/redirect/get
    assert "<code>Filter-Id=praxis</code>, <code>Session-Timeout=28800</code>" in listing
    assert "<code>Filter-Id=gast</code>" in listing
    assert "Profil gast gespeichert" in listing
