"""The thin UDP loop around :class:`RadiusHandler`.

asyncio receives datagrams and the handler decides in the loop what needs neither the
database nor a hash (a malformed packet, an unknown NAS, a retransmission, an OTP the
fast path refuses: microseconds, no thread hand-off). The rest goes to a bounded thread
pool, because argon2 releases the GIL while it hashes and database calls block. When
too many requests are waiting, new ones are dropped (the NAS retries or fails over)
instead of queueing without bound. SIGINT/SIGTERM stop receiving, finish what is in
flight, then exit.
Several such processes can serve one port (``Listen.reuse_port``, see ``workers``).
With ``Listen.tls`` the same loop and pool also serve RADIUS over TLS (``tls``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flexnet import metrics
from flexnet.radius.disconnect import DisconnectDispatcher
from flexnet.radius.handler import Later, RadiusHandler
from flexnet.radius.packets import Port
from flexnet.radius.sockets import udp_socket
from flexnet.radius.tls import TlsConfig, TlsListener

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Listen:
    bind: str = "127.0.0.1"  # "::" serves IPv6 and IPv4 (dual stack)
    auth_port: int = 1812
    acct_port: int = 1813
    threads: int = 2 * (os.cpu_count() or 1) + 2
    max_pending: int = 512
    grace_seconds: float = 10.0
    reuse_port: bool = False  # SO_REUSEPORT: worker processes share the ports
    announce: str = "RADIUS listening"  # the log line that says the ports are served
    also: tuple[str, ...] = ()  # further addresses (several --bind), on the same ports
    tls: TlsConfig | None = None  # RADIUS over TLS on its own port, same addresses

    @property
    def addresses(self) -> tuple[str, ...]:
        return (self.bind, *self.also)


def unmapped(host: str) -> str:
    """An IPv4-mapped IPv6 source (``::ffff:192.0.2.1``, from a dual-stack socket) as the
    IPv4 address it is; any other address as it came. Once, at the edge: the NAS match,
    the logs, the failure counters and the sessions all see the IPv4 address."""
    if not host.startswith("::ffff:"):
        return host
    try:
        mapped = ipaddress.IPv6Address(host).ipv4_mapped
    except ValueError:
        return host
    return host if mapped is None else str(mapped)


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, server: RadiusServer, port: Port) -> None:
        self.server = server
        self.port = port
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # a UDP endpoint

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.server.submit(self, data, (unmapped(str(addr[0])), int(str(addr[1]))), addr)

    def error_received(self, exc: Exception) -> None:
        log.warning("socket error on the %s port: %s", self.port.value, exc)


class RadiusServer:
    def __init__(
        self,
        handler: RadiusHandler,
        listen: Listen,
        dispatcher: DisconnectDispatcher | None = None,
        *,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.handler = handler
        self.listen = listen
        self.dispatcher = dispatcher
        self.on_ready = on_ready
        self._pool = ThreadPoolExecutor(listen.threads, thread_name_prefix="radius")
        self._pending = 0
        self._stopping = False
        self._pending_lock = threading.Lock()
        self._in_flight: set[Future[Any]] = set()
        self.ready = threading.Event()
        self.bound: dict[Port, int] = {}
        self.tls_port: int | None = None  # bound RADIUS over TLS port, if served

    def submit(
        self,
        endpoint: _Endpoint,
        data: bytes,
        source: tuple[str, int],
        addr: tuple[str | object, ...],
    ) -> None:
        # Only the loop adds to _pending, so a room seen here is still there below.
        with self._pending_lock:
            if self._stopping:
                return
            if self._pending >= self.listen.max_pending:
                metrics.dropped("overloaded")
                log.warning("overloaded: dropping a packet from %s", source[0])
                return
        outcome = self.handler.receive(data, source, endpoint.port)
        if not isinstance(outcome, Later):
            if outcome is not None and endpoint.transport is not None:
                endpoint.transport.sendto(outcome, addr)
            return
        with self._pending_lock:
            self._pending += 1
        future = self._pool.submit(outcome.run)
        self._in_flight.add(future)
        loop = asyncio.get_running_loop()

        def done(finished: Future[bytes | None]) -> None:
            loop.call_soon_threadsafe(self._send, endpoint, finished, addr)

        future.add_done_callback(done)

    def offload(self, job: Callable[[], T]) -> Awaitable[T] | None:
        """Run ``job`` on the pool under the same ``max_pending`` bound as a datagram (for
        RADIUS over TLS); None when overloaded or stopping. Called in the loop."""
        with self._pending_lock:
            if self._stopping or self._pending >= self.listen.max_pending:
                return None
            self._pending += 1
        future = self._pool.submit(job)
        self._in_flight.add(future)
        loop = asyncio.get_running_loop()

        def done(finished: Future[T]) -> None:
            with self._pending_lock:
                self._pending -= 1
            loop.call_soon_threadsafe(self._in_flight.discard, finished)

        future.add_done_callback(done)
        return asyncio.wrap_future(future, loop=loop)

    def _send(
        self, endpoint: _Endpoint, finished: Future[bytes | None], addr: tuple[str | object, ...]
    ) -> None:
        with self._pending_lock:
            self._pending -= 1
        self._in_flight.discard(finished)
        try:
            reply = finished.result()
        except Exception:
            log.exception("handler failed; no answer sent")
            return
        if reply is not None and endpoint.transport is not None:
            endpoint.transport.sendto(reply, addr)

    async def serve(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        endpoints = []
        for port, number in (
            (Port.AUTH, self.listen.auth_port),
            (Port.ACCT, self.listen.acct_port),
        ):
            for address in self.listen.addresses:
                sock = udp_socket(address, number, reuse_port=self.listen.reuse_port)
                transport, endpoint = await loop.create_datagram_endpoint(
                    lambda port=port: _Endpoint(self, port),  # type: ignore[misc]
                    sock=sock,
                )
                number = transport.get_extra_info("sockname")[1]  # port 0: one for all
                endpoints.append((transport, endpoint))
            self.bound[port] = number
        tls = None
        if self.listen.tls is not None:
            tls = TlsListener(self.handler, self.listen.tls, self.offload, unmapped=unmapped)
            self.tls_port = await tls.start(
                self.listen.addresses, reuse_port=self.listen.reuse_port
            )
        if self.dispatcher is not None:
            self.dispatcher.start()
        log.info(
            "%s on %s, auth %d, acct %d%s",
            self.listen.announce,
            " ".join(self.listen.addresses),
            self.bound[Port.AUTH],
            self.bound[Port.ACCT],
            "" if self.tls_port is None else f", tls {self.tls_port}",
        )
        self.ready.set()
        if self.on_ready is not None:
            self.on_ready()
        await stop.wait()
        log.info("stopping: no new requests, finishing %d in flight", len(self._in_flight))
        with self._pending_lock:
            self._stopping = True  # answers still go out; new requests are ignored
        deadline = loop.time() + self.listen.grace_seconds
        while self._in_flight and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for transport, _ in endpoints:
            transport.close()
        if tls is not None:
            await tls.close()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.handler.close()

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM (main thread only)."""

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await self.serve(stop)

        asyncio.run(main())
