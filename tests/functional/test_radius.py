"""The RADIUS server against the real radclient (freeradius-utils) and pyrad as clients."""

from __future__ import annotations

import hashlib
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from passlib.hash import bcrypt
from pyrad import packet as rp
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet import metrics
from flexnet.accounts import practices, users, vpn
from flexnet.clients import nas
from flexnet.config import AuthSettings, ExpiredPasswordMode, Settings, parse_master_key
from flexnet.db import Database
from flexnet.lifecycle import terms
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    AuthEvent,
    NasClient,
    PracticeKind,
    User,
    UserKind,
    VpnSession,
)
from flexnet.otp.secrets import SecretBox
from flexnet.radius.disconnect import DisconnectDispatcher
from flexnet.radius.handler import RadiusHandler
from flexnet.radius.packets import MESSAGE_AUTHENTICATOR, Port
from tests.conftest import BOX, NOW, STAFF, TEST_MASTER_KEY
from tests.support.radius import SECRET, FakeNas, RunningRadius, encoded_access_request, running
from tests.support.seed import add_login
from tests.support.yubikeys import SimulatedKey

PASSWORD = "Sommer-Regen-2026!"


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    radius: RunningRadius
    database: Database
    key: SimulatedKey
    third_key: SimulatedKey
    clock: Clock
    nas: FakeNas


def seed(database: Database, coa_port: int) -> tuple[SimulatedKey, SimulatedKey]:
    with database.session() as session:
        member = add_login(
            session,
            BOX,
            bsnr="881234500",
            username="emuster",
            password=PASSWORD,
            serial="key-881234500",
            now=NOW,
        )
        third = add_login(
            session,
            BOX,
            bsnr="881234600",
            username="dritter",
            password=PASSWORD,
            practice_kind=PracticeKind.THIRD_PARTY,
            user_kind=UserKind.THIRD_PARTY,
            serial="key-881234600",
            now=NOW,
        )
        nas.add_nas(
            session,
            name="vpn-test",
            address="127.0.0.1",
            secret=SECRET.decode(),
            box=BOX,
            actor=STAFF,
            now=NOW,
            coa_port=coa_port,
        )
    return member, third


def settings_for(url: URL, **auth: object) -> Settings:
    return Settings(
        instance_path=Path("/nonexistent"),
        database_url=url,
        secret_key="s" * 32,
        master_key=parse_master_key(TEST_MASTER_KEY),
        auth=AuthSettings(**auth),
    )


@pytest.fixture
def world_factory(sqlite_url: URL) -> Iterator[object]:
    started: list[tuple[object, FakeNas, Database]] = []

    def start(**auth: object) -> World:
        database = Database.from_url(sqlite_url)
        test_nas = FakeNas(None)
        keys = seed(database, test_nas.port) if not started else (None, None)
        clock = Clock(NOW + timedelta(days=1))
        handler = RadiusHandler(
            database, settings_for(sqlite_url, **auth), clock=clock, refresh_seconds=0.0
        )
        test_nas.dictionary = handler.dictionary
        context = running(handler)
        radius = context.__enter__()
        started.append((context, test_nas, database))
        return World(radius, database, keys[0], keys[1], clock, test_nas)  # type: ignore[arg-type]

    yield start
    for context, test_nas, database in started:
        context.__exit__(None, None, None)  # type: ignore[attr-defined]
        test_nas.close()
        database.dispose()


@pytest.fixture
def world(world_factory: object) -> World:
    return world_factory()  # type: ignore[operator]


def code_of(reply: rp.Packet | None) -> int | None:
    return None if reply is None else reply.code


def events(world: World) -> list[tuple[str, str]]:
    world.radius.server.handler.reject_log.flush()  # fast rejects are logged in batches
    with world.database.reader() as session:
        return [
            (e.outcome, e.reason) for e in session.scalars(select(AuthEvent).order_by(AuthEvent.id))
        ]


# --- radclient ---------------------------------------------------------------------------


def test_radclient_accept_with_password_and_otp(world: World) -> None:
    out = world.radius.radclient(
        f"User-Name=emuster,User-Password='{PASSWORD}{world.key.otp()}',"
        "Message-Authenticator=0x00\n"
    )

    assert "Received Access-Accept" in out
    assert 'Filter-Id = "flexnet-full"' in out


