from __future__ import annotations

import pytest

from flexnet.otp.secrets import SecretBox, SecretError, YubicoSecret

BOX = SecretBox(b"k" * 32)


def test_round_trip_and_fresh_nonce() -> None:
    sealed = BOX.seal(b"aes-key-bytes", context="token:1")

    assert BOX.open(sealed, context="token:1") == b"aes-key-bytes"
    assert BOX.seal(b"aes-key-bytes", context="token:1") != sealed
    assert b"aes-key-bytes" not in sealed


def test_ciphertext_is_bound_to_its_row() -> None:
    sealed = BOX.seal(b"secret", context="token:1")

    with pytest.raises(SecretError):
        BOX.open(sealed, context="token:2")


def test_other_master_key_or_tampering_fails() -> None:
    sealed = BOX.seal(b"secret", context="token:1")

    with pytest.raises(SecretError):
        SecretBox(b"x" * 32).open(sealed, context="token:1")
    with pytest.raises(SecretError):
        BOX.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), context="token:1")
    with pytest.raises(SecretError):
        BOX.open(b"\x02" + sealed[1:], context="token:1")


def test_reprs_show_no_secret() -> None:
    secret = YubicoSecret(private_id=b"\xaa" * 6, aes_key=b"\xbb" * 16)

    assert "aa" not in repr(secret) and "bb" not in repr(secret)
    assert "kkkk" not in repr(BOX)
