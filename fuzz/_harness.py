"""What both harnesses share: libFuzzer's command line, generated seeds, clean-up, oracles.

libFuzzer ends the process with C ``exit()``, so Python's own clean-up (``atexit``,
``TemporaryDirectory``) never runs. The fuzzer therefore runs in a forked child; the
parent waits, removes the work directory (SQLite database, generated seeds, the corpus
grown in this run) and passes the child's exit status on. Crash artifacts go to a
directory of their own under the system temp dir, never into the repository, and are
kept (that directory is removed only when it stayed empty).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

import atheris

TestOneInput = Callable[[bytes], None]
STRICT_ENV = "FLEXNET_FUZZ_STRICT"


class FuzzFinding(AssertionError):
    """A property of flexnet does not hold for the current input: libFuzzer's crash."""


def require(condition: bool, message: str) -> None:
    """The fuzz oracle. Not ``assert``: it has to hold under ``python -O`` as well."""
    if not condition:
        raise FuzzFinding(message)


class Findings:
    """Bugs that flexnet survives fail-safe (silence or a reject, never an accept).

    They are reported once per signature, with the input, and the fuzzer goes on: a
    known, harmless finding must not hide everything behind it. ``FLEXNET_FUZZ_STRICT=1``
    makes them crashes instead, so that libFuzzer writes a reproducer.
    """

    def __init__(self) -> None:
        self.strict = os.environ.get(STRICT_ENV, "") == "1"
        self._seen: set[str] = set()

    def report(self, signature: str, detail: str, data: bytes) -> None:
        if self.strict:
            raise FuzzFinding(f"{signature}\n{detail}")
        if signature in self._seen:
            return
        self._seen.add(signature)
        sys.stderr.write(
            f"\n=== flexnet finding (tolerated; {STRICT_ENV}=1 makes it a crash): {signature}\n"
            f"{detail.rstrip()}\ninput (hex): {data.hex()}\n\n"
        )
        sys.stderr.flush()


