"""The product as an operator installs it: the wheel, built from the sdist, in a fresh venv.

Built and installed once per test session. The installed programs run from a folder
outside the checkout with an environment of their own (no PYTHONPATH, no FLEXNET_*
from this process), so nothing of the checkout can stand in for a missing file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from tests.support.yubikeys import SimulatedKey

ROOT = Path(__file__).resolve().parents[2]
ACTING_STAFF = "it-admin"
START_SECONDS = 30.0


def _pip_environ() -> dict[str, str]:
    """What pip needs to reach the package index and its cache, nothing of the checkout."""
    keep = {"HOME", "PATH", "LANG", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"}
    return {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_")}


@dataclass(frozen=True)
class Installed:
    """flexnet installed from the wheel into ``venv``; ``work`` is where it runs."""

    wheel: Path
    venv: Path
    work: Path

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def environ(self, instance: Path, **settings: str) -> dict[str, str]:
        """A clean environment: the venv's programs, a home and an instance of its own."""
        environ = {
            "PATH": f"{self.venv / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.work),
            "LANG": "C.UTF-8",
            "FLEXNET_INSTANCE": str(instance),
            "FLEXNET_LOG_LEVEL": "INFO",
            # Changes name a staff account (the product fixture adds it first).
            "FLEXNET_ACTOR": ACTING_STAFF,
        }
        environ.update({f"FLEXNET_{k.upper()}": v for k, v in settings.items()})
        return environ

    def run(
        self, instance: Path, *args: str, input: str | None = None, **settings: str
    ) -> subprocess.CompletedProcess[str]:
        """The installed ``flexnet`` with these arguments, run in ``work``."""
        return subprocess.run(
            [self.bin("flexnet"), *args],
            cwd=self.work,
            env=self.environ(instance, **settings),
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.bin("python"), "-c", code],
            cwd=self.work,
            env=self.environ(self.work / "no-instance"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _run(
    command: list[str], *, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build``: the sdist from the checkout, then the wheel from that sdist
    (so a file the sdist leaves out is missing from the wheel too)."""
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], cwd=dist)
    (built,) = dist.glob("flexnet-*.whl")
    return built


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh venv with the wheel and its runtime dependencies only (from the index,
    through pip's cache)."""
    base = tmp_path_factory.mktemp("installed")
    venv, work = base / "venv", base / "work"
    work.mkdir()
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=base)
    # This suite's pip installs into the new venv (--python), which so holds nothing but
    # flexnet and what it declares. --no-compile: Python compiles on first import instead.
    _run(pip(venv, "install", "--quiet", "--no-compile", str(wheel)), cwd=base, env=_pip_environ())
    return Installed(wheel, venv, work)


def pip(venv: Path, *args: str) -> list[str]:
    """A pip command line acting on ``venv``."""
    return [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), *args]


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@contextmanager
def started(
    command: list[str], installed: Installed, instance: Path, ready: str, **settings: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Start an installed program in ``work``; wait until its log shows ``ready``."""
    log_path = installed.work / f"{Path(command[0]).name}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=installed.work,
            env=installed.environ(instance, **settings),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_SECONDS
        while ready not in log_path.read_text(errors="replace"):
            log = log_path.read_text(errors="replace")
            assert process.poll() is None, f"{command[0]} exited at start:\n{log}"
            assert time.monotonic() < deadline, f"{command[0]} not ready in time:\n{log}"
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


PASSWORD = "Sommer-Regen-2026!"
NAS_SECRET = "ein-langes-gemeinsames-geheimnis"
PRACTICES = ("881234500", "881234600", "881234700")


@dataclass(frozen=True)
class Product:
    """An instance of the installed flexnet: migrated SQLite, practices, keys, users, NAS."""

    installed: Installed
    instance: Path
    keys: dict[str, SimulatedKey]  # by username


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def product(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Product:
    instance = tmp_path_factory.mktemp("product") / "instance"

    def flexnet(*args: str, input: str | None = None) -> str:
        return ok(installed.run(instance, *args, input=input))

    assert "Instanzordner angelegt" in flexnet("init")
    upgraded = flexnet("db", "upgrade")
    (head,) = ScriptDirectory(str(ROOT / "migrations")).get_heads()
    assert f"Datenbankschema auf Stand {head}" in upgraded
    assert flexnet("db", "current").strip() == head
    # The first admin needs no one to name; every later change is recorded for it.
    ok(
        installed.run(
            instance, "staff", "add", ACTING_STAFF, "--role", "admin", "--password-stdin",
            input="Ein-langes-Kennwort-2026\n", actor="",
        )
    )  # fmt: skip

    keys = {f"nutzer{n}": SimulatedKey.random() for n in range(len(PRACTICES))}
    key_file = instance.parent / "keys.csv"
    key_file.write_text(
        "".join(
            f"{5000001 + n},{key.public_id},{key.private_id.hex()},{key.aes_key.hex()},,"
            "2026-11-20T10:00:00,\n"
            for n, key in enumerate(keys.values())
        )
    )
    assert "3 Yubikeys importiert" in flexnet("yubikey", "import", str(key_file))
    for n, (bsnr, username) in enumerate(zip(PRACTICES, keys, strict=True)):
        flexnet(
            "practice", "add", "--bsnr", bsnr, "--name", f"Praxis Dr. Beispiel {n}",
            "--street", f"Breiter Weg {n + 1}", "--zip", "39104", "--city", "Magdeburg",
        )  # fmt: skip
        flexnet("terms", "accept", bsnr, "--version", "2026-01", "--channel", "paper")
        flexnet("yubikey", "assign", str(5000001 + n), "--practice", bsnr)
        flexnet(
            "user", "add", username, "--practice", bsnr, "--kind", "staff",
            "--name", f"Nutzer {n}", "--password-stdin", input=PASSWORD + "\n",
        )  # fmt: skip
    for name, address in (("vpn-1", "127.0.0.1"), ("vpn-2", "192.0.2.10")):
        flexnet("nas", "add", name, "--address", address, "--secret-stdin", input=NAS_SECRET)
    return Product(installed, instance, keys)


def fetch(port: int, path: str) -> tuple[int, str, str]:
    """Status, content type and body of a GET to the local server on ``port``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
        return reply.status, reply.headers.get_content_type(), reply.read().decode()


def wait_for(port: int, path: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        try:
            return fetch(port, path)[2]
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
