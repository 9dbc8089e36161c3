"""What staff type on the command line: days lie in a sensible range and a NUL never
reaches the database. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from flexnet.db import Database
from tests.functional.test_cli_lifecycle import BSNR, KEY, key
from tests.support.cli import Invoke, refused, snapshot
from tests.support.yubikeys import SimulatedKey

__all__ = ["key"]  # the fixture used here


@pytest.mark.parametrize(
    "args",
    [
        ("practice", "terminate", BSNR, "--by", "member", "--notice-date", "9999-12-25"),
        (
            "practice",
            "terminate",
            BSNR,
            "--by",
            "association",
            "--notice-date",
            "2026-11-23",
            "--requested-date",
            "9999-12-31",
        ),
        ("practice", "end", BSNR, "--date", "9999-12-31"),
        (
            "exception",
            "grant",
            "--practice",
            BSNR,
            "--until",
            "9999-12-31",
            "--reason",
            "r",
            "--ref",
            "Az 1",
            "--decided-by",
            "Vorstand",
        ),
        ("terms", "accept", BSNR, "--version", "2.0", "--channel", "paper", "--date", "1900-01-01"),
        ("lifecycle", "run", "--today", "9999-12-31"),
        ("letters", "due", "--today", "9999-12-31"),
        ("yubikey", "return", KEY, "--condition", "good", "--date", "0001-01-01"),
    ],
)
def test_days_outside_the_range_are_refused_and_change_nothing(
    invoke: Invoke, key: SimulatedKey, database: Database, args: tuple[str, ...]
) -> None:
    before = snapshot(database)

    refused(invoke(*args), "außerhalb des möglichen Zeitraums (01.01.2000 bis 31.12.2099)")

    assert snapshot(database) == before


@pytest.mark.parametrize(
    "args",
    [
        ("yubikey", "show", f"{KEY}\x00"),
        ("user", "show", "emuster\x00"),
        ("lock", "user", "emuster", "--reason", "Meldung\x00"),
        ("nas", "disable", "vpn\x00"),
        ("api-client", "disable", "portal\x00"),
        ("wsapi-client", "disable", "portal\x00"),
        (
            "practice",
            "add",
            "--bsnr",
            "881234599",
            "--name",
            "Praxis\x00",
            "--street",
            "Weg 1",
            "--zip",
            "39104",
            "--city",
            "Halle",
        ),
    ],
)
def test_a_nul_in_an_argument_is_refused_before_the_database(
    invoke: Invoke, key: SimulatedKey, database: Database, args: tuple[str, ...]
) -> None:
    before = snapshot(database)

    refused(invoke(*args), "enthält ein NUL-Zeichen")

    assert snapshot(database) == before
