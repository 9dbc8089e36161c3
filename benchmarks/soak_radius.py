"""Soak: a `flexnet radius` process at half its measured capacity for ten minutes.

Run by `make soak` (not by `make bench` or `make test`: it takes SOAK_SECONDS, 600 by
default). Nine in ten requests are good logins, one in ten carries an invalid OTP. Every
30 seconds the latencies of that slice and the server's resident memory are recorded;
memory and latency must stay flat once the first minute has warmed the caches.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from benchmarks.report import write_section
from benchmarks.test_bench_radius import accepts, drive, invalid_otps, seed
from tests.support.nodes import radius_node, running
from tests.support.yubikeys import SimulatedKey

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
    accepted: int
    expected_accepts: int
    timeouts: int


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def mixed(keys: list[SimulatedKey], count: int) -> tuple[list[bytes], int]:
    """Nine good logins, then one invalid OTP, and so on; also how many are good."""
    good = accepts(keys, count * 9 // 10)
    bad = invalid_otps(keys, count - len(good))
    packets: list[bytes] = []
    for n, packet in enumerate(good):
        packets.append(packet)
        if n % 9 == 8 and bad:
            packets.append(bad.pop())
    return packets + bad, len(good)


@pytest.mark.postgres
def test_soak_at_half_capacity(pg_url: URL, tmp_path: Path) -> None:
    keys = seed(pg_url)
    node = radius_node(
        "soak",
        pg_url,
        tmp_path,
        key_failure_limit="1000000",
        source_failure_limit="1000000",
    )
    slices: list[Slice] = []
    with running(node):
        assert node.process is not None
        capacity = drive(node.auth_port, accepts(keys, 400), window=16)["rate"]
        rate = capacity / 2
        started = time.monotonic()
        while time.monotonic() - started < SOAK_SECONDS:
            packets, good = mixed(keys, int(rate * SLICE_SECONDS))
            run = drive(node.auth_port, packets, window=16, interval=1.0 / rate)
            slices.append(
                Slice(
                    at_seconds=time.monotonic() - started,
                    rate=run["rate"],
                    p50=run["p50"],
                    p99=run["p99"],
                    rss_mb=resident_mb(node.process.pid),
                    accepted=int(run["accepted"]),
                    expected_accepts=good,
                    timeouts=int(run["timeouts"]),
                )
            )
        assert node.alive(), node.log()[-2000:]

    warm, late = slices[WARM_SLICES : WARM_SLICES + 2], slices[-2:]
    memory_flat = max(s.rss_mb for s in late) <= MEMORY_GROWTH * max(s.rss_mb for s in warm)
    latency_flat = max(s.p99 for s in late) <= LATENCY_GROWTH * max(s.p99 for s in warm)
    all_answered = all(s.accepted == s.expected_accepts and s.timeouts == 0 for s in slices)
    _report(capacity, rate, slices, memory_flat, latency_flat, all_answered)

    assert all_answered
    assert memory_flat
    assert latency_flat


def _report(
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

    write_section(
        "soak",
        f"""## Soak: RADIUS at half capacity (issue 9)

A `flexnet radius` process on PostgreSQL (fsync on) for {SOAK_SECONDS} s at half the
accept rate measured at the start ({capacity:.0f}/s → {rate:.0f} requests/s), nine good
logins to one invalid OTP. Each row is a {SLICE_SECONDS}-second slice; memory is the
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