def test_radclient_wrong_password_and_replay_are_rejected(world: World) -> None:
    otp = world.key.otp()
    wrong = world.radius.radclient(
        f"User-Name=emuster,User-Password='Falsch-Falsch-1{otp}',Message-Authenticator=0x00\n"
    )
    replay = world.radius.radclient(
        f"User-Name=emuster,User-Password='{PASSWORD}{otp}',Message-Authenticator=0x00\n"
    )

    assert "Received Access-Reject" in wrong and "Received Access-Reject" in replay
    assert 'Reply-Message = "Anmeldung fehlgeschlagen."' in wrong
    assert [r for _, r in events(world)] == ["password_wrong", "otp_replayed"]


def test_radclient_without_message_authenticator_gets_no_answer(world: World) -> None:
    out = world.radius.radclient(f"User-Name=emuster,User-Password='{PASSWORD}{world.key.otp()}'\n")

    assert "No reply from server" in out
    assert events(world) == []


def test_radclient_accounting_start_interim_stop(world: World) -> None:
    base = "User-Name=emuster,Acct-Session-Id=sess-1,Framed-IP-Address=10.9.8.7"
    for status, octets in (("Start", 0), ("Interim-Update", 1000), ("Stop", 5000)):
        out = world.radius.radclient(
            f"{base},Acct-Status-Type={status},Acct-Input-Octets={octets},"
            f"Acct-Output-Octets={octets * 2},Acct-Terminate-Cause=User-Request\n",
            command="acct",
        )
        assert "Received Accounting-Response" in out

    with world.database.reader() as session:
        stored = session.scalars(select(VpnSession)).one()
    assert (stored.username, stored.framed_ip, stored.input_octets, stored.output_octets) == (
        "emuster",
        "10.9.8.7",
        5000,
        10000,
    )
    assert stored.user_id is not None and stored.token_serial == "key-881234500"
    assert stored.stopped_at is not None and stored.nas_address == "127.0.0.1"


# --- pyrad -------------------------------------------------------------------------------


def test_pyrad_accept_reply_has_message_authenticator_first(world: World) -> None:
    reply = world.radius.send(world.radius.access_request("emuster", PASSWORD + world.key.otp()))

    assert code_of(reply) == rp.AccessAccept
    assert reply is not None and reply.raw_packet[20] == MESSAGE_AUTHENTICATOR


def test_reject_also_carries_message_authenticator_first(world: World) -> None:
    otp = world.key.otp()
    # A different last character: the ciphertext no longer decrypts with the key's AES key.
    wrong = otp[:-1] + ("b" if otp[-1] != "b" else "c")
    reply = world.radius.send(world.radius.access_request("emuster", PASSWORD + wrong))

    assert code_of(reply) == rp.AccessReject
    assert reply is not None and reply.raw_packet[20] == MESSAGE_AUTHENTICATOR


def test_challenge_flow(world: World) -> None:
    first = world.radius.send(world.radius.access_request("emuster", PASSWORD))
    assert code_of(first) == rp.AccessChallenge and first is not None
    state = first["State"][0]
    assert len(state) >= 16 and "Einmalkennwort" in first["Reply-Message"][0]

    second = world.radius.send(world.radius.access_request("emuster", world.key.otp(), state=state))
    reused = world.radius.send(world.radius.access_request("emuster", world.key.otp(), state=state))

    assert code_of(second) == rp.AccessAccept
    assert code_of(reused) == rp.AccessReject  # a State is single-use


def test_challenge_tells_nothing_about_user_or_password(world: World) -> None:
    replies = [
        world.radius.send(world.radius.access_request(name, password))
        for name, password in (("emuster", "falsch"), ("niemand", PASSWORD))
    ]

    assert [code_of(r) for r in replies] == [rp.AccessChallenge] * 2
    state = replies[0]["State"][0]  # type: ignore[index]
    assert (
        code_of(
            world.radius.send(world.radius.access_request("emuster", world.key.otp(), state=state))
        )
        == rp.AccessReject
    )


def test_challenge_state_is_bound_to_the_user(world: World) -> None:
    first = world.radius.send(world.radius.access_request("emuster", PASSWORD))
    assert first is not None

    other = world.radius.send(
        world.radius.access_request("dritter", world.third_key.otp(), state=first["State"][0])
    )

    assert code_of(other) == rp.AccessReject


def test_third_party_gets_the_restricted_profile(world: World) -> None:
    reply = world.radius.send(
        world.radius.access_request("dritter", PASSWORD + world.third_key.otp())
    )

    assert code_of(reply) == rp.AccessAccept
    assert reply is not None and reply["Filter-Id"] == ["flexnet-restricted"]


