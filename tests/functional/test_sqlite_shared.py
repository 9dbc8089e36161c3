"""SQLite as the embedded default (issue 17): the web app under gunicorn and two RADIUS
processes on one database file, with logins, self-service logins and a mail run at the
same time, never answer "database is locked" and never leave a login unanswered.

Writes hold the file's lock for milliseconds (a login's two short phases, a mail run's
one set-based write), so nobody waits long, let alone past the busy timeout.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL

from flexnet.db import Database
from flexnet.models import StaffAccount, StaffRole, UserKind
from flexnet.provisioning import issuance
from tests.conftest import NOW, STAFF
from tests.support.http import Visitor
from tests.support.nodes import (
    BIN,
    PASSWORD,
    Login,
    Node,
    exchange,
    radius_node,
    running,
    seed_logins,
    verdict,
    wait_for_health,
    web_node,
)

LOAD_SECONDS = 8.0
RADIUS_CLIENTS = 6
WEB_VISITORS = 2
LETTERS = 30
PATIENCE = 3.0  # a NAS's timeout: a later answer is silence to it


@dataclass
class Tally:
    verdicts: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def radius_client(login: Login, nodes: list[Node], stop: threading.Event, tally: Tally) -> None:
    """One NAS session: a request in flight at a time, alternating the two servers."""
    turn = 0
    while not stop.is_set():
        node = nodes[turn % len(nodes)]
        turn += 1
        answer = exchange(node.auth_port, login.request(login.key.otp()), timeout=PATIENCE)
        with tally.lock:
            tally.verdicts.append(verdict(answer))


def web_visitor(base: str, login: Login, stop: threading.Event, tally: Tally) -> None:
    """A practice user logging in to self-service and looking at the start page, again
    and again (each login writes: the OTP, the auth log, the last login)."""
    while not stop.is_set():
        visitor = Visitor(base)
        answer = visitor.post(
            "/self-service/login",
            username=login.username,
            password=PASSWORD,
            otp=login.key.otp(),
        )
        home = visitor.get("/self-service/")
        with tally.lock:
            tally.statuses += [answer.status_code, home.status_code]


def seed_letters(url: URL) -> None:
    """Credentials letters due for new users of the logins' practices, and the staff
    account the mail run is produced as (a CLI change names one)."""
    database = Database.from_url(url)
    with database.session() as session:
        session.add(StaffAccount(username=STAFF.name, role=StaffRole.HELPDESK, password_hash="-"))
        for n in range(LETTERS):
            issuance.add_user(
                session,
                username=f"neu{n}",
                bsnr=f"87{n % (RADIUS_CLIENTS + WEB_VISITORS):07d}",
                kind=UserKind.STAFF,
                actor=STAFF,
                now=NOW,
            )
    database.dispose()


def test_web_and_two_radius_processes_share_one_sqlite_file(
    sqlite_url: URL, tmp_path: Path
) -> None:
    logins = seed_logins(sqlite_url, [f"last{n}" for n in range(RADIUS_CLIENTS + WEB_VISITORS)])
    seed_letters(sqlite_url)
    radius = [radius_node(f"radius-{name}", sqlite_url, tmp_path) for name in "ab"]
    web = web_node("web", sqlite_url, tmp_path, proxies="1")
    stop, tally = threading.Event(), Tally()
    with running(*radius, web):
        wait_for_health(web)
        base = f"http://127.0.0.1:{web.http_port}"
        threads = [
            threading.Thread(target=radius_client, args=(login, radius, stop, tally))
            for login in logins[:RADIUS_CLIENTS]
        ] + [
            threading.Thread(target=web_visitor, args=(base, login, stop, tally))
            for login in logins[RADIUS_CLIENTS:]
        ]
        for thread in threads:
            thread.start()
        try:
            time.sleep(LOAD_SECONDS / 4)
            run = subprocess.run(
                [str(BIN / "flexnet"), "letters", "run", "--out", str(tmp_path / "run.pdf")],
                env={**web.environ, "FLEXNET_ACTOR": STAFF.name},
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            time.sleep(LOAD_SECONDS / 2)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        logs = {node.name: node.log() for node in (*radius, web)}

    assert run.returncode == 0, run.stderr
    assert f"{LETTERS} Briefe" in run.stdout
    assert len(tally.verdicts) >= 2 * RADIUS_CLIENTS
    assert set(tally.verdicts) == {"accept"}, {v: tally.verdicts.count(v) for v in tally.verdicts}
    assert tally.statuses and set(tally.statuses) <= {200, 302}, tally.statuses
    for name, text in {**logs, "letters run": run.stderr}.items():
        assert "database is locked" not in text, name
        assert "database unavailable" not in text, name
