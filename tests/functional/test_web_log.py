"""The web app's log under gunicorn, as production runs it: FLEXNET_LOG_LEVEL, a time
stamp and one line per event, and failed staff sign-ins in it (never the secret)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from flexnet.db import Database
from flexnet.models import StaffRole
from tests.support.admin import PASSWORD, add_staff
from tests.support.http import Visitor
from tests.support.nodes import running, wait_for_health, web_node

LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING flexnet\.staff\.signin: staff sign-in refused: "
    r"step=password account=anna source=127\.0\.0\.1 reason=password_wrong$",
    re.MULTILINE,
)


@pytest.fixture
def seeded(sqlite_url: URL) -> URL:
    database = Database.from_url(sqlite_url)
    with database.session() as db:
        add_staff(db, "anna", StaffRole.ADMIN)
    database.dispose()
    return sqlite_url


@pytest.mark.parametrize(("level", "logged"), [("INFO", True), ("ERROR", False)])
def test_gunicorn_logs_failed_staff_sign_ins_one_line_each(
    seeded: URL, tmp_path: Path, level: str, logged: bool
) -> None:
    node = web_node("web", seeded, tmp_path, log_level=level)
    with running(node):
        wait_for_health(node)
        visitor = Visitor(f"http://127.0.0.1:{node.http_port}")
        visitor.staff_password_step("anna", "Geheim-Versuch-1\nINFO gefälscht")
        assert visitor.staff_password_step("anna", PASSWORD) == 302

    log = node.log()
    assert bool(LINE.search(log)) is logged, log
    assert "Geheim-Versuch" not in log and "gefälscht" not in log and PASSWORD not in log