def test_locked_user_and_lifecycle_lock(world: World) -> None:
    with world.database.session() as session:
        practice = practices.get_practice(session, "881234500")
        practice.activity_ended_on = date(2026, 5, 15)  # locked from 2027-07-01
        user = session.scalars(select(User).where(User.username == "emuster")).one()
        user.password_set_at = datetime(2027, 6, 1, tzinfo=BERLIN)  # not expired by then
    world.clock.now = datetime(2027, 6, 30, 23, 59, tzinfo=BERLIN)
    before = world.radius.send(world.radius.access_request("emuster", PASSWORD + world.key.otp()))
    world.clock.now = datetime(2027, 7, 1, 0, 0, tzinfo=BERLIN)
    after = world.radius.send(world.radius.access_request("emuster", PASSWORD + world.key.otp()))

    assert (code_of(before), code_of(after)) == (rp.AccessAccept, rp.AccessReject)
    assert events(world)[-1] == ("reject", "user_locked_lifecycle")


def test_a_taken_over_password_that_breaks_the_policy_does_not_open_the_vpn(
    world_factory: object,
) -> None:
    world = world_factory(self_service_url="https://flexnet.example/self-service")  # type: ignore[operator]
    taken_over = {
        "altabc": {"migrated_password": "abc"},
        "althash": {"migrated_hash": bcrypt.hash("abc")},
        "altgut": {"migrated_hash": bcrypt.hash(PASSWORD)},
    }
    with world.database.session() as session:
        for username, password in taken_over.items():
            users.create_user(
                session,
                username=username,
                bsnr="881234500",
                kind=UserKind.STAFF,
                actor=STAFF,
                now=NOW,
                **password,
            )

    def radclient(username: str, password: str) -> str:
        return world.radius.radclient(
            f"User-Name={username},User-Password='{password}{world.key.otp()}',"
            "Message-Authenticator=0x00\n"
        )

    plain, hashed = radclient("altabc", "abc"), radclient("althash", "abc")
    good = radclient("altgut", PASSWORD)

    for out in (plain, hashed):
        assert "Received Access-Reject" in out
        assert "Kennwortrichtlinie" in out and "https://flexnet.example/self-service" in out
    assert "Received Access-Accept" in good and 'Filter-Id = "flexnet-full"' in good
    assert [reason for _, reason in events(world)[-3:]] == ["password_weak"] * 2 + ["ok"]


def test_expired_password_restricted_profile(world_factory: object) -> None:
    world = world_factory(expired_password_mode=ExpiredPasswordMode.RESTRICTED)  # type: ignore[operator]
    world.clock.now = NOW + timedelta(days=200)

    reply = world.radius.send(world.radius.access_request("emuster", PASSWORD + world.key.otp()))

    assert code_of(reply) == rp.AccessAccept
    assert reply is not None and reply["Filter-Id"] == ["flexnet-password-change"]
    assert reply["Session-Timeout"] == [900]


def test_expired_password_changed_in_band(world_factory: object) -> None:
    world = world_factory(expired_password_mode=ExpiredPasswordMode.CHALLENGE)  # type: ignore[operator]
    world.clock.now = NOW + timedelta(days=200)
    radius = world.radius

    ask = radius.send(radius.access_request("emuster", PASSWORD + world.key.otp()))
    assert code_of(ask) == rp.AccessChallenge and ask is not None
    weak = radius.send(radius.access_request("emuster", "kurz", state=ask["State"][0]))
    assert code_of(weak) == rp.AccessChallenge and weak is not None
    assert "12 Zeichen" in "".join(weak["Reply-Message"])
    repeat = radius.send(
        radius.access_request("emuster", "Neues-Herbst-Laub-7", state=weak["State"][0])
    )
    assert code_of(repeat) == rp.AccessChallenge and repeat is not None
    done = radius.send(
        radius.access_request("emuster", "Neues-Herbst-Laub-7", state=repeat["State"][0])
    )

    assert code_of(done) == rp.AccessAccept
    fresh = radius.send(radius.access_request("emuster", "Neues-Herbst-Laub-7" + world.key.otp()))
    assert code_of(fresh) == rp.AccessAccept


# --- BlastRADIUS, unknown sources, duplicates, malformed packets --------------------------


