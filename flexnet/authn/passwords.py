"""Password hashing: argon2id through libpass (imported as ``passlib``).

Passwords are NFKC-normalised on every path (RADIUS, web, CLI) before hashing and
verifying, so that the same typed password matches whatever the client's Unicode form.
Hashes of the previous system (bcrypt, sha512_crypt) still verify and are replaced by
argon2id on the next successful login (``verify`` returns the new hash).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from passlib.context import CryptContext

from flexnet import resources
from flexnet.errors import ValidationError

# PAP carries password + 44-character OTP in at most 128 octets (RFC 2865).
MAX_PASSWORD_BYTES = 84

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
_context = CryptContext(
    schemes=["argon2", "bcrypt", "sha512_crypt"],
    default="argon2",
    deprecated=["bcrypt", "sha512_crypt"],
    argon2__type="ID",
    argon2__memory_cost=19456,
    argon2__time_cost=2,
    argon2__parallelism=1,
)

# A valid hash of a random password: verifying against it costs as much as a real check,
# so that a missing user takes as long as a wrong password.
_DUMMY_HASH = _context.hash("flexnet-timing-equaliser-not-a-password")


def normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


# A lone surrogate (from a JSON escape or a mis-decoded terminal) is no character: it
# cannot be encoded, typed or printed, so no password may contain one.
NOT_A_CHARACTER = "Das Kennwort enthält ein ungültiges Zeichen."


def _has_lone_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(char) <= 0xDFFF for char in text)


def check_transportable(password: str) -> str:
    """The normalised password, if it can travel in PAP next to an OTP."""
    normalized = normalize(password)
    if not normalized:
        raise ValidationError("Das Kennwort darf nicht leer sein")
    if _has_lone_surrogate(normalized):
        raise ValidationError(NOT_A_CHARACTER)
    if len(normalized.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise ValidationError(
            f"Das Kennwort ist zu lang (höchstens {MAX_PASSWORD_BYTES} Bytes in UTF-8)"
        )
    return normalized


def hash_password(password: str) -> str:
    hashed: str = _context.hash(normalize(password))
    return hashed


FOREIGN_SCHEMES = "argon2id, bcrypt ($2a$/$2b$/$2y$) oder sha512_crypt ($6$)"


def check_foreign_hash(password_hash: str) -> str:
    """The hash, if flexnet can verify it (the schemes above); its scheme stays as it is
    until the next successful login replaces it by argon2id. The message never shows the
    hash: it is as sensitive as a password."""
    candidate = password_hash.strip()
    scheme = _context.identify(candidate, required=False) if len(candidate) <= 255 else None
    try:
        if scheme is None:
            raise ValueError
        _context.handler(scheme).from_string(candidate)
    except ValueError:
        raise ValidationError(
            f"Kein Kennwort-Hash in einem Format, das flexnet prüfen kann ({FOREIGN_SCHEMES})"
        ) from None
    return candidate


@dataclass(frozen=True)
class Verification:
    ok: bool
    new_hash: str | None = None  # set when the stored hash should be upgraded
    reissued: bool = False  # matched the user's re-issued (next) password, not the current


def too_long(password: str) -> bool:
    """No password flexnet stores is this long (``MAX_PASSWORD_BYTES`` in UTF-8), nor one
    that is no text at all (a lone surrogate): it cannot be right, and the hash library
    would raise on it (over 4096 characters) instead of saying no."""
    try:
        return len(normalize(password).encode("utf-8")) > MAX_PASSWORD_BYTES
    except UnicodeEncodeError:
        return True


def verify(password: str, stored_hash: str | None) -> Verification:
    """Check a password; with no stored hash, spend the same time and fail. A password
    longer than any stored one is wrong without a hash (its length is no secret)."""
    if too_long(password):
        return Verification(ok=False)
    if stored_hash is None:
        _context.verify(normalize(password), _DUMMY_HASH)
        return Verification(ok=False)
    ok, new_hash = _context.verify_and_update(normalize(password), stored_hash)
    return Verification(ok=ok, new_hash=new_hash if ok else None)


class PasswordState(enum.StrEnum):
    OK = "ok"
    EXPIRING = "expiring"  # within the warning period
    MUST_CHANGE = "must_change"  # initial password from a letter, or reset
    EXPIRED = "expired"
    INITIAL_EXPIRED = "initial_expired"  # letter password unused for too long
    WEAK = "weak"  # taken over from the previous system, breaks the policy


@dataclass(frozen=True)
class PasswordStatus:
    state: PasswordState
    days_left: int | None = None


def password_status(
    *,
    set_at: datetime | None,
    must_change: bool,
    now: datetime,
    max_age_days: int,
    warning_days: int,
    initial_days: int,
    weak: bool = False,
) -> PasswordStatus:
    """Where a password stands in its validity period (§ 5.4). ``weak``: a password taken
    over from the previous system that breaks the policy; it must be changed, however
    long it waits (unlike a letter's initial password, it is no secret sent by post)."""
    if set_at is None:
        return PasswordStatus(PasswordState.EXPIRED, 0)
    if weak:
        return PasswordStatus(PasswordState.WEAK, 0)
    age = now - set_at
    if must_change:
        if age >= timedelta(days=initial_days):
            return PasswordStatus(PasswordState.INITIAL_EXPIRED, 0)
        return PasswordStatus(PasswordState.MUST_CHANGE)
    left = timedelta(days=max_age_days) - age
    if left <= timedelta(0):
        return PasswordStatus(PasswordState.EXPIRED, 0)
    days_left = left.days
    if days_left < warning_days:
        return PasswordStatus(PasswordState.EXPIRING, days_left)
    return PasswordStatus(PasswordState.OK, days_left)


# Defaults and their sources: docs/PASSWORD_POLICY.md.
MAX_LENGTH = 64  # technical (PAP), not a policy choice
HISTORY_KEPT = 24  # hashes stored per user: the upper bound of a configurable history


@dataclass(frozen=True)
class PasswordPolicy:
    """The association's rules (§ 5.4); set through FLEXNET_PASSWORD_* settings."""

    min_length: int = 12
    history: int = 10
    min_strength: int = 3  # zxcvbn score 0..4
    min_age: timedelta = timedelta(days=1)


DEFAULT_POLICY = PasswordPolicy()


@lru_cache(maxsize=1)
def _german_words() -> tuple[str, ...]:
    lines = resources.password_blocklist().splitlines()
    return tuple(w.strip() for w in lines if w.strip() and not w.startswith("#"))


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"]) | frozenset(_german_words())


def _base_word(password: str) -> str:
    """The password without leading and trailing digits and symbols, case-folded."""
    return re.sub(r"^[\W\d_]+|[\W\d_]+$", "", password.casefold())


def min_age_problem(
    *,
    set_at: datetime | None,
    must_change: bool,
    now: datetime,
    policy: PasswordPolicy = DEFAULT_POLICY,
) -> str | None:
    """A voluntary change within a day of the last one is refused (history rule bypass)."""
    if set_at is None or must_change or now - set_at >= policy.min_age:
        return None
    return "Das Kennwort kann erst einen Tag nach der letzten Änderung wieder geändert werden."


_CLASSES = (str.islower, str.isupper, str.isdigit)


def _character_classes(password: str) -> int:
    found = sum(any(test(ch) for ch in password) for test in _CLASSES)
    return found + any(not ch.isalnum() for ch in password)


def policy_violations(
    password: str,
    *,
    personal: Sequence[str] = (),
    history: Sequence[str] = (),
    policy: PasswordPolicy = DEFAULT_POLICY,
) -> list[str]:
    """Every rule a new password breaks, as German sentences; empty when it is good.

    ``personal``: username, the person's name, BSNR, practice name; none may appear in
    the password. ``history``: hashes of the last passwords, which may not come back.
    """
    normalized = normalize(password)
    if _has_lone_surrogate(normalized):
        return [NOT_A_CHARACTER]
    problems = []
    if len(normalized) < policy.min_length:
        problems.append(f"Das Kennwort muss mindestens {policy.min_length} Zeichen lang sein.")
    if len(normalized) > MAX_LENGTH or len(normalized.encode("utf-8")) > MAX_PASSWORD_BYTES:
        problems.append(
            f"Das Kennwort darf höchstens {MAX_LENGTH} Zeichen und {MAX_PASSWORD_BYTES} Bytes "
            "lang sein."
        )
    if _character_classes(normalized) < 3:
        problems.append(
            "Das Kennwort muss drei der vier Zeichenarten enthalten: Kleinbuchstaben, "
            "Großbuchstaben, Ziffern, Sonderzeichen."
        )
    lowered = normalized.casefold()
    for word in _personal_words(personal):
        if word in lowered:
            problems.append(
                "Das Kennwort darf Benutzername, Namen, BSNR oder Praxisnamen nicht enthalten."
            )
            break
    folded = normalized.casefold()
    if folded in _common_passwords() or _base_word(normalized) in _common_passwords():
        problems.append("Das Kennwort steht auf einer Liste häufig verwendeter Kennwörter.")
    elif normalized and _strength(normalized, personal) < policy.min_strength:
        problems.append(
            "Das Kennwort ist zu leicht zu erraten. Sicherer sind längere Kennwörter aus "
            "mehreren nicht zusammenhängenden Wörtern, Ziffern und Zeichen."
        )
    if reuses(normalized, history, policy=policy):
        problems.append(
            f"Das Kennwort darf keinem der letzten {policy.history} Kennwörter entsprechen."
        )
    return problems


def reuses(password: str, history: Sequence[str], *, policy: PasswordPolicy) -> bool:
    """``password`` is one of the last ``policy.history`` of ``history`` (hashes)."""
    recent = history[-policy.history :] if policy.history else []
    if too_long(password):
        return False  # was never stored
    normalized = normalize(password)
    return any(_context.verify(normalized, old) for old in recent)


@dataclass(frozen=True)
class PasswordChange:
    """The answer to a change of one's own password: what is wrong (German sentences,
    none when it was changed), and whether it was refused for too many attempts.

    A refusal never tells whether the old password was right: rules about the new one
    alone are named whatever the old one is, and a wrong old password and a new one that
    is the current or an earlier password get one answer together (``WRONG_OR_REUSED``).
    """

    problems: list[str]
    throttled: bool = False

    @property
    def changed(self) -> bool:
        return not self.problems


TOO_MANY_CHANGES = "Zu viele Versuche. Bitte versuchen Sie es in einigen Minuten erneut."


def wrong_or_reused(history: int) -> str:
    """The one answer for a wrong old password and for a new one used before (the
    current one, or one of the last ``history``)."""
    earlier = f"eines Ihrer letzten {history} Kennwörter" if history else "das bisherige"
    return (
        "Das Kennwort wurde nicht geändert: Entweder stimmt das bisherige Kennwort nicht, "
        f"oder das neue ist {earlier}."
    )


def _strength(password: str, personal: Sequence[str]) -> int:
    """zxcvbn's score (0..4), knowing German words and this person's data."""
    from zxcvbn import zxcvbn

    hints = [*_personal_words(personal), *_german_words()]
    score: int = zxcvbn(password[:MAX_LENGTH], user_inputs=hints)["score"]
    return score


def _personal_words(personal: Sequence[str]) -> set[str]:
    words = set()
    for text in personal:
        for part in normalize(text).casefold().replace("-", " ").replace(".", " ").split():
            if len(part) >= 4:
                words.add(part)
        folded = normalize(text).casefold()
        if len(folded) >= 4:
            words.add(folded)
    return words


# Letters and digits that cannot be confused on paper (no l/1/I, O/0).
_UNAMBIGUOUS = {
    "lower": "abcdefghijkmnpqrstuvwxyz",
    "upper": "ABCDEFGHJKLMNPQRSTUVWXYZ",
    "digit": "23456789",
    # No "!" (shell history expansion) and no quotes: letters get typed into terminals too.
    "symbol": "-+#?%=",
}


def generate(length: int = 16) -> str:
    """A random password that meets the policy and reads unambiguously on a letter."""
    import secrets

    alphabet = "".join(_UNAMBIGUOUS.values())
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(ch in chars for ch in candidate) for chars in _UNAMBIGUOUS.values()):
            return candidate
