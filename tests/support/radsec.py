"""RADIUS over TLS counterparts for tests: a throw-away PKI made with the openssl
command, radsecproxy (Debian's) as the TLS client in front of flexnet, and a raw TLS
client for what no well-behaved proxy sends."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RADSEC_SECRET = b"radsec"


@dataclass(frozen=True)
class Identity:
    cert: Path
    key: Path

    def fingerprint(self) -> str:
        """As an operator reads it: ``sha256 Fingerprint=AB:CD:…``."""
        return _openssl("x509", "-in", str(self.cert), "-noout", "-fingerprint", "-sha256")


@dataclass(frozen=True)
class Pki:
    ca: Path
    server: Identity
    pinned: Identity  # the NAS's certificate, pinned in the tests
    unpinned: Identity  # same CA, pinned to no NAS
    stranger: Identity  # from another CA altogether


def _openssl(*args: str) -> str:
    result = subprocess.run(
        ["openssl", *args], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip()


def _ca(directory: Path, name: str) -> Identity:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
    _openssl(
        "req", "-x509", "-new", "-key", str(key), "-out", str(cert), "-days", "2",
        "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return Identity(cert, key)


def _issue(directory: Path, ca: Identity, name: str, *, server: bool) -> Identity:
    key, csr, cert = (directory / f"{name}{ext}" for ext in (".key", ".csr", ".pem"))
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
    _openssl("req", "-new", "-key", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    extensions = directory / f"{name}.ext"
    extensions.write_text(
        "basicConstraints=CA:FALSE\n"
        + (
            "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
            if server
            else "extendedKeyUsage=clientAuth\n"
        )
    )
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extensions),
    )  # fmt: skip
    return Identity(cert, key)


def make_pki(directory: Path) -> Pki:
    ca = _ca(directory, "flexnet-test-ca")
    other = _ca(directory, "other-ca")
    return Pki(
        ca=ca.cert,
        server=_issue(directory, ca, "flexnet-radius", server=True),
        pinned=_issue(directory, ca, "vpn-tls", server=False),
        unpinned=_issue(directory, ca, "vpn-unpinned", server=False),
        stranger=_issue(directory, other, "vpn-stranger", server=False),
    )


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Radsecproxy:
    udp_port: int  # radclient sends here, radsecproxy forwards over TLS
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextmanager
def radsecproxy(
    directory: Path, pki: Pki, identity: Identity, tls_port: int, udp_secret: str
) -> Iterator[Radsecproxy]:
    """radsecproxy in the foreground: UDP from 127.0.0.1 (``udp_secret``) in, TLS with
    ``identity`` to flexnet on ``tls_port`` out, for every realm, auth and accounting.
    ``StatusServer auto``: one Status-Server as the connection comes up; LogLevel 5
    logs its answer."""
    udp_port = free_udp_port()
    log = directory / f"radsecproxy-{udp_port}.log"  # in the foreground it logs to stderr
    config = directory / f"radsecproxy-{udp_port}.conf"
    config.write_text(
        f"""ListenUDP 127.0.0.1:{udp_port}
LogLevel 5
tls default {{
    CACertificateFile {pki.ca}
    CertificateFile {identity.cert}
    CertificateKeyFile {identity.key}
    TLSVersion TLS1_2:
}}
client 127.0.0.1 {{
    type udp
    secret {udp_secret}
}}
server flexnet {{
    host 127.0.0.1
    port {tls_port}
    type tls
    secret radsec
    StatusServer auto
}}
realm * {{
    server flexnet
    accountingServer flexnet
}}
"""
    )
    output = log.open("w")
    process = subprocess.Popen(
        ["radsecproxy", "-f", "-c", str(config), "-i", str(directory / f"rp-{udp_port}.pid")],
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    proxy = Radsecproxy(udp_port, log)
    try:
        deadline = time.monotonic() + 10
        while "listening for udp" not in proxy.log_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("radsecproxy did not start: " + proxy.log_text())
            time.sleep(0.05)
        yield proxy
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()


def client_context(pki: Pki, identity: Identity | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.check_hostname = False  # the server's name is not what is tested here
    if identity is not None:
        context.load_cert_chain(str(identity.cert), str(identity.key))
    return context


def exchange_tls(
    port: int, pki: Pki, identity: Identity | None, packets: list[bytes], timeout: float = 5.0
) -> list[bytes]:
    """Send ``packets`` on one TLS connection; the answers read until the server closes
    the connection, ``timeout`` passes, or there is one for each packet."""
    answers: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        try:
            with client_context(pki, identity).wrap_socket(raw) as tls:
                for packet in packets:
                    tls.sendall(packet)
                buffer = b""
                while len(answers) < len(packets):
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    buffer += chunk
                    while len(buffer) >= 4 and len(buffer) >= int.from_bytes(buffer[2:4], "big"):
                        length = int.from_bytes(buffer[2:4], "big")
                        answers.append(buffer[:length])
                        buffer = buffer[length:]
        except (ssl.SSLError, OSError):
            pass  # refused: the handshake fails or the server closes the connection
    return answers