def test_invalid_message_authenticator_is_dropped(world: World) -> None:
    request = world.radius.access_request("emuster", PASSWORD + world.key.otp())
    raw = bytearray(request.RequestPacket())
    raw[-1] ^= 0xFF  # Message-Authenticator is the last attribute pyrad wrote

    assert world.radius.send_raw(bytes(raw)) is None


def test_proxy_state_without_message_authenticator_is_dropped(world: World) -> None:
    request = world.radius.access_request(
        "emuster", PASSWORD + world.key.otp(), message_authenticator=False, Proxy_State=b"abc"
    )

    assert world.radius.send(request, timeout=1) is None


def test_unknown_source_is_dropped(world: World) -> None:
    raw = world.radius.access_request("emuster", PASSWORD + world.key.otp()).RequestPacket()

    assert world.radius.send_raw(raw, source="127.0.0.2") is None
    assert events(world) == []


def test_a_disabled_nas_is_dropped_until_enabled_again(world: World) -> None:
    with world.database.session() as session:
        nas.set_active(session, name="vpn-test", active=False, actor=STAFF, now=NOW)
    request = world.radius.access_request("emuster", PASSWORD + world.key.otp())
    dropped = world.radius.send(request, timeout=1)
    with world.database.session() as session:
        nas.set_active(session, name="vpn-test", active=True, actor=STAFF, now=NOW)
    answered = world.radius.send(world.radius.access_request("emuster", PASSWORD + world.key.otp()))

    assert dropped is None
    assert code_of(answered) == rp.AccessAccept
    assert [r for _, r in events(world)] == ["ok"]  # the dropped packet decided nothing


def test_after_a_new_nas_secret_only_the_new_one_is_answered(world: World) -> None:
    new_secret = b"ein-neues-nas-geheimnis-42"
    with world.database.session() as session:
        nas.set_secret(
            session,
            name="vpn-test",
            secret=new_secret.decode(),
            box=BOX,
            actor=STAFF,
            now=NOW,
        )

    old = world.radius.send(
        world.radius.access_request("emuster", PASSWORD + world.key.otp()), timeout=1
    )
    # An answer is expected: wait as a NAS would (it includes a password hash), not 1 s.
    new = world.radius.send_raw(
        encoded_access_request("emuster", PASSWORD + world.key.otp(), secret=new_secret),
        timeout=5,
    )

    assert old is None
    assert new is not None and new[0] == rp.AccessAccept
    assert [r for _, r in events(world)] == ["ok"]


def test_retransmission_gets_the_cached_answer_and_consumes_nothing(world: World) -> None:
    raw = world.radius.access_request("emuster", PASSWORD + world.key.otp()).RequestPacket()

    first, second = world.radius.retransmit(raw)
    from_elsewhere = world.radius.send_raw(raw)  # another source port: a new request

    assert first is not None and first == second
    assert first[0] == rp.AccessAccept
    assert from_elsewhere is not None and from_elsewhere[0] == rp.AccessReject
    assert [r for _, r in events(world)] == ["ok", "otp_replayed"]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: raw[:10],  # truncated header
        lambda raw: raw[:2] + struct.pack("!H", 4000) + raw[4:],  # length beyond datagram
        lambda raw: raw[:2] + struct.pack("!H", 19) + raw[4:],  # length below header
        lambda raw: raw[:20] + bytes([1, 250]) + raw[22:],  # attribute overflows
        lambda raw: raw[:20] + bytes([0, 4, 0, 0]) + raw[20:],  # attribute type 0
        lambda raw: raw[:20] + bytes([80, 10]) + bytes(8),  # short Message-Authenticator
        lambda raw: bytes([4]) + raw[1:],  # Accounting-Request on the auth port
        lambda raw: raw + bytes(5000),  # oversized datagram
        lambda raw: bytes(range(256)) * 2,  # garbage
        lambda raw: raw[:20] + bytes([18, 2]) * 210,  # more than 200 attributes
    ],
)
def test_malformed_packets_are_dropped_and_the_server_keeps_serving(world: World, mangle) -> None:
    raw = world.radius.access_request("emuster", PASSWORD + world.key.otp()).RequestPacket()

    assert world.radius.send_raw(mangle(raw)) is None
    reply = world.radius.send(world.radius.access_request("emuster", PASSWORD + world.key.otp()))
    assert code_of(reply) == rp.AccessAccept


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("User-Name", ["emuster", "admin"]),
        ("User-Password", ["first", "second"]),
        ("State", [b"a" * 16, b"b" * 16]),
    ],
)
def test_duplicate_attributes_in_a_signed_request_never_pass(
    world: World, name: str, values: list[str | bytes]
) -> None:
    """Signed by the NAS (so not dropped as forged), but ambiguous: which name, which
    password? Never an accept, and the server keeps serving."""
    typed = PASSWORD + world.key.otp()
    request = world.radius.access_request(
        "emuster" if name != "User-Name" else None,  # type: ignore[arg-type]
        typed if name != "User-Password" else None,
        message_authenticator=False,
    )
    for value in values:
        request.AddAttribute(name, request.PwCrypt(typed) if name == "User-Password" else value)
    request.add_message_authenticator()

    reply = world.radius.send(request)
    after = world.radius.send(world.radius.access_request("emuster", PASSWORD + world.key.otp()))

    assert code_of(reply) in (None, rp.AccessReject, rp.AccessChallenge)
    assert code_of(after) == rp.AccessAccept


