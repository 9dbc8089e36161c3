"""Issuance and mail runs: split shipment, passwords only on paper, cancel and reprint."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flexnet.accounts import practices as practices_service
from flexnet.accounts import users
from flexnet.authn import passwords, pipeline
from flexnet.authn.pipeline import Channel, Client, Outcome
from flexnet.config import AuthSettings, ExpiredPasswordMode, Settings, parse_master_key
from flexnet.errors import ConflictError, NotFoundError, ValidationError
from flexnet.models import (
    AuditEntry,
    Letter,
    LetterKind,
    LockCause,
    MailRunStatus,
    Practice,
    Token,
    TokenStatus,
    User,
    UserKind,
)
from flexnet.provisioning import issuance, mailruns, returnmail
from flexnet.provisioning.issuance import Replacement
from tests.conftest import BOX, NOW, STAFF, TEST_MASTER_KEY
from tests.support.pdf import page_texts, printed_credentials
from tests.support.yubikeys import SimulatedKey

SETTINGS = Settings(
    instance_path=Path("/nonexistent"),
    database_url=URL.create("sqlite"),
    secret_key="s" * 32,
    master_key=parse_master_key(TEST_MASTER_KEY),
    auth=AuthSettings(expired_password_mode=ExpiredPasswordMode.RESTRICTED),
)
TEMPLATES = mailruns.templates_for(SETTINGS)
NAS = Client(Channel.RADIUS, "test-nas", "198.51.100.7")
MONDAY = date(2027, 1, 4)  # Wednesday 6 January is a holiday in Sachsen-Anhalt
FEE_CENTS = 6000

MakeKey = Callable[..., tuple[Token, SimulatedKey]]


def run(session: Session, today: date) -> tuple[mailruns.ProducedRun | None, bytes]:
    out = io.BytesIO()
    produced = mailruns.produce_run(
        session,
        today=today,
        out=out,
        templates=TEMPLATES,
        settings=SETTINGS,
        actor=STAFF,
        now=NOW,
    )
    return produced, out.getvalue()


def due_kinds(session: Session, today: date) -> list[LetterKind]:
    return [letter.kind for letter in mailruns.due_letters(session, today=today, delay_days=3).due]


def dispatch(session: Session, produced: mailruns.ProducedRun | None, on: date) -> None:
    assert produced is not None
    mailruns.confirm_dispatch(
        session, run_id=produced.run.id, dispatched_on=on, today=on, actor=STAFF, now=NOW
    )


def login(session: Session, username: str, password: str, otp: str) -> pipeline.Decision:
    return pipeline.Authenticator(SETTINGS, BOX).authenticate(
        session,
        username=username,
        password=password,
        otp=otp,
        client=NAS,
        now=NOW + timedelta(days=1),
    )


def onboard(
    session: Session, practice: Practice, make_yubikey: MakeKey, username: str = "emuster"
) -> tuple[User, Token, SimulatedKey]:
    token, key = make_yubikey(status=TokenStatus.STOCK)
    user, _ = issuance.add_user(
        session,
        username=username,
        bsnr=practice.bsnr,
        kind=UserKind.STAFF,
        name="Erika Muster",
        actor=STAFF,
        now=NOW,
    )
    issuance.issue_key(session, serial=token.serial, bsnr=practice.bsnr, actor=STAFF, now=NOW)
    return user, token, key


def test_key_letter_first_then_credentials_after_three_working_days(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    practice = make_practice()
    user, token, key = onboard(session, practice, make_yubikey)

    held = mailruns.due_letters(session, today=MONDAY, delay_days=3).waiting
    key_run, key_pdf = run(session, MONDAY)
    dispatch(session, key_run, MONDAY)
    too_early = due_kinds(session, date(2027, 1, 7))  # Tuesday, (holiday), Thursday: two days
    credentials_run, credentials_pdf = run(session, date(2027, 1, 8))

    assert [w.reason for w in held] == [
        "Begleitschreiben mit dem Yubikey noch nicht versandt (§ 3.2)"
    ]
    key_text = "\n".join(page_texts(key_pdf))
    assert token.serial in key_text and practice.bsnr in key_text
    assert "Kennwort:" not in key_text and printed_credentials(key_pdf) == {}
    assert token.status is TokenStatus.SHIPPED
    assert too_early == []
    assert credentials_run is not None and credentials_run.security_pages >= 1
    printed = printed_credentials(credentials_pdf)
    assert list(printed) == [user.username]
    text = "\n".join(page_texts(credentials_pdf))
    assert token.serial not in text and (token.public_id or "?") not in text
    password = printed[user.username]
    assert passwords.verify(password, user.password_hash).ok
    assert passwords.policy_violations(password, personal=[user.username]) == []
    assert user.password_must_change
    assert login(session, user.username, password, key.otp()).outcome is Outcome.ACCEPT


def test_nothing_is_shipped_without_accepted_terms(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    onboard(session, make_practice(terms=False), make_yubikey)

    listing = mailruns.due_letters(session, today=MONDAY, delay_days=3)
    produced, pdf = run(session, MONDAY)

    assert listing.due == [] and produced is None and pdf == b""
    assert {w.reason for w in listing.waiting} == {"Nutzungsbedingungen nicht angenommen (§ 1.3)"}


def test_a_key_in_use_lets_credentials_go_at_once_in_print_order(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: MakeKey,
) -> None:
    practice = make_practice()
    make_yubikey(practice=practice)  # active: the practice has had its key for long
    issuance.add_user(
        session, username="neu", bsnr=practice.bsnr, kind=UserKind.STAFF, actor=STAFF, now=NOW
    )
    other = make_practice()
    spare, _ = make_yubikey(status=TokenStatus.STOCK)
    issuance.issue_key(session, serial=spare.serial, bsnr=other.bsnr, actor=STAFF, now=NOW)

    # Plain paper first, then the security paper, whatever order they were queued in.
    assert due_kinds(session, MONDAY) == [LetterKind.KEY, LetterKind.CREDENTIALS]


def test_cancelled_run_invalidates_its_passwords(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    user, _, key = onboard(session, make_practice(), make_yubikey)
    dispatch(session, run(session, MONDAY)[0], MONDAY)
    produced, pdf = run(session, date(2027, 1, 8))
    assert produced is not None
    password = printed_credentials(pdf)[user.username]

    mailruns.cancel_run(session, run_id=produced.run.id, actor=STAFF, now=NOW)

    assert user.password_hash is None
    assert login(session, user.username, password, key.otp()).outcome is Outcome.REJECT
    assert produced.run.status is MailRunStatus.CANCELLED
    assert due_kinds(session, date(2027, 1, 8)) == [LetterKind.CREDENTIALS]
    with pytest.raises(ConflictError, match="bereits abgeschlossen"):
        dispatch(session, produced, date(2027, 1, 8))


def test_reprint_gives_a_new_password_and_the_old_one_stops(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    user, _, key = onboard(session, make_practice(), make_yubikey)
    dispatch(session, run(session, MONDAY)[0], MONDAY)
    produced, pdf = run(session, date(2027, 1, 8))
    assert produced is not None
    old = printed_credentials(pdf)[user.username]
    letter = next(one for one in produced.run.letters if one.kind is LetterKind.CREDENTIALS)

    out = io.BytesIO()
    mailruns.reprint(
        session,
        letter_id=letter.id,
        out=out,
        templates=TEMPLATES,
        settings=SETTINGS,
        today=date(2027, 1, 8),
        actor=STAFF,
        now=NOW,
    )
    new = printed_credentials(out.getvalue())[user.username]

    assert new != old
    assert login(session, user.username, old, key.otp()).outcome is Outcome.REJECT
    assert login(session, user.username, new, key.otp()).outcome is Outcome.ACCEPT
    trail = " ".join(str(entry.data) for entry in session.scalars(select(AuditEntry)))
    assert "letter:letter:reprint" in {e.tag for e in session.scalars(select(AuditEntry))}
    assert old not in trail and new not in trail


def test_reissue_on_first_use_keeps_the_old_password_until_the_new_one_is_used(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: MakeKey,
) -> None:
    practice = make_practice()
    _, key = make_yubikey(practice=practice)
    user = make_user(practice=practice, username="alt", migrated_password="Sommer-Regen-2026!")
    issuance.reissue_password(session, username="alt", at_once=False, actor=STAFF, now=NOW)
    with pytest.raises(ConflictError, match="bereits ein Kennwortbrief"):
        issuance.reissue_password(session, username="alt", at_once=True, actor=STAFF, now=NOW)
    _, pdf = run(session, MONDAY)
    new = printed_credentials(pdf)["alt"]

    before = login(session, "alt", "Sommer-Regen-2026!", key.otp())
    first_use = login(session, "alt", new, key.otp())
    after = login(session, "alt", "Sommer-Regen-2026!", key.otp())

    assert before.outcome is Outcome.ACCEPT
    assert first_use.outcome is Outcome.ACCEPT and first_use.profile == "password-change"
    assert after.outcome is Outcome.REJECT
    assert user.next_password_hash is None and user.password_must_change


def test_lost_key_is_replaced_with_fee_and_stops_at_once(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    practice = make_practice()
    old, _ = make_yubikey(practice=practice)
    new, _ = make_yubikey(status=TokenStatus.STOCK)

    queued = issuance.replace_key(
        session,
        bsnr=practice.bsnr,
        new_serial=new.serial,
        why=Replacement.LOST,
        at_once=False,  # ignored: a lost key never keeps working
        fee_cents=FEE_CENTS,
        actor=STAFF,
        now=NOW,
    )
    _, pdf = run(session, MONDAY)

    assert old.status is TokenStatus.LOST and new.status is TokenStatus.ASSIGNED
    assert [letter.kind for letter in queued] == [LetterKind.KEY, LetterKind.LOSS_CONFIRMATION]
    assert queued[1].fee_cents == FEE_CENTS
    text = "\n".join(page_texts(pdf))
    assert "60,00" in text and old.serial in text and new.serial in text


def test_defective_key_replaced_on_first_use_retires_with_the_new_ones_first_otp(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: MakeKey,
) -> None:
    practice = make_practice()
    old, old_key = make_yubikey(practice=practice)
    new, new_key = make_yubikey(status=TokenStatus.STOCK)
    make_user(practice=practice, username="praxis", migrated_password="Sommer-Regen-2026!")

    issuance.replace_key(
        session,
        bsnr=practice.bsnr,
        new_serial=new.serial,
        why=Replacement.DEFECTIVE,
        at_once=False,
        fee_cents=FEE_CENTS,
        actor=STAFF,
        now=NOW,
    )
    still = login(session, "praxis", "Sommer-Regen-2026!", old_key.otp())
    first = login(session, "praxis", "Sommer-Regen-2026!", new_key.otp())
    session.refresh(old)
    then = login(session, "praxis", "Sommer-Regen-2026!", old_key.otp())

    assert still.outcome is Outcome.ACCEPT and first.outcome is Outcome.ACCEPT
    assert old.status is TokenStatus.RETIRED and new.status is TokenStatus.ACTIVE
    assert then.outcome is Outcome.REJECT


def test_dispatch_date_must_be_real(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    onboard(session, make_practice(), make_yubikey)
    produced, _ = run(session, MONDAY)
    assert produced is not None

    with pytest.raises(ValidationError, match="Zukunft"):
        mailruns.confirm_dispatch(
            session,
            run_id=produced.run.id,
            dispatched_on=MONDAY + timedelta(days=1),
            today=MONDAY,
            actor=STAFF,
            now=NOW,
        )
    with pytest.raises(ValidationError, match="erst am"):
        dispatch(session, produced, MONDAY - timedelta(days=1))


def test_a_failed_render_changes_no_password(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: MakeKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    practice = make_practice()
    make_yubikey(practice=practice)
    user = make_user(practice=practice, username="alt", migrated_password="Sommer-Regen-2026!")
    issuance.reissue_password(session, username="alt", at_once=True, actor=STAFF, now=NOW)
    session.commit()
    before = user.password_hash

    def broken(*args: object, **kwargs: object) -> list[int]:
        raise OSError("printer spool full")

    monkeypatch.setattr(mailruns.render, "render", broken)
    with pytest.raises(OSError, match="spool"):
        run(session, MONDAY)
    session.rollback()

    session.refresh(user)
    assert user.password_hash == before
    assert due_kinds(session, MONDAY) == [LetterKind.NEW_PASSWORD]


def test_a_key_tried_before_its_letter_left_does_not_release_the_password(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    user, token, key = onboard(session, make_practice(), make_yubikey)
    login(session, "nobody", "x" * 12, key.otp())  # any valid OTP activates the key

    listing = mailruns.due_letters(session, today=MONDAY, delay_days=3)

    assert token.status is TokenStatus.ACTIVE
    assert [letter.kind for letter in listing.due] == [LetterKind.KEY]
    assert [w.letter.user for w in listing.waiting] == [user]


def test_cancelling_an_old_run_spares_a_later_letters_password(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    user, _, key = onboard(session, make_practice(), make_yubikey)
    dispatch(session, run(session, MONDAY)[0], MONDAY)
    first, _ = run(session, date(2027, 1, 8))
    assert first is not None
    letter = next(one for one in first.run.letters if one.kind is LetterKind.CREDENTIALS)
    out = io.BytesIO()
    mailruns.reprint(
        session,
        letter_id=letter.id,
        out=out,
        templates=TEMPLATES,
        settings=SETTINGS,
        today=date(2027, 1, 8),
        actor=STAFF,
        now=NOW,
    )
    reprinted = printed_credentials(out.getvalue())[user.username]
    issuance.reissue_password(session, username=user.username, at_once=False, actor=STAFF, now=NOW)
    second, pdf = run(session, date(2027, 1, 8))
    assert second is not None
    newest = printed_credentials(pdf)[user.username]

    mailruns.cancel_run(session, run_id=second.run.id, actor=STAFF, now=NOW)

    assert login(session, user.username, newest, key.otp()).outcome is Outcome.REJECT
    assert login(session, user.username, reprinted, key.otp()).outcome is Outcome.ACCEPT


def test_own_password_change_and_locks_end_a_waiting_reissued_password(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: MakeKey,
) -> None:
    practice = make_practice()
    make_yubikey(practice=practice)
    changer = make_user(practice=practice, username="eins", migrated_password="Sommer-Regen-2026!")
    locked = make_user(practice=practice, username="zwei", migrated_password="Sommer-Regen-2026!")
    for name in ("eins", "zwei"):
        issuance.reissue_password(session, username=name, at_once=False, actor=STAFF, now=NOW)
    run(session, MONDAY)
    assert changer.next_password_hash and locked.next_password_hash

    users.set_password(session, changer, "Herbst-Wind-2027?", now=NOW)
    users.lock_one(
        session, user=locked, cause=LockCause.MISUSE, reason="Verdacht", actor=STAFF, now=NOW
    )

    assert changer.next_password_hash is None and locked.next_password_hash is None


@pytest.mark.parametrize("practices", [2, 3, 8, 20])
def test_cancelling_a_run_returns_every_letter_and_revokes_every_password(
    session: Session,
    make_practice: Callable[..., Practice],
    make_yubikey: MakeKey,
    practices: int,
) -> None:
    onboarded = [
        onboard(session, make_practice(), make_yubikey, username=f"nutzer{n:02d}")
        for n in range(practices)
    ]
    key_run, _ = run(session, MONDAY)
    assert key_run is not None and key_run.letters == practices
    mailruns.cancel_run(session, run_id=key_run.run.id, actor=STAFF, now=NOW)
    keys_due_again = due_kinds(session, MONDAY)
    dispatch(session, run(session, MONDAY)[0], MONDAY)  # the key letters can still go out
    produced, pdf = run(session, date(2027, 1, 8))
    assert produced is not None and produced.letters == practices
    printed = printed_credentials(pdf)

    mailruns.cancel_run(session, run_id=produced.run.id, actor=STAFF, now=NOW)

    assert keys_due_again == [LetterKind.KEY] * practices
    assert produced.run.letters == []
    assert due_kinds(session, date(2027, 1, 8)) == [LetterKind.CREDENTIALS] * practices
    assert sorted(printed) == sorted(user.username for user, _, _ in onboarded)
    for user, _, key in onboarded:
        assert user.password_hash is None
        decision = login(session, user.username, printed[user.username], key.otp())
        assert decision.outcome is Outcome.REJECT
    revoked = session.scalars(
        select(AuditEntry).where(AuditEntry.tag == "account:password:revoke")
    ).all()
    assert len(revoked) == practices


def test_cancelling_again_finishes_a_run_an_earlier_version_left_half_cancelled(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    onboarded = [onboard(session, make_practice(), make_yubikey, f"alt{n}") for n in range(3)]
    dispatch(session, run(session, MONDAY)[0], MONDAY)
    produced, pdf = run(session, date(2027, 1, 8))
    assert produced is not None
    # What the earlier cancel left: the run cancelled, its letters printed and in it.
    produced.run.status = MailRunStatus.CANCELLED
    session.flush()
    printed = printed_credentials(pdf)

    mailruns.cancel_run(session, run_id=produced.run.id, actor=STAFF, now=NOW)

    assert due_kinds(session, date(2027, 1, 8)) == [LetterKind.CREDENTIALS] * 3
    for user, _, key in onboarded:
        assert login(session, user.username, printed[user.username], key.otp()).outcome is (
            Outcome.REJECT
        )
    with pytest.raises(ConflictError, match="bereits abgeschlossen"):
        mailruns.cancel_run(session, run_id=produced.run.id, actor=STAFF, now=NOW)


def test_letters_printed_after_an_edit_carry_the_current_name_and_address(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    practices = [make_practice(name=f"Praxis {n}") for n in range(3)]
    for practice in practices:
        onboard(session, practice, make_yubikey, username=f"nutzer{practice.bsnr}")
    moved = practices[1]
    practices_service.edit_practice(
        session,
        bsnr=moved.bsnr,
        name="Gemeinschaftspraxis Neustadt",
        street="Lübecker Straße 30",
        zip_code="39124",
        address_extra="2. OG",
        actor=STAFF,
        now=NOW,
    )

    _, pdf = run(session, MONDAY)

    pages = page_texts(pdf)
    (letter,) = [page for page in pages if moved.bsnr in page]
    assert "Gemeinschaftspraxis Neustadt" in letter
    assert "2. OG" in letter and "Lübecker Straße 30" in letter and "39124 Magdeburg" in letter
    assert "Praxis 1" not in letter and "Doctor-Eisenbart-Ring" not in letter
    assert sum("Doctor-Eisenbart-Ring 2" in page for page in pages) == 2


# --- letters returned by the post -------------------------------------------------------


def returned(session: Session, letter: Letter, on: date) -> Letter | None:
    return returnmail.record_return(
        session, letter_id=letter.id, returned_on=on, today=on, actor=STAFF, now=NOW
    )


def letter_of(
    produced: mailruns.ProducedRun | None, practice: Practice, kind: LetterKind
) -> Letter:
    assert produced is not None
    return next(
        one for one in produced.run.letters if one.practice_id == practice.id and one.kind is kind
    )


def test_a_returned_key_letter_brings_the_key_back_and_restarts_the_clock_from_the_resend(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    practices = [make_practice(name=f"Praxis {n}") for n in range(3)]
    onboarded = [onboard(session, p, make_yubikey, username=f"n{p.bsnr}") for p in practices]
    moved, (user, token, key) = practices[1], onboarded[1]
    first = run(session, MONDAY)[0]
    dispatch(session, first, MONDAY)

    resend = returned(session, letter_of(first, moved, LetterKind.KEY), date(2027, 1, 7))
    friday = mailruns.due_letters(session, today=date(2027, 1, 8), delay_days=3)

    assert token.status is TokenStatus.ASSIGNED  # back in the association's hands
    assert resend is not None and resend.kind is LetterKind.KEY and resend.token_id == token.id
    assert resend.resend_of_id == letter_of(first, moved, LetterKind.KEY).id
    assert sorted(letter.user.username for letter in friday.due if letter.user) == sorted(
        f"n{p.bsnr}" for p in (practices[0], practices[2])
    )
    waiting = {w.letter.kind: w.reason for w in friday.waiting}
    assert set(waiting) == {LetterKind.KEY, LetterKind.CREDENTIALS}  # both the moved one's
    assert all("unzustellbar" in r and "practice edit" in r for r in waiting.values())

    practices_service.edit_practice(
        session, bsnr=moved.bsnr, street="Lübecker Straße 30", actor=STAFF, now=NOW
    )
    (password_waits,) = mailruns.due_letters(session, today=date(2027, 1, 8), delay_days=3).waiting
    assert password_waits.letter.user_id == user.id
    assert password_waits.reason.startswith("Begleitschreiben mit dem Yubikey noch nicht versandt")
    again, pdf = run(session, date(2027, 1, 8))  # the other two practices' credentials too
    dispatch(session, again, date(2027, 1, 8))
    tuesday = due_kinds(session, date(2027, 1, 12))
    _, credentials = run(session, date(2027, 1, 13))

    resent_page = next(
        page for page in page_texts(pdf) if moved.bsnr in page and token.serial in page
    )
    assert "Lübecker Straße 30" in resent_page
    assert token.status is TokenStatus.SHIPPED
    assert tuesday == []  # 8 January + three working days (11, 12, 13 January)
    assert list(printed_credentials(credentials)) == [user.username]
    assert login(
        session, user.username, printed_credentials(credentials)[user.username], key.otp()
    ).accepted


def test_a_returned_password_letter_stops_its_password_and_a_new_one_is_due(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    practice = make_practice()
    user, _, key = onboard(session, practice, make_yubikey)
    dispatch(session, run(session, MONDAY)[0], MONDAY)
    produced, pdf = run(session, date(2027, 1, 8))
    dispatch(session, produced, date(2027, 1, 8))
    password = printed_credentials(pdf)[user.username]

    resend = returned(
        session, letter_of(produced, practice, LetterKind.CREDENTIALS), date(2027, 1, 14)
    )
    refused = login(session, user.username, password, key.otp())
    revoked = user.password_hash is None
    practices_service.edit_practice(
        session, bsnr=practice.bsnr, city="Magdeburg", actor=STAFF, now=NOW
    )
    _, second = run(session, date(2027, 1, 14))

    assert refused.outcome is Outcome.REJECT  # it travelled unprotected: it stops at once
    assert revoked
    assert (
        resend is not None and resend.kind is LetterKind.CREDENTIALS and resend.user_id == user.id
    )
    new = printed_credentials(second)[user.username]
    assert new != password
    assert login(session, user.username, new, key.otp()).accepted
    tags = [entry.tag for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert "letter:letter:return" in tags and "account:password:revoke" in tags
    assert password not in " ".join(session.scalars(select(AuditEntry.data)))


def test_only_a_dispatched_letter_comes_back_once_and_never_from_the_future(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    practice = make_practice()
    _, token, _ = onboard(session, practice, make_yubikey)
    produced = run(session, MONDAY)[0]
    key_letter = letter_of(produced, practice, LetterKind.KEY)

    with pytest.raises(ConflictError, match="nicht versandt"):
        returned(session, key_letter, MONDAY)
    dispatch(session, produced, MONDAY)
    with pytest.raises(ValidationError, match="Zukunft"):
        returnmail.record_return(
            session, letter_id=key_letter.id, returned_on=date(2027, 1, 9),
            today=date(2027, 1, 8), actor=STAFF, now=NOW,
        )  # fmt: skip
    with pytest.raises(ValidationError, match="vor dem Versand"):
        returned(session, key_letter, date(2027, 1, 1))
    token.status, token.last_used_at = TokenStatus.ACTIVE, NOW
    with pytest.raises(ConflictError, match="benutzt"):
        returned(session, key_letter, date(2027, 1, 8))
    token.status, token.last_used_at = TokenStatus.SHIPPED, None
    returned(session, key_letter, date(2027, 1, 8))
    with pytest.raises(ConflictError, match="bereits als unzustellbar"):
        returned(session, key_letter, date(2027, 1, 8))
    with pytest.raises(NotFoundError):
        returnmail.record_return(
            session, letter_id=999_999, returned_on=MONDAY, today=MONDAY, actor=STAFF, now=NOW
        )
