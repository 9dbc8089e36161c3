"""An honest RADIUS load generator and the argon2id reference, for the benchmarks.

- Closed loop: each client is one NAS socket of its own with one request in flight; it
  sends the next only when the answer came or its timeout passed (counted). Packets are
  built beforehand (fresh OTPs in each key's order), so the generator spends its time on
  sockets, not on packets. A late answer to a request given up is counted, not taken
  for the next one's.
- The reference: argon2id alone, with the server's parameters and its layout of
  processes and threads, hashing for a few seconds in the same run.
"""

from __future__ import annotations

import functools
import heapq
import multiprocessing
import os
import selectors
import socket
import statistics
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from pyrad import packet as rp
from pyrad.dictionary import Dictionary

from benchmarks.report import percentile
from flexnet.authn import passwords
from flexnet.radius.packets import load_dictionary
from tests.support.nodes import Login
from tests.support.radius import SECRET

PASSWORD = "Sommer-Regen-2026!"  # noqa: S105 - the benchmark users' password (nodes.PASSWORD)
TIMEOUT = 5.0  # a NAS's patience: a later answer is a timeout to it


@dataclass
class Outcome:
    """What a load run came to."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    codes: dict[int, int] = field(default_factory=dict)
    timeouts: int = 0
    late: int = 0  # answers that came after their client had given up
    answers: list[tuple[bytes, int]] = field(default_factory=list)  # (request, reply code)

    @property
    def answered(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    @property
    def accepted(self) -> int:
        return self.codes.get(rp.AccessAccept, 0)

    @property
    def rejected(self) -> int:
        return self.codes.get(rp.AccessReject, 0)

    def ms(self, fraction: float) -> float:
        return percentile(self.latencies, fraction) * 1000 if self.latencies else float("nan")

    def summary(self) -> str:
        median = statistics.median(self.latencies) * 1000 if self.latencies else float("nan")
        return f"{self.rate:,.0f}/s, p50 {median:.1f} ms, p99 {self.ms(0.99):.1f} ms"


@functools.cache
def _dictionary() -> Dictionary:
    return load_dictionary()


def access_request(username: str, typed: str, identifier: int) -> bytes:
    """A PAP Access-Request with Message-Authenticator, as a concentrator sends it."""
    request = rp.AuthPacket(
        code=rp.AccessRequest,
        id=identifier,
        secret=SECRET,
        dict=_dictionary(),
        User_Name=username,
    )
    request["User-Password"] = request.PwCrypt(typed)
    request.add_message_authenticator()
    return bytes(request.RequestPacket())


def login_stream(login: Login, count: int) -> list[bytes]:
    """``count`` Access-Requests of one login, each with its key's next OTP."""
    return [
        access_request(login.username, PASSWORD + login.key.otp(), n % 256) for n in range(count)
    ]


def garbage_stream(login: Login, count: int) -> list[bytes]:
    """Well-formed OTPs of a known key that no AES key decrypts: the fast path's work."""
    typed = PASSWORD + login.key.public_id + "c" * 32
    return [access_request(login.username, typed, n % 256) for n in range(count)]


def closed_loop(
    port: int,
    streams: Sequence[Sequence[bytes]],
    *,
    seconds: float | None = None,
    per_client_interval: float = 0.0,
    timeout: float = TIMEOUT,
    stop: threading.Event | None = None,
) -> Outcome:
    """Each stream is a client with one request in flight; until its stream is sent (or
    ``seconds`` passed, or ``stop``). ``per_client_interval``: at most one request per
    client and interval, the clients' first requests spread over one interval (a paced
    load; latency is still measured from each send). epoll and a heap of due clients:
    the generator's own cost per request does not grow with the number of clients."""
    clients = [_Client(n, port, list(stream)) for n, stream in enumerate(streams)]
    selector = selectors.DefaultSelector()
    started = time.perf_counter()
    deadline = started + seconds if seconds is not None else float("inf")
    due: list[tuple[float, int]] = []
    for n, client in enumerate(clients):
        selector.register(client.sock, selectors.EVENT_READ, client)
        heapq.heappush(due, (started + n * per_client_interval / len(clients), n))
    outcome = Outcome(0.0)
    in_flight = 0
    next_sweep = started + 0.1
    try:
        while True:
            now = time.perf_counter()
            done = now >= deadline or (stop is not None and stop.is_set())
            while due and not done and due[0][0] <= now:
                _, n = heapq.heappop(due)
                if clients[n].send(now):
                    in_flight += 1
            if in_flight == 0 and (done or not due):
                break
            wake = min(due[0][0] if due and not done else now + 0.1, next_sweep)
            for key, _ in selector.select(max(0.0, wake - now)):
                client: _Client = key.data
                if client.receive(time.perf_counter(), outcome):
                    in_flight -= 1
                    heapq.heappush(due, (client.sent + per_client_interval, client.number))
            now = time.perf_counter()
            if now >= next_sweep:
                next_sweep = now + 0.1
                for client in clients:
                    if client.sent_at is not None and now - client.sent_at > timeout:
                        outcome.timeouts += 1
                        client.sent_at = None
                        in_flight -= 1
                        heapq.heappush(due, (now, client.number))
    finally:
        outcome.seconds = time.perf_counter() - started
        selector.close()
        for client in clients:
            client.sock.close()
    return outcome


