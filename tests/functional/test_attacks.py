"""Attacks from outside, over real HTTP against a served app, from many client addresses
(``X-Forwarded-For`` behind ``FLEXNET_PROXIES=1``, as nginx passes them): no stranger
keeps staff or a practice out, and guessing stays bounded. SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.accounts import servicerequests, users
from flexnet.authn import passwords
from flexnet.clients import apiclients
from flexnet.db import utcnow
from flexnet.models import AuthEvent, ServiceRequest, StaffAccount, StaffRole, TokenStatus
from flexnet.otp import importer, stock
from flexnet.staff import accounts as staff_accounts
from flexnet.staff import signin
from flexnet.web import state
from tests.conftest import BOX, STAFF
from tests.functional.test_cli_keys import ykman_line
from tests.support.admin import PASSWORD, add_staff, enrolment_code
from tests.support.http import Visitor
from tests.support.seed import add_login
from tests.support.web import served
from tests.support.yubikeys import SimulatedKey

BSNR = "881234500"
USER_PASSWORD = "Sommer-Regen-2026!"


ADMIN_KEY = "7000009"


@dataclass(frozen=True)
class Site:
    app: Flask
    base: str
    admin_key: SimulatedKey  # anna's Yubikey: her second factor
    helpdesk_api_key: str
    practice_key: SimulatedKey  # the practice's Yubikey (user emuster)

    def visitor(self, address: str) -> Visitor:
        return Visitor(self.base, address)

    def admin(self, address: str = "10.9.9.9") -> Visitor:
        """anna, signed in with her Yubikey."""
        visitor = self.visitor(address)
        assert visitor.staff_password_step("anna", PASSWORD) == 302
        assert visitor.post("/admin/login/code", code=self.admin_key.otp()).status_code == 302
        return visitor

    def practice_user(self, address: str) -> Visitor:
        """emuster, logged in to the self-service."""
        visitor = self.visitor(address)
        answer = visitor.post(
            "/self-service/login",
            username="emuster",
            password=USER_PASSWORD,
            otp=self.practice_key.otp(),
        )
        assert answer.status_code == 302, answer.text
        return visitor


@pytest.fixture
def site(env: dict[str, str], database_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", database_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    monkeypatch.setenv("FLEXNET_PROXIES", "1")
    app = create_app()
    admin_key = SimulatedKey.random()
    with state(app).database.session() as db:
        add_staff(db, "anna", StaffRole.ADMIN)
        add_staff(db, "bernd", StaffRole.HELPDESK)
        # Set two days ago: a voluntary change is allowed (minimum age one day).
        practice_key = add_login(
            db,
            BOX,
            bsnr=BSNR,
            username="emuster",
            password=USER_PASSWORD,
            now=utcnow() - timedelta(days=2),
        )
        importer.import_keys(
            db,
            importer.parse(ykman_line(ADMIN_KEY, admin_key).encode()),
            box=BOX,
            actor=STAFF,
            now=utcnow(),
        )
        anna = staff_accounts.get_staff(db, "anna")
        stock.assign_to_staff(db, serial=ADMIN_KEY, staff=anna, actor=STAFF, now=utcnow())
        _, api_key = apiclients.add_client(
            db, name="Portal", require_otp=True, role=StaffRole.HELPDESK, actor=STAFF, now=utcnow()
        )
    with served(app) as base:
        yield Site(app, base, admin_key, api_key, practice_key)
    state(app).database.dispose()


# --- item 10: no stranger keeps staff out of /admin ------------------------------------


def test_wrong_passwords_from_one_address_never_keep_the_owner_out(site: Site) -> None:
    stranger = site.visitor("203.0.113.7")
    answers = Counter(stranger.staff_password_step("anna", f"Rate-mal-{n}") for n in range(40))

    owner = site.visitor("10.1.2.3").staff_password_step("anna", PASSWORD)

    assert owner == 302
    # Five guesses were checked; the rest were refused unchecked, at no cost.
    assert answers == {401: signin.MAX_PER_ACCOUNT_AND_SOURCE, 429: 35}
    assert stranger.staff_password_step("anna", PASSWORD) == 429  # not even the right one


def test_wrong_passwords_from_many_addresses_never_keep_the_owner_out(site: Site) -> None:
    addresses = [f"203.0.113.{n}" for n in range(1, 21)]
    answers: Counter[int] = Counter()
    for address in addresses:
        stranger = site.visitor(address)
        answers.update(
            stranger.staff_password_step("anna", f"Rate-{address}-{n}") for n in range(5)
        )

    owner = site.visitor("10.1.2.3").staff_password_step("anna", PASSWORD)

    assert owner == 302
    # Bounded: guesses are checked freely up to the account's alarm, beyond it each further
    # address gets only a few.
    alarm_reached_after = signin.ACCOUNT_ALARM // signin.MAX_PER_ACCOUNT_AND_SOURCE
    later = len(addresses) - alarm_reached_after
    assert answers[401] == signin.ACCOUNT_ALARM + later * signin.PER_SOURCE_UNDER_ALARM
    assert answers[401] + answers[429] == 100


# --- item 12: failed staff sign-in steps leave a trace staff can see ------------------


def test_failed_staff_sign_in_steps_are_on_the_audit_page_without_the_secret(
    site: Site,
) -> None:
    stranger = site.visitor("203.0.113.7")
    for n in range(signin.MAX_PER_ACCOUNT_AND_SOURCE + 3):
        stranger.staff_password_step("bernd", f"Geheim-Versuch-{n}")
    stranger.staff_password_step("niemand", "Geheim-Versuch-X")
    owner = site.visitor("10.1.2.3")
    owner.staff_password_step("bernd", PASSWORD)
    owner.staff_enrol(enrolment_code(site.app, "bernd"))
    careless = site.visitor("10.1.2.4")
    careless.staff_password_step("bernd", PASSWORD)
    wrong_code = careless.post("/admin/login/code", code="000000").status_code

    page = site.admin().get("/admin/audit?tag=staff:session:fail").text

    assert wrong_code == 401
    rows = [row for row in page.split("<tr>") if "staff:session:fail" in row]
    # The reasons as the page shows them (German, loglabels).
    assert sum("bernd" in row and "Kennwort falsch" in row for row in rows) == 5
    assert sum("bernd" in row and "zu viele Versuche" in row for row in rows) == 1  # not three
    assert all("203.0.113.7" in row for row in rows if "Kennwort falsch" in row)
    assert any("unbekannt:" in row and "unbekanntes Konto" in row for row in rows)
    assert any("bernd" in row and "Code falsch" in row and "10.1.2.4" in row for row in rows)
    assert "Geheim-Versuch" not in page and "niemand" not in page


# --- item 11: nobody strips a staff member's second factor, the password never enrols --


def test_a_helpdesk_api_key_cannot_lock_an_admins_staff_yubikey(site: Site) -> None:
    locked = requests.post(
        f"{site.base}/api/v1/locks",
        json={"what": "key", "id": ADMIN_KEY, "cause": "manual", "reason": "Versuch"},
        headers={"Authorization": f"Bearer {site.helpdesk_api_key}"},
        timeout=30,
    )

    assert locked.status_code == 409
    assert "Mitarbeiter" in locked.json()["detail"]
    with state(site.app).database.reader() as db:
        assert stock.get_token(db, ADMIN_KEY).status is TokenStatus.ACTIVE
    site.admin()  # her key still answers the second step


def test_the_password_alone_never_enrols_a_second_factor(site: Site) -> None:
    thief = site.visitor("203.0.113.7")
    assert thief.staff_password_step("bernd", PASSWORD) == 302  # the password is known

    without_code = thief.staff_enrol_attempt(enrolment_code="")
    assert without_code.status_code == 400
    guessed = thief.staff_enrol_attempt(enrolment_code="ABCD-EFGH-JKMN-PQRS-TVWX")
    assert guessed.status_code == 401 and "Einrichtungscode" in guessed.text
    assert thief.get("/admin/").status_code == 302  # still not signed in
    with state(site.app).database.reader() as db:
        bernd = db.query(StaffAccount).filter_by(username="bernd").one()
        assert bernd.totp_enrolled_at is None


# --- item 13: the current password cannot be guessed in the self-service ---------------

NEW_PASSWORD = "Neues-Wort-Tulpe-93"


def change(visitor: Visitor, old: str, new: str = NEW_PASSWORD) -> tuple[int, list[str]]:
    """The answer to a password change: status and the problems named on the page."""
    answer = visitor.post("/self-service/password", old=old, new=new, repeat=new)
    return answer.status_code, re.findall(r'<p class="error" role="alert">([^<]*)</p>', answer.text)


def test_the_current_password_cannot_be_guessed_in_the_self_service(site: Site) -> None:
    user = site.practice_user("198.51.100.20")
    threshold = state(site.app).settings.auth.lockout_threshold

    answers = Counter(change(user, f"Rate-mal-{n}")[0] for n in range(40))
    right = change(user, USER_PASSWORD)

    assert answers == {400: threshold, 429: 40 - threshold}
    assert right[0] == 429 and "Zu viele" in right[1][0]  # not even the right one
    with state(site.app).database.reader() as db:  # unchanged
        assert passwords.verify(USER_PASSWORD, users.get_user(db, "emuster").password_hash).ok
        # Each guess that was checked is in the login log staff read, with its address.
        guesses = db.execute(
            select(AuthEvent.channel, AuthEvent.reason, AuthEvent.source_ip).where(
                AuthEvent.username == "emuster", AuthEvent.outcome == "reject"
            )
        ).all()
    assert guesses == [("self_service", "password_wrong", "198.51.100.20")] * threshold


def test_a_refused_change_does_not_tell_whether_the_old_password_was_right(
    site: Site,
) -> None:
    user = site.practice_user("198.51.100.21")

    for new in ("kurz", USER_PASSWORD):  # against the policy; the current one again
        wrong_old, right_old = (
            change(user, "Falsch-geraten-1", new),
            change(user, USER_PASSWORD, new),
        )
        assert wrong_old == right_old and wrong_old[0] == 400, new


def staff_change(visitor: Visitor, old: str, new: str) -> tuple[int, list[str]]:
    answer = visitor.post("/admin/password", old=old, new=new, repeat=new)
    return answer.status_code, re.findall(r'<p class="error" role="alert">([^<]*)</p>', answer.text)


def test_a_refused_staff_password_change_does_not_tell_whether_the_old_one_was_right(
    site: Site,
) -> None:
    admin = site.admin()

    for new in ("kurz", PASSWORD):  # against the policy; the current one again
        wrong_old, right_old = (
            staff_change(admin, "Falsch-geraten-1", new),
            staff_change(admin, PASSWORD, new),
        )
        assert wrong_old == right_old and wrong_old[0] == 400, new
    guesses = Counter(staff_change(admin, f"Rate-{n}", NEW_PASSWORD)[0] for n in range(10))
    assert guesses[429] > 0 and guesses[400] <= signin.MAX_PER_ACCOUNT_AND_SOURCE


# --- item 17 (part): an overlong password is a form error, never a server error ---------

OVERLONG = "Ä" * 4100  # 8200 bytes in UTF-8, 4100 characters: more than argon2 takes


def errors_of(page: str) -> list[str]:
    return re.findall(r'<p class="error"[^>]*>([^<]*)</p>', page)


def test_an_overlong_password_is_a_clear_form_error_on_every_password_form(site: Site) -> None:
    login = site.visitor("10.2.0.1").post("/admin/login", username="anna", password=OVERLONG)
    admin = site.admin()
    staff_old = admin.post("/admin/password", old=OVERLONG, new=NEW_PASSWORD, repeat=NEW_PASSWORD)
    staff_new = admin.post("/admin/password", old=PASSWORD, new=OVERLONG, repeat=OVERLONG)
    user = site.practice_user("10.2.0.2")
    own_old = user.post(
        "/self-service/password", old=OVERLONG, new=NEW_PASSWORD, repeat=NEW_PASSWORD
    )
    own_new = user.post("/self-service/password", old=USER_PASSWORD, new=OVERLONG, repeat=OVERLONG)
    self_login = site.visitor("10.2.0.3").post(
        "/self-service/login", username="emuster", password=OVERLONG, otp=site.practice_key.otp()
    )

    assert login.status_code == 400 and 'value="anna"' in login.text
    for answer in (login, staff_old, staff_new, own_old, own_new, self_login):
        assert answer.status_code == 400, answer.text
        assert any("zu lang" in error for error in errors_of(answer.text)), answer.text
    with state(site.app).database.reader() as db:  # nothing changed
        assert passwords.verify(USER_PASSWORD, users.get_user(db, "emuster").password_hash).ok


# --- item 18: nobody silences a practice's request form ---------------------------------

REQUEST = {
    "bsnr": BSNR,
    "usernames": "emuster",
    "kind": "new_password",
    "contact_person": "Erika Muster",
    "phone": "0391 123456",
    "message": "Kennwort vergessen",
}


def file_request(visitor: Visitor, **changes: str) -> int:
    return visitor.post("/requests/new", **{**REQUEST, **changes}).status_code


def test_strangers_cannot_silence_a_practices_request_form(site: Site) -> None:
    stranger = site.visitor("203.0.113.50")
    from_one = [file_request(stranger) for _ in range(6)]
    from_many = [file_request(site.visitor(f"203.0.113.{n}")) for n in range(60, 70)]

    practice = file_request(site.visitor("192.0.2.44"))

    assert practice == 200
    per_source = servicerequests.PER_BSNR_PER_SOURCE_PER_HOUR
    assert from_one == [200] * per_source + [429] * (6 - per_source)  # bounded per source
    assert from_many == [200] * 10
    assert file_request(stranger, bsnr="881234577") == 200  # other BSNRs: the source's limit
    with state(site.app).database.reader() as db:  # staff see every request filed
        assert db.scalar(select(func.count()).select_from(ServiceRequest)) == per_source + 12


def self_lock(visitor: Visitor, password: str) -> int:
    return visitor.post(
        "/self-service/lock", username="emuster", password=password, target="account"
    ).status_code


def test_a_stranger_cannot_keep_a_user_from_locking_their_own_access(site: Site) -> None:
    """The same class as items 10 and 18: the password-only counter was kept per username
    alone, so anyone who knew it paused the self-lock (MD § 5(5)) for its owner."""
    stranger = site.visitor("203.0.113.80")
    tries = [self_lock(stranger, f"Rate-mal-{n}") for n in range(12)]

    owner = self_lock(site.visitor("192.0.2.44"), USER_PASSWORD)

    assert owner == 200
    assert tries == [400] * 12  # the same answer, throttled or not
    with state(site.app).database.reader() as db:
        assert users.get_user(db, "emuster").status.value == "locked"
