"""``flexnet practice takeover`` as staff run it: the old owner's accounts and key end,
the new owner's begin; a refused takeover changes nothing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from flexnet.db import Database
from flexnet.models import AuditEntry, LockCause, Token, TokenStatus, User, UserStatus
from tests.functional.test_cli_keys import ykman_line
from tests.support.cli import Invoke, ok, refused, snapshot
from tests.support.yubikeys import SimulatedKey

BSNR = "881234500"  # the ``practice_with_terms`` fixture


def onboard_old_owner(invoke: Invoke, tmp_path: Path) -> None:
    keys = tmp_path / "keys.csv"
    keys.write_text(
        ykman_line("5000001", SimulatedKey.random()) + ykman_line("5000002", SimulatedKey.random())
    )
    ok(invoke("yubikey", "import", str(keys)))
    ok(invoke("yubikey", "assign", "5000001", "--practice", BSNR))
    ok(
        invoke(
            "user", "add", "oalt", "--practice", BSNR, "--kind", "member", "--lanr",
            "123456601", "--name", "Dr. Otto Alt", "--password-stdin",
            input="Sommer-Regen-2026!\n",
        )
    )  # fmt: skip
    ok(invoke("user", "add", "mfa", "--practice", BSNR, "--kind", "staff"))


TAKEOVER = (
    "practice", "takeover", BSNR, "--date", "2026-11-01", "--new-name", "Praxis Dr. Neu",
    "--terms-version", "2.0", "--channel", "paper", "--accepted-on", "2026-10-28",
    "--member", "lneu", "234567701", "Dr. Lena Neu", "--staff", "nneu", "Nina Neu",
    "--practice-access", "praxis-neu", "--key", "5000002",
)  # fmt: skip


def test_a_takeover_on_the_command_line(
    invoke: Invoke, database: Database, practice_with_terms: str, tmp_path: Path
) -> None:
    onboard_old_owner(invoke, tmp_path)

    out = ok(invoke(*TAKEOVER)).output
    shown = ok(invoke("practice", "show", BSNR)).output

    assert "Übernahme am 01.11.2026: BSNR 881234500 – Praxis Dr. Neu" in out
    assert "Zugänge des bisherigen Inhabers beendet: mfa, oalt" in out
    assert "Übernahme:" in shown and "am 01.11.2026 von Praxis Dr. Müller" in shown
    with database.session() as session:
        users = {u.username: u for u in session.scalars(select(User))}
        keys = {t.serial: t for t in session.scalars(select(Token))}
        actors = set(
            session.scalars(
                select(AuditEntry.actor).where(AuditEntry.tag == "practice:record:takeover")
            )
        )
    assert users["oalt"].lock_cause is LockCause.TAKEOVER
    assert users["mfa"].status is UserStatus.LOCKED
    assert {"lneu", "nneu", "praxis-neu"} <= set(users)
    assert keys["5000001"].lock_cause is LockCause.TAKEOVER
    assert keys["5000002"].status is TokenStatus.ASSIGNED
    assert actors == {"helpdesk-test"}
    refused(invoke("unlock", "user", "mfa", "--reason", "versehentlich"), "nicht übertragbar")


def test_a_refused_takeover_changes_nothing(
    invoke: Invoke, database: Database, practice_with_terms: str, tmp_path: Path
) -> None:
    onboard_old_owner(invoke, tmp_path)
    before = snapshot(database)

    bad_lanr = [("234567801" if arg == "234567701" else arg) for arg in TAKEOVER]
    refused(invoke(*bad_lanr), "Prüfziffer")
    future = [("2099-01-01" if arg == "2026-11-01" else arg) for arg in TAKEOVER]
    refused(invoke(*future), "Zukunft")

    assert snapshot(database) == before