def test_invalid_utf8_password_is_rejected(world: World) -> None:
    request = world.radius.access_request("emuster", None)
    request["User-Password"] = request.PwCrypt(b"\xff\xfe kaputt")

    reply = world.radius.send(request)

    assert code_of(reply) == rp.AccessReject
    assert events(world)[-1] == ("reject", "radius_attributes")


# --- Disconnect on lock ----------------------------------------------------------------


def test_lock_disconnects_the_live_session_at_the_nas(world: World) -> None:
    world.radius.radclient(
        "User-Name=emuster,Acct-Session-Id=live-1,Acct-Status-Type=Start\n", command="acct"
    )
    with world.database.session() as session:
        user = session.scalars(select(User).where(User.username == "emuster")).one()
        assert vpn.request_disconnect(session, user_ids=[user.id], now=NOW) == 1
    dispatcher = DisconnectDispatcher(
        world.database, BOX, world.radius.server.handler.dictionary, timeout=1.0, retries=1
    )
    acks = metrics.REGISTRY.get_sample_value("flexnet_disconnects_total", {"result": "ack"})

    assert dispatcher.run_once() == 1
    assert dispatcher.run_once() == 0  # never twice
    assert metrics.REGISTRY.get_sample_value("flexnet_disconnects_total", {"result": "ack"}) == (
        (acks or 0) + 1
    )
    with world.database.reader() as session:
        stored = session.scalars(select(VpnSession)).one()
    assert stored.disconnect_result == "ack"
    assert len(world.nas.received) == 1
    assert world.nas.received[0]["Acct-Session-Id"] == ["live-1"]


def test_missing_access_profile_is_never_a_bare_accept(world: World) -> None:
    with world.database.session() as session:
        practices.get_practice(session, "881234600").access_profile = "restriced"  # a typo

    reply = world.radius.send(
        world.radius.access_request("dritter", PASSWORD + world.third_key.otp())
    )

    assert reply is None  # silence: the NAS asks its second server


def test_a_bare_otp_is_used_up_not_kept_as_a_password(world: World) -> None:
    otp = world.key.otp()

    bare = world.radius.send(world.radius.access_request("emuster", otp))
    later = world.radius.send(world.radius.access_request("emuster", PASSWORD + otp))

    assert code_of(bare) == rp.AccessReject
    assert code_of(later) == rp.AccessReject
    assert events(world)[-1] == ("reject", "otp_replayed")


def test_accounting_on_closes_the_nas_sessions(world: World) -> None:
    world.radius.radclient(
        "User-Name=emuster,Acct-Session-Id=a1,Acct-Status-Type=Start\n", command="acct"
    )
    out = world.radius.radclient(
        "Acct-Status-Type=Accounting-On,NAS-Identifier=vpn\n", command="acct"
    )

    assert "Received Accounting-Response" in out
    with world.database.reader() as session:
        stored = session.scalars(select(VpnSession)).one()
    assert stored.stopped_at is not None and stored.terminate_cause == "NAS-Reboot"


