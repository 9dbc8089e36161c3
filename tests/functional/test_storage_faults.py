"""SQLite on a disk that fills up or turns read-only: clean errors, no accept, nothing lost.

The database lives on a small tmpfs of the test's own (the suite runs as root, as it
must to install its Debian packages), so the errors are the kernel's real ENOSPC and
EROFS, not a simulation. Afterwards the disk is freed or made writable again and the
same handler and app carry on without a restart.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from flask import Flask
from pyrad import packet as rp
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.clients import nas
from flexnet.config import load_settings
from flexnet.db import Database, utcnow
from flexnet.radius.handler import RadiusHandler
from flexnet.radius.packets import Port
from flexnet.web import state
from tests.conftest import BOX, STAFF
from tests.functional.test_service_requests import FORM
from tests.support.radius import SECRET, encoded_access_request
from tests.support.seed import add_login
from tests.support.yubikeys import SimulatedKey

PASSWORD = "Sommer-Regen-2026!"
SOURCE = ("127.0.0.1", 40000)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB filesystem of this test's own."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


@pytest.fixture
def url(disk: Path, sqlite_url: URL) -> URL:
    path = disk / "flexnet.sqlite3"
    shutil.copyfile(str(sqlite_url.database), path)
    return URL.create("sqlite+pysqlite", database=str(path))


@pytest.fixture
def key(url: URL) -> SimulatedKey:
    database = Database.from_url(url)
    with database.session() as session:
        seeded = add_login(session, BOX, username="emuster", password=PASSWORD)
        nas.add_nas(
            session,
            name="vpn",
            address="127.0.0.1",
            secret=SECRET.decode(),
            box=BOX,
            actor=STAFF,
            now=utcnow(),
        )
    database.dispose()
    return seeded


@pytest.fixture
def handler(
    url: URL, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[RadiusHandler]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", url.render_as_string(hide_password=False))
    database = Database.from_url(url)
    radius = RadiusHandler(database, load_settings())
    yield radius
    radius.close()
    database.dispose()


def login(handler: RadiusHandler, otp: str) -> int | None:
    reply = handler.handle(encoded_access_request("emuster", PASSWORD + otp), SOURCE, Port.AUTH)
    return reply[0] if reply else None


def fill(disk: Path) -> Path:
    """Take every free byte of the disk; returns the file to delete to free it again.
    Unbuffered: a buffered file keeps the bytes of a short last write and raises ENOSPC
    again when it is closed (whenever the free space is not a multiple of a chunk)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def remount(disk: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], check=True)


def integrity(url: URL) -> str:
    with closing(sqlite3.connect(f"file:{url.database}?mode=ro", uri=True)) as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


def accepted_events(url: URL) -> int:
    with closing(sqlite3.connect(f"file:{url.database}?mode=ro", uri=True)) as connection:
        row = connection.execute("SELECT count(*) FROM auth_events WHERE outcome = 'accept'")
        return int(row.fetchone()[0])


@pytest.mark.parametrize("fault", ["disk full", "read-only"])
def test_radius_never_accepts_on_a_broken_disk_and_recovers(
    fault: str,
    disk: Path,
    url: URL,
    key: SimulatedKey,
    handler: RadiusHandler,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert login(handler, key.otp()) == rp.AccessAccept
    filler = fill(disk) if fault == "disk full" else None
    if fault == "read-only":
        # Linux refuses to make a filesystem read-only under open files: as after a
        # filesystem error, the handler's connections go and it reconnects read-only.
        handler.database.dispose()
        remount(disk, "ro")

    during = [login(handler, key.otp()) for _ in range(20)]

    if filler is not None:
        filler.unlink()
    else:
        remount(disk, "rw")
    after = login(handler, key.otp())

    assert rp.AccessAccept not in during
    assert after == rp.AccessAccept
    assert integrity(url) == "ok"
    assert accepted_events(url) == 2  # one before, one after: nothing during, nothing lost
    errors = [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert errors and all(e.startswith("database unavailable (") for e in errors), errors
    assert all("emuster" not in e and PASSWORD not in e for e in errors)


@pytest.fixture
def app(
    url: URL, key: SimulatedKey, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", url.render_as_string(hide_password=False))
    application = create_app()
    application.config["WTF_CSRF_ENABLED"] = False
    yield application
    state(application).database.dispose()


def test_a_full_disk_is_a_clear_german_page_and_the_form_can_be_sent_again(
    disk: Path, app: Flask
) -> None:
    filler = fill(disk)
    with app.test_client() as client:
        refused = client.post("/requests/new", data=FORM)
        filler.unlink()
        again = client.post("/requests/new", data=FORM)

    page = refused.get_data(as_text=True)
    assert refused.status_code == 503, page
    assert "nichts gespeichert" in page and refused.headers["Retry-After"] == "60"
    assert "Ihre Anfrage ist eingegangen" in again.get_data(as_text=True)
