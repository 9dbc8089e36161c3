"""Files with personal data that a command writes (an access report, an audit export):
readable by their owner only, never over an existing file, in place only once complete."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from flexnet.errors import ConflictError


@contextmanager
def new_files(contents: Mapping[Path, bytes]) -> Iterator[None]:
    """Write each content beside its path (mode 0600) on entry; move them into place when
    the block ends without an error, delete them when it raises. Used around a commit:
    the files appear only if it succeeds, and a failed write prevents it."""
    for path in contents:
        if path.exists():
            raise ConflictError(f"{path} existiert bereits; bitte einen neuen Dateinamen wählen")
    partials = {path: path.with_name(f".{path.name}.partial") for path in contents}
    try:
        for path, partial in partials.items():
            _write(partial, contents[path])
        yield
    except BaseException:
        for partial in partials.values():
            partial.unlink(missing_ok=True)
        raise
    for path, partial in partials.items():
        os.replace(partial, path)


def _write(path: Path, content: bytes) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise ConflictError(f"{path} lässt sich nicht anlegen: {error.strerror}") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
