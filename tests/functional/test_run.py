"""`flexnet run` from nothing: instance, database, first admin, a serving web app."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import port_for

from flexnet.db import make_engine
from flexnet.ops import migrate


def wait_for_health(port: int, process: subprocess.Popen[str]) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "flexnet run exited early"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                result: dict[str, str] = json.load(reply)
                return result
        except OSError:
            time.sleep(0.2)
    raise AssertionError("web app did not answer within 30 s")


def run_once(instance: Path) -> tuple[dict[str, str], str, str]:
    """``flexnet run`` until its web app answers: health, start page, console output."""
    port = port_for.select_random()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLEXNET_")}
    environ["FLEXNET_INSTANCE"] = str(instance)
    flexnet = Path(sys.executable).parent / "flexnet"
    process = subprocess.Popen(
        [str(flexnet), "run", "--port", str(port), "--auth-port", "0", "--acct-port", "0"],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = wait_for_health(port, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
            start_page = reply.read().decode()
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    return health, start_page, output.replace(str(port), "PORT")


def test_run_starts_from_nothing(tmp_path: Path) -> None:
    instance = tmp_path / "instance"

    health, start_page, output = run_once(instance)
    _, _, again = run_once(instance)

    assert health == {"status": "ok", "database": "ok"}
    assert "<h1>KV-FlexNet" in start_page
    assert "Erster Administrator angelegt" in output
    assert "Kennwort:" in output
    assert re.search(r"Einrichtungscode: [A-Z0-9]{4}(-[A-Z0-9]{4}){4}\n", output), output
    assert "flexnet practice add" in output
    for console in (output, again):
        assert "Startseite: http://127.0.0.1:PORT/" in console
        assert "Verwaltung: http://127.0.0.1:PORT/admin/ (Anmeldung als admin)" in console
    assert "Kennwort:" not in again and "beim ersten Start angezeigt" in again
    assert (instance / "flexnet.env").stat().st_mode & 0o777 == 0o600
    engine = make_engine(f"sqlite+pysqlite:///{instance / 'flexnet.sqlite3'}")
    assert migrate.is_up_to_date(engine)
    engine.dispose()
