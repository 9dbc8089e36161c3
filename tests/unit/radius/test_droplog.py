from __future__ import annotations

import logging

import pytest

from flexnet.radius.droplog import DropLog


def test_one_line_a_minute_per_key_then_the_count_of_those_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [1000.0]
    drops = DropLog(logging.getLogger("test.droplog"), clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="test.droplog")

    for _ in range(5):
        drops.warning("vpn-1", "dropped from %s", "vpn-1")
    drops.warning("vpn-2", "dropped from %s", "vpn-2")
    now[0] += 59.0
    drops.warning("vpn-1", "dropped from %s", "vpn-1")
    now[0] += 1.0
    drops.warning("vpn-1", "dropped from %s", "vpn-1")

    assert [r.getMessage() for r in caplog.records] == [
        "dropped from vpn-1",
        "dropped from vpn-2",
        "dropped from vpn-1 (5 more like it in the last minute)",
    ]
