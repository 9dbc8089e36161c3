"""Fuzzes the RADIUS server's packet handling: no crash, no hang, never an Access-Accept.

One real :class:`~flexnet.radius.handler.RadiusHandler` is built per process over a
migrated SQLite file: two NAS clients (one that must send Message-Authenticator, one
legacy client that may omit it), a practice with a user, the user's Yubikey (its AES
key is random and known only to this process) and a key checked by an external service
that knows no valid OTP either. A self-check logs in once with a real OTP, so the
pipeline demonstrably can accept; inside the fuzz loop no OTP is ever generated, so no
input can be a valid login and any Access-Accept is a finding.

The first byte of an input chooses the mode:

- ``% 4 == 0``: the rest goes unchanged to the auth and the accounting port (bit 2
  picks the NAS). This exercises ``check_raw`` and pyrad's decoding, and through the
  legacy client, which needs no Message-Authenticator, also the decisions.
- otherwise: one to three packets are built from the input (see ``_packet``) and signed
  correctly (Message-Authenticator, accounting Request Authenticator, hidden
  User-Password), so the fuzzer gets past the authenticity checks into the challenge
  flow and the authentication pipeline. A later packet may carry the State of an
  Access-Challenge received earlier, or repeat the previous datagram (RFC 5080).

Every reply is checked: never an Access-Accept, well-formed, the request's identifier,
a correct Response Authenticator, Message-Authenticator first and valid on the auth
port, Proxy-State echoed unchanged, a retransmission answered alike; any of these, or
an exception escaping ``handle``, is a crash. Replies over 4096 octets and errors that
the handler catches and logs (it then stays silent) are fail-safe: they are reported
as findings once each, and the fuzzer goes on (see ``fuzz._harness.Findings``).

Run: ``python -m fuzz.radius_packets [libFuzzer flags]`` from the repository root.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import os
import struct
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import atheris

from fuzz._harness import Findings, FuzzFinding, Reader, TestOneInput, require, run

with atheris.instrument_imports(include=["flexnet", "pyrad"]):
    from sqlalchemy.engine import URL

    from flexnet.audit import Actor
    from flexnet.clients import nas
    from flexnet.config import AuthSettings, Settings
    from flexnet.db import Database, make_engine
    from flexnet.models import (
        Token,
        TokenKind,
        TokenStatus,
    )
    from flexnet.ops import migrate
    from flexnet.otp.secrets import SecretBox
    from flexnet.otp.verify import OtpReason
    from flexnet.radius.handler import RadiusHandler
    from flexnet.radius.packets import Port
    from flexnet.radius.state import ChallengeStore, DuplicateCache

from yubiotp.modhex import modhex

from tests.support.seed import add_login
from tests.support.yubikeys import SimulatedKey

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
MASTER_KEY = bytes(range(32))
ACTOR = Actor.system("fuzz")
BSNR = "881234500"
USERNAME = "emuster"
PASSWORD = "Sommer-Regen-2026!"  # noqa: S105 - the fuzz user's known password
KEY_ID = "vvbdefghijkl"  # the user's Yubikey; its AES key is random per process
REMOTE_ID = "vvnrtucbdefg"  # a key validated by an external service
UNKNOWN_ID = "cccccccccccb"

ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT = 1, 2, 3
ACCOUNTING_REQUEST, ACCOUNTING_RESPONSE, ACCESS_CHALLENGE = 4, 5, 11
USER_NAME, USER_PASSWORD, FRAMED_IP, STATE = 1, 2, 8, 24
VENDOR_SPECIFIC, CALLING_STATION, PROXY_STATE = 26, 31, 33
ACCT_STATUS, ACCT_SESSION_ID, MESSAGE_AUTHENTICATOR = 40, 44, 80
HEADER, MAX_PACKET, MAX_VALUE = 20, 4096, 253
# Accounting attributes flexnet reads (and some it does not), for the structured mode.
ACCOUNTING_KINDS = (40, 41, 42, 43, 44, 45, 46, 49, 52, 53, 55, 8, 1, 31, 61, 87)
ACCT_STATUS_VALUES = (1, 2, 3, 7, 8)
VENDORS = (9, 12356, 2636)  # Cisco, Fortinet, Juniper: in flexnet's dictionary
# A modhex OTP as a Dvorak keyboard types it (flexnet translates it back).
TO_DVORAK = str.maketrans("cbdefghijklnrtuv", "jxe.uidchtnbpygk")


@dataclass(frozen=True)
class Nas:
    source: tuple[str, int]
    secret: bytes


STRICT = Nas(("127.0.0.1", 40000), b"test-nas-secret-0123456789")
LEGACY = Nas(("127.0.0.2", 40001), b"legacy-nas-secret-9876543210")


class MaPlacement(enum.IntEnum):
    """Where the request's Message-Authenticator goes (an input chooses 0..3)."""

    FIRST = 0
    LAST = 1
    NONE = 2
    FORGED = 3


