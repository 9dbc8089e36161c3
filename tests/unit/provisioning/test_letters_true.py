"""A new-password letter says what is true about the Yubikey: in the weeks a key was
replaced it names the replacement instead of "Benutzername und Yubikey bleiben
unverändert"; otherwise it claims nothing about the key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy.orm import Session

from flexnet.models import Practice, TokenStatus, User
from flexnet.provisioning import issuance
from flexnet.provisioning.issuance import Replacement
from tests.conftest import NOW, STAFF
from tests.support.pdf import page_texts
from tests.unit.provisioning.test_mailruns import MakeKey, dispatch, run

REPLACED = date(2026, 11, 23)  # NOW's day, a Monday
THREE_WORKING_DAYS_LATER = date(2026, 11, 26)


def password_texts(pdf: bytes) -> dict[str, str]:
    texts = [" ".join(page.split()) for page in page_texts(pdf)]
    return {
        name: text
        for text in texts
        if "Ihr neues Kennwort" in text
        for name in ("Praxis Ersetzt", "Praxis Gleich")
        if name in text
    }


def test_a_new_password_in_the_weeks_of_a_replacement_names_it_and_never_claims_the_same_key(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: MakeKey,
) -> None:
    replaced = make_practice(name="Praxis Ersetzt")
    same = make_practice(name="Praxis Gleich")
    for practice, username in ((replaced, "ersetzt"), (same, "gleich")):
        make_yubikey(practice=practice)
        make_user(practice=practice, username=username, migrated_password="Sommer-Regen-2026!")
    spare, _ = make_yubikey(status=TokenStatus.STOCK)
    issuance.replace_key(
        session,
        bsnr=replaced.bsnr,
        new_serial=spare.serial,
        why=Replacement.DEFECTIVE,
        at_once=True,
        fee_cents=0,
        actor=STAFF,
        now=NOW,
    )
    key_run, _ = run(session, REPLACED)
    dispatch(session, key_run, REPLACED)
    for username in ("ersetzt", "gleich"):
        issuance.reissue_password(session, username=username, at_once=True, actor=STAFF, now=NOW)

    _, pdf = run(session, THREE_WORKING_DAYS_LATER)

    texts = password_texts(pdf)
    assert set(texts) == {"Praxis Ersetzt", "Praxis Gleich"}
    for text in texts.values():
        assert "Benutzername und Yubikey bleiben unverändert" not in text
        assert "Ihr Benutzername bleibt unverändert" in text
        assert spare.serial not in text  # § 3.2: never a serial on a password letter
    assert "Ihr Yubikey wurde am 23.11.2026 ersetzt" in texts["Praxis Ersetzt"]
    assert "ersetzt" not in texts["Praxis Gleich"].replace("Praxis Ersetzt", "")