class Reader:
    """Decodes a structured fuzz input front to back; past its end every read is zero.

    Small and explicit on purpose: the seeds are written in the same layout, and a
    crashing input can be read by hand.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def byte(self) -> int:
        if self._at >= len(self._data):
            return 0
        self._at += 1
        return self._data[self._at - 1]

    def below(self, bound: int) -> int:
        return self.byte() % bound

    def take(self, count: int) -> bytes:
        chunk = self._data[self._at : self._at + count]
        self._at += len(chunk)
        return chunk

    def exactly(self, count: int) -> bytes:
        return self.take(count).ljust(count, b"\x00")

    def sized(self, limit: int = 255) -> bytes:
        """A length byte (modulo ``limit + 1``), then that many bytes."""
        return self.take(self.below(limit + 1))

    def number(self, octets: int) -> int:
        return int.from_bytes(self.exactly(octets), "big")

    def text(self, limit: int = 255) -> str:
        """Text in one of four shapes, lone surrogates included (JSON can carry them)."""
        shape = self.below(4)
        raw = self.sized(limit)
        if shape == 0:
            return bytes(b & 0x7F for b in raw).decode("ascii")
        if shape == 1:
            return raw.decode("utf-8", errors="replace")
        if shape == 2:
            return raw.decode("latin-1")
        return raw[: len(raw) // 2 * 2].decode("utf-16-le", errors="surrogatepass")

    def rest(self) -> bytes:
        chunk = self._data[self._at :]
        self._at = len(self._data)
        return chunk


def run(
    name: str,
    make_target: Callable[[Path, Findings], TestOneInput],
    *,
    seeds: Mapping[str, bytes],
    tokens: Sequence[bytes],
    max_len: int,
    timeout_seconds: int,
) -> NoReturn:
    """Fuzz ``make_target(work_dir, findings)`` with ``sys.argv`` as libFuzzer's flags."""
    work = Path(tempfile.mkdtemp(prefix=f"flexnet-fuzz-{name}-"))
    artifacts: Path | None = None
    if not any(arg.startswith("-artifact_prefix=") for arg in sys.argv[1:]):
        artifacts = Path(tempfile.mkdtemp(prefix=f"flexnet-fuzz-{name}-artifacts-"))
    argv = libfuzzer_argv(
        sys.argv,
        work,
        artifacts,
        seeds=seeds,
        tokens=tokens,
        max_len=max_len,
        timeout_seconds=timeout_seconds,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        _fuzz_in_child(argv, work, make_target)

    def forward(signum: int, _frame: FrameType | None) -> None:
        os.kill(child, signum)

    # Ctrl-C reaches the child as well (same process group): it prints its statistics and
    # stops. A SIGTERM sent to this process alone is passed on. Then clean up.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, forward)
    _, status = os.waitpid(child, 0)
    shutil.rmtree(work, ignore_errors=True)
    if artifacts is not None:
        if any(artifacts.iterdir()):
            sys.stderr.write(f"flexnet-fuzz: crash artifacts kept in {artifacts}\n")
        else:
            artifacts.rmdir()
    code = os.waitstatus_to_exitcode(status)
    sys.exit(code if code >= 0 else 128 - code)


def _fuzz_in_child(
    argv: list[str], work: Path, make_target: Callable[[Path, Findings], TestOneInput]
) -> NoReturn:
    """Never returns into the parent's code: a failing set-up raises out of ``run``, and
    at the end of fuzzing libFuzzer calls ``exit()`` itself.

    After a crash atheris raises ``SystemExit`` and libFuzzer writes the artifact when
    the interpreter has exited. atheris handles libFuzzer's time-out timer (SIGALRM) in
    Python, and Python resets that handler while finalising: a tick in that window
    would kill the process before the artifact is written. So the signal is blocked.
    """
    target = make_target(work, Findings())
    atheris.Setup(argv, target)
    try:
        atheris.Fuzz()
    except SystemExit:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        raise
    raise SystemExit(0)


def libfuzzer_argv(
    argv: Sequence[str],
    work: Path,
    artifacts: Path | None,
    *,
    seeds: Mapping[str, bytes],
    tokens: Sequence[bytes],
    max_len: int,
    timeout_seconds: int,
) -> list[str]:
    """The user's flags plus defaults: artifacts, time-out, input size, dictionary, seeds.

    New corpus entries go to the first corpus directory: a temporary one unless the
    caller names their own. The generated seeds are added as a further directory, but
    only when fuzzing: inputs that are files mean "re-run these" (a crash reproducer).
    """
    flags = [arg for arg in argv[1:] if arg.startswith("-")]
    inputs = [arg for arg in argv[1:] if not arg.startswith("-")]
    given = {flag.split("=", 1)[0] for flag in flags}
    if artifacts is not None:
        flags.append(f"-artifact_prefix={artifacts}/")
    if "-max_len" not in given:
        flags.append(f"-max_len={max_len}")
    if "-timeout" not in given:
        flags.append(f"-timeout={timeout_seconds}")
    if "-dict" not in given and tokens:
        dictionary = work / "tokens.dict"
        dictionary.write_text("".join(f'"{_escape(token)}"\n' for token in tokens))
        flags.append(f"-dict={dictionary}")
    if all(Path(path).is_dir() for path in inputs):
        seed_dir = work / "seeds"
        seed_dir.mkdir()
        for seed_name, data in seeds.items():
            (seed_dir / seed_name).write_bytes(data)
        if not inputs:
            corpus = work / "corpus"
            corpus.mkdir()
            inputs.append(str(corpus))
        inputs.append(str(seed_dir))
    return [argv[0], *flags, *inputs]


def _escape(token: bytes) -> str:
    """libFuzzer's dictionary syntax: printable ASCII as is, everything else as \\xNN."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\x{b:02x}" for b in token)