class RemoteKnowsNoValidOtp:
    """The external validation service: the fuzzer cannot know a valid OTP for it either.

    With it, Yubico-shaped OTPs of the remote key skip the fast path and take the full
    pipeline (``authn.authenticate``), which local keys reach only with a valid OTP.
    """

    def check(self, otp: str) -> OtpReason:
        return OtpReason.BAD_OTP


# --- building and checking packets (independent of flexnet's own code) -------------


def attribute(kind: int, value: bytes) -> bytes:
    value = value[:MAX_VALUE]
    return bytes([kind, len(value) + 2]) + value


def hide_password(plain: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """RFC 2865 5.2 as a NAS hides User-Password (padded with zeros to 16 octets)."""
    padded = plain.ljust(max(16, -(-len(plain) // 16) * 16), b"\x00")
    hidden = b""
    previous = authenticator
    for start in range(0, len(padded), 16):
        pad = hashlib.md5(secret + previous, usedforsecurity=False).digest()
        previous = bytes(a ^ b for a, b in zip(padded[start : start + 16], pad, strict=True))
        hidden += previous
    return hidden


def assemble(
    code: int,
    identifier: int,
    authenticator: bytes | None,
    attributes: list[bytes],
    secret: bytes,
    placement: int = MaPlacement.FIRST,
    forged: bytes = b"",
) -> bytes:
    """A request signed as a NAS signs it (RFC 2865, 2866, 3579).

    ``authenticator`` None on accounting: the Request Authenticator is computed, as it
    must be; given, it is kept (a wrong one, to reach that check).
    """
    body = b"".join(attributes)
    blank = attribute(MESSAGE_AUTHENTICATOR, bytes(16))
    at = None
    if placement == MaPlacement.FIRST:
        body, at = blank + body, 0
    elif placement == MaPlacement.LAST:
        body, at = body + blank, len(body)
    elif placement == MaPlacement.FORGED:
        body = attribute(MESSAGE_AUTHENTICATOR, forged.ljust(16, b"\x00")) + body
    header = struct.pack("!BBH", code, identifier, HEADER + len(body))
    vector = authenticator if code == ACCESS_REQUEST and authenticator else bytes(16)
    if at is not None:
        mac = hmac.new(secret, header + vector + body, "md5").digest()
        body = body[: at + 2] + mac + body[at + 18 :]
    if authenticator is None:
        authenticator = hashlib.md5(
            header + bytes(16) + body + secret, usedforsecurity=False
        ).digest()
    return header + authenticator + body


def split_attributes(data: bytes) -> list[tuple[int, bytes]] | None:
    """(type, value) pairs, or None if the framing is broken."""
    found = []
    at = 0
    while at < len(data):
        if len(data) - at < 2 or data[at + 1] < 2 or at + data[at + 1] > len(data):
            return None
        found.append((data[at], data[at + 2 : at + data[at + 1]]))
        at += data[at + 1]
    return found


def check_reply(
    request: bytes,
    reply: bytes | None,
    nas_client: Nas,
    port: Port,
    *,
    may_accept: bool = False,
    echo_of: bytes | None = None,
) -> list[tuple[int, bytes]]:
    """The reply's attributes after checking everything a NAS would check, and more.

    ``echo_of``: the request whose Proxy-State the reply must carry, if not ``request``
    (an answer from the duplicate cache belongs to the first request with this
    identifier and authenticator). The 4096-octet limit is checked by the caller.
    """
    if reply is None:
        return []
    require(len(reply) >= HEADER, f"reply of {len(reply)} octets")
    code, identifier, length = struct.unpack("!BBH", reply[:4])
    require(length == len(reply), f"length field {length}, reply of {len(reply)} octets")
    require(identifier == request[1], "reply carries another identifier than the request")
    if port is Port.AUTH:
        require(
            may_accept or code != ACCESS_ACCEPT,
            "ACCESS-ACCEPT for a request made by the fuzzer, which knows no valid OTP",
        )
        require(code in (ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_CHALLENGE), f"reply code {code}")
    else:
        require(code == ACCOUNTING_RESPONSE, f"reply code {code} on the accounting port")
    expected = hashlib.md5(
        reply[:4] + request[4:20] + reply[20:] + nas_client.secret, usedforsecurity=False
    ).digest()
    require(hmac.compare_digest(reply[4:20], expected), "wrong Response Authenticator")
    attributes = split_attributes(reply[HEADER:])
    if attributes is None:
        raise FuzzFinding("reply attributes are not well-formed")
    if port is Port.AUTH:
        require(
            bool(attributes) and attributes[0][0] == MESSAGE_AUTHENTICATOR,
            "reply without Message-Authenticator first (BlastRADIUS)",
        )
        blanked = reply[:4] + request[4:20] + reply[20:22] + bytes(16) + reply[38:]
        mac = hmac.new(nas_client.secret, blanked, "md5").digest()
        require(hmac.compare_digest(attributes[0][1], mac), "wrong reply Message-Authenticator")
    echoed = echo_of or request
    request_attributes = split_attributes(echoed[HEADER : struct.unpack("!H", echoed[2:4])[0]])
    require(
        [v for k, v in attributes if k == PROXY_STATE]
        == [v for k, v in request_attributes or [] if k == PROXY_STATE],
        "Proxy-State not echoed unchanged and in order (RFC 2865 5.33)",
    )
    if code == ACCESS_CHALLENGE:
        states = [v for k, v in attributes if k == STATE]
        require(
            len(states) == 1 and len(states[0]) == 32,
            "challenge without one 32-octet State",
        )
        require(
            all(0x21 <= octet <= 0x7E for octet in states[0]),
            "a State that is not printable (a zero byte is cut by some NAS)",
        )
    return attributes


def state_of(attributes: list[tuple[int, bytes]]) -> bytes | None:
    return next((value for kind, value in attributes if kind == STATE), None)


# --- the world the handler runs in ---------------------------------------------------


def build_handler(work: Path) -> tuple[RadiusHandler, SimulatedKey]:
    """A migrated SQLite database with the fuzz NAS clients, user and keys."""
    url = URL.create("sqlite+pysqlite", database=str(work / "flexnet.sqlite3"))
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    database = Database.from_url(url)
    box = SecretBox(MASTER_KEY)
    key = SimulatedKey(KEY_ID, os.urandom(6), os.urandom(16))
    with database.session() as session:
        add_login(
            session,
            box,
            bsnr=BSNR,
            username=USERNAME,
            password=PASSWORD,
            serial="fuzz-key",
            now=NOW,
            key=key,
        )
        session.add(
            Token(
                serial="fuzz-remote",
                kind=TokenKind.YUBICO_OTP,
                public_id=REMOTE_ID,
                secret=None,
                remote_validation=True,
                status=TokenStatus.STOCK,
                created_at=NOW,
            )
        )
        for name, client, legacy in (("vpn", STRICT, False), ("legacy", LEGACY, True)):
            nas.add_nas(
                session,
                name=name,
                address=client.source[0],
                secret=client.secret.decode(),
                box=box,
                actor=ACTOR,
                now=NOW,
                allow_missing_message_authenticator=legacy,
            )
    # Generous limits: throttling would otherwise stop the fuzzer at the first counter.
    unlimited = 10**9
    settings = Settings(
        instance_path=work,
        database_url=url,
        secret_key="fuzz-" * 8,
        master_key=MASTER_KEY,
        auth=AuthSettings(
            lockout_threshold=unlimited,
            hard_lock_after=unlimited,
            source_failure_limit=unlimited,
            key_failure_limit=unlimited,
        ),
    )
    handler = RadiusHandler(database, settings, remote=RemoteKnowsNoValidOtp(), clock=lambda: NOW)
    return handler, key


def self_check(handler: RadiusHandler, key: SimulatedKey) -> None:
    """The world is as the fuzzer assumes: a real OTP logs in, so "never an accept" in
    the loop means something; packets signed here are taken; garbage OTPs are rejected."""

    def login(identifier: int, typed: str | None, state: bytes | None = None) -> tuple[int, bytes]:
        """Reply code and State of one Access-Request from the strict NAS."""
        authenticator = os.urandom(16)
        attributes = [attribute(USER_NAME, USERNAME.encode())]
        if typed is not None:
            hidden = hide_password(typed.encode(), STRICT.secret, authenticator)
            attributes.append(attribute(USER_PASSWORD, hidden))
        if state is not None:
            attributes.append(attribute(STATE, state))
        request = assemble(ACCESS_REQUEST, identifier, authenticator, attributes, STRICT.secret)
        reply = handler.handle(request, STRICT.source, Port.AUTH)
        if reply is None:
            raise FuzzFinding(f"self-check: request {identifier} not answered")
        answer = check_reply(request, reply, STRICT, Port.AUTH, may_accept=True)
        return reply[0], state_of(answer) or b""

    code, state = login(1, PASSWORD)
    require(code == ACCESS_CHALLENGE, "self-check: the password alone is not challenged")
    code, _ = login(2, key.otp(), state)
    require(code == ACCESS_ACCEPT, "self-check: a real OTP after the challenge is not accepted")
    for identifier, typed in enumerate(
        (PASSWORD + KEY_ID + "c" * 32, PASSWORD + REMOTE_ID + "c" * 32, None), start=3
    ):
        code, _ = login(identifier, typed)
        require(code == ACCESS_REJECT, f"self-check: request {identifier} is not rejected")
    start = assemble(
        ACCOUNTING_REQUEST,
        6,
        None,
        [
            attribute(ACCT_STATUS, struct.pack("!I", 1)),
            attribute(ACCT_SESSION_ID, b"self-check"),
            attribute(USER_NAME, USERNAME.encode()),
            attribute(FRAMED_IP, bytes([10, 9, 8, 7])),
        ],
        STRICT.secret,
    )
    reply = handler.handle(start, STRICT.source, Port.ACCT)
    require(reply is not None, "self-check: accounting Start not answered")
    check_reply(start, reply, STRICT, Port.ACCT)


# --- the fuzz target -----------------------------------------------------------------


class ErrorRecords(logging.Handler):
    """Collects the ERROR records flexnet logs: an exception the handler caught."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class RadiusTarget:
    """libFuzzer's target: one input, raw or structured, and every reply checked."""

    def __init__(self, handler: RadiusHandler, findings: Findings, errors: ErrorRecords) -> None:
        self.handler = handler
        self.findings = findings
        self.errors = errors
        self._answered: dict[tuple[tuple[str, int], bytes, bytes], bytes] = {}

    def __call__(self, data: bytes) -> None:
        if not data:
            return
        # Each input starts from empty caches, so that it replays alike on its own (the
        # challenges of earlier inputs stay in the database, but nobody knows their States).
        self.handler.duplicates = DuplicateCache()
        self.handler.challenges = ChallengeStore(
            self.handler.database, self.handler.box, clock=self.handler.clock
        )
        self._answered = {}
        if data[0] % 4 == 0:
            client = LEGACY if data[0] & 4 else STRICT
            for port in (Port.AUTH, Port.ACCT):
                self._send(data[1:], client, port, data)
        else:
            self._structured(Reader(data[1:]), data)

    def _send(self, datagram: bytes, client: Nas, port: Port, data: bytes) -> bytes | None:
        reply = self.handler.handle(datagram, client.source, port)  # must never raise
        self._report_logged_errors(data)
        if reply is None:
            return None
        # The handler's duplicate key (RFC 5080): the first request answered under it
        # owns the (cached) reply.
        key = (client.source, datagram[:2], datagram[4:20])
        check_reply(datagram, reply, client, port, echo_of=self._answered.setdefault(key, datagram))
        if len(reply) > MAX_PACKET:
            self.findings.report(
                f"reply longer than {MAX_PACKET} octets (RFC 2865 3)",
                f"reply code {reply[0]} of {len(reply)} octets to a request of {len(datagram)}",
                data,
            )
        return reply

    def _report_logged_errors(self, data: bytes) -> None:
        records, self.errors.records = self.errors.records, []
        for record in records:
            where, detail = "", record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                frame = traceback.extract_tb(error.__traceback__)[-1]
                where = f" {type(error).__name__} at {Path(frame.filename).name}:{frame.lineno}"
                detail += "\n" + "".join(traceback.format_exception(error))
            self.findings.report(f"logged error: {record.msg}{where}", detail, data)

    def _structured(self, reader: Reader, data: bytes) -> None:
        previous: tuple[bytes, Nas, Port, bytes | None] | None = None
        state: bytes | None = None
        for _ in range(1 + reader.below(3)):
            flags = reader.byte()
            if flags & 0x80 and previous is not None:
                datagram, client, port, earlier = previous
                reply = self._send(datagram, client, port, data)
                if earlier is not None:
                    require(reply == earlier, "a retransmission got another answer (RFC 5080)")
                previous = (datagram, client, port, reply)
                continue
            datagram, client, port = self._packet(reader, flags, state)
            reply = self._send(datagram, client, port, data)
            if reply is not None and reply[0] == ACCESS_CHALLENGE:
                state = state_of(split_attributes(reply[HEADER:]) or [])
            previous = (datagram, client, port, reply)

    def _packet(self, reader: Reader, flags: int, state: bytes | None) -> tuple[bytes, Nas, Port]:
        """flags: bit 0 accounting, bit 1 legacy NAS, bits 2-3 MaPlacement, bit 4 keep
        the input's authenticator on accounting; then identifier, authenticator (16),
        up to 24 attributes, and 16 octets of a forged Message-Authenticator."""
        accounting = bool(flags & 1)
        client = LEGACY if flags & 2 else STRICT
        placement = (flags >> 2) & 3
        identifier = reader.byte()
        authenticator = reader.exactly(16)
        attributes: list[bytes] = []
        for _ in range(reader.below(25)):
            attributes.append(self._attribute(reader, client, authenticator, state, attributes))
        forged = reader.exactly(16) if placement == MaPlacement.FORGED else b""
        if accounting:
            kept = authenticator if flags & 0x10 else None
            datagram = assemble(
                ACCOUNTING_REQUEST, identifier, kept, attributes, client.secret, placement, forged
            )
            return datagram, client, Port.ACCT
        datagram = assemble(
            ACCESS_REQUEST, identifier, authenticator, attributes, client.secret, placement, forged
        )
        return datagram, client, Port.AUTH

    def _attribute(
        self,
        reader: Reader,
        client: Nas,
        authenticator: bytes,
        state: bytes | None,
        so_far: list[bytes],
    ) -> bytes:
        operation = reader.below(13)
        if operation == 0:
            return attribute(reader.byte(), reader.sized(MAX_VALUE))
        if operation == 1:  # framing of the input's choice: lengths 0, 1, too long
            return bytes([reader.byte(), reader.byte()]) + reader.sized()
        if operation == 2:
            return attribute(USER_NAME, _username(reader))
        if operation == 3:
            plain = _typed(reader)[:240]
            return attribute(USER_PASSWORD, hide_password(plain, client.secret, authenticator))
        if operation == 4:
            return attribute(USER_PASSWORD, reader.sized(MAX_VALUE))
        if operation == 5:
            use_state = reader.below(4) != 0
            return attribute(STATE, state if use_state and state else reader.sized(32))
        if operation == 6:
            return attribute(PROXY_STATE, reader.sized(MAX_VALUE))
        if operation == 7:
            choice = reader.below(4)
            addresses = (b"192.0.2.10", b"2001:db8::7", b"10.0.0.1")
            value = addresses[choice] if choice < 3 else reader.sized(64)
            return attribute(CALLING_STATION, value)
        if operation == 8:
            return attribute(VENDOR_SPECIFIC, _vendor_specific(reader))
        if operation == 9:
            return _accounting_attribute(reader)
        if operation == 10:  # a second Message-Authenticator
            return attribute(MESSAGE_AUTHENTICATOR, reader.exactly(16))
        if operation == 11:  # bulk: large packets from small inputs
            choice = reader.below(4)
            kind = (PROXY_STATE, 25, VENDOR_SPECIFIC)[choice] if choice < 3 else reader.byte()
            return attribute(kind, bytes([reader.byte()]) * reader.below(MAX_VALUE + 1))
        return so_far[-1] if so_far else attribute(USER_NAME, USERNAME.encode())


def _username(reader: Reader) -> bytes:
    choice = reader.below(6)
    names = (USERNAME, USERNAME.upper(), f" {USERNAME} ", "unbekannt", "")
    return names[choice].encode() if choice < len(names) else reader.sized(80)


def _typed(reader: Reader) -> bytes:
    """What the user typed into the password field: password, OTP, both, or garbage."""
    password = PASSWORD.encode()
    choice = reader.below(7)
    if choice == 0:
        return password
    if choice == 1:
        return password + _otp(reader)
    if choice == 2:
        return _otp(reader)
    if choice == 3:
        return reader.sized(160)
    if choice == 4:
        return reader.sized(100) + _otp(reader)
    digits = "".join(str(b % 10) for b in reader.exactly(8 if reader.below(2) else 6))
    return password + (KEY_ID.encode() if choice == 6 else b"") + digits.encode()


def _otp(reader: Reader) -> bytes:
    """A Yubico OTP shape under a known, remote, unknown, empty or arbitrary public id."""
    choice = reader.below(5)
    ids = (KEY_ID, REMOTE_ID, UNKNOWN_ID, "")
    public = ids[choice] if choice < len(ids) else str(modhex(reader.sized(8)).decode())
    text = public + str(modhex(reader.exactly(16)).decode())
    shape = reader.below(4)
    if shape == 1:
        text = text.upper()
    elif shape == 2:
        text = text.translate(TO_DVORAK)
    elif shape == 3:
        text = f" {text}\t"
    return text.encode()


def _vendor_specific(reader: Reader) -> bytes:
    choice = reader.below(4)
    vendor = VENDORS[choice] if choice < len(VENDORS) else reader.number(4)
    subs = b""
    for _ in range(reader.below(4)):
        kind = reader.byte()
        value = reader.sized(40)
        subs += bytes([kind, len(value) + 2]) + value
    if reader.below(4) == 0:
        subs += reader.sized(8)  # trailing bytes that are no sub-attribute
    return struct.pack("!I", vendor) + subs


def _accounting_attribute(reader: Reader) -> bytes:
    kind = ACCOUNTING_KINDS[reader.below(len(ACCOUNTING_KINDS))]
    choice = reader.below(4)
    if choice == 0:
        return attribute(kind, reader.exactly(4))
    if choice == 1:
        return attribute(kind, struct.pack("!I", ACCT_STATUS_VALUES[reader.below(5)]))
    if choice == 2:
        return attribute(kind, reader.sized(8))  # usually the wrong size for its type
    return attribute(kind, reader.text(64).encode("utf-8", errors="surrogatepass"))


# --- seeds and dictionary ------------------------------------------------------------


def _seed(*parts: int | bytes) -> bytes:
    return b"".join(bytes([part]) if isinstance(part, int) else part for part in parts)


def seeds() -> dict[str, bytes]:
    """A few inputs of each mode, so that the fuzzer starts deep instead of at zero."""
    auth = bytes(range(16))
    strict_login = assemble(
        ACCESS_REQUEST,
        7,
        auth,
        [
            attribute(USER_NAME, USERNAME.encode()),
            attribute(USER_PASSWORD, hide_password(PASSWORD.encode(), STRICT.secret, auth)),
        ],
        STRICT.secret,
    )
    legacy_login = assemble(
        ACCESS_REQUEST,
        8,
        auth,
        [
            attribute(USER_NAME, USERNAME.encode()),
            attribute(
                USER_PASSWORD,
                hide_password((PASSWORD + KEY_ID + "c" * 32).encode(), LEGACY.secret, auth),
            ),
        ],
        LEGACY.secret,
        MaPlacement.NONE,
    )
    accounting = assemble(
        ACCOUNTING_REQUEST,
        9,
        None,
        [
            attribute(ACCT_STATUS, struct.pack("!I", 1)),
            attribute(ACCT_SESSION_ID, b"sess-1"),
            attribute(USER_NAME, USERNAME.encode()),
            attribute(FRAMED_IP, bytes([10, 9, 8, 7])),
        ],
        STRICT.secret,
    )
    ciphertext = bytes(range(16, 32))
    return {
        "raw-strict-access": _seed(0, strict_login),
        "raw-legacy-access": _seed(4, legacy_login),
        "raw-accounting": _seed(0, accounting),
        # two packets: password alone (challenge), then the State and an OTP of the key
        "challenge-then-otp": _seed(
            1,
            1,
            *(0, 1, auth, 2, 2, 0, 3, 0),
            *(0, 2, auth[::-1], 3, 2, 0, 3, 2, 0, ciphertext, 0, 5, 1),
        ),
        "password-and-otp": _seed(1, 0, 0, 3, auth, 2, 2, 0, 3, 1, 0, ciphertext, 0),
        "remote-key-otp": _seed(1, 0, 0, 4, auth, 2, 2, 0, 3, 1, 1, ciphertext, 1),
        "hotp-digits": _seed(1, 0, 0, 5, auth, 2, 2, 0, 3, 5, 0, b"123456"),
        "proxy-state-retransmit": _seed(2, 1, 0, 6, auth, 3, 2, 0, 3, 0, 6, 4, b"prox", 0x80),
        "legacy-no-ma": _seed(3, 0, 0x0A, 7, auth, 2, 2, 0, 3, 2, 2, ciphertext, 3),
        "accounting-start-stop": _seed(
            1,
            1,
            *(1, 10, auth, 4, 9, 0, 1, 0, 9, 4, 2, 6, b"sess-2", 2, 0, 9, 11, 0, b"\n\t\x08\x07"),
            *(1, 11, auth, 3, 9, 0, 1, 1, 9, 4, 2, 6, b"sess-2", 9, 2, 0, b"\x00\x00\x10\x00"),
        ),
        "vendor-specific": _seed(1, 0, 0, 12, auth, 3, 2, 0, 3, 0, 8, 0, 1, 1, 2, b"ab", 1),
    }


TOKENS = [
    USERNAME.encode(),
    PASSWORD.encode(),
    KEY_ID.encode(),
    REMOTE_ID.encode(),
    bytes([MESSAGE_AUTHENTICATOR, 18]),
    bytes([ACCESS_REQUEST]),
    bytes([ACCOUNTING_REQUEST]),
]


def make_target(work: Path, findings: Findings) -> TestOneInput:
    handler, key = build_handler(work)
    # Dropped packets log a warning each: far too slow to format in a fuzz loop. Errors
    # stay on: each is an exception the handler caught, reported as a finding.
    logging.disable(logging.WARNING)
    errors = ErrorRecords()
    flexnet_log = logging.getLogger("flexnet")
    flexnet_log.addHandler(errors)
    flexnet_log.propagate = False
    self_check(handler, key)
    handler.duplicates = DuplicateCache()
    target: Callable[[bytes], None] = RadiusTarget(handler, findings, errors)
    return target


def main() -> None:
    run(
        "radius",
        make_target,
        seeds=seeds(),
        tokens=TOKENS,
        max_len=MAX_PACKET + 1,
        timeout_seconds=20,
    )


if __name__ == "__main__":
    main()
