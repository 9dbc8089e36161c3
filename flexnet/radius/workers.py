"""One RADIUS port served by several worker processes, so that every core answers.

Each worker is a whole RADIUS server (handler, thread pool, fast path, reject log)
that binds the same ports with ``SO_REUSEPORT``. Linux then hands each datagram to one
worker by a hash of its source and destination address and port, so all datagrams of
one NAS socket, retransmissions included, reach the same worker and its duplicate
cache. What must hold across workers is in the database, as it must across nodes: OTP
counters (one conditional UPDATE decides), failure counts, challenges.

The parent only supervises: it holds the ports while the workers start (so that port 0
resolves to one port for all), says ``RADIUS listening`` once all of them serve,
restarts a worker that dies, and on SIGTERM/SIGINT stops them, each finishing what it
has in flight. A worker dies with its parent (``PR_SET_PDEATHSIG``): a parent killed
outright leaves no worker answering behind it.

With ``--metrics`` the parent serves one endpoint for all workers: they write their
counters to files in a private directory the parent creates and removes at the end
(prometheus_client's multiprocess mode), and the parent adds them up per scrape. A
restarted worker's predecessor still counts, so counters never go back.

RADIUS over TLS is served by every worker too: each listens on the TLS port with
``SO_REUSEPORT`` and Linux spreads the connections over them (a connection, and so a
NAS's packets on it, stays with one worker). A NAS usually holds one long connection,
so the spread is per NAS, not per packet; but the logins of a TLS NAS are then not
held up behind one process while the other cores idle, and a worker that dies takes
only its own connections along (the NAS reconnects to another).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from flexnet import metrics
from flexnet.config import Settings, load_settings
from flexnet.db import Database
from flexnet.ops import logsetup
from flexnet.otp.remote import RemoteValidator
from flexnet.radius.disconnect import DisconnectDispatcher
from flexnet.radius.handler import RadiusHandler
from flexnet.radius.server import Listen, RadiusServer
from flexnet.radius.sockets import tcp_socket, udp_socket

log = logging.getLogger(__name__)

START_SECONDS = 60.0
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client when imported
RESTART_DELAY_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1


def build_server(settings: Settings, listen: Listen, *, dispatch: bool = True) -> RadiusServer:
    """A RADIUS server on a database of its own: a request waits for locks no longer
    than the NAS waits for its answer (``FLEXNET_RADIUS_DB_TIMEOUT_MS``)."""
    database = Database.from_url(settings.database_url, timeout_ms=settings.radius_db_timeout_ms)
    handler = RadiusHandler(database, settings, remote=RemoteValidator.from_settings(settings.otp))
    dispatcher = (
        DisconnectDispatcher(database, handler.box, handler.dictionary) if dispatch else None
    )
    return RadiusServer(handler, listen, dispatcher)


def serve(
    settings: Settings,
    listen: Listen,
    workers: int,
    *,
    metrics_address: tuple[str, int] | None = None,
) -> None:
    """Serve ``listen`` with ``workers`` processes (one: in this process) until stopped;
    with ``metrics_address``, the Prometheus metrics of all of them there."""
    if workers <= 1:
        endpoint = metrics.Endpoint(metrics_address) if metrics_address else None
        try:
            server = build_server(settings, listen)
            try:
                server.run()
            finally:
                server.handler.database.dispose()
        finally:
            if endpoint is not None:
                endpoint.close()
        return
    with _workers_metrics(metrics_address):
        Supervisor(listen, workers).run()


@contextlib.contextmanager
def _workers_metrics(address: tuple[str, int] | None) -> Iterator[None]:
    """The endpoint that adds up the workers' metrics files (none without an address).
    Workers started inside inherit the directory through their environment."""
    if address is None:
        yield
        return
    directory = tempfile.mkdtemp(prefix="flexnet-radius-metrics-")  # mode 0700
    previous = os.environ.get(MULTIPROC_DIR)
    os.environ[MULTIPROC_DIR] = directory
    try:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        endpoint = metrics.Endpoint(address, registry)
        try:
            yield
        finally:
            endpoint.close()
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_DIR, None)
        else:
            os.environ[MULTIPROC_DIR] = previous
        shutil.rmtree(directory, ignore_errors=True)


class Supervisor:
    """The parent of the worker processes (see the module's docstring)."""

    def __init__(self, listen: Listen, workers: int) -> None:
        self.listen = listen
        self.count = workers
        self._context = multiprocessing.get_context("spawn")
        self._ready: Queue[int] = self._context.Queue()
        self._stop = threading.Event()

    def run(self) -> None:
        holders = self._hold_ports()
        ports = [holder.getsockname()[1] for holder in holders]
        listen = replace(self.listen, auth_port=ports[0], acct_port=ports[1], reuse_port=True)
        if listen.tls is not None:  # bound, never listening: it takes no connection
            holders.append(tcp_socket(listen.bind, listen.tls.port, reuse_port=True))
            listen = replace(listen, tls=replace(listen.tls, port=holders[-1].getsockname()[1]))
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())
        processes = [self._start(listen, n) for n in range(self.count)]
        try:
            self._await_ready(processes)
        finally:
            for holder in holders:  # from now on only the workers receive
                holder.close()
        log.info(
            "RADIUS listening on %s, auth %d, acct %d%s (%d worker processes)",
            " ".join(listen.addresses),
            ports[0],
            ports[1],
            "" if listen.tls is None else f", tls {listen.tls.port}",
            self.count,
        )
        while not self._stop.wait(0.2):
            for n, process in enumerate(processes):
                if not process.is_alive() and not self._stop.is_set():
                    log.error(
                        "RADIUS worker %d (pid %s) ended with %s; starting it again",
                        n,
                        process.pid,
                        process.exitcode,
                    )
                    time.sleep(RESTART_DELAY_SECONDS)
                    processes[n] = self._start(listen, n)
        self._shut_down(processes)

    def _hold_ports(self) -> list[socket.socket]:
        """The first two hold the auth and accounting port of the first address (port 0
        resolved), the others the same numbers on the further addresses."""
        holders = []
        for number in (self.listen.auth_port, self.listen.acct_port):
            holders.append(udp_socket(self.listen.bind, number, reuse_port=True))
        for number in [holder.getsockname()[1] for holder in holders]:
            for address in self.listen.also:
                holders.append(udp_socket(address, number, reuse_port=True))
        return holders

    def _start(self, listen: Listen, index: int) -> BaseProcess:
        process = self._context.Process(
            target=_worker,
            args=(listen, index, self._ready, os.getpid()),
            name=f"radius-worker-{index}",
        )
        process.start()
        return process

    def _await_ready(self, processes: list[BaseProcess]) -> None:
        deadline = time.monotonic() + START_SECONDS
        waiting = set(range(len(processes)))
        while waiting:
            if time.monotonic() > deadline or self._stop.is_set():
                self._shut_down(processes)
                raise RuntimeError("RADIUS workers did not start")
            with contextlib.suppress(queue.Empty):  # then look at the workers again
                waiting.discard(self._ready.get(timeout=0.2))
            dead = [n for n in waiting if not processes[n].is_alive()]
            if dead:
                self._shut_down(processes)
                raise RuntimeError(f"RADIUS worker {dead[0]} ended while starting")

    def _shut_down(self, processes: list[BaseProcess]) -> None:
        log.info("stopping %d RADIUS workers", len(processes))
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.listen.grace_seconds + 5
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def _worker(listen: Listen, index: int, ready: Queue[int], parent: int) -> None:
    """A worker process: the whole server on the shared ports."""
    _die_with_parent(parent)
    logsetup.configure()
    settings = load_settings()
    server = build_server(
        settings,
        replace(listen, announce=f"RADIUS worker {index} (pid {os.getpid()}) listening"),
        dispatch=index == 0,  # one dispatcher of Disconnect-Requests per node is enough
    )
    server.on_ready = lambda: ready.put(index)
    try:
        server.run()
    finally:
        server.handler.database.dispose()


def _die_with_parent(parent: int) -> None:
    """Linux: this process gets SIGKILL when its parent ends, however it ends."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent ended before the line above took effect
        os._exit(1)
