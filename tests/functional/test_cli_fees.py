"""The § 6.3 loss fee on the command line: the loss recorded by a loss lock and by a
replacement, in either order and repeated, owes the fee once and sends the loss letter
once; the ledger lists it and accounting reads it as CSV (semicolon, UTF-8 with BOM,
decimal comma, TT.MM.JJJJ)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from flexnet.db import Database
from tests.functional.test_cli_lifecycle import (
    add_practice,
    due_letters,
    field,
    import_keys,
    kinds,
    show,
    today,
)
from tests.support.cli import Invoke, ok, refused, snapshot
from tests.support.yubikeys import SimulatedKey

# Two practices, each with its key and a spare in stock.
PRACTICES = {"881234600": ("6000001", "6000002"), "881234601": ("6000011", "6000012")}


@pytest.fixture
def practices(invoke: Invoke, tmp_path: Path) -> dict[str, tuple[str, str]]:
    serials = [serial for pair in PRACTICES.values() for serial in pair]
    import_keys(invoke, tmp_path / "keys.csv", *((s, SimulatedKey.random()) for s in serials))
    for bsnr, (old, _) in PRACTICES.items():
        add_practice(invoke, bsnr)
        ok(invoke("yubikey", "assign", old, "--practice", bsnr))
    return PRACTICES


def fee_rows(invoke: Invoke, *flags: str) -> list[dict[str, str]]:
    out = ok(invoke("fees", "list", "--csv", *flags)).stdout_bytes
    assert out.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8 without a wizard
    text = out.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


def loss_letters(invoke: Invoke) -> list[tuple[str, str]]:
    due, _ = due_letters(invoke, today().isoformat())
    return [k for k in kinds(due) if k[0] == "Verlustbestätigung"]


def test_loss_lock_then_replacement_and_the_other_way_owe_the_fee_once(
    invoke: Invoke, practices: dict[str, tuple[str, str]], database: Database
) -> None:
    (first, (old1, new1)), (second, (old2, new2)) = practices.items()
    # The order the README documents: the loss is reported, then the key replaced.
    ok(invoke("lock", "key", old1, "--cause", "loss", "--reason", "Verlust gemeldet"))
    lock_again = invoke("lock", "key", old1, "--cause", "loss", "--reason", "nochmal")
    replaced = invoke("yubikey", "replace", first, "--new", new1, "--lost")
    # The other order: replaced as lost first, the loss lock afterwards.
    ok(invoke("yubikey", "replace", second, "--new", new2, "--lost"))
    late_lock = invoke("lock", "key", old2, "--cause", "loss", "--reason", "Verlust gemeldet")
    before = snapshot(database)
    replace_again = invoke("yubikey", "replace", first, "--new", new1, "--lost")

    ok(replaced)
    ok(lock_again)
    ok(late_lock)
    refused(replace_again, f"Yubikey {new1}")
    assert snapshot(database) == before
    rows = fee_rows(invoke)
    assert [(r["BSNR"], r["Yubikey"], r["Betrag (EUR)"], r["Stand"]) for r in rows] == [
        (first, old1, "60,00", "offen"),
        (second, old2, "60,00", "offen"),
    ]
    assert {r["Fällig seit"] for r in rows} == {f"{today():%d.%m.%Y}"}
    assert sorted(loss_letters(invoke)) == [
        ("Verlustbestätigung", first),
        ("Verlustbestätigung", second),
    ]
    for old in (old1, old2):
        assert field(show(invoke, "yubikey", old), "Status") == "verloren"


def test_the_ledger_invoices_pays_waives_and_lists_what_is_open(
    invoke: Invoke, practices: dict[str, tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEXNET_LOSS_FEE_EUR", "1234,50")
    (first, (old1, new1)), (second, (_, new2)) = practices.items()
    ok(invoke("yubikey", "replace", first, "--new", new1, "--lost"))
    ok(invoke("yubikey", "replace", second, "--new", new2, "--lost"))
    ids = [r["Nr."] for r in fee_rows(invoke)]
    day = f"{today():%d.%m.%Y}"

    ok(invoke("fees", "invoiced", ids[0], "--date", today().isoformat()))
    ok(invoke("fees", "paid", ids[0], "--date", today().isoformat()))
    ok(invoke("fees", "waive", ids[1], "--reason", "Yubikey vor dem Ersatz wiedergefunden"))
    pay_waived = invoke("fees", "paid", ids[1], "--date", today().isoformat())
    open_after = fee_rows(invoke, "--open")
    listed = ok(invoke("fees", "list")).stdout

    refused(pay_waived, f"Gebühr Nr. {ids[1]} wurde am {day} erlassen")
    assert open_after == []
    rows = fee_rows(invoke)
    assert [(r["Betrag (EUR)"], r["Stand"], r["Berechnet am"], r["Bezahlt am"]) for r in rows] == [
        ("1234,50", "bezahlt", day, day),
        ("1234,50", "erlassen", "", ""),
    ]
    assert rows[1]["Erlassen am"] == day
    assert rows[1]["Grund"] == "Yubikey vor dem Ersatz wiedergefunden"
    assert f"{old1}" in listed and "1.234,50 EUR" in listed


def test_reports_on_the_command_line_state_their_instant(
    invoke: Invoke, practices: dict[str, tuple[str, str]]
) -> None:
    (first, (old1, new1)), _ = practices.items()
    ok(invoke("yubikey", "replace", first, "--new", new1, "--lost"))

    text = ok(invoke("report", "fees", "--today", today().isoformat())).stdout.splitlines()
    out = ok(invoke("report", "keys-out", "--csv")).stdout_bytes.decode("utf-8-sig")
    unknown = invoke("report", "everything")

    assert text[0] == f"Offene Gebühren (§ 6 Abs. 3), Stand {today():%d.%m.%Y} 00:00: 1"
    assert f"{first} | Praxis Neu | {old1} | 60,00 |" in text[2]
    rows = list(csv.DictReader(io.StringIO(out), delimiter=";"))
    assert sorted(r["Yubikey"] for r in rows) == sorted([new1, PRACTICES["881234601"][0]])
    assert unknown.exit_code != 0
