"""ocserv (OpenConnect VPN server) in a private network namespace, and the openconnect
client in the root namespace: the concentrator and the client that nobody here wrote.

ocserv reaches flexnet through a veth pair (``HOST_ADDRESS`` in the root namespace,
``OCSERV_ADDRESS`` inside), authenticates and accounts with radcli exactly as an
operator configures it, and gives openconnect a TUN device of its own. Everything
here is a real process; nothing answers in their place.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NAMESPACE = "flexnet-interop"
HOST_LINK, OCSERV_LINK = "fxio-host", "fxio-ocserv"
HOST_ADDRESS, OCSERV_ADDRESS = "10.231.18.1", "10.231.18.2"
VPN_PORT = 4443
START_SECONDS = 20.0


def run(*command: str) -> str:
    """Run a set-up command; its output, or an AssertionError naming what failed."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


@contextmanager
def network_namespace() -> Iterator[str]:
    """A private namespace joined to the root one by a veth pair (10.231.18.0/24); removed
    at the end, with the pair. A namespace left over from an aborted run is removed first."""
    if NAMESPACE in run("ip", "netns", "list"):
        run("ip", "netns", "delete", NAMESPACE)
    run("ip", "netns", "add", NAMESPACE)
    try:
        run("ip", "link", "add", HOST_LINK, "type", "veth", "peer", "name", OCSERV_LINK)
        run("ip", "link", "set", OCSERV_LINK, "netns", NAMESPACE)
        run("ip", "address", "add", f"{HOST_ADDRESS}/24", "dev", HOST_LINK)
        run("ip", "link", "set", HOST_LINK, "up")
        inside = ("ip", "netns", "exec", NAMESPACE, "ip")
        run(*inside, "address", "add", f"{OCSERV_ADDRESS}/24", "dev", OCSERV_LINK)
        run(*inside, "link", "set", OCSERV_LINK, "up")
        run(*inside, "link", "set", "lo", "up")
        yield NAMESPACE
    finally:
        subprocess.run(["ip", "netns", "delete", NAMESPACE], capture_output=True, check=False)
        subprocess.run(["ip", "link", "delete", HOST_LINK], capture_output=True, check=False)


@dataclass(frozen=True)
class ServerCertificate:
    """A self-signed certificate and key (PEM files) and openconnect's pin for it."""

    cert: Path
    key: Path
    pin: str  # "pin-sha256:<base64 of the SHA-256 of the SubjectPublicKeyInfo>"


def self_signed_certificate(directory: Path) -> ServerCertificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocserv.interop.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("ocserv.interop.test")]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server-cert.pem", directory / "server-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pin = "pin-sha256:" + base64.b64encode(hashlib.sha256(spki).digest()).decode()
    return ServerCertificate(cert_path, key_path, pin)


def radcli_config(directory: Path, *, auth_port: int, acct_port: int, secret: str) -> Path:
    """radcli's client configuration and servers file: flexnet on the host side of the
    veth pair. radcli 1.2 sends no Message-Authenticator (the NAS entry must allow it)."""
    servers = directory / "radcli-servers"
    servers.write_text(f"{HOST_ADDRESS}\t{secret}\n")
    servers.chmod(0o600)
    config = directory / "radcli.conf"
    config.write_text(
        f"authserver\t{HOST_ADDRESS}:{auth_port}\n"
        f"acctserver\t{HOST_ADDRESS}:{acct_port}\n"
        f"servers\t\t{servers}\n"
        "dictionary\t/etc/radcli/dictionary\n"
        "default_realm\n"
        "radius_timeout\t5\n"
        "radius_retries\t1\n"
        "bindaddr\t*\n"
        "nas-identifier\tocserv-interop\n"
    )
    return config


def ocserv_config(directory: Path, radcli: Path, certificate: ServerCertificate) -> Path:
    """The ocserv.conf an operator writes for flexnet: RADIUS authentication with the
    group from Class (``groupconfig``), RADIUS accounting, no DTLS (TCP is enough here)."""
    config = directory / "ocserv.conf"
    lines = [
        f'auth = "radius[config={radcli},groupconfig=true]"',
        f'acct = "radius[config={radcli}]"',
        "stats-report-time = 360",
        f"listen-host = {OCSERV_ADDRESS}",
        f"tcp-port = {VPN_PORT}",
        "run-as-user = nobody",
        "run-as-group = nogroup",
        f"socket-file = {directory / 'ocserv.socket'}",
        f"server-cert = {certificate.cert}",
        f"server-key = {certificate.key}",
        "isolate-workers = false",
        "max-clients = 16",
        "max-same-clients = 0",
        "keepalive = 32400",
        "dpd = 90",
        "mobile-dpd = 1800",
        "try-mtu-discovery = false",
        "auth-timeout = 240",
        "min-reauth-time = 1",
        "max-ban-score = 0",
        "cookie-timeout = 300",
        "deny-roaming = false",
        "rekey-time = 172800",
        "rekey-method = ssl",
        "use-occtl = true",
        f"pid-file = {directory / 'ocserv.pid'}",
        "log-level = 2",
        "device = fxvpn",
        "predictable-ips = true",
        "ipv4-network = 192.168.231.0/24",
        "ping-leases = false",
        "cisco-client-compat = true",
    ]
    config.write_text("\n".join(lines) + "\n")
    return config


