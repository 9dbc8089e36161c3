"""Two processes with several threads each race with the same fresh OTP: one success."""

from __future__ import annotations

import multiprocessing
from collections import Counter

import pytest
from sqlalchemy.engine import URL

from tests.conftest import BOX
from tests.support.otp_race import race
from tests.support.seed import seed_key

ROUNDS = 200
PROCESSES = 2
THREADS = 3


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_same_otp_raced_by_two_processes_succeeds_exactly_once(
    request: pytest.FixtureRequest, backend: str
) -> None:
    url: URL = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
    key = seed_key(url, BOX)
    otps = [key.otp() for _ in range(ROUNDS)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES * THREADS)
    results = context.Queue()
    url_text = url.render_as_string(hide_password=False)
    processes = [
        context.Process(target=race, args=(url_text, BOX.key, otps, barrier, THREADS, results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes: Counter[tuple[int, str]] = Counter()
    for _ in processes:
        outcomes.update(results.get(timeout=300))
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0

    for round_number in range(ROUNDS):
        assert outcomes[(round_number, "ok")] == 1, round_number
        assert outcomes[(round_number, "otp_replayed")] == PROCESSES * THREADS - 1, round_number
    assert sum(outcomes.values()) == ROUNDS * PROCESSES * THREADS
