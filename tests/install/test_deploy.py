"""deploy/: the systemd units, the settings template and the nginx site of the README.

The units are checked by systemd's own parser (``systemd-analyze verify`` works offline,
without systemd as PID 1) against the venv the wheel was installed into, and their
hardening by ``systemd-analyze security --offline``. The site is loaded by Debian's
nginx and then used: it forwards a self-service sign-in to gunicorn serving the wheel.
"""

from __future__ import annotations

import dataclasses
import http.client
import re
import shlex
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import port_for
import pytest

from flexnet.config import Settings, load_settings
from flexnet.errors import ConfigError
from tests.conftest import TEST_AUDIT_KEY, TEST_MASTER_KEY, TEST_SECRET_KEY
from tests.install.conftest import PASSWORD, ROOT, Installed, Product, ok, started, wait_for

DEPLOY = ROOT / "deploy"
README = (ROOT / "README.md").read_text(encoding="utf-8")
SERVICES = ("flexnet-web.service", "flexnet-radius.service", "flexnet-lifecycle.service")
UNITS = (*SERVICES, "flexnet-lifecycle.timer")
QUOTED = (*UNITS, "nginx/flexnet.conf")
VENV = "/opt/flexnet/venv"
INSTANCE = "/var/lib/flexnet"


# --- the README shows these files ----------------------------------------------------


def readme_quotes() -> dict[str, str]:
    """The README's code blocks that quote a file of deploy/, by that file's name."""
    quotes = {}
    for block in re.findall(r"^```\w*\n(.*?)^```$", README, re.MULTILINE | re.DOTALL):
        named = re.match(r"# \S+ \(from deploy/ of the flexnet repository\)", block)
        if named:
            for name in QUOTED:
                if (DEPLOY / name).read_text(encoding="utf-8").startswith(named[0]):
                    quotes[name] = block
    return quotes


def test_the_readme_shows_the_deploy_files_as_they_are() -> None:
    quotes = readme_quotes()

    assert sorted(quotes) == sorted(QUOTED)
    for name, block in quotes.items():
        assert block == (DEPLOY / name).read_text(encoding="utf-8"), name


# --- the settings template -----------------------------------------------------------


def test_the_settings_template_names_every_setting_with_its_default(tmp_path: Path) -> None:
    template = (DEPLOY / "flexnet.env.example").read_text(encoding="utf-8")
    documented = re.findall(r"^\| `(FLEXNET_[A-Z_]+)`", README, re.MULTILINE)
    named = re.findall(r"^(?:# )?(FLEXNET_[A-Z_]+)=", template, re.MULTILINE)
    filled = template.replace("FLEXNET_SECRET_KEY=\n", f"FLEXNET_SECRET_KEY={TEST_SECRET_KEY}\n")
    filled = filled.replace("FLEXNET_MASTER_KEY=\n", f"FLEXNET_MASTER_KEY={TEST_MASTER_KEY}\n")
    filled = filled.replace("FLEXNET_AUDIT_KEY=\n", f"FLEXNET_AUDIT_KEY={TEST_AUDIT_KEY}\n")
    every_default = re.sub(r"^# (FLEXNET_[A-Z_]+=)", r"\1", filled, flags=re.MULTILINE)

    assert sorted(named) == sorted(set(documented))
    with pytest.raises(ConfigError, match="FLEXNET_SECRET_KEY"):
        settings_from(template, tmp_path / "as-shipped")
    required_only = settings_from(filled, tmp_path / "filled")
    assert required_only.proxies == 1 and required_only.database_url.database == "flexnet"
    defaults = settings_from(every_default, tmp_path / "defaults")
    assert defaults == dataclasses.replace(required_only, instance_path=defaults.instance_path)


def settings_from(text: str, instance: Path) -> Settings:
    """The settings flexnet reads from this text as flexnet.env of its instance folder."""
    instance.mkdir()
    (instance / "flexnet.env").write_text(text, encoding="utf-8")
    return load_settings({"FLEXNET_INSTANCE": str(instance)})


# --- systemd units -------------------------------------------------------------------


