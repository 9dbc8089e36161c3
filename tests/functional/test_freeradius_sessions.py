"""FreeRADIUS 3.2 (Debian's ``freeradius``) as a proxy in front of flexnet for accounting,
and as the CoA proxy that routes flexnet's Disconnect-Requests to the right concentrator.

Two concentrators (radclient with their own NAS-IP-Address, and each a CoA listener)
sit behind one FreeRADIUS; flexnet knows only the proxy, marked ``proxy``. FreeRADIUS
runs as an unprivileged foreground process with a configuration written into a temp
folder, on free loopback ports; the system's /etc/freeradius is never read or touched.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import port_for
from sqlalchemy import select

from flexnet.accounts import users
from flexnet.clients import nas
from flexnet.models import LockCause, NasClient, User
from tests.conftest import NOW, STAFF
from tests.functional import test_radius
from tests.functional.test_radius import World
from tests.functional.test_radius_sessions import dispatch, sessions
from tests.support.radius import SECRET, FakeNas

world_factory = test_radius.world_factory
world = test_radius.world

CONCENTRATORS = ("10.1.0.1", "10.1.0.2")
CONFIG = """\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
raddbdir = {dir}
confdir = {dir}
modconfdir = {dir}
logdir = {dir}
run_dir = {dir}
db_dir = {dir}
radacctdir = {dir}
libdir = /usr/lib/freeradius
pidfile = {dir}/radiusd.pid
name = freeradius
max_request_time = 10
cleanup_delay = 2
max_requests = 1024
hostname_lookups = no
log {{
    destination = stdout
}}
security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
}}
proxy_requests = yes
proxy server {{
    default_fallback = no
}}
home_server flexnet {{
    type = acct
    ipaddr = 127.0.0.1
    port = {flexnet_acct}
    secret = {secret}
    response_window = 3
    status_check = none
}}
home_server_pool flexnet_pool {{
    type = fail-over
    home_server = flexnet
}}
realm flexnet {{
    acct_pool = flexnet_pool
    nostrip
}}
{concentrators}
client everyone_on_loopback {{
    ipaddr = 127.0.0.1
    secret = {secret}
}}
thread pool {{
    start_servers = 2
    max_servers = 4
    min_spare_servers = 1
    max_spare_servers = 4
}}
modules {{
}}
server default {{
    listen {{
        type = acct
        ipaddr = 127.0.0.1
        port = {acct_port}
    }}
    listen {{
        type = coa
        ipaddr = 127.0.0.1
        port = {coa_port}
    }}
    preacct {{
        update control {{
            &Proxy-To-Realm := "flexnet"
        }}
    }}
    accounting {{
    }}
    recv-coa {{
{routes}
    }}
    send-coa {{
    }}
}}
"""
CONCENTRATOR = """\
home_server concentrator{n} {{
    type = coa
    ipaddr = 127.0.0.1
    port = {port}
    secret = {secret}
    coa {{
        irt = 2
        mrt = 4
        mrc = 1
        mrd = 5
    }}
}}
home_server_pool concentrator{n}_pool {{
    type = fail-over
    home_server = concentrator{n}
}}
"""
ROUTE = """\
        if (&NAS-IP-Address == {address}) {{
            update control {{
                &Home-Server-Pool := "concentrator{n}_pool"
            }}
        }}
"""


@contextmanager
def freeradius(
    directory: Path, flexnet_acct: int, coa_ports: list[int]
) -> Iterator[dict[str, int]]:
    ports = {"acct": port_for.select_random(), "coa": port_for.select_random()}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "dictionary").write_text("$INCLUDE /usr/share/freeradius/dictionary\n")
    (directory / "radiusd.conf").write_text(
        CONFIG.format(
            dir=directory,
            flexnet_acct=flexnet_acct,
            secret=SECRET.decode(),
            acct_port=ports["acct"],
            coa_port=ports["coa"],
            concentrators="".join(
                CONCENTRATOR.format(n=n, port=port, secret=SECRET.decode())
                for n, port in enumerate(coa_ports)
            ),
            routes="".join(
                ROUTE.format(n=n, address=address) for n, address in enumerate(CONCENTRATORS)
            ),
        )
    )
    log_path = directory / "freeradius.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [
                shutil.which("freeradius") or "/usr/sbin/freeradius",
                "-f",
                "-xx",
                "-l",
                "stdout",
                "-d",
                str(directory),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 20
        while "Ready to process requests" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"FreeRADIUS did not start:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.05)
        yield ports
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def radclient(port: int, attributes: str) -> str:
    result = subprocess.run(
        ["radclient", "-x", "-r", "1", "-t", "5", f"127.0.0.1:{port}", "acct", SECRET.decode()],
        input=attributes,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stdout + result.stderr


def test_sessions_and_disconnects_through_a_freeradius_proxy(world: World, tmp_path: Path) -> None:
    concentrators = [FakeNas(world.radius.server.handler.dictionary) for _ in CONCENTRATORS]
    try:
        with freeradius(
            tmp_path / "freeradius", world.radius.acct_port, [c.port for c in concentrators]
        ) as ports:
            with world.database.session() as session:
                nas.change_nas(session, name="vpn-test", proxy=True, actor=STAFF, now=NOW)
                session.scalars(select(NasClient)).one().coa_port = ports["coa"]
            # Both concentrators number their sessions alike; the users differ.
            for address, username in zip(CONCENTRATORS, ("emuster", "dritter"), strict=True):
                out = radclient(
                    ports["acct"],
                    f"User-Name={username},Acct-Session-Id=00000001,Acct-Status-Type=Start,"
                    f"NAS-IP-Address={address}\n",
                )
                assert "Received Accounting-Response" in out, out
            with world.database.session() as session:
                user = session.scalars(select(User).where(User.username == "dritter")).one()
                users.lock_one(
                    session, user=user, cause=LockCause.MANUAL, reason="Test", actor=STAFF, now=NOW
                )
            handled = dispatch(world)
            deadline = time.monotonic() + 5
            while not concentrators[1].received and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        for concentrator in concentrators:
            concentrator.close()

    stored = sessions(world)
    assert [(s.nas_ip_address, s.username) for s in stored] == [
        ("10.1.0.1", "emuster"),
        ("10.1.0.2", "dritter"),
    ]
    assert handled == 1
    assert concentrators[0].received == []  # the other concentrator's session stays
    [request] = concentrators[1].received
    assert request["NAS-IP-Address"] == ["10.1.0.2"]
    assert request["Acct-Session-Id"] == ["00000001"]
    assert request["User-Name"] == ["dritter"]
    assert [s.disconnect_result for s in sessions(world)] == [None, "ack"]
