"""Fuzzes the parsing of what users type: Yubico OTPs, modhex, PAP's password+OTP split.

Pure functions, no database, so it runs thousands of inputs a second. The first byte of
an input chooses the mode:

0. typed text, username and password into ``yubico.parse``/``looks_like_otp``,
   ``modhex``, the fast path's ``KeySnapshot.rejects``, ``packets.split_pap``, the
   OATH-HOTP code form (``oath``) and ``authn._syntax``: no exception, and what they
   return is consistent;
1. round trip: an OTP encoded by the independent ``yubiotp`` package from fields the
   input chooses (key, private id, counters, public id), typed with caps lock, on a
   Dvorak layout or with blanks around it, parses and decrypts to exactly these fields;
2. differential: ``yubico.decrypt`` and ``crc16`` against ``yubiotp`` (pycryptodome's
   AES), so a token with a wrong CRC is never returned;
3. User-Password as pyrad hides it (an independent NAS implementation), decoded by
   ``packets.decode_password`` and split by ``split_pap``.

The accept property: this process has a Yubikey whose AES key and private id are
random. Whatever the fuzzer types under its public id, ``decrypt`` never yields that
private id and the fast path says ``otp_invalid``: the input cannot be a valid login.

Run: ``python -m fuzz.otp_parser [libFuzzer flags]`` from the repository root.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import atheris

from fuzz._harness import Findings, FuzzFinding, Reader, TestOneInput, require, run

with atheris.instrument_imports(include=["flexnet"]):
    from flexnet.authn import passwords, pipeline
    from flexnet.models import Token, TokenKind
    from flexnet.otp import modhex, oath, yubico
    from flexnet.otp.secrets import YubicoSecret
    from flexnet.otp.verify import Presented
    from flexnet.radius import packets
    from flexnet.radius.fastpath import REMOTE, KeyMaterial, KeySnapshot

from Crypto.Cipher import AES
from pyrad.packet import AuthPacket
from yubiotp.crc import crc16 as their_crc16
from yubiotp.crc import verify_crc16
from yubiotp.modhex import modhex as their_modhex
from yubiotp.modhex import unmodhex
from yubiotp.otp import OTP, CRCError, decode_otp, encode_otp

KEY_ID = "vvbdefghijkl"  # a key of this process: random AES key and private id
REMOTE_ID = "vvnrtucbdefg"  # a key checked by an external service: never fast-rejected
SECRET = YubicoSecret(private_id=os.urandom(6), aes_key=os.urandom(16))
SNAPSHOT = KeySnapshot({KEY_ID: KeyMaterial(SECRET, b""), REMOTE_ID: REMOTE})
HOTP_TOKEN = Token(serial="hotp", kind=TokenKind.OATH_HOTP, public_id=KEY_ID, digits=6)
TO_DVORAK = str.maketrans("cbdefghijklnrtuv", "jxe.uidchtnbpygk")
OTP_CHARS = yubico.PUBLIC_ID_CHARS + yubico.CIPHERTEXT_CHARS


class OtpTarget:
    """libFuzzer's target: the first byte picks the mode (see the module docstring)."""

    def __init__(self, findings: Findings) -> None:
        self.findings = findings

    def __call__(self, data: bytes) -> None:
        if not data:
            return
        reader = Reader(data[1:])
        mode = data[0] % 4
        if mode == 0:
            typed = reader.text(80)
            check_typed(typed)
            self.check_syntax(reader.text(80), reader.text(100), typed, data)
            self.check_syntax(reader.text(80), reader.text(100), None, data)
        elif mode == 1:
            check_round_trip(reader)
        elif mode == 2:
            check_decrypt(reader)
        else:
            check_user_password(reader)

    def check_syntax(self, username: str, password: str, otp: str | None, data: bytes) -> None:
        """``authn._syntax``: refuses or returns a normalised, bounded attempt."""
        try:
            attempt = pipeline._syntax(
                username, password, None if otp is None else Presented.typed(otp)
            )
        except UnicodeEncodeError as error:
            # Only a lone surrogate (possible in JSON: "\ud800") may cause this; RADIUS
            # and HTML forms cannot deliver one. Fail-safe (the API answers 503).
            require(any(0xD800 <= ord(c) <= 0xDFFF for c in password), f"_syntax: {error!r}")
            self.findings.report(
                "authn._syntax raises UnicodeEncodeError for a lone surrogate in the password",
                "".join(traceback.format_exception(error)),
                data,
            )
            return
        if attempt is None:
            return
        name = attempt.username
        require(name == username.strip().lower(), "username not normalised as documented")
        require(0 < len(name) <= pipeline.MAX_USERNAME_CHARS, "username length not bounded")
        require(name.isprintable(), "unprintable username accepted")
        require(attempt.password == password, "password changed on the way")
        require(
            len(passwords.normalize(password).encode()) <= passwords.MAX_PASSWORD_BYTES,
            "password over the byte limit accepted",
        )
        if otp is None:
            require(attempt.otp is None, "an OTP out of nothing")
            return
        require(attempt.otp is not None, "the OTP got lost")
        assert attempt.otp is not None  # noqa: S101 - narrowed for mypy
        require(attempt.otp.text == otp.strip(), "OTP not stripped as documented")
        require(attempt.otp.parsed == yubico.parse(otp), "parsed OTP differs from parse()")
        if attempt.otp.parsed is None:  # then an OATH-HOTP code, maybe after the token id
            digits = otp[12:] if len(otp) in (18, 20) else otp
            require(
                len(digits) in (6, 8) and digits.isascii() and digits.isdigit(),
                "neither a Yubico OTP nor an HOTP code accepted as OTP",
            )


