"""The rest of the IT service's day in the browser (issue 21): the fee ledger, the
management reports, a termination corrected, withdrawn or followed by a new
participation, a key unlocked after a false alarm (a lost one stays retired), an
exception ended early, requests that link to their action, a colleague's second factor
reset with a one-time enrolment code, and auditors who read but do not act.

One realistic world (``tests.support.realistic``: 30 practices, umlauts) plus more than
one page of fees; each journey works on practices of its own."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select
from sqlalchemy.engine import URL

from flexnet import create_app, labels
from flexnet.audit import Actor
from flexnet.db import utcnow
from flexnet.lifecycle import locks
from flexnet.lifecycle.locks import LockTarget
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    AuditEntry,
    LockCause,
    LockException,
    LossFee,
    Practice,
    ServiceRequest,
    StaffAccount,
    TerminationBy,
    Token,
    TokenStatus,
)
from flexnet.otp import importer
from flexnet.provisioning import fees
from flexnet.web import state
from tests.conftest import BOX, TEST_AUDIT_KEY, TEST_MASTER_KEY, TEST_SECRET_KEY
from tests.functional.test_admin_everypage import Site, sign_in
from tests.functional.test_cli_keys import ykman_line
from tests.support.admin import PASSWORD, csrf, enrol, password_step, signed_in
from tests.support.realistic import seed
from tests.support.web import served
from tests.support.yubikeys import SimulatedKey

ANNA = Actor.staff("anna")
EXTRA_FEES = 55  # more than one page (50 rows)


def _more_fees(site: Site) -> None:
    """55 lost keys of the practices in turn, each with its fee (``fees.record_loss``)."""
    now = utcnow()
    serials = [str(7_200_001 + i) for i in range(EXTRA_FEES)]
    data = "".join(ykman_line(serial, SimulatedKey.random()) for serial in serials)
    with state(site.app).database.session() as db:
        importer.import_keys(db, importer.parse(data.encode()), box=BOX, actor=ANNA, now=now)
        practice_ids = list(db.scalars(select(Practice.id).order_by(Practice.bsnr)))
        for index, token in enumerate(db.scalars(select(Token).where(Token.serial.in_(serials)))):
            token.practice_id = practice_ids[index % len(practice_ids)]
            token.status = TokenStatus.LOST
            db.flush()
            fees.record_loss(db, token, amount_cents=6000, actor=ANNA, now=now)


def _prepare(site: Site) -> None:
    """The states the journeys start from, on practices no other journey touches."""
    world, now = site.world, utcnow()
    today = now.astimezone(BERLIN).date()
    with state(site.app).database.session() as db:
        locks.terminate(
            db,
            bsnr=world.bsnrs[10],
            by=TerminationBy.MEMBER,
            notice_date=today - timedelta(days=3),
            requested=None,
            reason="Praxis wird aufgegeben",
            actor=ANNA,
            now=now,
        )
        locks.terminate(
            db,
            bsnr=world.bsnrs[11],
            by=TerminationBy.EXTRAORDINARY,
            notice_date=today - timedelta(days=1),
            requested=None,
            reason="Schwerer Verstoß gegen § 10 Abs. 1",
            actor=ANNA,
            now=now,
        )
        for serial, cause, reason in (
            (world.serials[12], LockCause.MISUSE, "Verdacht: Anmeldungen aus Übersee"),
            (world.serials[15], LockCause.LOSS, "Verlust gemeldet von Frau Jößl"),
        ):
            locks.lock(
                db,
                what=LockTarget.KEY,
                identifier=serial,
                cause=cause,
                reason=reason,
                all_practice_credentials=False,
                loss_fee_cents=6000,
                actor=ANNA,
                now=now,
            )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("ledger")
    (folder / "instance").mkdir()
    database = folder / "flexnet.sqlite3"
    shutil.copyfile(sqlite_template, database)
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("FLEXNET_")]:
            patch.delenv(name)
        patch.setenv("FLEXNET_INSTANCE", str(folder / "instance"))
        patch.setenv("FLEXNET_SECRET_KEY", TEST_SECRET_KEY)
        patch.setenv("FLEXNET_MASTER_KEY", TEST_MASTER_KEY)
        patch.setenv("FLEXNET_AUDIT_KEY", TEST_AUDIT_KEY)
        url = URL.create("sqlite+pysqlite", database=str(database))
        patch.setenv("FLEXNET_DATABASE_URL", url.render_as_string(hide_password=False))
        patch.setenv("FLEXNET_COOKIE_SECURE", "0")
        app = create_app()
        world = seed(app)
        current = Site("", app, world)
        _more_fees(current)
        _prepare(current)
        with served(app) as base:
            yield Site(base, app, world)
        state(app).database.dispose()


@pytest.fixture(scope="module")
def bernd(browser: Browser, site: Site) -> Iterator[Page]:
    """The helpdesk's Bernd, signed in in Chromium."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    sign_in(page, site, "bernd")
    yield page
    context.close()


