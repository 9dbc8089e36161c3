"""Who did it: every change made on the command line names a staff account in the audit
trail (``--as``, ``FLEXNET_ACTOR`` or the invoking login), never ``cli:root``; without
one a change is refused and nothing is written. Reading needs no staff account."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from flexnet.db import Database
from flexnet.models import AuditEntry, StaffAccount, StaffRole
from tests.support.cli import Invoke, ok, refused, snapshot

PRACTICE = (
    "practice", "add", "--bsnr", "881234500", "--name", "Praxis Dr. Müller",
    "--street", "Hauptstraße 1", "--zip", "39104", "--city", "Magdeburg",
)  # fmt: skip


def add_staff(database: Database, username: str, role: StaffRole, active: bool = True) -> None:
    with database.session() as session:
        session.add(StaffAccount(username=username, role=role, password_hash="x", active=active))


def actors(database: Database, tag: str) -> list[tuple[str, str]]:
    with database.session() as session:
        rows = session.execute(
            select(AuditEntry.actor_kind, AuditEntry.actor).where(AuditEntry.tag == tag)
        )
        return [(kind, name) for kind, name in rows]


@pytest.fixture
def nobody(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    """No FLEXNET_ACTOR (the ``invoke`` fixture sets one), and an OS login that is no
    staff account."""
    monkeypatch.delenv("FLEXNET_ACTOR", raising=False)
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setattr("getpass.getuser", lambda: "root")


@pytest.mark.usefixtures("nobody")
def test_a_change_without_a_staff_account_is_refused_and_changes_nothing(
    invoke: Invoke, database: Database
) -> None:
    before = snapshot(database)

    refused(invoke(*PRACTICE), "--as")

    assert snapshot(database) == before


@pytest.mark.usefixtures("nobody")
def test_as_names_the_staff_account_in_the_audit_trail(invoke: Invoke, database: Database) -> None:
    add_staff(database, "akrause", StaffRole.HELPDESK)

    ok(invoke("--as", "AKrause", *PRACTICE))

    assert actors(database, "practice:record:create") == [("staff", "akrause")]


@pytest.mark.usefixtures("nobody")
def test_the_environment_names_the_staff_account(
    invoke: Invoke, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_staff(database, "akrause", StaffRole.ADMIN)
    monkeypatch.setenv("FLEXNET_ACTOR", "akrause")

    ok(invoke(*PRACTICE))

    assert actors(database, "practice:record:create") == [("staff", "akrause")]


@pytest.mark.usefixtures("nobody")
def test_the_invoking_login_maps_to_the_staff_account_of_the_same_name(
    invoke: Invoke, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_staff(database, "akrause", StaffRole.HELPDESK)
    # sudo -u flexnet flexnet …: the login is the person who typed sudo.
    monkeypatch.setenv("SUDO_USER", "akrause")

    ok(invoke(*PRACTICE))

    assert actors(database, "practice:record:create") == [("staff", "akrause")]


@pytest.mark.usefixtures("nobody")
@pytest.mark.parametrize(
    ("username", "role", "active", "message"),
    [
        ("niemand", StaffRole.HELPDESK, None, "kein aktives Mitarbeiterkonto"),
        ("ehemalig", StaffRole.HELPDESK, False, "kein aktives Mitarbeiterkonto"),
        ("pruefer", StaffRole.AUDITOR, True, "auditor"),
    ],
)
def test_an_unknown_inactive_or_read_only_account_may_change_nothing(
    invoke: Invoke,
    database: Database,
    username: str,
    role: StaffRole,
    active: bool | None,
    message: str,
) -> None:
    if active is not None:
        add_staff(database, username, role, active)
    before = snapshot(database)

    refused(invoke("--as", username, *PRACTICE), message)

    assert snapshot(database) == before


@pytest.mark.usefixtures("nobody")
def test_reading_needs_no_staff_account(invoke: Invoke, database: Database) -> None:
    add_staff(database, "akrause", StaffRole.HELPDESK)
    ok(invoke("--as", "akrause", *PRACTICE))

    assert "881234500" in ok(invoke("practice", "show", "881234500")).output
    ok(invoke("audit", "verify"))
    ok(invoke("letters", "due"))


@pytest.mark.usefixtures("nobody")
def test_the_first_admin_is_added_without_one_then_names_who_adds_the_next(
    invoke: Invoke, database: Database
) -> None:
    ok(
        invoke(
            "staff", "add", "akrause", "--role", "admin", "--password-stdin",
            input="Ein-langes-Kennwort-2026\n",
        )
    )  # fmt: skip
    refused(
        invoke(
            "staff", "add", "bmeier", "--role", "helpdesk", "--password-stdin",
            input="Ein-langes-Kennwort-2026\n",
        ),
        "--as",
    )  # fmt: skip
    ok(
        invoke(
            "--as", "akrause", "staff", "add", "bmeier", "--role", "helpdesk",
            "--password-stdin", input="Ein-langes-Kennwort-2026\n",
        )
    )  # fmt: skip

    created = actors(database, "staff:account:create")
    assert created[0] == ("system", "setup:root")
    assert created[1] == ("staff", "akrause")


@pytest.mark.usefixtures("nobody")
def test_the_nightly_job_runs_as_the_system_without_a_staff_account(
    invoke: Invoke, database: Database
) -> None:
    ok(invoke("lifecycle", "run", "--today", "2026-12-01"))

    assert actors(database, "lifecycle:job:run") == [("system", "lifecycle")]