class _Client:
    def __init__(self, number: int, port: int, stream: list[bytes]) -> None:
        self.number = number
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.pending = list(reversed(stream))
        self.sent_at: float | None = None
        self.sent = 0.0
        self.identifier = -1
        self.current = b""

    def send(self, now: float) -> bool:
        if not self.pending:
            return False
        datagram = self.current = self.pending.pop()
        self.identifier = datagram[1]
        self.sock.send(datagram)
        self.sent_at = self.sent = now
        return True

    def receive(self, now: float, outcome: Outcome) -> bool:
        """Read what came; True if it answered the request in flight."""
        answered = False
        while True:
            try:
                reply = self.sock.recv(4096)
            except (BlockingIOError, ConnectionRefusedError):
                return answered
            if self.sent_at is None or reply[1] != self.identifier:
                outcome.late += 1
                continue
            outcome.latencies.append(now - self.sent_at)
            outcome.codes[reply[0]] = outcome.codes.get(reply[0], 0) + 1
            outcome.answers.append((self.current, reply[0]))
            self.sent_at = None
            answered = True


# --- argon2id alone ------------------------------------------------------------------


def argon2_verify_seconds(batches: int = 5, per_batch: int = 10) -> float:
    """One verify on an idle core: the fastest of several batch medians (a batch can land
    on a busy moment of a shared machine; the fastest gives the strictest reference)."""
    stored = passwords.hash_password(PASSWORD)
    medians = []
    for _ in range(batches):
        times = []
        for _ in range(per_batch):
            started = time.perf_counter()
            passwords.verify(PASSWORD, stored)
            times.append(time.perf_counter() - started)
        medians.append(statistics.median(times))
    return min(medians)


def argon2_alone(processes: int, threads: int, seconds: float = 5.0) -> float:
    """Verifies per second of argon2id alone with ``processes`` x ``threads`` at once, as
    the RADIUS server's workers and thread pools hash (the same parameters)."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start = context.Event()
    workers = [
        context.Process(target=_hash_for, args=(threads, seconds, start, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    start.set()
    total = sum(results.get(timeout=seconds + 120) for _ in workers)
    for worker in workers:
        worker.join()
    return float(total)


def _hash_for(threads: int, seconds: float, start: object, results: object) -> None:
    stored = passwords.hash_password(PASSWORD)
    done = [0] * threads
    start.wait()  # type: ignore[attr-defined]
    deadline = time.perf_counter() + seconds

    def work(slot: int) -> None:
        while time.perf_counter() < deadline:
            passwords.verify(PASSWORD, stored)
            done[slot] += 1

    began = time.perf_counter()
    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put(sum(done) / (time.perf_counter() - began))  # type: ignore[attr-defined]


def hashes_alone(processes: int, count: int) -> float:
    """Passwords hashed per second by argon2id alone in a pool of ``processes`` (as a
    mail run hashes): ``count`` fresh passwords."""
    clear = [passwords.generate() for _ in range(count)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        list(pool.map(passwords.hash_password, clear[:processes]))  # the workers are up
        started = time.perf_counter()
        list(pool.map(passwords.hash_password, clear, chunksize=max(1, count // (8 * processes))))
        return count / (time.perf_counter() - started)


CORES = os.cpu_count() or 1
SECRET_TEXT = SECRET.decode()