@pytest.mark.parametrize(("coa_port", "result"), [(None, "no_coa_port"), ("closed", "timeout")])
def test_disconnect_results_are_recorded(world: World, coa_port: object, result: str) -> None:
    import port_for

    from flexnet.models import NasClient

    world.radius.radclient(
        "User-Name=emuster,Acct-Session-Id=d1,Acct-Status-Type=Start\n", command="acct"
    )
    with world.database.session() as session:
        client = session.scalars(select(NasClient)).one()
        client.coa_port = port_for.select_random() if coa_port == "closed" else None
        user = session.scalars(select(User).where(User.username == "emuster")).one()
        vpn.request_disconnect(session, user_ids=[user.id], now=NOW)
    dispatcher = DisconnectDispatcher(
        world.database, BOX, world.radius.server.handler.dictionary, timeout=0.3, retries=1
    )
    before = metrics.REGISTRY.get_sample_value("flexnet_disconnects_total", {"result": result})

    assert dispatcher.run_once() == 1
    assert metrics.REGISTRY.get_sample_value("flexnet_disconnects_total", {"result": result}) == (
        (before or 0) + 1
    )
    with world.database.reader() as session:
        stored = session.scalars(select(VpnSession)).one()
    assert stored.disconnect_result == result
    assert stored.stopped_at is None  # only an ACK ends the session


def test_accounting_with_a_bad_message_authenticator_is_dropped(world: World) -> None:
    client = world.radius.client()
    request = client.CreateAcctPacket(
        User_Name="emuster", Acct_Session_Id="m1", Acct_Status_Type="Start"
    )
    request.add_message_authenticator()
    raw = bytearray(request.RequestPacket())
    client._CloseSocket()
    offset = 20
    while raw[offset] != MESSAGE_AUTHENTICATOR:  # find it, flip a bit of its value
        offset += raw[offset + 1]
    raw[offset + 2] ^= 0x01
    # The Request Authenticator covers the packet: recompute it so only the MA is wrong.
    raw[4:20] = bytes(16)
    raw[4:20] = hashlib.md5(bytes(raw) + SECRET, usedforsecurity=False).digest()

    assert world.radius.send_raw(bytes(raw), port="acct") is None


def accounting(world: World, session_id: str, status: str, *extra: bytes) -> bytes | None:
    """An Accounting-Request with raw extra attributes, signed as a NAS signs it."""
    client = world.radius.client()
    request = client.CreateAcctPacket(
        User_Name="emuster", Acct_Session_Id=session_id, Acct_Status_Type=status
    )
    raw = bytearray(request.RequestPacket()) + b"".join(extra)
    client._CloseSocket()
    raw[2:4] = struct.pack("!H", len(raw))
    raw[4:20] = bytes(16)
    raw[4:20] = hashlib.md5(bytes(raw) + SECRET, usedforsecurity=False).digest()
    return world.radius.send_raw(bytes(raw), port="acct")


def test_accounting_edge_values_found_by_the_fuzzer(world: World) -> None:
    """Each of these once left a session unrecorded (no answer, the NAS retrying)."""
    input_octets_of_3_octets = bytes([42, 5, 0, 0, 1])
    gigawords_max = bytes([52, 6]) + b"\xff\xff\xff\xff"  # Acct-Input-Gigawords
    long_id = "s" * 200

    malformed = accounting(world, "f1", "Start", input_octets_of_3_octets)
    huge = accounting(world, "f2", "Stop", gigawords_max)
    long_start = accounting(world, long_id, "Start")
    long_stop = accounting(world, long_id, "Stop")

    assert malformed is None  # dropped, logged: a malformed packet
    assert all(r is not None and r[0] == rp.AccountingResponse for r in (huge, long_start))
    assert long_stop is not None and long_stop[0] == rp.AccountingResponse
    with world.database.reader() as session:
        stored = {v.acct_session_id: v for v in session.scalars(select(VpnSession))}
    assert stored["f2"].input_octets == 2**63 - 1
    assert stored["s" * 128].stopped_at is not None


def test_an_answer_over_4096_octets_is_never_sent(world: World) -> None:
    """Proxy-State must be echoed; a request that fills 4096 octets with it would get an
    answer no NAS accepts."""
    request = world.radius.access_request("emuster", PASSWORD)  # asks for the OTP
    for n in range(15):
        request.AddAttribute("Proxy-State", bytes([n]) * 250)
    room = 4096 - len(request.RequestPacket()) - 2  # the request itself just fits
    request.AddAttribute("Proxy-State", b"x" * room)
    request.add_message_authenticator()
    raw = request.RequestPacket()
    assert len(raw) == 4096

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.sendto(raw, ("127.0.0.1", world.radius.auth_port))
        try:
            reply: bytes | None = sock.recv(65536)  # whatever size it has
        except TimeoutError:
            reply = None
    after = world.radius.send(world.radius.access_request("emuster", PASSWORD + world.key.otp()))

    assert reply is None
    assert code_of(after) == rp.AccessAccept


