from __future__ import annotations

import pytest
from passlib.hash import bcrypt, sha512_crypt

from flexnet import passwords
from flexnet.errors import ValidationError


def test_hash_is_argon2id_with_owasp_parameters() -> None:
    stored = passwords.hash_password("Sommer-Regen-2026!")

    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify("Sommer-Regen-2026!", stored) == passwords.Verification(ok=True)
    assert not passwords.verify("Sommer-Regen-2026?", stored).ok


def test_unicode_forms_of_the_same_password_match() -> None:
    composed = "Grüße-aus-Halle-1"  # ü as one code point
    decomposed = "Gru\u0308ße-aus-Halle-1"  # u + combining diaeresis

    assert passwords.verify(decomposed, passwords.hash_password(composed)).ok


def test_missing_hash_fails() -> None:
    assert passwords.verify("anything", None) == passwords.Verification(ok=False)


@pytest.mark.parametrize("legacy", [bcrypt, sha512_crypt])
def test_legacy_hashes_verify_and_are_upgraded(legacy: type) -> None:
    old = legacy.hash("Altes-System-Kennwort-1")

    result = passwords.verify("Altes-System-Kennwort-1", old)

    assert result.ok
    assert result.new_hash is not None and result.new_hash.startswith("$argon2id$")
    assert passwords.verify("Altes-System-Kennwort-1", result.new_hash).new_hash is None


def test_wrong_password_against_legacy_hash_gives_no_upgrade() -> None:
    result = passwords.verify("falsch", bcrypt.hash("Altes-System-Kennwort-1"))

    assert result == passwords.Verification(ok=False)


def test_transport_limit_is_84_utf8_bytes() -> None:
    assert passwords.check_transportable("a" * 84) == "a" * 84
    with pytest.raises(ValidationError, match="84 Bytes"):
        passwords.check_transportable("ä" * 43)  # 86 bytes
    with pytest.raises(ValidationError, match="leer"):
        passwords.check_transportable("")
