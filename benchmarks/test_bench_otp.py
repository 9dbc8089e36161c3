"""OTP verifications per second: decrypt + atomic counter update + commit, per request."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.engine import URL

from benchmarks.report import latency_summary, write_section
from flexnet.config import OtpSettings
from flexnet.db import Database, utcnow
from flexnet.otp.verify import verify_yubico_otp
from tests.conftest import BOX
from tests.support.seed import seed_key

ROUNDS = 3000
RESULTS: dict[str, str] = {}


def verify_all(database: Database, otps: list[str], latencies: list[float]) -> None:
    settings = OtpSettings()
    for otp in otps:
        started = time.perf_counter()
        with database.session() as session:
            result = verify_yubico_otp(session, otp, box=BOX, settings=settings, now=utcnow())
        latencies.append(time.perf_counter() - started)
        assert result.ok, result.reason


def run(url: URL, threads: int) -> str:
    """Each thread verifies the OTPs of its own key, one transaction per OTP."""
    keys = [seed_key(url, BOX, serial=f"bench-{n}") for n in range(threads)]
    batches = [[key.otp() for _ in range(ROUNDS // threads)] for key in keys]
    database = Database.from_url(url)
    latencies: list[float] = []
    workers = [threading.Thread(target=verify_all, args=(database, b, latencies)) for b in batches]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    database.dispose()
    count = sum(len(b) for b in batches)
    assert len(latencies) == count
    return f"{count / elapsed:,.0f}/s ({latency_summary(latencies)})"


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_otp_verifications_per_second(
    request: pytest.FixtureRequest, backend: str, threads: int
) -> None:
    url: URL = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
    RESULTS[f"{backend}-{threads}"] = run(url, threads)


def test_write_otp_report() -> None:
    rows = "\n".join(
        f"| {backend} | {threads} | {RESULTS.get(f'{backend}-{threads}', 'not run')} |"
        for backend in ("sqlite", "postgresql")
        for threads in (1, 2)
    )
    write_section(
        "otp",
        f"""## OTP verification (issue 3)

Yubico OTP verifications with replay protection: parse, AES-GCM unwrap of the key's
secret, AES-128 decrypt + CRC, one conditional UPDATE, commit: a whole request's unit
of work. {ROUNDS} distinct OTPs per row, made beforehand by the yubiotp simulator.
SQLite is a WAL file in the instance folder; PostgreSQL is a local server with fsync
on. Command: `make bench` (`benchmarks/test_bench_otp.py`).

| database | threads | verifications per second (latency per request) |
| --- | --- | --- |
{rows}
""",
    )