@pytest.fixture(scope="module")
def units(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The units with /opt/flexnet/venv standing for the venv the wheel is installed in."""
    folder = tmp_path_factory.mktemp("units")
    for name in UNITS:
        text = (DEPLOY / name).read_text(encoding="utf-8")
        (folder / name).write_text(text.replace(VENV, str(installed.venv)), encoding="utf-8")
    return folder


def test_the_units_pass_systemd_analyze_verify(units: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(units / name) for name in UNITS)],
        capture_output=True,
        text=True,
        check=False,
    )

    # Units of the machine that ours pull in (multi-user.target wants what is installed,
    # e.g. Debian's freeradius.service) may have complaints of their own: not ours.
    ours = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if any(name in line for name in UNITS)
    ]
    assert (result.returncode, ours) == (0, [])


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_runs_confined_as_the_flexnet_user(units: Path, name: str) -> None:
    text = (DEPLOY / name).read_text(encoding="utf-8")
    exposure = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(units / name)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert exposure.returncode == 0, exposure.stdout[-2000:] + exposure.stderr
    for line in (
        "User=flexnet",
        f"Environment=FLEXNET_INSTANCE={INSTANCE}",
        f"EnvironmentFile={INSTANCE}/flexnet.env",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        f"ReadWritePaths={INSTANCE}",
        "StateDirectory=flexnet",
    ):
        assert f"\n{line}\n" in text, (name, line)


def exec_start(name: str, installed: Installed) -> list[str]:
    (command,) = re.findall(r"^ExecStart=(.+)$", (DEPLOY / name).read_text(), re.MULTILINE)
    return shlex.split(command.replace(VENV, str(installed.venv)))


def test_the_lifecycle_unit_runs_the_nightly_job(product: Product) -> None:
    command = exec_start("flexnet-lifecycle.service", product.installed)
    assert command[0] == str(product.installed.venv / "bin" / "flexnet")

    report = ok(product.installed.run(product.instance, *command[1:]))

    assert report.startswith("Lebenszyklus-Lauf zum ")
    assert "Jetzt gesperrt: 0" in report


# --- the nginx site ------------------------------------------------------------------


def nginx_config(folder: Path, *, http: int = 80, https: int = 443, upstream: int = 8000) -> Path:
    """A main configuration with the site, its certificate generated here, and the site's
    ports (80, 443, upstream 8000) replaced where given."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=flexnet.kvsa.de", "-addext", "subjectAltName=DNS:flexnet.kvsa.de",
         "-keyout", str(folder / "privkey.pem"), "-out", str(folder / "fullchain.pem")],
        capture_output=True,
        check=True,
    )  # fmt: skip
    site = (DEPLOY / "nginx" / "flexnet.conf").read_text(encoding="utf-8")
    for old, new in (
        ("/etc/ssl/flexnet/", f"{folder}/"),
        ("listen 80;", f"listen 127.0.0.1:{http};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;"),
        ("http://127.0.0.1:8000;", f"http://127.0.0.1:{upstream};"),
    ):
        assert old in site
        site = site.replace(old, new)
    (folder / "flexnet.conf").write_text(site, encoding="utf-8")
    main = folder / "nginx.conf"
    main.write_text(
        f"daemon off;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n"
        f"events {{}}\nhttp {{\n    access_log off;\n    include {folder}/flexnet.conf;\n}}\n"
    )
    return main


def test_debians_nginx_accepts_the_site(tmp_path: Path) -> None:
    result = subprocess.run(
        ["nginx", "-t", "-c", str(nginx_config(tmp_path))], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@contextmanager
def nginx(config: Path, port: int) -> Iterator[None]:
    process = subprocess.Popen(["nginx", "-c", str(config)], stderr=subprocess.DEVNULL)
    try:
        wait_for_tls(port, config.parent / "fullchain.pem")
        yield
    finally:
        process.terminate()
        process.wait(timeout=20)


def tls(certificate: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certificate))
    context.check_hostname = False  # the test connects to 127.0.0.1, not to the name
    return context


def wait_for_tls(port: int, certificate: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = http.client.HTTPSConnection(
                "127.0.0.1", port, context=tls(certificate), timeout=5
            )
            connection.request("HEAD", "/healthz")
            connection.getresponse()
            connection.close()
            return
        except OSError:
            assert time.monotonic() < deadline, "nginx did not answer"
            time.sleep(0.1)


def request(
    port: int,
    certificate: Path,
    method: str,
    path: str,
    *,
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    """One HTTPS request to nginx as a browser at https://flexnet.kvsa.de sends it."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=tls(certificate))
    try:
        connection.request(
            method, path, body=body, headers={"Host": "flexnet.kvsa.de", **(headers or {})}
        )
        reply = connection.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read().decode()
    finally:
        connection.close()


def test_the_site_forwards_a_self_service_sign_in_and_keeps_admin_inside(
    product: Product, tmp_path: Path
) -> None:
    """Through nginx to the web unit's gunicorn (on another port), as production runs
    them: the sign-in form's POST passes the CSRF same-origin check (Host is forwarded),
    /admin is refused outside the association's network, http redirects to https."""
    web, http_port, https_port = (port_for.select_random() for _ in range(3))
    config = nginx_config(tmp_path, http=http_port, https=https_port, upstream=web)
    certificate = tmp_path / "fullchain.pem"
    command = exec_start("flexnet-web.service", product.installed)
    bind = command.index("--bind") + 1
    assert command[bind] == "127.0.0.1:8000" and command[-1] == "flexnet.wsgi:app"
    command[bind] = f"127.0.0.1:{web}"
    username, key = next(iter(product.keys.items()))

    with started(command, product.installed, product.instance, "Booting worker", proxies="1"):
        wait_for(web, "/healthz")
        with nginx(config, https_port):
            _, headers, page = request(https_port, certificate, "GET", "/self-service/login")
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
            cookie = SimpleCookie(headers["Set-Cookie"])
            form = {"csrf_token": token[1] if token else "", "username": username}
            form |= {"password": PASSWORD, "otp": key.otp()}
            signed_in = request(
                https_port,
                certificate,
                "POST",
                "/self-service/login",
                body=urlencode(form),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Referer": "https://flexnet.kvsa.de/self-service/login",
                    "Cookie": "; ".join(f"{k}={m.value}" for k, m in cookie.items()),
                },
            )
            admin = request(https_port, certificate, "GET", "/admin/login")
            plain = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
            plain.request("GET", "/admin/login", headers={"Host": "flexnet.kvsa.de"})
            redirect = plain.getresponse()
            plain.close()

    assert signed_in[0] == 302, signed_in[2][:2000]
    assert signed_in[1]["Location"].endswith("/self-service/")
    assert admin[0] == 403
    assert redirect.status == 301
    assert redirect.getheader("Location") == "https://flexnet.kvsa.de/admin/login"
