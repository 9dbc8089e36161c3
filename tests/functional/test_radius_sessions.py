"""VPN sessions from accounting as real concentrators and proxies send it (radclient
as the NAS or the proxy), and the Disconnect-Requests they get (RFC 5176)."""

from __future__ import annotations

from sqlalchemy import select

from flexnet.accounts import vpn
from flexnet.clients import nas
from flexnet.models import User, VpnSession
from flexnet.radius.disconnect import DisconnectDispatcher
from tests.conftest import BOX, NOW, STAFF
from tests.functional import test_radius
from tests.functional.test_radius import World

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
        nas.set_proxy(session, name="vpn-test", proxy=True, actor=STAFF, now=NOW)


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