def check_typed(typed: str) -> None:
    parsed = yubico.parse(typed)
    require(yubico.looks_like_otp(typed) == (parsed is not None), "looks_like_otp != parse")
    canonical = modhex.normalize_typed(typed)
    if canonical is not None:
        require(modhex.is_modhex(canonical), "normalize_typed returned no modhex")
        require(modhex.normalize_typed(canonical) == canonical, "normalize_typed not idempotent")
    check_modhex(typed)
    check_split(typed)
    check_hotp(typed)
    check_fast_path(typed, parsed)
    if parsed is None:
        return
    if canonical is None:
        raise FuzzFinding("parsed although normalize_typed refuses")
    stripped = len(typed.strip())
    require(yubico.MIN_OTP_CHARS <= stripped <= yubico.MAX_OTP_CHARS, f"{stripped} chars parsed")
    require(len(parsed.ciphertext) == 16, "ciphertext is not one AES block")
    require(parsed.public_id == "" or modhex.is_modhex(parsed.public_id), "public id is not modhex")
    require(canonical[-32:] == their_modhex(parsed.ciphertext).decode(), "ciphertext mangled")
    require(parsed.public_id + canonical[-32:] == canonical, "public id mangled")
    require(yubico.parse(canonical) == parsed, "the canonical form parses differently")
    require(canonical[-32:] not in repr(parsed), "repr shows the ciphertext")
    never_accepted(parsed)


def never_accepted(parsed: yubico.ParsedOtp) -> None:
    """The accept: decrypting under this process's key yields its private id."""
    token = yubico.decrypt(parsed.ciphertext, SECRET.aes_key)
    if token is None:
        return
    plain = AES.new(SECRET.aes_key, AES.MODE_ECB).decrypt(parsed.ciphertext)
    require(verify_crc16(plain), "decrypt returned a token whose CRC is wrong")
    require(
        not yubico.same_private_id(token.private_id, SECRET.private_id),
        "ACCEPT: the fuzzer made a valid OTP for a key whose AES key it cannot know",
    )


def check_fast_path(typed: str, parsed: yubico.ParsedOtp | None) -> None:
    """Only reject reasons, and never "go on" for a local key the input cannot know."""
    reason = SNAPSHOT.rejects(typed)
    if parsed is None:
        require(reason is None, "the fast path rejected what is no Yubico OTP")
    elif parsed.public_id == KEY_ID:
        require(reason == "otp_invalid", f"fast path lets a forged OTP through ({reason})")
    elif parsed.public_id == REMOTE_ID:
        require(reason is None, "the fast path rejected an OTP of an external key")
    else:
        require(reason == "key_unknown", f"unknown key, fast path says {reason}")


