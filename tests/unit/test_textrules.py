"""The rules for free text people type (``flexnet.textrules``) and the domain services
that apply them: every field is cleaned on the way in, whoever calls (UI, API, CLI)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet.accounts import practices, servicerequests, users
from flexnet.clients import apiclients, nas, profiles
from flexnet.errors import ValidationError
from flexnet.lifecycle import lock_exceptions, locks, returns
from flexnet.models import (
    AuditEntry,
    LockCause,
    Practice,
    RequestKind,
    ReturnCondition,
    StaffRole,
    TerminationBy,
    Token,
    TokenStatus,
    User,
    UserKind,
)
from flexnet.otp import wsapi
from flexnet.radius.packets import load_dictionary
from flexnet.staff import accounts as staff_accounts
from flexnet.textrules import REASON_MAX_LENGTH, clean_line, clean_text, optional_line, visible
from tests.conftest import BOX, NOW, STAFF
from tests.support.yubikeys import SimulatedKey

HOSTILE = {
    "\x00": "Steuerzeichen (U+0000)",
    "\x1b]0;Titel\x07": "Steuerzeichen (U+001B)",
    "\u202eexe.txt": "unsichtbares Formatzeichen (U+202E)",
    "a\u200bb": "unsichtbares Formatzeichen (U+200B)",
    "\ud800": "nicht druckbares Zeichen (U+D800)",
}


@pytest.mark.parametrize(("text", "named"), HOSTILE.items())
def test_a_line_with_control_or_format_characters_is_refused(text: str, named: str) -> None:
    with pytest.raises(ValidationError, match=rf"^Grund enthält ein {re.escape(named)}"):
        clean_line(f"Meldung {text}", field="Grund", max_length=100)


def test_a_line_is_one_line_trimmed_and_composed() -> None:
    typed = "  Meldung\r\nvom\tMorgen\u2028 (Anruf)\n "

    assert clean_line(typed, field="Grund", max_length=100) == "Meldung vom Morgen (Anruf)"
    assert clean_line("Mu\u0308ller", field="Name", max_length=10) == "Müller"  # NFC


def test_length_and_emptiness() -> None:
    assert clean_line("x" * 20, field="Name", max_length=20) == "x" * 20
    with pytest.raises(ValidationError, match="Name ist zu lang: 21 Zeichen, höchstens 20"):
        clean_line("x" * 21, field="Name", max_length=20)
    with pytest.raises(ValidationError, match="Name darf nicht leer sein"):
        clean_line(" \n\t", field="Name", max_length=20)
    assert optional_line(" \n", field="Name", max_length=20) is None
    assert optional_line(None, field="Name", max_length=20) is None


def test_text_keeps_its_lines_as_lf_only() -> None:
    typed = "\r\n  Guten Tag,\r\n\r\nbitte   zurückrufen.\rDanke\u2029Praxis Muster  \r\n\r\n"

    cleaned = clean_text(typed, field="Nachricht", max_length=200, max_lines=10)

    assert cleaned == "Guten Tag,\n\nbitte zurückrufen.\nDanke\nPraxis Muster"
    assert clean_text(" \r\n ", field="Nachricht", max_length=9, max_lines=2, required=False) == ""
    with pytest.raises(ValidationError, match="Nachricht hat zu viele Zeilen"):
        clean_text("a\n" * 11, field="Nachricht", max_length=200, max_lines=10)
    with pytest.raises(ValidationError, match=r"Nachricht enthält ein Steuerzeichen \(U\+001B\)"):
        clean_text("Hallo\n\x1b[2J", field="Nachricht", max_length=200, max_lines=10)


def test_visible_shows_what_would_act() -> None:
    assert visible("Grund \x1b]0;x\x07 \u202eabc\r\n\tok") == (
        "Grund \\x1b]0;x\\x07 \\u202eabc\\x0d\n\tok"
    )
    assert visible("Müller – §") == "Müller – §"
    assert visible(None) == ""


# --- the services ------------------------------------------------------------------------

Call = Callable[[Session, dict[str, Any], str], object]


def _return(session: Session, world: dict[str, Any], text: str) -> object:
    token: Token = world["token"]
    token.status, token.lock_cause = TokenStatus.LOCKED, LockCause.MANUAL
    token.lock_reason, token.locked_at = "Test", NOW
    return returns.record_return(
        session,
        serial=token.serial,
        received_on=date(2026, 11, 23),
        condition=ReturnCondition.GOOD,
        note=text,
        actor=STAFF,
        now=NOW,
    )


def _request(session: Session, world: dict[str, Any], **fields: str) -> object:
    values = {
        "bsnr": world["practice"].bsnr,
        "usernames": "",
        "kind": RequestKind.UNLOCK,
        "contact_person": "Frau Muster",
        "phone": "0391 123456",
        "message": "",
        "source_ip": None,
        "now": NOW,
    }
    return servicerequests.file_request(session, **(values | fields))  # type: ignore[arg-type]


def _terminate(session: Session, world: dict[str, Any], text: str) -> object:
    return locks.terminate(
        session,
        bsnr=world["practice"].bsnr,
        by=TerminationBy.EXTRAORDINARY,
        notice_date=date(2026, 11, 23),
        reason=text,
        actor=STAFF,
        now=NOW,
    )


def _grant(session: Session, world: dict[str, Any], **fields: str) -> object:
    values = {"reason": "Vertretung", "decision_ref": "Az 1", "decided_by": "Vorstand"}
    return lock_exceptions.grant(
        session,
        bsnr=world["practice"].bsnr,
        until=date(2027, 12, 31),
        actor=STAFF,
        now=NOW,
        **(values | fields),
    )


def _practice(session: Session, world: dict[str, Any], **fields: str) -> object:
    values = {"bsnr": "889999900", "name": "Praxis", "street": "Weg 1", "city": "Halle"}
    return practices.add_practice(
        session, zip_code="39104", actor=STAFF, now=NOW, **(values | fields)
    )


def _lock(what: str) -> Call:
    def call(session: Session, world: dict[str, Any], text: str) -> object:
        common = {"cause": LockCause.MISUSE, "reason": text, "actor": STAFF, "now": NOW}
        if what == "user":
            return locks.lock_user(session, username=world["user"].username, **common)
        if what == "key":
            return locks.lock_key(session, serial=world["token"].serial, **common)
        return locks.lock_practice(session, bsnr=world["practice"].bsnr, **common)

    return call


# (field as the message names it, maximum length, the service called with the text)
FIELDS: dict[str, tuple[str, int, Call]] = {
    "lock user": ("Grund", REASON_MAX_LENGTH, _lock("user")),
    "lock key": ("Grund", REASON_MAX_LENGTH, _lock("key")),
    "lock practice": ("Grund", REASON_MAX_LENGTH, _lock("practice")),
    "unlock user": (
        "Grund",
        REASON_MAX_LENGTH,
        lambda s, w, t: locks.unlock_user(
            s, username=w["locked"].username, reason=t, actor=STAFF, now=NOW
        ),
    ),
    "termination": ("Grund", REASON_MAX_LENGTH, _terminate),
    "exception reason": ("Begründung", 1000, lambda s, w, t: _grant(s, w, reason=t)),
    "exception ref": ("Aktenzeichen", 100, lambda s, w, t: _grant(s, w, decision_ref=t)),
    "exception by": ("Entschieden von", 200, lambda s, w, t: _grant(s, w, decided_by=t)),
    "practice name": ("Name", 200, lambda s, w, t: _practice(s, w, name=t)),
    "practice street": ("Straße", 200, lambda s, w, t: _practice(s, w, street=t)),
    "practice extra": ("Adresszusatz", 200, lambda s, w, t: _practice(s, w, address_extra=t)),
    "user name": (
        "Name",
        200,
        lambda s, w, t: users.create_user(
            s,
            username="neu",
            bsnr=w["practice"].bsnr,
            kind=UserKind.STAFF,
            name=t,
            actor=STAFF,
            now=NOW,
        ),
    ),
    "staff name": (
        "Name",
        200,
        lambda s, w, t: staff_accounts.add_staff(
            s,
            username="kollegin",
            role=StaffRole.HELPDESK,
            password="Lange-Dienst-Kennwort-42",
            name=t,
            actor=STAFF,
            now=NOW,
        ),
    ),
    "request contact": ("Ansprechpartner", 200, lambda s, w, t: _request(s, w, contact_person=t)),
    "request users": ("Benutzer", 500, lambda s, w, t: _request(s, w, usernames=t)),
    "return note": ("Anmerkung", 200, _return),
    "nas name": (
        "Name",
        100,
        lambda s, w, t: nas.add_nas(
            s, name=t, address="192.0.2.10", secret="s" * 32, box=BOX, actor=STAFF, now=NOW
        ),
    ),
    "api client name": (
        "Name",
        100,
        lambda s, w, t: apiclients.add_client(s, name=t, require_otp=False, actor=STAFF, now=NOW),
    ),
    "wsapi client name": (
        "Name",
        100,
        lambda s, w, t: wsapi.add_client(s, name=t, box=BOX, actor=STAFF, now=NOW),
    ),
    "profile description": (
        "Beschreibung",
        200,
        lambda s, w, t: profiles.set_profile(
            s, name="praxis", attributes=[], description=t, actor=STAFF, now=NOW
        ),
    ),
}


@pytest.fixture
def world(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
) -> dict[str, Any]:
    practice = make_practice()
    user = make_user(practice=practice)
    locked = make_user(practice=practice)
    users.lock_one(session, user=locked, cause=LockCause.MISUSE, reason="x", actor=STAFF, now=NOW)
    token, _ = make_yubikey(practice=practice)
    return {"practice": practice, "user": user, "locked": locked, "token": token}


@pytest.mark.parametrize("case", FIELDS)
def test_every_service_refuses_control_and_bidi_characters(
    session: Session, world: dict[str, Any], case: str
) -> None:
    field, _, call = FIELDS[case]

    for text in ("Text \x1b]0;Titel\x07", "Text \u202etxt.exe", "Text\x00"):
        with pytest.raises(ValidationError, match=rf"^{field} enthält ein "):
            call(session, world, text)


@pytest.mark.parametrize("case", FIELDS)
def test_every_service_keeps_one_line_and_a_maximum_length(
    session: Session, world: dict[str, Any], case: str
) -> None:
    field, longest, call = FIELDS[case]

    with pytest.raises(ValidationError, match=rf"^{field} ist zu lang: {longest + 1} Zeichen"):
        call(session, world, "x" * (longest + 1))
    kept = call(session, world, "Zeile eins\r\nZeile\tzwei\n")
    session.flush()
    assert kept is not None  # held, so that the new rows stay in the identity map

    texts = _texts(session)
    assert any("Zeile eins Zeile zwei" in text for text in texts)
    assert not any(broken in text for text in texts for broken in ("eins\r", "eins\n", "eins\\"))


def _texts(session: Session) -> list[str]:
    """Every text attribute of every row the session holds, and the audit data (where a
    return note is kept)."""
    found = [v for obj in session.identity_map.values() for v in vars(obj).values()]
    found += list(session.scalars(select(AuditEntry.data)))
    return [value for value in found if isinstance(value, str)]


def test_a_request_message_keeps_its_lines_with_lf_only(
    session: Session, world: dict[str, Any]
) -> None:
    request = _request(session, world, message="Guten Tag,\r\n\r\nbitte Rückruf.\r\n")

    assert request.message == "Guten Tag,\n\nbitte Rückruf."  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="Nachricht enthält ein Steuerzeichen"):
        _request(session, world, message="Hallo\x1b[2J")


def test_a_reply_attribute_value_is_one_line_of_printable_text() -> None:
    dictionary = load_dictionary()

    assert profiles.parse_attributes(["Filter-Id = praxis "], dictionary) == [
        ["Filter-Id", "praxis"]
    ]
    with pytest.raises(ValidationError, match=r"^Wert von Filter-Id enthält ein Steuerzeichen"):
        profiles.parse_attributes(["Filter-Id=pra\x1bxis"], dictionary)
    with pytest.raises(ValidationError, match=r"^Wert von Class enthält ein Steuerzeichen"):
        profiles.parse_attributes(["Class=a\x00b"], dictionary)
