"""SQLite as the embedded default (issue 17): the web app (gunicorn) and two RADIUS
processes on one database file under a 60 s mixed load (RADIUS logins, self-service
logins and page views, a mail run of 1,000 credentials letters), with no error answer:
no RADIUS timeout or reject of a valid login, no HTTP error, no 'database is locked'."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from benchmarks.load import Outcome, closed_loop, login_stream
from benchmarks.report import write_section
from flexnet.db import Database
from flexnet.models import StaffAccount, StaffRole, UserKind
from flexnet.provisioning import issuance
from tests.conftest import NOW, STAFF
from tests.support.http import Visitor
from tests.support.nodes import BIN, PASSWORD, Login, radius_node, running, seed_logins, web_node
from tests.support.nodes import wait_for_health as healthy

SECONDS = 60.0
RADIUS_CLIENTS = 8  # four per RADIUS process
WEB_VISITORS = 2
LETTERS = 1000


@dataclass
class Web:
    statuses: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def visit(base: str, login: Login, stop: threading.Event, web: Web) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        visitor = Visitor(base)
        answer = visitor.post(
            "/self-service/login", username=login.username, password=PASSWORD, otp=login.key.otp()
        )
        home = visitor.get("/self-service/")
        web.statuses += [answer.status_code, home.status_code]
        web.seconds.append(time.perf_counter() - started)


def seed_letters(url: URL, practices: int) -> None:
    database = Database.from_url(url)
    with database.session() as session:
        # The staff account the mail run is produced as (a CLI change names one).
        session.add(StaffAccount(username=STAFF.name, role=StaffRole.HELPDESK, password_hash="-"))  # noqa: S106 - none usable
        for n in range(LETTERS):
            issuance.add_user(
                session,
                username=f"neu{n}",
                bsnr=f"87{n % practices:07d}",
                kind=UserKind.STAFF,
                actor=STAFF,
                now=NOW,
            )
    database.dispose()


@pytest.fixture
def sqlite_file(sqlite_template: Path, tmp_path: Path) -> URL:
    shutil.copyfile(sqlite_template, tmp_path / "shared.sqlite3")
    return URL.create("sqlite+pysqlite", database=str(tmp_path / "shared.sqlite3"))


def test_web_and_two_radius_processes_on_one_sqlite_file(sqlite_file: URL, tmp_path: Path) -> None:
    logins = seed_logins(sqlite_file, [f"geteilt{n}" for n in range(RADIUS_CLIENTS + WEB_VISITORS)])
    seed_letters(sqlite_file, RADIUS_CLIENTS + WEB_VISITORS)
    radius = [radius_node(f"radius-{name}", sqlite_file, tmp_path) for name in "ab"]
    web_server = web_node("web", sqlite_file, tmp_path)
    stop, web = threading.Event(), Web()
    loads: list[Outcome] = []
    with running(*radius, web_server):
        healthy(web_server)
        base = f"http://127.0.0.1:{web_server.http_port}"
        half = RADIUS_CLIENTS // 2
        groups = [logins[:half], logins[half:RADIUS_CLIENTS]]
        threads = [
            threading.Thread(
                target=lambda node=node, group=group: loads.append(
                    closed_loop(
                        node.auth_port,
                        [login_stream(login, int(SECONDS * 30)) for login in group],
                        seconds=SECONDS,
                    )
                )
            )
            for node, group in zip(radius, groups, strict=True)
        ] + [
            threading.Thread(target=visit, args=(base, login, stop, web))
            for login in logins[RADIUS_CLIENTS:]
        ]
        for thread in threads:
            thread.start()
        time.sleep(SECONDS / 4)
        started = time.perf_counter()
        run = subprocess.run(
            [str(BIN / "flexnet"), "letters", "run", "--out", str(tmp_path / "run.pdf")],
            env={**web_server.environ, "FLEXNET_ACTOR": STAFF.name},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        run_seconds = time.perf_counter() - started
        for thread in threads[:2]:
            thread.join()
        stop.set()
        for thread in threads[2:]:
            thread.join()
        logs = "".join(node.log() for node in (*radius, web_server)) + run.stderr

    answered = sum(load.answered for load in loads)
    accepted = sum(load.accepted for load in loads)
    timeouts = sum(load.timeouts for load in loads)
    latencies = sorted(latency for load in loads for latency in load.latencies)
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000 if latencies else float("nan")
    errors = [status for status in web.statuses if status not in (200, 302)]
    locked = logs.count("database is locked")
    ok = (
        run.returncode == 0
        and timeouts == 0
        and accepted == answered
        and not errors
        and locked == 0
    )
    radius_result = (
        f"{answered:,} answered, {accepted:,} accepted, {timeouts} timeouts, p99 {p99:.0f} ms"
    )
    write_section(
        "sqlite-shared",
        f"""## The web app and two RADIUS processes on one SQLite file (issue 17)

`gunicorn` (2 workers) and two `flexnet radius` processes on one SQLite file (WAL; the
RADIUS servers wait at most `FLEXNET_RADIUS_DB_TIMEOUT_MS` = 1 s for its lock, the web
app `FLEXNET_DB_TIMEOUT_MS` = 5 s) for {SECONDS:.0f} s: {RADIUS_CLIENTS} RADIUS clients
in a closed loop (half at each process, fresh OTPs, 5 s timeout),
{WEB_VISITORS} self-service users logging in and viewing their page, and after
{SECONDS / 4:.0f} s a mail run of {LETTERS:,} credentials letters (`flexnet letters run`).
Command: `make bench` (`benchmarks/test_bench_sqlite_shared.py`).

| load | result |
| --- | --- |
| RADIUS logins | {radius_result} |
| self-service logins and page views | {len(web.statuses):,} answers, {len(errors)} errors |
| mail run of {LETTERS:,} credentials letters | exit {run.returncode}, {run_seconds:.1f} s |
| "database is locked" in the logs | {locked} |

| target | this run |
| --- | --- |
| a {SECONDS:.0f} s mixed load with no error answer | {"met" if ok else "NOT met"} |
""",
    )
    assert run.returncode == 0, run.stderr[-2000:]