def check_modhex(text: str) -> None:
    try:
        decoded = modhex.to_bytes(text)
    except ValueError:
        require(not modhex.is_modhex(text), "to_bytes refuses modhex")
        return
    require(modhex.is_modhex(text), "to_bytes decoded what is no modhex")
    require(modhex.from_bytes(decoded) == text, "modhex round trip")
    require(unmodhex(text.encode()) == decoded, "modhex differs from yubiotp's")


def check_hotp(typed: str) -> None:
    """OATH-HOTP codes as a Yubikey slot types them: token id (modhex), then digits."""
    for digits in (6, 8):
        if oath._well_formed(typed, digits):
            require(len(typed) == digits and typed.isascii() and typed.isdigit(), "HOTP form")
    code = oath._without_token_id(HOTP_TOKEN, typed)
    require(typed.endswith(code), "removing the token id changed the code")
    if typed.lower().startswith(KEY_ID):
        require(code == typed[len(KEY_ID) :], "token id not removed as typed")
    else:
        require(code == typed, "removed a token id that is not there")


def check_split(typed: str) -> None:
    """PAP: password immediately followed by a 44-character OTP, or the password alone."""
    parts = packets.split_pap(typed)
    require(parts.password + (parts.otp or "") == typed, "split_pap lost or added characters")
    if parts.otp is not None:
        require(len(parts.otp) == OTP_CHARS, "split off an OTP of the wrong length")
        require(yubico.looks_like_otp(parts.otp), "split off something that is no OTP")
    else:
        require(
            len(typed) < OTP_CHARS or not yubico.looks_like_otp(typed[-OTP_CHARS:]),
            "an OTP at the end was not split off",
        )


def check_round_trip(reader: Reader) -> None:
    key, uid = reader.exactly(16), reader.exactly(6)
    usage, session = reader.number(2), reader.byte()
    timestamp, random = reader.number(3), reader.number(2)
    public_id = their_modhex(reader.sized(16)).decode()
    shape = reader.below(4)
    made = OTP(uid, usage, timestamp, session, random)
    text = encode_otp(made, key, public_id=public_id.encode()).decode()
    typed = {
        0: text,
        1: text.upper(),
        2: text.translate(TO_DVORAK),
        3: f"\t {text} \n",
    }[shape]
    check_typed(typed)
    parsed = yubico.parse(typed)
    if len(text) > yubico.MAX_OTP_CHARS:
        require(parsed is None, f"an OTP of {len(text)} characters parsed")
        return
    if parsed is None:
        raise FuzzFinding("a Yubikey's OTP does not parse")
    if shape == 2 and modhex.is_modhex(typed):
        # Documented: text that is valid modhex is taken as such, never as Dvorak.
        require(parsed.public_id + their_modhex(parsed.ciphertext).decode() == typed, "dvorak")
        return
    require(parsed.public_id == public_id, "public id differs")
    token = yubico.decrypt(parsed.ciphertext, key)
    if token is None:
        raise FuzzFinding("a Yubikey's OTP does not decrypt with its key")
    require(token.private_id == uid, "private id differs")
    require(token.usage_counter == usage & 0x7FFF, "usage counter differs (caps-lock bit?)")
    require(token.session_counter == session, "session counter differs")
    require(token.timestamp == timestamp, "timestamp differs")
    require(token.random == random, "random field differs")


def check_decrypt(reader: Reader) -> None:
    key = reader.exactly(16) if reader.below(8) else reader.sized(32)
    ciphertext = reader.exactly(16) if reader.below(8) else reader.sized(32)
    rest = reader.rest()
    require(yubico.crc16(rest) == their_crc16(rest), "crc16 differs from yubiotp's")
    mine = yubico.decrypt(ciphertext, key)
    if len(key) != 16 or len(ciphertext) != 16:
        require(mine is None, "decrypted with a key or block of the wrong size")
        return
    try:
        _, theirs = decode_otp(their_modhex(ciphertext), key)
    except CRCError:
        theirs = None
    require((mine is None) == (theirs is None), "decrypt disagrees with yubiotp on the CRC")
    if mine is not None and theirs is not None:
        require(
            (mine.private_id, mine.usage_counter, mine.timestamp, mine.session_counter)
            == (theirs.uid, theirs.session & 0x7FFF, theirs.timestamp, theirs.counter),
            "decrypted fields differ from yubiotp's",
        )
        require(mine.random == theirs.rand, "random field differs from yubiotp's")


