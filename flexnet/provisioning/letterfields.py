"""What a letter prints: its reference and the values of its template's placeholders.

Read from the letter, its practice, user and key as they are when the letter is
printed; the password of a password letter is handed in, never read from anywhere.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import object_session

from flexnet.config import Settings
from flexnet.errors import ValidationError
from flexnet.lifecycle.rules import BERLIN
from flexnet.lifecycle.status import LEGAL_GROUND
from flexnet.models import Letter, LetterKind, LetterStatus, LockCause, TermsVersion, Token
from flexnet.provisioning import letters as render

IT_SERVICE_ADDRESS = "KV Sachsen-Anhalt, IT-Service, Postfach 1664, 39006 Magdeburg"
PASSWORD_LETTERS = render.SECURITY_PAPER


def reference(letter: Letter | int) -> str:
    """The letter's number as printed ("Unser Zeichen") and typed by staff."""
    number = letter if isinstance(letter, int) else letter.id
    return f"FN-{number:06d}"


def parse_reference(text: str) -> int:
    raw = text.strip().upper().removeprefix("FN-")
    if not raw.isdigit():
        raise ValidationError(f"{text.strip()!r} ist keine Briefnummer (z. B. FN-000123)")
    return int(raw)


def letter_data(
    letter: Letter, today: date, password: str | None, settings: Settings, now: datetime
) -> render.LetterData:
    practice, user, token = letter.practice, letter.user, letter.token
    fields = {
        "practice_name": practice.name,
        "bsnr": practice.bsnr,
        "letter_date": f"{today:%d.%m.%Y}",
        "reference": reference(letter),
    }
    extra = practice.address_extra
    if letter.kind in PASSWORD_LETTERS:
        assert user is not None and password is not None  # noqa: S101
        valid_until = (now + timedelta(days=settings.auth.initial_password_days)).astimezone(BERLIN)
        fields |= {
            "username": user.username,
            "password": password,
            "user_name": user.name or user.username,
            "valid_until": f"{valid_until:%d.%m.%Y}",
        }
        if letter.kind is LetterKind.NEW_PASSWORD:
            replaced = _key_replaced_on(letter, today)
            fields["key_replaced_on"] = f"{replaced:%d.%m.%Y}" if replaced else ""
        extra = f"z. Hd. {user.name}" if user.name else extra
    elif letter.kind is LetterKind.KEY:
        assert token is not None  # noqa: S101
        fields["serial"] = token.serial
    elif letter.kind is LetterKind.LOCK:
        fields |= {
            "username": user.username if user else "",
            "serial": token.serial if token else "",
            "reason": letter.note or "",
            "effective_date": f"{letter.effective_on or today:%d.%m.%Y}",
            "return_address": IT_SERVICE_ADDRESS,
            "legal_ground": LEGAL_GROUND[letter.cause] if letter.cause else "",
        }
    elif letter.kind is LetterKind.LOCK_NOTICE:
        effective = letter.effective_on or today
        fields |= {
            "practice_scope": "" if user else f"{practice.name} (BSNR {practice.bsnr})",
            "username": user.username if user else "",
            "serial": token.serial if token else "",
            "reason": letter.note or "",
            "last_day": f"{effective - timedelta(days=1):%d.%m.%Y}",
            "effective_date": f"{effective:%d.%m.%Y}",
            "return_address": IT_SERVICE_ADDRESS,
            "legal_ground": LEGAL_GROUND[letter.cause] if letter.cause else "",
            # § 10.3 sentence 2 applies to the automatic lock only, never a termination.
            "exception_by": f"{effective - timedelta(days=1):%d.%m.%Y}"
            if letter.cause is LockCause.LIFECYCLE
            else "",
        }
    elif letter.kind is LetterKind.TERMS:
        fields |= _terms_fields(letter)
    elif letter.kind is LetterKind.RETURN_REMINDER:
        assert token is not None  # noqa: S101 - held back without one
        fields |= {
            "serial": token.serial,
            "locked_on": f"{letter.effective_on or today:%d.%m.%Y}",
            "return_address": IT_SERVICE_ADDRESS,
        }
    else:
        fields |= {
            "serial": token.serial if token else "",
            "fee": format_euro(letter.fee_cents or 0),
            "reported_on": f"{letter.created_at.astimezone(BERLIN):%d.%m.%Y}",
        }
    recipient = render.Address(
        name=practice.name,
        extra=extra,
        street=practice.street,
        zip_code=practice.zip_code,
        city=practice.city,
    )
    return render.LetterData(letter.kind, recipient, today, reference(letter), fields)


# A password letter mentions a replaced key for this long after the replacement.
KEY_REPLACED_DAYS = 14


def _key_replaced_on(letter: Letter, today: date) -> date | None:
    """The day the practice's Yubikey was replaced, when that was at most
    ``KEY_REPLACED_DAYS`` before ``today`` or its key letter has not gone out yet: the
    newest key letter of a practice that had another key before."""
    session = object_session(letter)
    if session is None:
        return None
    newest = session.execute(
        select(Letter.token_id, Letter.created_at, Letter.status)
        .where(Letter.practice_id == letter.practice_id, Letter.kind == LetterKind.KEY)
        .where(Letter.status != LetterStatus.CANCELLED)
        .order_by(Letter.created_at.desc(), Letter.id.desc())
        .limit(1)
    ).first()
    if newest is None:
        return None
    day = newest.created_at.astimezone(BERLIN).date()
    recent = today - day <= timedelta(days=KEY_REPLACED_DAYS)
    if not recent and newest.status not in (LetterStatus.DUE, LetterStatus.PRINTED):
        return None
    earlier = session.scalar(
        select(Token.id)
        .where(Token.practice_id == letter.practice_id, Token.id != newest.token_id)
        .limit(1)
    )
    return day if earlier is not None else None


def _terms_fields(letter: Letter) -> dict[str, str]:
    """The version a terms letter asks to accept (its note), when it takes effect, and
    by when to accept it (the letter's day)."""
    session = object_session(letter)
    published = (
        session.scalar(select(TermsVersion).where(TermsVersion.version == letter.note))
        if session is not None
        else None
    )
    accept_by = letter.effective_on or (published.accept_by if published else None)
    return {
        "version": letter.note or "",
        "effective_date": f"{published.effective_on:%d.%m.%Y}" if published else "",
        "accept_by": f"{accept_by:%d.%m.%Y}" if accept_by else "",
    }


def format_euro(cents: int) -> str:
    return f"{cents // 100:,}".replace(",", ".") + f",{cents % 100:02d} EUR"
