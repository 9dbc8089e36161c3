"""The pure decoder, against Yubico's published vectors and an independent encoder."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from flexnet.otp import modhex, yubico
from tests.support.yubikeys import SimulatedKey

# libyubikey test-vectors.txt and selftest values: key, OTP, private id, usage, session.
VECTORS = [
    (
        "ecde18dbe76fbd0c33330f1c354871db",
        "dteffujehknhfjbrjnlnldnhcujvddbikngjrtgh",
        "8792ebfe26cc",
        19,
        17,
    ),
    ("000102030405060708090a0b0c0d0e0f", "dvgtiblfkbgturecfllberrvkinnctnn", "010203040506", 1, 1),
    ("c4422890653076cde73d449b191b416a", "iucvrkjiegbhidrcicvlgrcgkgurhjnj", "33c69e7f249e", 1, 0),
]


@pytest.mark.parametrize(("key", "otp", "uid", "usage", "session"), VECTORS)
def test_published_vectors(key: str, otp: str, uid: str, usage: int, session: int) -> None:
    parsed = yubico.parse(otp)
    assert parsed is not None

    token = yubico.decrypt(parsed.ciphertext, bytes.fromhex(key))

    assert token is not None
    assert token.private_id.hex() == uid
    assert token.counters() == (usage, session)
    assert parsed.public_id == otp[:-32]


def test_wrong_key_fails_the_crc() -> None:
    parsed = yubico.parse(VECTORS[0][1])
    assert parsed is not None

    assert yubico.decrypt(parsed.ciphertext, bytes.fromhex(VECTORS[1][0])) is None


def test_otps_of_an_independent_implementation_decode() -> None:
    key = SimulatedKey.random(usage_counter=7)
    for expected_session in range(3):
        parsed = yubico.parse(key.otp())
        assert parsed is not None
        token = yubico.decrypt(parsed.ciphertext, key.aes_key)
        assert token is not None
        assert parsed.public_id == key.public_id
        assert token.private_id == key.private_id
        assert token.counters() == (7, expected_session)


def test_caps_lock_bit_is_masked() -> None:
    key = SimulatedKey.random()
    parsed = yubico.parse(key.craft(usage=0x8000 | 42, session=3))
    assert parsed is not None

    token = yubico.decrypt(parsed.ciphertext, key.aes_key)

    assert token is not None and token.counters() == (42, 3)


@pytest.mark.parametrize(
    "typed",
    [
        VECTORS[0][1].upper(),  # caps lock
        VECTORS[0][1].translate(str.maketrans("cbdefghijklnrtuv", "jxe.uidchtnbpygk")),  # Dvorak
        f"  {VECTORS[0][1]}\n",
    ],
)
def test_typed_forms_are_normalised(typed: str) -> None:
    parsed = yubico.parse(typed)

    assert parsed is not None
    assert parsed.public_id == "dteffuje"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "123456",
        "dteffujehknhfjbrjnlnldnhcujvddbikngjrtg",
        "a" * 44,
        "c" * 31,
        "c" * 50,
        "cccccccccccbz" + "c" * 31,
        "ccccccccccc" + "c" * 32,
    ],
)
def test_malformed_otps_are_none(typed: str) -> None:
    assert yubico.parse(typed) is None


@given(st.text(max_size=80))
def test_parser_never_raises(text: str) -> None:
    parsed = yubico.parse(text)

    assert parsed is None or len(parsed.ciphertext) == 16


@given(st.binary(min_size=1, max_size=40))
def test_modhex_round_trip(data: bytes) -> None:
    encoded = modhex.from_bytes(data)

    assert modhex.is_modhex(encoded)
    assert modhex.to_bytes(encoded) == data


@given(st.text(alphabet="jxe.uidchtnbpygk", min_size=2, max_size=48))
def test_dvorak_text_maps_to_modhex_or_none(text: str) -> None:
    result = modhex.normalize_typed(text)

    assert result is None or modhex.is_modhex(result)


def test_crc_residue_of_an_intact_token() -> None:
    key = SimulatedKey.random()
    parsed = yubico.parse(key.otp())
    assert parsed is not None
    decryptor = Cipher(algorithms.AES(key.aes_key), modes.ECB()).decryptor()  # noqa: S305
    plain = decryptor.update(parsed.ciphertext) + decryptor.finalize()

    assert yubico.crc16(plain) == 0xF0B8