@dataclass
class Ocserv:
    """ocserv running in the namespace, its log in a file."""

    config: Path
    log_path: Path
    certificate: ServerCertificate
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"https://{OCSERV_ADDRESS}:{VPN_PORT}/"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        command = ["ip", "netns", "exec", NAMESPACE, "ocserv", "--foreground", "-d", "3"]
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [*command, "--config", str(self.config)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_SECONDS
        while not _listening(OCSERV_ADDRESS, VPN_PORT):
            if self.process.poll() is not None:
                raise AssertionError(f"ocserv exited at start:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"ocserv not listening in time:\n{self.log()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def _listening(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((address, port)) == 0


@contextmanager
def running_ocserv(
    directory: Path, *, auth_port: int, acct_port: int, secret: str
) -> Iterator[Ocserv]:
    """ocserv in the namespace (which must exist), pointed at flexnet's ports; stopped at
    the end. Its files live in a directory the unprivileged workers (nobody) can enter."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    certificate = self_signed_certificate(directory)
    radcli = radcli_config(directory, auth_port=auth_port, acct_port=acct_port, secret=secret)
    server = Ocserv(
        ocserv_config(directory, radcli, certificate), directory / "ocserv.log", certificate
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


# --- the openconnect client -----------------------------------------------------------

# Routes and DNS are not the point here: the tunnel device is only brought up (so that
# packets ocserv sends, e.g. IPv6 router advertisements, can be written to it).
VPNC_SCRIPT = """#!/bin/sh
if [ "$reason" = connect ]; then
    ip link set dev "$TUNDEV" up
fi
exit 0
"""


def vpnc_script(directory: Path) -> Path:
    """A vpnc-script that only brings the tunnel device up and succeeds in every phase
    (``/bin/true`` would leave the device down: openconnect then fails to write to it)."""
    script = directory / "vpnc-script"
    script.write_text(VPNC_SCRIPT)
    script.chmod(0o755)
    return script


@dataclass
class Client:
    """One openconnect process and its output (stdout and stderr in one file)."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_connected(self, timeout: float = 30.0) -> None:
        """Until openconnect says the tunnel is configured (ocserv gave it an address)."""
        deadline = time.monotonic() + timeout
        while "Configured as " not in self.log():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"openconnect exited ({self.process.returncode}):\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"openconnect not connected in time:\n{self.log()}")
            time.sleep(0.1)

    def wait(self, timeout: float = 60.0) -> int:
        return self.process.wait(timeout=timeout)

    def log_out(self) -> int:
        """SIGINT: openconnect logs the session out (ocserv then sends Accounting-Stop)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class Openconnect:
    """openconnect in the root namespace against one ocserv, pinned to its certificate."""

    server: Ocserv
    directory: Path
    started: list[Client] = field(default_factory=list)
    script: Path = field(init=False)

    def __post_init__(self) -> None:
        self.script = vpnc_script(self.directory)

    def _base(self) -> list[str]:
        return [
            "openconnect",
            "--protocol=anyconnect",
            f"--servercert={self.server.certificate.pin}",
            "--no-dtls",
            f"--script={self.script}",
        ]

    def kill_all(self) -> None:
        """At the end of a test: no openconnect outlives it, whatever failed."""
        for client in self.started:
            client.kill()

    def _start(self, arguments: list[str], answers: str) -> Client:
        number = len(self.started) + 1
        log_path = self.directory / f"openconnect-{number}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [*self._base(), f"--interface=fxoc{number}", *arguments],
                stdin=subprocess.PIPE,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        assert process.stdin is not None
        process.stdin.write(answers.encode())
        process.stdin.close()
        client = Client(process, log_path)
        self.started.append(client)
        return client

    def connect(self, username: str, *answers: str) -> Client:
        """Log in with the answers on stdin, one a line (the password field first, then
        each challenge's), and stay connected."""
        arguments = [f"--user={username}", "--passwd-on-stdin", self.server.url]
        return self._start(arguments, "".join(f"{answer}\n" for answer in answers))

    def authenticate(self, username: str, *answers: str) -> dict[str, str]:
        """Log in without connecting; what ``--authenticate`` prints (COOKIE, HOST, …)."""
        arguments = [f"--user={username}", "--passwd-on-stdin", "--authenticate", self.server.url]
        client = self._start(arguments, "".join(f"{answer}\n" for answer in answers))
        code = client.wait()
        assert code == 0, client.log()
        printed = {}
        for line in client.log().splitlines():
            name, sep, value = line.partition("=")
            if sep and name.isupper():
                printed[name] = value.strip("'")
        assert "COOKIE" in printed, client.log()
        return printed

    def connect_with_cookie(self, cookie: str) -> Client:
        """Connect with a session cookie from earlier (no RADIUS authentication)."""
        return self._start(["--cookie-on-stdin", self.server.url], f"{cookie}\n")


def tools_present() -> None:
    """The Debian packages make interop installs; a clear message when one is missing."""
    for tool in ("ocserv", "openconnect", "ip"):
        assert shutil.which(tool), f"{tool} fehlt: make interop installiert ocserv und openconnect"
    assert Path("/dev/net/tun").exists(), "/dev/net/tun fehlt: openconnect braucht ein TUN-Gerät"
    assert os.geteuid() == 0, "make interop braucht root (Netzwerk-Namensraum, TUN-Gerät)"


def scratch_directory() -> Path:
    """A directory the unprivileged ocserv workers can enter (pytest's tmp is 0700)."""
    return Path(tempfile.mkdtemp(prefix="flexnet-interop-", dir="/tmp"))
