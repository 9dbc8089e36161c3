"""VPN sessions from accounting as real concentrators and proxies send it (radclient
as the NAS or the proxy), and the Disconnect-Requests they get (RFC 5176)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

from pyrad import packet as rp
from sqlalchemy import select

from flexnet.accounts import practices, users, vpn
from flexnet.clients import nas, profiles
from flexnet.lifecycle import locks
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import AuthEvent, LockCause, User, VpnSession
from flexnet.radius.disconnect import DisconnectDispatcher
from tests.conftest import BOX, NOW, STAFF
from tests.functional import test_radius
from tests.functional.test_radius import PASSWORD, World

# The RADIUS server, its database and a NAS answering Disconnect-Requests, as there.
world_factory = test_radius.world_factory
world = test_radius.world

ACCOUNTED = "Received Accounting-Response"


def acct(world: World, **attributes: str) -> str:
    line = ",".join(f"{name.replace('_', '-')}={value}" for name, value in attributes.items())
    return world.radius.radclient(line + "\n", command="acct")


def sessions(world: World) -> list[VpnSession]:
    with world.database.reader() as session:
        return list(session.scalars(select(VpnSession).order_by(VpnSession.id)))


def mark_proxy(world: World) -> None:
    with world.database.session() as session:
        nas.change_nas(session, name="vpn-test", proxy=True, actor=STAFF, now=NOW)


def dispatch(world: World) -> int:
    dispatcher = DisconnectDispatcher(
        world.database, BOX, world.radius.server.handler.dictionary, timeout=1.0, retries=1
    )
    return dispatcher.run_once()


def test_a_start_that_reuses_a_finished_session_id_opens_a_new_row(world: World) -> None:
    for status in ("Start", "Stop", "Start"):
        out = acct(world, User_Name="emuster", Acct_Session_Id="reused", Acct_Status_Type=status)
        assert ACCOUNTED in out
    with world.database.session() as session:
        user = session.scalars(select(User).where(User.username == "emuster")).one()
        queued = vpn.request_disconnect(session, user_ids=[user.id], now=NOW)

    stored = sessions(world)
    assert [s.stopped_at is None for s in stored] == [False, True]
    assert queued == 1  # the new session is live: a lock disconnects it
    assert dispatch(world) == 1 and len(world.nas.received) == 1


def test_concentrators_behind_a_proxy_with_the_same_session_id_stay_apart(world: World) -> None:
    mark_proxy(world)
    concentrators = {"10.1.0.1": "emuster", "10.1.0.2": "dritter", "10.1.0.3": "emuster"}
    for address, username in concentrators.items():
        out = acct(
            world,
            User_Name=username,
            Acct_Session_Id="ocserv-1",
            Acct_Status_Type="Start",
            NAS_IP_Address=address,
        )
        assert ACCOUNTED in out
    acct(
        world,
        User_Name="dritter",
        Acct_Session_Id="x",
        Acct_Status_Type="Start",
        NAS_Identifier="vpn-ident-4",
    )
    # One concentrator reboots: only its own sessions end.
    assert ACCOUNTED in acct(world, Acct_Status_Type="Accounting-On", NAS_IP_Address="10.1.0.2")

    stored = sessions(world)
    assert len(stored) == 4  # one per concentrator, not merged into one
    assert [(s.nas_ip_address, s.username, s.stopped_at is None) for s in stored] == [
        ("10.1.0.1", "emuster", True),
        ("10.1.0.2", "dritter", False),
        ("10.1.0.3", "emuster", True),
        (None, "dritter", True),
    ]
    assert stored[3].nas_identifier == "vpn-ident-4"
    assert {s.nas_address for s in stored} == {"127.0.0.1"}  # the proxy: Disconnects go there


def test_a_concentrator_that_is_no_proxy_is_keyed_by_its_address(world: World) -> None:
    """A NAS client not marked as a proxy is one concentrator, whatever identity it sends
    (ocserv sends a NAS-Identifier of its choosing, changeable by its admin)."""
    for identity in ("a", "b"):
        acct(
            world,
            User_Name="emuster",
            Acct_Session_Id="s",
            Acct_Status_Type="Start",
            NAS_Identifier=identity,
        )
    acct(world, Acct_Status_Type="Accounting-On", NAS_Identifier="c")

    stored = sessions(world)
    assert len(stored) == 1 and stored[0].stopped_at is not None


def test_a_disconnect_names_the_concentrator_its_accounting_named(world: World) -> None:
    """RFC 5176 § 3: the proxy routes a Disconnect-Request by the NAS identification
    attributes; it goes to the NAS client the accounting came from (here the proxy)."""
    mark_proxy(world)
    for address, identifier in (("10.1.0.1", "ocserv-a"), ("10.1.0.2", "ocserv-b")):
        acct(
            world,
            User_Name="emuster",
            Acct_Session_Id="same-id",
            Acct_Status_Type="Start",
            NAS_IP_Address=address,
            NAS_Identifier=identifier,
        )
    with world.database.session() as session:
        second = session.scalars(
            select(VpnSession).where(VpnSession.nas_ip_address == "10.1.0.2")
        ).one()
        staff_queued = vpn.request_session_disconnect(
            session, session_id=second.id, actor=STAFF, now=NOW
        )

    assert staff_queued and dispatch(world) == 1
    [request] = world.nas.received
    assert request["NAS-IP-Address"] == ["10.1.0.2"]
    assert request["NAS-Identifier"] == ["ocserv-b"]
    assert request["Acct-Session-Id"] == ["same-id"]
    assert request["User-Name"] == ["emuster"]
    assert len(request["Event-Timestamp"]) == 1
    assert [s.stopped_at is None for s in sessions(world)] == [True, False]


# --- accounting for an account that may not log in (item 6) ----------------------------


def flagged(world: World) -> list[tuple[str, str | None, bool]]:
    return [(s.username, s.flagged, s.disconnect_requested_at is not None) for s in sessions(world)]


def test_a_start_of_a_locked_user_is_disconnected_at_once_and_flagged(world: World) -> None:
    """ocserv re-admits a session cookie issued before the lock and reports the Start."""
    with world.database.session() as session:
        user = session.scalars(select(User).where(User.username == "emuster")).one()
        users.lock_one(
            session, user=user, cause=LockCause.MANUAL, reason="Test", actor=STAFF, now=NOW
        )
    for username, session_id in (("emuster", "cookie-1"), ("dritter", "ok-1")):
        out = acct(world, User_Name=username, Acct_Session_Id=session_id, Acct_Status_Type="Start")
        assert ACCOUNTED in out

    assert flagged(world) == [("emuster", "locked", True), ("dritter", None, False)]
    assert dispatch(world) == 1
    assert [r["Acct-Session-Id"] for r in world.nas.received] == [["cookie-1"]]


def test_an_interim_update_after_the_lock_date_disconnects(world: World) -> None:
    """A lock by the dates (§ 10.3) is no event that queues anything: the next
    Interim-Update of a session begun before it does."""
    with world.database.session() as session:
        practices.get_practice(session, "881234500").activity_ended_on = date(2026, 5, 15)
    world.clock.now = datetime(2027, 6, 30, 23, 0, tzinfo=BERLIN)
    for username in ("emuster", "dritter"):
        acct(world, User_Name=username, Acct_Session_Id=f"{username}-1", Acct_Status_Type="Start")
    before = flagged(world)
    world.clock.now = datetime(2027, 7, 1, 0, 30, tzinfo=BERLIN)
    for username in ("emuster", "dritter"):
        acct(
            world,
            User_Name=username,
            Acct_Session_Id=f"{username}-1",
            Acct_Status_Type="Interim-Update",
        )

    assert before == [("emuster", None, False), ("dritter", None, False)]
    assert flagged(world) == [("emuster", "locked", True), ("dritter", None, False)]


def test_a_start_with_the_practice_key_locked_is_disconnected(world: World) -> None:
    with world.database.session() as session:
        locks.lock_key(
            session,
            serial="key-881234600",
            cause=LockCause.MANUAL,
            reason="Test",
            actor=STAFF,
            now=NOW,
        )
    for username in ("emuster", "dritter"):
        acct(world, User_Name=username, Acct_Session_Id=f"{username}-2", Acct_Status_Type="Start")

    assert flagged(world) == [("emuster", None, False), ("dritter", "key", True)]


def test_accounting_for_a_name_flexnet_does_not_know_is_flagged_not_cut(world: World) -> None:
    """A concentrator may serve other logins (a local admin): flexnet never accepted it,
    staff see it, the concentrator's own business is not cut."""
    acct(world, User_Name="admin@vpn", Acct_Session_Id="local-1", Acct_Status_Type="Start")

    assert flagged(world) == [("admin@vpn", "unknown", False)]


