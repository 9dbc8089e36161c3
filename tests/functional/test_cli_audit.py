"""The audit trail from the command line: a rewritten history fails verification, with
the key and against checkpoints kept elsewhere; key rotation; the officer's export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import delete, func, select

from flexnet import audit, auditformat
from flexnet.audit import AuditKey
from flexnet.config import generate_master_key, parse_audit_key
from flexnet.db import Database
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import AuditEntry
from tests.conftest import AUDIT_KEY, TEST_AUDIT_KEY
from tests.support.cli import Invoke, ok, refused

BSNRS = ("881234500", "881234501", "881234599")


def add_practices(invoke: Invoke, *bsnrs: str) -> None:
    for number, bsnr in enumerate(bsnrs):
        ok(
            invoke(
                "practice",
                "add",
                "--bsnr",
                bsnr,
                "--name",
                f"Praxis Dr. Müller {number}",
                "--street",
                "Hauptstraße 1",
                "--zip",
                "39104",
                "--city",
                "Magdeburg",
            )
        )


def rewrite(database: Database, victim: int, key: AuditKey | None) -> None:
    """What a database administrator can do: change an entry and recompute the chain from
    it to the head; with ``key`` (an administrator of the nodes) the seals too."""
    with database.session() as session:
        entries = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.id >= victim).order_by(AuditEntry.id)
            )
        )
        previous = session.scalar(select(AuditEntry.hash).where(AuditEntry.id == victim - 1))
        entries[0].data = entries[0].data.replace("Müller", "Maier")
        for entry in entries:
            entry.prev_hash = previous or audit.GENESIS_HASH
            entry.hash = audit.entry_hash(entry)
            if key is not None:
                row = {name: getattr(entry, name) for name in audit.STORED}
                entry.seal = auditformat.seal(key, row)
            previous = entry.hash


def test_a_rewrite_by_the_key_holder_fails_against_the_earlier_checkpoint(
    invoke: Invoke, database: Database, tmp_path: Path
) -> None:
    add_practices(invoke, *BSNRS)
    shipped = tmp_path / "elsewhere.jsonl"
    ok(invoke("audit", "checkpoint", "--out", str(shipped)))
    add_practices(invoke, "881234511")

    rewrite(database, 2, AUDIT_KEY)
    with_key = invoke("audit", "verify")
    against_checkpoint = invoke("audit", "verify", "--checkpoint", str(shipped))

    assert with_key.exit_code == 0  # whoever holds the key can seal a new history ...
    assert against_checkpoint.exit_code == 1  # ... but not the one shipped elsewhere
    assert "Eintrag weicht vom Prüfpunkt ab" in against_checkpoint.stderr


def test_a_rewrite_without_the_key_fails_the_seals(invoke: Invoke, database: Database) -> None:
    add_practices(invoke, *BSNRS)

    rewrite(database, 2, None)
    broken = invoke("audit", "verify")

    assert broken.exit_code == 1
    assert "GEBROCHEN bei Eintrag 2: Siegel falsch" in broken.stderr


def test_a_tail_cut_after_a_checkpoint_and_a_forged_checkpoint_are_named(
    invoke: Invoke, database: Database, tmp_path: Path
) -> None:
    add_practices(invoke, *BSNRS)
    shipped = tmp_path / "elsewhere.jsonl"
    ok(invoke("audit", "checkpoint", "--out", str(shipped)))
    statement = json.loads(shipped.read_text())
    forged = dict(statement, entry=1, hash="0" * 64)
    other_key = AuditKey(parse_audit_key(generate_master_key()))
    foreign = auditformat.checkpoint(
        other_key,
        entry_id=statement["entry"],
        entry_hash=statement["hash"],
        entry_at=datetime.fromisoformat(statement["entry_at"]),
        written_at=datetime.fromisoformat(statement["written_at"]),
    )
    doubtful = tmp_path / "doubtful.jsonl"
    doubtful.write_text(f"{json.dumps(forged)}\n{json.dumps(foreign)}\n")

    intact = invoke("audit", "verify", "--checkpoint", str(shipped))
    checked = invoke("audit", "verify", "--checkpoint", str(doubtful))
    with database.session() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.id == statement["entry"]))
    cut = invoke("audit", "verify", "--checkpoint", str(shipped))

    assert intact.exit_code == 0 and "Prüfpunkte: 1 geprüft, 0 passen nicht" in intact.output
    assert checked.exit_code == 1
    assert "Signatur ungültig" in checked.stderr and "fremden Schlüssel" in checked.stderr
    assert cut.exit_code == 1
    assert "Kette endet vor dem Prüfpunkt" in cut.stderr


def test_the_nightly_job_writes_checkpoints_that_hold_through_years_of_purges(
    invoke: Invoke, env: dict[str, str]
) -> None:
    """The job runs every night; here on four of them: the first two checkpoints name
    entries that the audit retention deletes ten years on, the rest what is kept."""
    add_practices(invoke, *BSNRS)
    today = datetime.now(BERLIN).date()
    ten_years = relativedelta(years=10)
    days = [today + timedelta(days=1), today + timedelta(days=20)]
    days += [today + ten_years + timedelta(days=10), today + ten_years + timedelta(days=11)]
    printed = [ok(invoke("lifecycle", "run", "--today", d.isoformat())).output for d in days]
    written = Path(env["FLEXNET_INSTANCE"]) / "audit-checkpoints.jsonl"
    journal = Path(env["FLEXNET_INSTANCE"]) / "from-the-journal.jsonl"
    journal.write_text(printed[-1].splitlines()[-1].split("): ", 1)[1] + "\n")

    verified = invoke("audit", "verify", "--checkpoint", str(written))
    from_journal = invoke("audit", "verify", "--checkpoint", str(journal))

    assert len(written.read_text().splitlines()) == len(days)
    assert written.stat().st_mode & 0o777 == 0o600
    assert verified.exit_code == 0, verified.stderr
    assert "nach Aufbewahrungsfrist gelöscht" in verified.output
    assert f"Prüfpunkte: {len(days)} geprüft, 0 passen nicht" in verified.output
    assert from_journal.exit_code == 0 and "Prüfpunkte: 1 geprüft" in from_journal.output


def test_rotating_the_audit_key_reseals_everything_and_keeps_older_checkpoints(
    invoke: Invoke, database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_practices(invoke, *BSNRS)
    shipped = tmp_path / "elsewhere.jsonl"
    ok(invoke("audit", "checkpoint", "--out", str(shipped)))
    new_key = generate_master_key()

    rotated = ok(invoke("audit", "rotate-key", "--new-key-stdin", input=f"{new_key}\n"))
    with_old_key = invoke("audit", "verify")
    monkeypatch.setenv("FLEXNET_AUDIT_KEY", new_key)
    with_new_key = invoke("audit", "verify", "--checkpoint", str(shipped))
    ok(invoke("audit", "checkpoint", "--out", str(shipped)))
    both = invoke("audit", "verify", "--checkpoint", str(shipped))

    assert "3 Einträge neu versiegelt" in rotated.output
    assert with_old_key.exit_code == 1 and "Siegel falsch" in with_old_key.stderr
    assert with_new_key.exit_code == 0, with_new_key.stderr
    assert both.exit_code == 0 and "Prüfpunkte: 2 geprüft, 0 passen nicht" in both.output


def test_a_rotation_refuses_a_broken_chain_and_changes_nothing(
    invoke: Invoke, database: Database
) -> None:
    add_practices(invoke, *BSNRS)
    rewrite(database, 2, None)
    with database.session() as session:
        seals = list(session.scalars(select(AuditEntry.seal).order_by(AuditEntry.id)))

    refused(
        invoke("audit", "rotate-key", "--new-key-stdin", input=f"{generate_master_key()}\n"),
        "nicht intakt (Eintrag 2",
    )

    with database.session() as session:
        assert list(session.scalars(select(AuditEntry.seal).order_by(AuditEntry.id))) == seals


def test_the_officers_export_as_csv_and_json_filtered_and_audited(
    invoke: Invoke, database: Database, tmp_path: Path
) -> None:
    add_practices(invoke, *BSNRS)
    with database.session() as session:
        audit.record(
            session,
            audit.AuditTag.PRACTICE_LOCK,
            actor=audit.Actor.staff('=HYPERLINK("http://x")'),
            subject=audit.Subject("practice", BSNRS[1]),
            data={"reason": "Prüfung; Zeile"},
            now=datetime(2026, 11, 24, 8, tzinfo=UTC),
        )

    whole = ok(invoke("audit", "export", "--from", "2026-01-01", "--to", "2099-12-31", "--csv"))
    one = tmp_path / "881234501.json"
    ok(
        invoke(
            "audit",
            "export",
            "--from",
            "2026-11-24",
            "--to",
            "2026-11-24",
            "--subject",
            BSNRS[1],
            "--json",
            "--out",
            str(one),
        )
    )

    raw = whole.stdout_bytes
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["id", "zeitpunkt", "art_des_handelnden"]
    assert len(rows) == 1 + 4
    assert rows[-1][3] == '\'=HYPERLINK("http://x")'  # never a formula in a spreadsheet
    assert "Prüfung; Zeile" in rows[-1][7]
    document = json.loads(one.read_text(encoding="utf-8"))
    assert [entry["gegenstand"] for entry in document["eintraege"]] == [BSNRS[1]]
    assert one.stat().st_mode & 0o777 == 0o600
    with database.session() as session:
        exports = session.scalar(
            select(func.count()).where(AuditEntry.tag == audit.AuditTag.AUDIT_EXPORT.value)
        )
    assert exports == 2
    assert ok(invoke("audit", "verify")).exit_code == 0


def test_the_test_audit_key_is_the_one_the_cli_uses() -> None:
    assert AuditKey(parse_audit_key(TEST_AUDIT_KEY)).public_key == AUDIT_KEY.public_key
