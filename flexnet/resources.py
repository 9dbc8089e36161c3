"""The files flexnet ships beside its code, found through ``importlib.resources``.

Every look-up of a shipped file goes through here: templates and static files of the
web app, the RADIUS dictionary, the word lists, the Alembic migrations and the letters.
``migrations/`` and ``letters/`` stay at the top of the repository and travel inside the
wheel as the packages ``flexnet.migrations`` and ``flexnet.letters`` (setup.cfg says
how), so an installed wheel and an editable checkout answer alike and nothing here
knows where the source tree is.
"""

from __future__ import annotations

import atexit
import functools
from contextlib import ExitStack
from importlib.resources import as_file, files
from pathlib import Path

# pip installs a wheel unpacked, and a checkout is on disk: then as_file() gives the path
# itself. From a zip import a file would be extracted once (a folder only on Python
# 3.12+) and removed at exit.
_extracted = ExitStack()
atexit.register(_extracted.close)


@functools.cache
def _path(package: str, *parts: str) -> Path:
    return _extracted.enter_context(as_file(files(package).joinpath(*parts)))


def migrations_dir() -> Path:
    """Alembic's script directory (a real folder: Alembic reads and writes files in it)."""
    return _path("flexnet.migrations")


def letters_dir() -> Path:
    """The shipped wording and layout of the letters (``FLEXNET_LETTERS_DIR`` overrides)."""
    return _path("flexnet.letters")


def templates_dir() -> Path:
    return _path("flexnet", "web", "templates")


def static_dir() -> Path:
    return _path("flexnet", "web", "static")


def radius_dictionary() -> Path:
    return _path("flexnet", "radius", "dictionary")


def password_blocklist() -> str:
    """The German password blocklist, one word a line, ``#`` comments."""
    return files("flexnet").joinpath("data", "password-blocklist-de.txt").read_text("utf-8")