@pytest.fixture(scope="module")
def carla(site: Site) -> FlaskClient:
    """The auditor Carla, signed in once (an enrolment code works once)."""
    return signed_in(site.app, "carla")


@pytest.fixture(scope="module")
def anna(site: Site) -> FlaskClient:
    return signed_in(site.app, "anna")


def _audit(site: Site, tag: str, subject: str) -> list[AuditEntry]:
    with state(site.app).database.reader() as db:
        return list(
            db.scalars(
                select(AuditEntry).where(AuditEntry.tag == tag, AuditEntry.subject_id == subject)
            )
        )


def _flash(page: Page, text: str) -> None:
    expect(page.get_by_text(text).first).to_be_visible()


# --- the fee ledger -------------------------------------------------------------------


def test_the_fee_list_pages_filters_and_sums(site: Site, bernd: Page) -> None:
    with state(site.app).database.reader() as db:
        count = db.scalar(select(func.count()).select_from(LossFee))
        cents = db.scalar(select(func.sum(LossFee.amount_cents)))
    assert count is not None and count > 50
    bernd.goto(f"{site.base}/admin/")
    unpaid = bernd.get_by_role("row", name="Gebühren weder bezahlt noch erlassen")
    expect(unpaid).to_contain_text(str(count))  # none paid yet
    bernd.get_by_role("link", name="Berichte", exact=True).click()
    bernd.get_by_role("link", name="Gebühren", exact=True).click()

    expect(bernd.get_by_text(f"Gebühren 1–50 von {count}")).to_be_visible()
    expect(bernd.get_by_text(f"Summe der Auswahl: {labels.euro(cents or 0)}")).to_be_visible()
    bernd.get_by_role("link", name="nächste").click()
    expect(bernd.get_by_text(f"Gebühren 51–{count} von {count}")).to_be_visible()

    bernd.get_by_role("textbox", name="BSNR", exact=True).fill(site.world.bsnrs[0])
    bernd.get_by_role("button", name="Anwenden").click()
    shown = bernd.locator("table.list tbody tr")
    expect(shown.first).to_contain_text(site.world.bsnrs[0])
    for row in range(shown.count()):
        expect(shown.nth(row)).to_contain_text(site.world.bsnrs[0])


def test_a_fee_is_invoiced_paid_and_another_waived_in_the_browser(site: Site, bernd: Page) -> None:
    with state(site.app).database.reader() as db:
        first, second = db.scalars(
            select(LossFee.id).where(LossFee.serial.like("72%")).order_by(LossFee.id).limit(2)
        )
    bernd.goto(f"{site.base}/admin/fees?state=offen&sort=id")
    bernd.get_by_role("link", name=f"berechnet (Nr. {first})").click()
    bernd.get_by_label("Rechnungsdatum").fill("2099-01-01")
    bernd.get_by_role("button", name="Als berechnet erfassen").click()
    expect(bernd.get_by_role("alert")).to_contain_text("Zukunft")  # kept, nothing changed
    expect(bernd.get_by_label("Rechnungsdatum")).to_have_value("2099-01-01")
    bernd.get_by_label("Rechnungsdatum").fill(f"{utcnow().astimezone(BERLIN).date():%Y-%m-%d}")
    bernd.get_by_role("button", name="Als berechnet erfassen").click()
    _flash(bernd, f"Gebühr Nr. {first} als berechnet erfasst.")

    bernd.goto(f"{site.base}/admin/fees?state=berechnet")
    bernd.get_by_role("link", name=f"bezahlt (Nr. {first})").click()
    bernd.get_by_role("button", name="Zahlung erfassen").click()
    _flash(bernd, f"Zahlungseingang für Gebühr Nr. {first} erfasst.")

    bernd.goto(f"{site.base}/admin/fees?state=offen&sort=id")
    bernd.get_by_role("link", name=f"erlassen (Nr. {second})").click()
    bernd.get_by_role("button", name="Erlassen …").click()
    expect(bernd.get_by_text("Bitte ausfüllen.")).to_be_visible()
    bernd.get_by_label("Grund des Erlasses").fill("Yubikey im Wartezimmer gefunden (Frau Größe)")
    bernd.get_by_role("button", name="Erlassen …").click()
    expect(bernd.get_by_text("Ein Erlass lässt sich nicht zurücknehmen")).to_be_visible()
    bernd.get_by_role("button", name="Ja, Gebühr erlassen").click()
    _flash(bernd, f"Gebühr Nr. {second} erlassen.")

    with state(site.app).database.reader() as db:
        paid, waived = db.get(LossFee, first), db.get(LossFee, second)
        assert paid is not None and waived is not None
        assert paid.invoiced_by == paid.paid_by == "bernd"
        assert waived.waive_reason == "Yubikey im Wartezimmer gefunden (Frau Größe)"
        serials = paid.serial, waived.serial
    for tag, serial in (("fee:loss:pay", serials[0]), ("fee:loss:waive", serials[1])):
        [entry] = _audit(site, tag, serial)
        assert entry.actor == "bernd"
    bernd.goto(f"{site.base}/admin/fees?state=erlassen")
    expect(bernd.locator("table.list")).to_contain_text("Frau Größe")


