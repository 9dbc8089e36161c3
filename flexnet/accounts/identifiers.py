"""Validation of the identifiers staff type in: BSNR, LANR, usernames, postal codes."""

from __future__ import annotations

import re

from flexnet.errors import ValidationError

_NINE_DIGITS = re.compile(r"[0-9]{9}")
_ZIP = re.compile(r"[0-9]{5}")
_PHONE = re.compile(r"[0-9 +()/-]{6,40}")
# Lower case after normalisation; letters, digits and . _ - so usernames survive every
# VPN client, RADIUS attribute and letter font.
_USERNAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]{1,62}[a-z0-9])")
_LANR_WEIGHTS = (4, 9, 4, 9, 4, 9)


def validate_bsnr(value: str) -> str:
    bsnr = value.strip()
    if not _NINE_DIGITS.fullmatch(bsnr):
        raise ValidationError(f"BSNR {value!r} ist ungültig: erwartet werden genau 9 Ziffern")
    return bsnr


def lanr_check_digit(first_six: str) -> int:
    """Check digit (7th digit) of a LANR: weights 4,9,4,9,4,9, modulo 10."""
    total = sum(int(d) * w for d, w in zip(first_six, _LANR_WEIGHTS, strict=True))
    return (10 - total % 10) % 10


def validate_lanr(value: str) -> str:
    """A LANR: six digits, the check digit, two digits of the specialty group."""
    lanr = value.strip()
    if not _NINE_DIGITS.fullmatch(lanr):
        raise ValidationError(f"LANR {value!r} ist ungültig: erwartet werden genau 9 Ziffern")
    if int(lanr[6]) != lanr_check_digit(lanr[:6]):
        raise ValidationError(f"LANR {lanr} ist ungültig: die Prüfziffer (7. Stelle) stimmt nicht")
    return lanr


def normalize_username(value: str) -> str:
    """Usernames are case-insensitive: stored and compared in lower case."""
    username = value.strip().lower()
    if not _USERNAME.fullmatch(username):
        raise ValidationError(
            f"Benutzername {value!r} ist ungültig: 3–64 Zeichen aus a–z, 0–9, Punkt, "
            "Unterstrich und Bindestrich, Anfang und Ende Buchstabe oder Ziffer"
        )
    return username


def validate_zip(value: str) -> str:
    zip_code = value.strip()
    if not _ZIP.fullmatch(zip_code):
        raise ValidationError(f"Postleitzahl {value!r} ist ungültig: erwartet werden 5 Ziffern")
    return zip_code


def validate_phone(value: str) -> str:
    """A telephone number as typed (digits, spaces, + ( ) / -), or ValidationError."""
    phone = value.strip()
    if not _PHONE.fullmatch(phone):
        raise ValidationError("Telefonnummer: bitte nur Ziffern, Leerzeichen und + ( ) / -")
    return phone
