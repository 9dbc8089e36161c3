"""The installed wheel is the product (issue 16): what an operator installs works alone.

The wheel is built from the sdist, installed with its runtime dependencies into a fresh
venv, and used from a folder outside the checkout: the CLI migrates a SQLite database
and prints a mail run, ``flexnet radius`` answers radclient, gunicorn serves the admin
sign-in with its stylesheet. A package or data file left out of the wheel fails here.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import pdfplumber
import port_for

from tests.install.conftest import (
    NAS_SECRET,
    PASSWORD,
    PRACTICES,
    ROOT,
    Installed,
    Product,
    fetch,
    ok,
    pip,
    started,
    wait_for,
    wheel_names,
)

# Where each shipped folder of the repository lies inside the wheel.
SHIPPED = {"flexnet": "flexnet", "migrations": "flexnet/migrations", "letters": "flexnet/letters"}
# Distributions of the test extra: none of them belongs on a production server.
TEST_TOOLS = {
    "atheris",
    "build",
    "hypothesis",
    "mypy",
    "pdfplumber",
    "playwright",
    "pypdf",
    "pytest",
    "pytest-postgresql",
    "ruff",
    "schemathesis",
    "yubiotp",
}


def shipped_files() -> set[str]:
    """Every tracked file of the shipped folders, named as the wheel must hold it."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", *SHIPPED],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    files = set()
    for path in filter(None, listed.split("\0")):
        folder, _, rest = path.partition("/")
        files.add(f"{SHIPPED[folder]}/{rest}")
    return files


def test_the_wheel_holds_every_file_of_the_product(wheel: Path) -> None:
    names = wheel_names(wheel)

    assert sorted(shipped_files() - names) == []
    for kind in (
        "flexnet/radius/__init__.py",
        "flexnet/wsgi.py",
        "flexnet/migrations/env.py",
        "flexnet/migrations/script.py.mako",
        "flexnet/letters/layout.toml",
        "flexnet/letters/credentials.toml",
        "flexnet/web/templates/admin/login.html",
        "flexnet/web/static/flexnet.css",
        "flexnet/radius/dictionary",
        "flexnet/data/password-blocklist-de.txt",
    ):
        assert kind in names
    assert len([n for n in names if re.fullmatch(r"flexnet/migrations/versions/\w+\.py", n)]) > 1
    version = wheel.name.split("-")[1]
    assert {n.split("/")[0] for n in names} == {"flexnet", f"flexnet-{version}.dist-info"}


def test_letters_stay_free_of_code() -> None:
    """IT staff edit letters/: besides the letters, only its README and the empty marker
    that makes it the package flexnet.letters (no statement in it)."""
    files = {p.name for p in (ROOT / "letters").iterdir() if p.is_file()}

    assert {name for name in files if not name.endswith(".toml")} == {"README.md", "__init__.py"}
    assert ast.parse((ROOT / "letters" / "__init__.py").read_text()).body == []


IMPORT_EVERY_MODULE = """
import importlib, pkgutil, flexnet
# flexnet.wsgi builds the app from the settings; migrations/ runs only inside Alembic.
skip = ("flexnet.wsgi", "flexnet.migrations")
names = [m.name for m in pkgutil.walk_packages(flexnet.__path__, "flexnet.")]
for name in names:
    if not name.startswith(skip):
        importlib.import_module(name)
print(flexnet.__file__, len(names))
"""


def test_installed_with_runtime_dependencies_only(installed: Installed) -> None:
    check = subprocess.run(pip(installed.venv, "check"), capture_output=True, text=True)
    listed = subprocess.run(
        pip(installed.venv, "list", "--format=json"), capture_output=True, text=True, check=True
    )
    imported = installed.python(IMPORT_EVERY_MODULE)

    assert check.returncode == 0, check.stdout + check.stderr
    distributions = {d["name"].lower().replace("_", "-") for d in json.loads(listed.stdout)}
    assert "flexnet" in distributions
    assert distributions & TEST_TOOLS == set()
    assert imported.returncode == 0, imported.stderr
    location, count = imported.stdout.split()
    assert location.startswith(str(installed.venv)) and int(count) > 40


def test_a_letter_run_prints_every_key_letter(product: Product) -> None:
    pdf = product.installed.work / "lauf.pdf"

    printed = ok(product.installed.run(product.instance, "letters", "run", "--out", str(pdf)))

    assert printed.strip().splitlines()[-1].isdigit()  # the run's id alone on the last line
    assert pdf.read_bytes().startswith(b"%PDF-")
    with pdfplumber.open(pdf) as document:
        pages = [page.extract_text() or "" for page in document.pages]
    for n in range(len(PRACTICES)):
        assert any(f"Praxis Dr. Beispiel {n}" in p and str(5000001 + n) in p for p in pages)


def radclient(port: int, username: str, password: str) -> str:
    result = subprocess.run(
        ["radclient", "-x", "-r", "1", "-t", "3", f"127.0.0.1:{port}", "auth", NAS_SECRET],
        input=f"User-Name={username},User-Password='{password}',Message-Authenticator=0x00\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stdout + result.stderr


def test_flexnet_radius_answers_radclient(product: Product) -> None:
    auth, acct = port_for.select_random(), port_for.select_random()
    command = [product.installed.bin("flexnet"), "radius", "--bind", "127.0.0.1"]
    command += ["--auth-port", str(auth), "--acct-port", str(acct)]

    with started(command, product.installed, product.instance, "RADIUS listening"):
        answers = {
            username: radclient(auth, username, PASSWORD + key.otp())
            for username, key in product.keys.items()
        }
        wrong = radclient(auth, "nutzer0", "Falsches-Kennwort-1" + product.keys["nutzer0"].otp())

    for username, answer in answers.items():
        assert "Received Access-Accept" in answer, (username, answer)
    assert "Received Access-Reject" in wrong


def test_gunicorn_serves_the_admin_sign_in_with_its_stylesheet(product: Product) -> None:
    port = port_for.select_random()
    command = [product.installed.bin("gunicorn"), "--workers", "2"]
    command += ["--bind", f"127.0.0.1:{port}", "flexnet.wsgi:app"]

    with started(command, product.installed, product.instance, "Booting worker"):
        health = wait_for(port, "/healthz")
        status, kind, page = fetch(port, "/admin/login")
        (stylesheet,) = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
        css = fetch(port, stylesheet)

    assert json.loads(health) == {"status": "ok", "database": "ok"}
    assert (status, kind) == (200, "text/html")
    assert 'name="password"' in page
    assert css[:2] == (200, "text/css") and "body" in css[2]