def test_the_fee_csv_is_what_german_spreadsheets_read(site: Site, carla: FlaskClient) -> None:
    client = carla  # an auditor reads the ledger

    response = client.get("/admin/fees?format=csv&state=unbezahlt")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    lines = body.decode("utf-8-sig").split("\r\n")
    assert lines[0].startswith("Nr.;BSNR;Betriebsstätte;Yubikey;Betrag (EUR);Fällig seit;Stand")
    rows = [line.split(";") for line in lines[1:] if line]
    with state(site.app).database.reader() as db:
        unpaid = db.scalar(
            select(func.count()).where(LossFee.paid_on.is_(None), LossFee.waived_on.is_(None))
        )
    assert len(rows) == unpaid
    assert {row[4] for row in rows} == {"60,00"}
    assert all(re.fullmatch(r"\d\d\.\d\d\.\d{4}", row[5]) for row in rows)
    assert {row[6] for row in rows} <= {"offen", "berechnet"}


def test_an_auditor_reads_fees_and_reports_but_may_not_act(site: Site, carla: FlaskClient) -> None:
    client = carla
    with state(site.app).database.reader() as db:
        fee_id = db.scalar(select(LossFee.id).where(LossFee.paid_on.is_(None)).limit(1))

    page = client.get("/admin/fees").get_data(as_text=True)
    assert "Summe der Auswahl" in page
    assert f"/admin/fees/{fee_id}/paid" not in page
    assert client.get("/admin/reports?name=fees").status_code == 200
    for action in ("invoiced", "paid", "waive"):
        assert client.get(f"/admin/fees/{fee_id}/{action}").status_code == 403
        token = csrf(client, "/admin/fees")
        answer = client.post(f"/admin/fees/{fee_id}/{action}", data={"csrf_token": token})
        assert answer.status_code == 403
    for path in ("/admin/letters", "/admin/requests", "/admin/keys", "/admin/yubikeys"):
        read = client.get(path)
        assert read.status_code == 200, path
        posts = re.findall(r'<form method="post"[^>]*action="([^"]*)"', read.get_data(as_text=True))
        assert set(posts) <= {"/admin/logout"}, path


# --- the management reports -----------------------------------------------------------


def test_a_report_is_chosen_shown_and_downloaded(
    site: Site, bernd: Page, carla: FlaskClient
) -> None:
    bernd.goto(f"{site.base}/admin/reports")
    expect(bernd.get_by_role("heading", name="Betriebsstätten nach Status und Art")).to_be_visible()
    bernd.locator('select[name="name"]').select_option(label="Offene Gebühren")
    bernd.get_by_role("button", name="Anzeigen").click()
    expect(bernd.locator("table.list")).to_contain_text("60,00 €")
    with bernd.expect_download() as download:
        bernd.get_by_role("link", name="Als CSV herunterladen").click()
    path = download.value.path()
    data = Path(path).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.decode("utf-8-sig").split("\r\n")[0].startswith("Stand;")

    client = carla
    past = client.get("/admin/reports?name=practices&day=2026-01-01&format=csv").get_data()
    assert past.decode("utf-8-sig").split("\r\n")[1].startswith("01.01.2026 00:00;")
    wrong = client.get("/admin/reports?name=gibt-es-nicht").get_data(as_text=True)
    assert "Bericht: unbekannter Wert" in wrong