def test_an_accept_carries_a_session_timeout_and_a_class_for_the_group(world: World) -> None:
    """A concentrator without Disconnect support (ocserv) still ends a session in bounded
    time; ocserv takes the group from Class (OU=...) and ignores Filter-Id."""
    handler = world.radius.server.handler
    default = world.radius.send(world.radius.access_request("emuster", PASSWORD + world.key.otp()))
    handler.settings = dataclasses.replace(handler.settings, session_timeout_hours=2)
    member = world.radius.send(world.radius.access_request("emuster", PASSWORD + world.key.otp()))
    third = world.radius.send(
        world.radius.access_request("dritter", PASSWORD + world.third_key.otp())
    )
    with world.database.session() as session:
        profiles.set_profile(
            session,
            name="restricted",
            attributes=[["Filter-Id", "dritte"], ["Session-Timeout", "600"]],
            description=None,
            actor=STAFF,
            now=NOW,
        )
    own = world.radius.send(
        world.radius.access_request("dritter", PASSWORD + world.third_key.otp())
    )

    assert [r.code if r else None for r in (default, member, third, own)] == [rp.AccessAccept] * 4
    assert default is not None and default["Session-Timeout"] == [12 * 3600]
    assert member is not None and member["Session-Timeout"] == [7200]
    assert member["Class"] == [b"OU=full"]
    assert third is not None and third["Class"] == [b"OU=restricted"]
    assert own is not None and own["Session-Timeout"] == [600]  # the profile's own


