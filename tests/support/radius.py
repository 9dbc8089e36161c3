"""A RADIUS server on free loopback ports for tests, and clients to talk to it."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyrad import packet as rp
from pyrad.client import Client as RadClient
from pyrad.client import Timeout

from flexnet.radius.handler import RadiusHandler
from flexnet.radius.packets import Port, load_dictionary
from flexnet.radius.server import Listen, RadiusServer
from flexnet.radius.tls import TlsConfig

SECRET = b"test-nas-secret-0123456789"


def encoded_access_request(
    username: str, password: str | None, *, secret: bytes = SECRET, identifier: int | None = None
) -> bytes:
    """A PAP Access-Request with Message-Authenticator, ready to send (without
    User-Password if ``password`` is None)."""
    request = rp.AuthPacket(
        code=rp.AccessRequest,
        id=identifier,
        secret=secret,
        dict=load_dictionary(),
        User_Name=username,
    )
    if password is not None:
        request["User-Password"] = request.PwCrypt(password)
    request.add_message_authenticator()
    return bytes(request.RequestPacket())


@dataclass
class RunningRadius:
    server: RadiusServer
    auth_port: int
    acct_port: int
    tls_port: int | None = None

    def client(self, *, timeout: float = 2.0, retries: int = 1) -> RadClient:
        client = RadClient(
            server="127.0.0.1",
            authport=self.auth_port,
            acctport=self.acct_port,
            secret=SECRET,
            dict=self.server.handler.dictionary,
        )
        client.timeout = timeout
        client.retries = retries
        return client

    def access_request(
        self,
        username: str,
        password: str | None,
        *,
        state: bytes | None = None,
        message_authenticator: bool = True,
        **attributes: object,
    ) -> rp.AuthPacket:
        client = self.client()
        request = client.CreateAuthPacket(
            code=rp.AccessRequest, User_Name=username, message_authenticator=message_authenticator
        )
        if password is not None:
            request["User-Password"] = request.PwCrypt(password)
        if state is not None:
            request["State"] = state
        for name, value in attributes.items():
            request[name.replace("_", "-")] = value
        return request

    def send(self, request: rp.Packet, *, timeout: float = 5.0) -> rp.Packet | None:
        """The reply, or None if the server stayed silent. A NAS waits seconds for an
        answer; so does this (a loaded test machine hashes slowly). Tests that expect
        silence pass a short ``timeout``."""
        client = self.client(timeout=timeout)
        try:
            return client.SendPacket(request)
        except Timeout:
            return None
        finally:
            client._CloseSocket()  # pyrad keeps its socket open otherwise

    def send_raw(
        self, data: bytes, *, source: str = "127.0.0.1", port: str = "auth", timeout: float = 1.0
    ) -> bytes | None:
        target = self.auth_port if port == "auth" else self.acct_port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((source, 0))
            sock.settimeout(timeout)
            sock.sendto(data, ("127.0.0.1", target))
            try:
                return sock.recv(4096)
            except TimeoutError:
                return None

    def retransmit(
        self, data: bytes, *, times: int = 2, timeout: float = 2.0
    ) -> list[bytes | None]:
        """Send the same datagram several times from one socket, as a NAS retransmits."""
        replies: list[bytes | None] = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(timeout)
            for _ in range(times):
                sock.sendto(data, ("127.0.0.1", self.auth_port))
                try:
                    replies.append(sock.recv(4096))
                except TimeoutError:
                    replies.append(None)
        return replies

    def radclient(self, attributes: str, *, command: str = "auth") -> str:
        port = self.auth_port if command == "auth" else self.acct_port
        result = subprocess.run(
            [
                "radclient",
                "-x",
                "-r",
                "1",
                "-t",
                "3",
                f"127.0.0.1:{port}",
                command,
                SECRET.decode(),
            ],
            input=attributes,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return result.stdout + result.stderr


@contextmanager
def running(
    handler: RadiusHandler, *, tls: TlsConfig | None = None, threads: int = 4
) -> Iterator[RunningRadius]:
    server = RadiusServer(handler, Listen("127.0.0.1", 0, 0, threads=threads, tls=tls))
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve(stop))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    if not server.ready.wait(10):
        raise RuntimeError("RADIUS server did not start")
    try:
        yield RunningRadius(
            server, server.bound[Port.AUTH], server.bound[Port.ACCT], server.tls_port
        )
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        loop.close()


class FakeNas:
    """(A real UDP peer, not a mock: it parses and answers with pyrad.)"""

    """A NAS that answers Disconnect-Requests (RFC 5176) with ACK and remembers them."""

    def __init__(self, dictionary: object) -> None:
        self.dictionary = dictionary
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[rp.CoAPacket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            request = rp.CoAPacket(packet=data, secret=SECRET, dict=self.dictionary)
            if not request.VerifyCoARequest():
                continue
            self.received.append(request)
            self.sock.sendto(request.CreateReply().ReplyPacket(), addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