# --- terminations put right, a new participation --------------------------------------


def test_a_termination_is_corrected_then_withdrawn_from_the_practice_page(
    site: Site, bernd: Page
) -> None:
    bsnr = site.world.bsnrs[10]
    today = utcnow().astimezone(BERLIN).date()
    bernd.goto(f"{site.base}/admin/practices/{bsnr}")
    bernd.get_by_role("link", name="Kündigung berichtigen").click()
    bernd.get_by_label("Eingang der Kündigung").fill(f"{today - timedelta(days=1):%Y-%m-%d}")
    bernd.get_by_label("Grund der Berichtigung").fill("Eingangsstempel falsch gelesen")
    bernd.get_by_role("button", name="Berichtigen …").click()
    bernd.get_by_role("button", name="Ja, berichtigen").click()
    _flash(bernd, "Kündigung berichtigt; letzter Tag mit Zugang")
    with state(site.app).database.reader() as db:
        practice = db.scalar(select(Practice).where(Practice.bsnr == bsnr))
        assert practice is not None
        assert practice.termination_notice_on == today - timedelta(days=1)

    bernd.get_by_role("link", name="Kündigung zurücknehmen").click()
    bernd.get_by_label("Grund").fill("Praxis bleibt – Nachfolgerin übernimmt doch nicht")
    bernd.get_by_role("button", name="Zurücknehmen …").click()
    bernd.get_by_role("button", name="Ja, zurücknehmen").click()
    _flash(bernd, "Kündigung zurückgenommen.")
    expect(bernd.get_by_role("link", name="Kündigung zurücknehmen")).to_have_count(0)

    with state(site.app).database.reader() as db:
        practice = db.scalar(select(Practice).where(Practice.bsnr == bsnr))
        assert practice is not None and practice.terminated_by is None
    [corrected] = _audit(site, "practice:termination:correct", bsnr)
    [withdrawn] = _audit(site, "practice:termination:withdraw", bsnr)
    assert corrected.actor == withdrawn.actor == "bernd"
    assert json.loads(withdrawn.data)["reason"].startswith("Praxis bleibt")


def test_a_practice_whose_termination_took_effect_takes_part_again(site: Site, bernd: Page) -> None:
    bsnr = site.world.bsnrs[11]
    bernd.goto(f"{site.base}/admin/practices/{bsnr}")
    bernd.get_by_role("link", name="Wieder teilnehmen").click()
    bernd.get_by_role("button", name="Wieder teilnehmen lassen …").click()
    expect(bernd.get_by_text("Bitte ausfüllen.").first).to_be_visible()
    bernd.get_by_label("Angenommene Version der Nutzungsbedingungen").fill("2026-1")
    bernd.get_by_label("angenommen über").select_option(label="Teilnahmeerklärung (Papier)")
    bernd.get_by_label("Grund, z. B. neue Teilnahmeerklärung").fill(
        "Neue Teilnahmeerklärung vom Praxisinhaber unterschrieben"
    )
    expect(bernd.get_by_label("Grund, z. B. neue Teilnahmeerklärung")).to_have_value(
        "Neue Teilnahmeerklärung vom Praxisinhaber unterschrieben"
    )
    bernd.get_by_label("Neuer Yubikey aus dem Lager", exact=False).fill(site.world.serials[30])
    bernd.get_by_role("button", name="Wieder teilnehmen lassen …").click()
    bernd.get_by_role("button", name="Ja, wieder teilnehmen lassen").click()
    _flash(bernd, f"BSNR {bsnr} nimmt wieder teil")

    with state(site.app).database.reader() as db:
        practice = db.scalar(select(Practice).where(Practice.bsnr == bsnr))
        assert practice is not None and practice.terminated_by is None
    [entry] = _audit(site, "practice:record:reactivate", bsnr)
    assert entry.actor == "bernd"


# --- unlock after a false alarm, exceptions -------------------------------------------


