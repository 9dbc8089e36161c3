"""RADIUS over TLS (RFC 6614, "RadSec"): the same handler behind a TLS port.

Why: over UDP the shared secret is all that protects a packet (BlastRADIUS forged
answers with MD5 collisions); over TLS the NAS proves itself with a certificate and the
packets cannot be read or changed on the path. The server asks every client for a
certificate chained to the configured CA (TLS 1.2 or newer) and then serves it only if
its SHA-256 fingerprint is pinned to an enabled NAS (``flexnet nas set NAME
--tls-fingerprint …``): a certificate the CA issued to anyone else is not enough.

Framing (RFC 6613 § 2.6): a stream of RADIUS packets, each as long as its header says.
A length out of 20..4096 loses the framing: that connection (only that one) is closed.
A packet that is framed but wrong is dropped as on UDP and the connection stays. The
shared secret is "radsec" (RFC 6614 § 2.3), Message-Authenticator rules are those of
UDP, because the same ``RadiusHandler`` decides. One port serves Access-Request,
Accounting-Request and Status-Server (answered with Access-Accept). Errors are silence.

The work runs on the server's thread pool under its ``max_pending`` bound; each
connection has at most ``max_in_flight`` packets being decided (it is not read further
until one is answered), the server at most ``max_connections`` connections, each closed
after ``idle_seconds`` without a packet.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from flexnet import metrics
from flexnet.clients import nas
from flexnet.db import UNAVAILABLE, describe_error
from flexnet.radius.droplog import DropLog
from flexnet.radius.handler import RadiusHandler
from flexnet.radius.packets import HEADER, MAX_PACKET, Port
from flexnet.radius.sockets import tcp_socket

log = logging.getLogger(__name__)

RADSEC_SECRET = b"radsec"  # RFC 6614 § 2.3: the shared secret over TLS
ACCESS_REQUEST, ACCOUNTING_REQUEST, STATUS_SERVER = 1, 4, 12
_PORTS = {ACCESS_REQUEST: Port.AUTH, ACCOUNTING_REQUEST: Port.ACCT, STATUS_SERVER: Port.AUTH}
T = TypeVar("T")


class Offload(Protocol):
    """``RadiusServer.offload``: a job on the pool, or None when overloaded."""

    def __call__(self, job: Callable[[], T]) -> Awaitable[T] | None: ...


@dataclass(frozen=True)
class TlsConfig:
    """What ``flexnet radius --tls-port …`` was given (file paths, not their contents)."""

    port: int
    cert: str  # the server certificate (PEM, chain after it)
    key: str  # its private key (PEM)
    ca: str  # the CA(s) the NAS client certificates must chain to (PEM)
    max_connections: int = 256
    max_in_flight: int = 32  # per connection
    idle_seconds: float = 300.0
    handshake_seconds: float = 10.0


def server_context(config: TlsConfig) -> ssl.SSLContext:
    """Mutual TLS, 1.2 or newer; raises (at start, not per connection) if a file is bad."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(config.cert, config.key)
    context.load_verify_locations(cafile=config.ca)
    return context


def fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate, as ``nas.parse_fingerprint`` stores it."""
    return hashlib.sha256(der).hexdigest()


class _Gone(Exception):
    """The NAS of this connection is no longer enabled or no longer pins the certificate."""


class TlsListener:
    def __init__(
        self,
        handler: RadiusHandler,
        config: TlsConfig,
        offload: Offload,
        *,
        unmapped: Callable[[str], str],
    ) -> None:
        self.handler = handler
        self.config = config
        self._offload = offload
        self._unmapped = unmapped
        self._context = server_context(config)
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()
        self.drops = DropLog(log)

    async def start(self, addresses: tuple[str, ...], *, reuse_port: bool) -> int:
        """Listen on every address, on one port (0: the first free one); returns it."""
        port = self.config.port
        for address in addresses:
            sock = tcp_socket(address, port, reuse_port=reuse_port)
            server = await asyncio.start_server(self._accept, sock=sock, limit=MAX_PACKET * 2)
            port = sock.getsockname()[1]
            self._servers.append(server)
        return port

    async def close(self) -> None:
        """No new connections; the open ones end (the caller let in-flight work finish)."""
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(self._connections, timeout=5)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = self._unmapped(str(writer.get_extra_info("peername")[0]))
        if len(self._connections) >= self.config.max_connections:
            metrics.dropped("overloaded")
            self.drops.warning("full", "RADIUS/TLS: connection from %s refused: too many", host)
            writer.close()
            return
        task = asyncio.current_task()  # start_server runs each connection as a task
        if task is not None:
            self._connections.add(task)
        try:
            await self._connection(reader, writer, host)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("RADIUS/TLS: connection from %s ended by an error", host)
        finally:
            writer.close()
            try:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 2)
            finally:  # only now: close() waits for the connections it still holds
                if task is not None:
                    self._connections.discard(task)

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str
    ) -> None:
        try:
            await writer.start_tls(
                self._context, ssl_handshake_timeout=self.config.handshake_seconds
            )
        except (OSError, ssl.SSLError, TimeoutError, EOFError) as error:
            reason = getattr(error, "reason", None) or type(error).__name__
            metrics.dropped("tls_connection_refused")
            self.drops.warning(
                (host, "handshake", reason),
                "RADIUS/TLS: handshake with %s failed (%s): connection closed",
                host,
                reason,
            )
            return
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:  # CERT_REQUIRED makes this impossible; fail closed all the same
            return
        pinned = fingerprint(der)
        lookup = self._offload(lambda: self._client(pinned))
        if lookup is None:
            log.warning("overloaded or stopping: TLS connection from %s closed", host)
            return
        try:
            client = await lookup
        except UNAVAILABLE as error:  # no NAS list loaded yet and the database away
            metrics.dropped("database_unavailable")
            self.drops.warning(
                (host, "lookup"),
                "RADIUS/TLS: connection from %s closed: database unavailable (%s)",
                host,
                describe_error(error),
            )
            return
        if client is None:
            metrics.dropped("tls_connection_refused")
            self.drops.warning(
                (host, pinned),
                "RADIUS/TLS: connection from %s closed: its certificate (SHA-256 %s) is "
                "pinned to no enabled NAS (`flexnet nas set NAME --tls-fingerprint %s`)",
                host,
                pinned,
                pinned,
            )
            return
        peer = writer.get_extra_info("peername")
        log.info(
            "RADIUS/TLS: connection from NAS %s (%s), certificate %s", client.name, host, pinned
        )
        await self._packets(reader, writer, (host, int(peer[1])), pinned)

    def _client(self, pinned: str) -> nas.NasEntry | None:
        """The NAS of this certificate, with the RADIUS over TLS secret (pool thread)."""
        client = self.handler.client_for_certificate(pinned)
        if client is None:
            return None
        return dataclasses.replace(client, secret=RADSEC_SECRET)

    async def _packets(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        source: tuple[str, int],
        pinned: str,
    ) -> None:
        slots = asyncio.Semaphore(self.config.max_in_flight)
        pending: set[asyncio.Task[None]] = set()
        try:
            while True:
                data = await self._read_packet(reader, source[0])
                if data is None:
                    break
                await slots.acquire()  # at most max_in_flight; the NAS waits meanwhile
                task = asyncio.create_task(self._answer(data, writer, source, pinned))
                pending.add(task)
                task.add_done_callback(pending.discard)
                task.add_done_callback(lambda _: slots.release())
            if pending:  # the peer stopped sending: what it asked still gets its answer
                await asyncio.wait(pending, timeout=self.config.idle_seconds)
        finally:
            for task in pending:
                task.cancel()

    async def _read_packet(self, reader: asyncio.StreamReader, host: str) -> bytes | None:
        """The next whole packet, or None when the connection is to end."""
        idle = self.config.idle_seconds
        try:
            header = await asyncio.wait_for(reader.readexactly(4), idle)
            length = int.from_bytes(header[2:4], "big")
            if not HEADER <= length <= MAX_PACKET:
                metrics.dropped("malformed")
                self.drops.warning(
                    (host, "framing"),
                    "RADIUS/TLS: length field %d from %s out of range: connection closed",
                    length,
                    host,
                )
                return None
            return header + await asyncio.wait_for(reader.readexactly(length - 4), idle)
        except TimeoutError:
            log.info("RADIUS/TLS: connection from %s idle, closed", host)
        except asyncio.IncompleteReadError:
            pass  # the peer closed the connection
        except (OSError, ssl.SSLError) as error:
            log.info("RADIUS/TLS: connection from %s ended: %s", host, error)
        return None

    async def _answer(
        self, data: bytes, writer: asyncio.StreamWriter, source: tuple[str, int], pinned: str
    ) -> None:
        port = _PORTS.get(data[0])
        if port is None:
            metrics.dropped("malformed")
            self.drops.warning(
                (source[0], "code", data[0]),
                "RADIUS/TLS: code %d from %s is not served: dropped",
                data[0],
                source[0],
            )
            return
        job = self._offload(lambda: self._decide(data, source, port, pinned))
        if job is None:
            log.warning("overloaded: dropping a packet from %s (TLS)", source[0])
            return
        try:
            reply = await job
        except _Gone:
            metrics.dropped("tls_connection_refused")
            self.drops.warning(
                (source[0], pinned),
                "RADIUS/TLS: certificate %s from %s no longer pinned to an enabled NAS: "
                "connection closed",
                pinned,
                source[0],
            )
            writer.close()
            return
        except Exception:
            log.exception("handler failed on a TLS packet from %s; no answer sent", source[0])
            return
        if reply is None or writer.is_closing():
            return
        writer.write(reply)
        try:
            await asyncio.wait_for(writer.drain(), self.config.idle_seconds)
        except (OSError, TimeoutError):
            writer.close()  # the peer reads nothing: it gets nothing more

    def _decide(
        self, data: bytes, source: tuple[str, int], port: Port, pinned: str
    ) -> bytes | None:
        """In a pool thread: the NAS looked up again (it may have been disabled or
        unpinned since the connection opened), then the handler's answer."""
        client = self._client(pinned)
        if client is None:
            raise _Gone
        return self.handler.handle_from(client, data, source, port)