def check_user_password(reader: Reader) -> None:
    secret = reader.sized(40) or b"s"
    authenticator = reader.exactly(16)
    typed = reader.text(140)
    raw_hidden = reader.sized(160)
    hidden_ok = 0 < len(raw_hidden) <= packets.MAX_PASSWORD_OCTETS and len(raw_hidden) % 16 == 0
    plain = packets.decrypt_password(raw_hidden, secret, authenticator)
    require((plain is not None) == hidden_ok, "decrypt_password length rule (16..128 by 16)")
    encoded = typed.encode("utf-8", errors="surrogatepass")
    if len(encoded) > packets.MAX_PASSWORD_OCTETS:
        return
    nas_request = AuthPacket(secret=secret, authenticator=authenticator, dict=None)
    decoded = packets.decode_password(nas_request.PwCrypt(encoded), secret, authenticator)
    sent = encoded.rstrip(b"\x00")  # trailing zeros are padding (RFC 2865 5.2)
    try:
        expected = None if b"\x00" in sent else sent.decode("utf-8")
    except UnicodeDecodeError:
        expected = None  # strict: invalid UTF-8 is a reject, never a lookalike password
    require(decoded == expected, "User-Password decoded differently than pyrad hid it")
    if decoded is not None:
        check_split(decoded)


# --- seeds and dictionary ------------------------------------------------------------


def _seed(*parts: int | bytes) -> bytes:
    return b"".join(bytes([part]) if isinstance(part, int) else part for part in parts)


# libyubikey's published test vectors (public data): a key and one of its OTPs.
VECTOR_KEY = bytes.fromhex("ecde18dbe76fbd0c33330f1c354871db")
VECTOR_OTP = b"dteffujehknhfjbrjnlnldnhcujvddbikngjrtgh"


def seeds() -> dict[str, bytes]:
    def typed(text: bytes) -> bytes:  # Reader.text(): shape 0 (ASCII), length, text
        return _seed(0, len(text), text)

    password = typed(b"Sommer-Regen-2026!")
    return {
        "vector": _seed(0, typed(VECTOR_OTP), typed(b"emuster"), password),
        "password-and-otp": _seed(
            0, typed(b"pw" + KEY_ID.encode() + b"c" * 32), typed(b"emuster"), password
        ),
        "key-otp": _seed(
            0, typed(KEY_ID.encode() + b"cbdefghijklnrtuv" * 2), typed(b"a"), password
        ),
        "hotp": _seed(0, typed(b"vvcccccccccc123456"), typed(b"emuster"), password),
        "round-trip": _seed(
            1, VECTOR_KEY, bytes(range(6)), 0, 7, 3, 0, 0, 9, 0, 1, 6, bytes(range(6)), 0
        ),
        "round-trip-dvorak": _seed(
            1, VECTOR_KEY, bytes(range(6)), 0x80, 7, 3, 0, 0, 9, 0, 1, 6, bytes(range(6)), 2
        ),
        "decrypt": _seed(2, 1, VECTOR_KEY, 1, unmodhex(VECTOR_OTP[-32:]), b"crc"),
        "user-password": _seed(
            3, 6, b"secret", bytes(16), typed(b"pw" + VECTOR_OTP), 16, bytes(16)
        ),
    }


TOKENS = [
    KEY_ID.encode(),
    REMOTE_ID.encode(),
    b"cbdefghijklnrtuv",
    b"jxe.uidchtnbpygk",
    b"123456",
    b"\x00",
]


def make_target(_work: Path, findings: Findings) -> TestOneInput:
    return OtpTarget(findings)


def main() -> None:
    run("otp", make_target, seeds=seeds(), tokens=TOKENS, max_len=512, timeout_seconds=10)


if __name__ == "__main__":
    main()