def test_a_key_is_unlocked_after_a_false_alarm_and_a_lost_one_stays_retired(
    site: Site, bernd: Page
) -> None:
    misused, lost = site.world.serials[12], site.world.serials[15]
    bernd.goto(f"{site.base}/admin/yubikeys/{misused}")
    bernd.get_by_role("link", name="Entsperren (Fehlalarm)").click()
    expect(bernd.get_by_label(f"der Yubikey {misused}")).to_be_checked()
    bsnr = site.world.bsnrs[12]
    bernd.get_by_label("Grund der Entsperrung").fill("Doch gefunden – in der Schublade")
    bernd.get_by_label("Zur Bestätigung die BSNR eingeben").fill(site.world.bsnrs[15])
    bernd.get_by_role("button", name="Entsperren").click()
    expect(bernd.get_by_text("Die Eingabe stimmt nicht")).to_be_visible()  # another BSNR

    bernd.goto(f"{site.base}/admin/practices/{site.world.bsnrs[15]}/unlock")
    bernd.get_by_label(f"der Yubikey {lost} (als verloren gemeldet: bleibt ausgemustert)").check()
    bernd.get_by_label("Grund der Entsperrung").fill("Doch gefunden – in der Schublade")
    bernd.get_by_label("Zur Bestätigung die BSNR eingeben").fill(site.world.bsnrs[15])
    bernd.get_by_role("button", name="Entsperren").click()
    expect(bernd.get_by_role("alert")).to_contain_text("bleibt ausgemustert")

    bernd.goto(f"{site.base}/admin/practices/{bsnr}/unlock?key={misused}")
    bernd.get_by_label("Grund der Entsperrung").fill("Anmeldungen aus Übersee: Praxis im Urlaub")
    bernd.get_by_label("Zur Bestätigung die BSNR eingeben").fill(bsnr)
    bernd.get_by_role("button", name="Entsperren").click()
    _flash(bernd, f"Yubikey {misused} entsperrt.")

    with state(site.app).database.reader() as db:
        rows = db.execute(
            select(Token.serial, Token.status).where(Token.serial.in_((misused, lost)))
        )
        statuses = dict(rows.all())
    assert statuses == {misused: TokenStatus.ACTIVE, lost: TokenStatus.LOST}
    [entry] = _audit(site, "token:yubikey:unlock", misused)
    assert entry.actor == "bernd"


def test_an_exception_is_ended_early_from_the_list(site: Site, bernd: Page) -> None:
    bsnr = site.world.bsnrs[8]
    bernd.goto(f"{site.base}/admin/exceptions")
    bernd.get_by_role("link", name=f"vorzeitig beenden (BSNR {bsnr})").click()
    bernd.get_by_label("Grund").fill("Nachfolge geplatzt; Vorstandsbeschluss aufgehoben")
    bernd.get_by_role("button", name="Beenden …").click()
    bernd.get_by_role("button", name="Ja, Ausnahme beenden").click()
    _flash(bernd, f"Ausnahme für BSNR {bsnr} beendet")

    with state(site.app).database.reader() as db:
        left = db.scalar(
            select(func.count())
            .select_from(LockException)
            .join(LockException.practice)
            .where(Practice.bsnr == bsnr)
        )
    assert left == 0
    [entry] = _audit(site, "lifecycle:exception:end", bsnr)
    assert entry.actor == "bernd"


# --- requests lead to their action; a colleague's second factor -----------------------


def test_each_request_links_to_the_action_that_fulfils_it(site: Site, anna: FlaskClient) -> None:
    client = anna
    with state(site.app).database.reader() as db:
        rows = db.execute(select(ServiceRequest.kind, ServiceRequest.id))
        kinds = {kind.value: number for kind, number in rows}
    expected = {
        "key_lost": "/replace?why=lost",
        "new_password": "/reissue",
        "new_user": "/users/new",
        "end_of_access": "/terminate",
    }
    for kind, ending in expected.items():
        page = client.get(f"/admin/requests/{kinds[kind]}").get_data(as_text=True)
        assert re.search(rf'class="button" href="[^"]*{re.escape(ending)}"', page), kind


