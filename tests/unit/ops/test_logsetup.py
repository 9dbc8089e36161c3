from __future__ import annotations

import logging
import sys
from pathlib import Path

from flexnet import config
from flexnet.ops import logsetup


def test_an_event_is_one_line_even_with_a_traceback_or_a_line_break() -> None:
    formatter = logsetup.OneLineFormatter(logsetup.FORMAT)
    try:
        raise ValueError("kaputt")
    except ValueError:
        failure = sys.exc_info()
    record = logging.LogRecord(
        "flexnet.test", logging.ERROR, __file__, 1, "Benutzer %s", ("x\nINFO gefälscht",), failure
    )

    line = formatter.format(record)

    assert "\n" not in line and "\r" not in line
    assert "ERROR flexnet.test: Benutzer x\\nINFO gefälscht" in line
    assert "ValueError: kaputt" in line


def test_the_level_comes_from_flexnet_log_level() -> None:
    assert logsetup.level({"FLEXNET_LOG_LEVEL": "warning"}) == "WARNING"
    assert logsetup.level({"FLEXNET_LOG_LEVEL": "laut"}) == "INFO"
    assert logsetup.level({}) == "INFO"


def test_the_level_is_read_from_flexnet_env_like_every_setting(tmp_path: Path) -> None:
    (tmp_path / "flexnet.env").write_text("FLEXNET_LOG_LEVEL=WARNING\n")
    instance = {"FLEXNET_INSTANCE": str(tmp_path)}

    assert logsetup.level(config.environment(instance)) == "WARNING"
    assert logsetup.level(config.environment({**instance, "FLEXNET_LOG_LEVEL": "debug"})) == "DEBUG"
