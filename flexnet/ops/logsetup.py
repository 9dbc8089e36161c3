"""Log lines of flexnet's processes (web app, RADIUS server, CLI): time, level, source and
message, one line per event, at ``FLEXNET_LOG_LEVEL``. Never a secret: see the callers."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flexnet import config

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class OneLineFormatter(logging.Formatter):
    """One event, one line: line breaks in a message or a traceback are shown as ``\\n``,
    so a journal reader or log shipper never takes a continuation for an event of its own
    (nor a line smuggled into a message)."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "\\r").replace("\n", "\\n")


def level(environ: Mapping[str, str]) -> str:
    """``FLEXNET_LOG_LEVEL`` if it names a level, else INFO."""
    name = environ.get("FLEXNET_LOG_LEVEL", "INFO").strip().upper()
    return name if name in logging.getLevelNamesMapping() else "INFO"


def configure(environ: Mapping[str, str] | None = None) -> None:
    """Send log lines to standard error (the journal), unless the process has configured
    logging already (``flexnet run`` before it starts the web app; pytest)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(FORMAT))
    root.addHandler(handler)
    # Like every setting: the environment first, then the instance's flexnet.env.
    root.setLevel(level(config.environment(environ)))
    # pyrad logs whole packets, hidden passwords included, at DEBUG: never let it.
    logging.getLogger("pyrad").setLevel(logging.INFO)