def logged_clients(world: World) -> list[tuple[str | None, str | None, str]]:
    world.radius.server.handler.reject_log.flush()  # fast rejects are logged in batches
    with world.database.reader() as session:
        return [
            (event.client, event.concentrator, event.reason)
            for event in session.scalars(select(AuthEvent).order_by(AuthEvent.id))
        ]


def login(world: World, otp: str, **identity: str) -> str:
    named = "".join(f",{name.replace('_', '-')}={value}" for name, value in identity.items())
    return world.radius.radclient(
        f"User-Name=emuster,User-Password='{PASSWORD}{otp}',Message-Authenticator=0x00{named}\n"
    )


def test_behind_a_proxy_the_auth_log_names_the_concentrator_of_each_login(world: World) -> None:
    mark_proxy(world)
    forged = world.key.public_id + "c" * 32  # the key's id, no valid OTP: refused at once

    accepted = login(world, world.key.otp(), NAS_IP_Address="10.1.0.1", NAS_Identifier="asa-md")
    refused = login(world, forged, NAS_IPv6_Address="2001:db8::7")
    unnamed = login(world, world.key.otp())

    assert "Access-Accept" in accepted and "Access-Accept" in unnamed
    assert "Access-Reject" in refused
    # The refusal's line is written with its batch, after the login that came later.
    assert sorted(logged_clients(world), key=str) == [
        ("vpn-test", "ip=10.1.0.1 id=asa-md", "ok"),
        ("vpn-test", "ip=2001:db8::7", "otp_invalid"),
        ("vpn-test", None, "ok"),  # a proxy that names no concentrator (against RFC 2865)
    ]


def test_a_nas_that_is_no_proxy_is_logged_by_its_name_alone(world: World) -> None:
    assert "Access-Accept" in login(world, world.key.otp(), NAS_Identifier="ocserv-eigen")
    assert logged_clients(world) == [("vpn-test", None, "ok")]
