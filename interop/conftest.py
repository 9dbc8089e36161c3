"""ocserv + openconnect against a running flexnet RADIUS node (``make interop``).

Not part of ``make test``: it needs root, a network namespace and a TUN device, which
CI runners may lack. The databases are the test suite's own (migrated SQLite copies).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from flexnet.db import Database
from flexnet.models import StaffAccount, StaffRole
from interop import ocserv
from tests.conftest import (  # noqa: F401  (fixtures, found by name)
    STAFF,
    sqlite_template,
    sqlite_url,
)
from tests.support.nodes import BIN, REPO, Login, Node, radius_node, running, seed_logins

# At least 16 characters, as flexnet requires of a NAS secret; radcli has it in its file.
NAS_SECRET = "ocserv-interop-gemeinsames-Geheimnis"


@dataclass
class Stack:
    """flexnet's RADIUS node, ocserv in its namespace, openconnect, and the seeded logins."""

    url: URL
    node: Node
    server: ocserv.Ocserv
    client: ocserv.Openconnect
    logins: list[Login]

    def flexnet(self, *arguments: str, input: str | None = None) -> str:
        return flexnet_command(self.node, *arguments, input=input)


def flexnet_command(node: Node, *arguments: str, input: str | None = None) -> str:
    """The real ``flexnet`` command as staff run it on this node's database (acting as
    the tests' staff account); its output."""
    environ = {**node.environ, "FLEXNET_ACTOR": STAFF.name}
    result = subprocess.run(
        [str(BIN / "flexnet"), *arguments],
        input=input,
        env=environ,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def add_acting_staff(url: URL) -> None:
    database = Database.from_url(url)
    try:
        with database.session() as session:
            session.add(
                StaffAccount(username=STAFF.name, role=StaffRole.HELPDESK, password_hash="-")
            )
    finally:
        database.dispose()


@pytest.fixture
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """flexnet listening on the host side of the veth pair with ocserv entered as a NAS
    (by the CLI, as an operator does), ocserv running, and two logins. On SQLite: the
    point is what ocserv and openconnect do, which the database does not change."""
    url: URL = request.getfixturevalue("sqlite_url")
    ocserv.tools_present()
    logins = seed_logins(url, ["amueller", "bschulz"])
    add_acting_staff(url)
    # An expired or initial password is changed in-band (RSA's New-PIN mode over RADIUS).
    node = radius_node("radius", url, tmp_path, expired_password_mode="challenge")
    node.command += ["--bind", ocserv.HOST_ADDRESS]
    flexnet_command(
        node,
        "nas",
        "add",
        "ocserv",
        "--address",
        ocserv.OCSERV_ADDRESS,
        "--secret-stdin",
        "--allow-missing-message-authenticator",
        input=f"{NAS_SECRET}\n",
    )
    scratch = ocserv.scratch_directory()
    try:
        with (
            ocserv.network_namespace(),
            running(node),
            ocserv.running_ocserv(
                scratch, auth_port=node.auth_port, acct_port=node.acct_port, secret=NAS_SECRET
            ) as server,
        ):
            client = ocserv.Openconnect(server, scratch)
            try:
                yield Stack(url, node, server, client, logins)
            finally:
                client.kill_all()
    finally:
        # FLEXNET_INTEROP_KEEP=1 keeps ocserv's and openconnect's files and logs to read.
        if not os.environ.get("FLEXNET_INTEROP_KEEP"):
            shutil.rmtree(scratch, ignore_errors=True)