def test_calling_station_id_counts_only_as_an_address(world: World) -> None:
    """The source of failure counting is the user's address; a MAC address or an
    overlong value is none (and must not break the transaction that consumes the OTP)."""
    for station in ("2001:DB8::7", "00-11-22-33-44-55", "x" * 200, "fe80::1%" + "a" * 200):
        out = world.radius.radclient(
            f"User-Name=emuster,User-Password='{PASSWORD}{world.key.otp()}',"
            f"Calling-Station-Id='{station}',Message-Authenticator=0x00\n"
        )
        assert "Received Access-Accept" in out

    with world.database.reader() as session:
        sources = list(session.scalars(select(AuthEvent.source_ip).order_by(AuthEvent.id)))
    assert sources == ["2001:db8::7", None, None, None]


def test_a_key_handed_out_after_the_last_reload_works_at_once(sqlite_url: URL) -> None:
    """The fast path's snapshot of keys is reloaded every 30 s; a key it does not know yet
    is looked up instead of being refused until then."""
    database = Database.from_url(sqlite_url)
    seed(database, coa_port=3799)
    handler = RadiusHandler(
        database,
        settings_for(sqlite_url),
        clock=lambda: NOW + timedelta(days=1),
        refresh_seconds=30.0,
    )
    try:
        before = handler.handle(
            encoded_access_request("emuster", PASSWORD + SimulatedKey.random().otp()),
            ("127.0.0.1", 40000),
            Port.AUTH,
        )
        with database.session() as session:
            new_key = add_login(
                session, BOX, bsnr="881234700", username="neu", password=PASSWORD, now=NOW
            )
        after = handler.handle(
            encoded_access_request("neu", PASSWORD + new_key.otp()), ("127.0.0.1", 40001), Port.AUTH
        )
    finally:
        handler.close()
        database.dispose()

    assert before is not None and before[0] == rp.AccessReject
    assert after is not None and after[0] == rp.AccessAccept


def test_a_nas_whose_secret_does_not_open_drops_alone_and_the_list_stays_current(
    world: World,
) -> None:
    """A secret sealed under another master key must not freeze the NAS list: a NAS
    disabled meanwhile would otherwise go on being served."""
    with world.database.session() as session:
        session.add(
            NasClient(
                name="other",
                address="10.0.0.0/8",
                secret=SecretBox(bytes(32)).seal(b"x" * 20, context="nas:999"),
            )
        )
    accepted = world.radius.send(world.radius.access_request("emuster", PASSWORD + world.key.otp()))
    with world.database.session() as session:
        session.scalars(select(NasClient).where(NasClient.name == "vpn-test")).one().active = False

    disabled = world.radius.send(world.radius.access_request("emuster", PASSWORD + world.key.otp()))

    assert code_of(accepted) == rp.AccessAccept
    assert disabled is None


def test_radclient_is_told_to_accept_new_terms_after_the_period(world: World) -> None:
    with world.database.session() as session:
        terms.publish(
            session,
            version="2.0",
            effective_on=date(2026, 11, 23),
            accept_by=date(2026, 11, 30),
            actor=STAFF,
            now=NOW,
        )
    login = f"User-Name=emuster,User-Password='{PASSWORD}{{otp}}',Message-Authenticator=0x00\n"

    world.clock.now = datetime(2026, 11, 30, 23, 59, tzinfo=BERLIN)
    within = world.radius.radclient(login.format(otp=world.key.otp()))
    world.clock.now = datetime(2026, 12, 1, 0, 0, tzinfo=BERLIN)
    after = world.radius.radclient(login.format(otp=world.key.otp()))
    wrong = world.radius.radclient(
        f"User-Name=emuster,User-Password='Falsch-Falsch-1{world.key.otp()}',"
        "Message-Authenticator=0x00\n"
    )

    assert "Received Access-Accept" in within
    assert "Received Access-Reject" in after
    assert "Bitte nehmen Sie die neuen Nutzungsbedingungen (Version 2.0) an" in after
    assert 'Reply-Message = "Anmeldung fehlgeschlagen."' in wrong
    assert [r for _, r in events(world)][-2:] == ["user_locked_objection", "user_locked_objection"]
