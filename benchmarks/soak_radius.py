"""Soak: a `flexnet radius` process at half its measured capacity for ten minutes, on
SQLite and on PostgreSQL.

Run by `make soak` (not by `make bench` or `make test`: it takes SOAK_SECONDS, 600 by
default, per database). Nine in ten requests are good logins, one in ten carries an
invalid OTP, from 16 NAS clients paced to half the accept rate measured at the start.
Every 30 seconds the latencies of that slice and the server's resident memory are
recorded; memory and latency must stay flat once the first minute has warmed the caches.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from benchmarks.load import closed_loop, garbage_stream, login_stream
from benchmarks.report import write_section
from tests.support.nodes import Login, radius_node, running, seed_logins

CLIENTS = 16
REJECT = 3  # Access-Reject
SOAK_SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
SLICE_SECONDS = 30
WARM_SLICES = 2  # the first minute fills caches, pools and the allocator's arenas
# Flat: the last slices stay within these bounds of the first warm ones.
MEMORY_GROWTH = 1.10
LATENCY_GROWTH = 1.5


@dataclass(frozen=True)
class Slice:
    at_seconds: float
    rate: float
    p50: float
    p99: float
    rss_mb: float
    wrong: int  # a good login not accepted, or an invalid OTP not rejected
    timeouts: int


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def mixed(login: Login, count: int) -> tuple[list[bytes], set[bytes]]:
    """Nine good logins, then one invalid OTP, and so on; and which are invalid."""
    good = login_stream(login, count - count // 10)
    bad = garbage_stream(login, count // 10)
    invalid = set(bad)
    packets: list[bytes] = []
    for n, packet in enumerate(good):
        packets.append(packet)
        if n % 9 == 8 and bad:
            packets.append(bad.pop())
    return packets + bad, invalid


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, URL]:
    if request.param == "postgresql":
        url: URL = request.getfixturevalue("pg_url")
        return "postgresql", url
    template: Path = request.getfixturevalue("sqlite_template")
    shutil.copyfile(template, tmp_path / "soak.sqlite3")
    return "sqlite", URL.create("sqlite+pysqlite", database=str(tmp_path / "soak.sqlite3"))


def test_soak_at_half_capacity(backend: tuple[str, URL], tmp_path: Path) -> None:
    name, url = backend
    logins = seed_logins(url, [f"soak{n}" for n in range(CLIENTS)])
    node = radius_node(
        "soak", url, tmp_path, key_failure_limit="1000000", source_failure_limit="1000000"
    )
    slices: list[Slice] = []
    with running(node):
        assert node.process is not None
        capacity = closed_loop(
            node.auth_port, [login_stream(login, 40) for login in logins], seconds=15
        ).rate
        rate = capacity / 2
        interval = CLIENTS / rate
        started = time.monotonic()
        while time.monotonic() - started < SOAK_SECONDS:
            per_client = int(SLICE_SECONDS / interval) + 2
            streams, invalid = [], set()
            for login in logins:
                stream, bad = mixed(login, per_client)
                streams.append(stream)
                invalid |= bad
            run = closed_loop(
                node.auth_port, streams, seconds=SLICE_SECONDS, per_client_interval=interval
            )
            wrong = [
                code for packet, code in run.answers if (packet in invalid) != (code == REJECT)
            ]
            slices.append(
                Slice(
                    at_seconds=time.monotonic() - started,
                    rate=run.rate,
                    p50=statistics.median(run.latencies) * 1000,
                    p99=run.ms(0.99),
                    rss_mb=resident_mb(node.process.pid),
                    wrong=len(wrong),
                    timeouts=run.timeouts,
                )
            )
        assert node.alive(), node.log()[-2000:]

    warm, late = slices[WARM_SLICES : WARM_SLICES + 2], slices[-2:]
    memory_flat = max(s.rss_mb for s in late) <= MEMORY_GROWTH * max(s.rss_mb for s in warm)
    latency_flat = max(s.p99 for s in late) <= LATENCY_GROWTH * max(s.p99 for s in warm)
    all_answered = all(s.wrong == 0 and s.timeouts == 0 for s in slices)
    _report(name, capacity, rate, slices, memory_flat, latency_flat, all_answered)

    assert all_answered
    assert memory_flat
    assert latency_flat


def _report(
    name: str,
    capacity: float,
    rate: float,
    slices: list[Slice],
    memory_flat: bool,
    latency_flat: bool,
    all_answered: bool,
) -> None:
    rows = "\n".join(
        f"| {s.at_seconds:.0f} s | {s.rate:.0f}/s | {s.p50:.1f} ms | {s.p99:.1f} ms | "
        f"{s.rss_mb:.0f} MB |"
        for s in slices
    )

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    database = "SQLite (a file, WAL)" if name == "sqlite" else "PostgreSQL (fsync on)"
    write_section(
        f"soak-{name}",
        f"""## Soak: RADIUS at half capacity on {database} (issues 9 and 17)

A `flexnet radius` process on {database} for {SOAK_SECONDS} s at half the
accept rate measured at the start ({capacity:.0f}/s → {rate:.0f} requests/s), nine good
logins to one invalid OTP, from {CLIENTS} paced NAS clients. Each row is a
{SLICE_SECONDS}-second slice; memory is the
server's resident set; the server logs at INFO, as in production.
Command: `make soak` (`benchmarks/soak_radius.py`).

| after | answered | p50 | p99 | memory |
| --- | --- | --- | --- | --- |
{rows}

| target | this run |
| --- | --- |
| every good login accepted, every request answered | {verdict(all_answered)} |
| memory flat: last minute ≤ {MEMORY_GROWTH:.2f} x first warm one | {verdict(memory_flat)} |
| latency flat: p99 of last minute ≤ {LATENCY_GROWTH} x first warm one | {verdict(latency_flat)} |
""",
    )