def test_an_admin_resets_a_colleagues_second_factor_with_a_one_time_code(
    site: Site, anna: FlaskClient
) -> None:
    before = signed_in(site.app, "dieter")  # his phone is lost while he is signed in
    admin = anna
    answer = admin.post(
        "/admin/staff/dieter/totp-reset",
        data={"csrf_token": csrf(admin, "/admin/staff"), "confirm": "dieter"},
    ).get_data(as_text=True)
    handed_out = re.search(r'<code class="seed" id="enrolment-code">([A-Z0-9-]+)</code>', answer)
    assert handed_out, answer
    assert before.get("/admin/").status_code == 302  # his sessions ended

    dieter: FlaskClient = site.app.test_client()
    assert password_step(dieter, "dieter", PASSWORD)[0] == 302
    _, after = enrol(dieter, enrolment_code=handed_out.group(1))

    assert after == "/admin/"
    assert dieter.get("/admin/").status_code == 200
    [reset] = _audit(site, "staff:totp:reset", "dieter")
    assert reset.actor == "anna"
    assert handed_out.group(1) not in reset.data  # the code itself is never recorded


def test_a_members_own_exception_is_granted_and_ended_on_his_page(site: Site, bernd: Page) -> None:
    username = "p03-member"
    until = utcnow().astimezone(BERLIN).date() + timedelta(days=90)
    bernd.goto(f"{site.base}/admin/users/{username}")
    bernd.get_by_role("link", name="Ausnahme (§ 10 Abs. 3)").click()
    bernd.get_by_label("Letzter Tag mit Zugang").fill(f"{until:%Y-%m-%d}")
    bernd.get_by_label("Begründung").fill("Übergabe an den Nachfolger Dr. Weiß")
    bernd.get_by_label("Aktenzeichen der Entscheidung").fill("IT-2026/204")
    bernd.get_by_role("button", name="Ausnahme erfassen").click()
    expect(bernd.get_by_text("Bitte ausfüllen.")).to_be_visible()  # who decided is missing
    expect(bernd.get_by_label("Aktenzeichen der Entscheidung")).to_have_value("IT-2026/204")
    bernd.get_by_label("Entschieden von").fill("Vorstand, Beschluss vom 30.11.")
    bernd.get_by_role("button", name="Ausnahme erfassen").click()
    _flash(bernd, f"Ausnahme für {username} bis {until:%d.%m.%Y} erfasst.")

    bernd.goto(f"{site.base}/admin/exceptions")
    bernd.get_by_role("link", name=f"vorzeitig beenden ({username})").click()
    bernd.get_by_label("Grund").fill("Nachfolger hat abgesagt")
    bernd.get_by_role("button", name="Beenden …").click()
    bernd.get_by_role("button", name="Ja, Ausnahme beenden").click()
    _flash(bernd, f"Ausnahme für {username} beendet")

    granted = _audit(site, "lifecycle:exception:grant", username)
    [ended] = _audit(site, "lifecycle:exception:end", username)
    assert [entry.actor for entry in granted] == ["bernd"] and ended.actor == "bernd"


def test_an_admin_gives_a_colleague_a_new_first_password(site: Site, anna: FlaskClient) -> None:
    page = "/admin/staff/dieter/password-reset"
    new = "Neues-Erstkennwort-Ahorn-58"
    assert anna.get(page).status_code == 200

    wrong = anna.post(page, data={"csrf_token": csrf(anna, page), "password": new, "confirm": "x"})
    right = anna.post(
        page, data={"csrf_token": csrf(anna, page), "password": new, "confirm": "Dieter"}
    )

    assert wrong.status_code == 400 and new not in wrong.get_data(as_text=True)
    assert right.status_code == 302
    assert password_step(site.app.test_client(), "dieter", PASSWORD)[0] == 401  # refused
    assert password_step(site.app.test_client(), "dieter", new)[0] == 302
    with state(site.app).database.reader() as db:
        account = db.scalar(select(StaffAccount).where(StaffAccount.username == "dieter"))
        assert account is not None and account.must_change_password
    [entry] = _audit(site, "staff:password:reset", "dieter")
    assert entry.actor == "anna" and new not in entry.data
    own = anna.post(
        "/admin/staff/anna/password-reset",
        data={
            "csrf_token": csrf(anna, "/admin/staff/anna/password-reset"),
            "password": new,
            "confirm": "anna",
        },
    )
    assert own.status_code == 409 and "Kennwort ändern" in own.get_data(as_text=True)


def test_a_key_locked_with_its_practice_is_not_offered_on_its_own(
    site: Site, anna: FlaskClient
) -> None:
    page = anna.get(f"/admin/practices/{site.world.locked_bsnr}/unlock").get_data(as_text=True)

    assert "die Betriebsstätte mit ihren Zugängen" in page
    assert f"der Yubikey {site.world.serials[2]}" not in page
