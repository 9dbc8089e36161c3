"""SQLite writers of one process queue for the write lock and take their turns in order;
writers of different processes find the lock the moment it is free."""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from flexnet.db import Database, make_engine
from flexnet.writegate import WriteGate


def wait_until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.001)


def test_the_gate_hands_the_turn_to_the_waiters_in_the_order_they_came() -> None:
    gate = WriteGate()
    assert gate.acquire(1)
    order: list[int] = []

    def writer(number: int) -> None:
        assert gate.acquire(5)
        order.append(number)
        gate.release()

    threads = []
    for number in range(8):
        thread = threading.Thread(target=writer, args=(number,))
        thread.start()
        threads.append(thread)
        wait_until(lambda n=number: gate.waiting == n + 1)
    gate.release()
    for thread in threads:
        thread.join()
    assert order == list(range(8))


def test_a_thread_that_releases_and_asks_again_queues_behind_the_waiters() -> None:
    gate = WriteGate()
    assert gate.acquire(1)
    entered = threading.Event()

    def waiter() -> None:
        assert gate.acquire(5)
        entered.set()
        time.sleep(0.05)
        gate.release()

    thread = threading.Thread(target=waiter)
    thread.start()
    wait_until(lambda: gate.waiting == 1)
    gate.release()
    assert gate.acquire(5)
    assert entered.is_set()  # the waiter went first
    gate.release()
    thread.join()


def test_a_waiter_gives_up_after_its_timeout_and_leaves_the_queue() -> None:
    gate = WriteGate()
    assert gate.acquire(1)
    assert not gate.acquire(0.05)
    assert gate.waiting == 0
    gate.release()
    assert gate.acquire(0.05)  # free again: the one that gave up holds nothing


@pytest.fixture
def database(tmp_path: Path) -> Database:
    database = Database(make_engine(f"sqlite+pysqlite:///{tmp_path / 'gate.db'}", timeout_ms=400))
    with database.session() as session:
        session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
    return database


def test_sixteen_threads_that_each_hold_the_write_lock_all_get_their_turn(
    database: Database,
) -> None:
    # 15 writers ahead of ~5 ms each are well below the 400 ms bound when they queue;
    # polling in SQLite's busy handler (sleeps of up to 100 ms) lets some run out of time.
    errors: list[Exception] = []
    start = threading.Barrier(16)

    def writer() -> None:
        start.wait()
        try:
            for _ in range(3):
                with database.session() as session:
                    session.execute(text("UPDATE counter SET n = n + 1"))
                    time.sleep(0.005)
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=writer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with database.reader() as session:
        assert session.execute(text("SELECT n FROM counter")).scalar_one() == 48


def test_a_failed_or_abandoned_transaction_passes_the_turn_on(database: Database) -> None:
    def failing_unit_of_work() -> None:
        with database.session() as session:
            session.execute(text("UPDATE counter SET n = 5"))
            raise RuntimeError("the unit of work fails")

    with pytest.raises(RuntimeError):
        failing_unit_of_work()
    with pytest.raises(OperationalError), database.session() as session:
        session.execute(text("UPDATE no_such_table SET n = 1"))
    connection = database.engine.connect()
    connection.execute(text("UPDATE counter SET n = 7"))
    connection.close()  # never committed: rolled back on its way back to the pool
    with database.session() as session:  # would wait 400 ms and fail if a turn leaked
        assert session.execute(text("SELECT n FROM counter")).scalar_one() == 0
        session.execute(text("UPDATE counter SET n = 1"))
    with database.reader() as session:
        assert session.execute(text("SELECT n FROM counter")).scalar_one() == 1


def test_a_writer_whose_turn_does_not_come_in_time_gets_an_error_never_a_hang(
    database: Database,
) -> None:
    holder = database.engine.connect()
    holder.execute(text("UPDATE counter SET n = 2"))
    started = time.monotonic()
    with pytest.raises(OperationalError, match="database is locked"), database.session() as s:
        s.execute(text("UPDATE counter SET n = 3"))
    assert time.monotonic() - started < 2
    holder.rollback()
    holder.close()
    with database.session() as session:
        session.execute(text("UPDATE counter SET n = 4"))


def test_a_commit_that_fails_is_an_error_and_the_turn_passes_on(database: Database) -> None:
    # A deferred foreign key is checked at COMMIT: the COMMIT the gate runs itself fails.
    with database.session() as session:
        session.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        session.execute(
            text(
                "CREATE TABLE child (parent_id INTEGER REFERENCES parent (id)"
                " DEFERRABLE INITIALLY DEFERRED)"
            )
        )

    def orphan() -> None:
        with database.session() as session:
            session.execute(text("INSERT INTO child VALUES (42)"))

    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        orphan()
    with database.session() as session:  # the next writer's turn comes at once
        assert session.execute(text("SELECT count(*) FROM child")).scalar_one() == 0


# Another process that writes for 60 ms and leaves the lock free for 3 ms, over and over.
BUSY_NEIGHBOUR = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
until = time.monotonic() + float(sys.argv[2])
print("writing", flush=True)
while time.monotonic() < until:
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("UPDATE counter SET n = n + 1000")
    time.sleep(0.060)
    connection.execute("COMMIT")
    time.sleep(0.003)
"""


def test_a_writer_finds_the_short_gaps_between_another_processs_writes(
    database: Database, tmp_path: Path
) -> None:
    # SQLite's busy handler sleeps longer and longer between looks (up to 100 ms), so
    # whether it ever looks in a gap depends on when it started: more than half of such
    # writes wait past 400 ms (the bound here) and fail. Looking every 2 ms, a write
    # waits for one of the neighbour's writes to end.
    pauses = random.Random(17)  # noqa: S311 - timing, not a secret
    with subprocess.Popen(
        [sys.executable, "-c", BUSY_NEIGHBOUR, str(tmp_path / "gate.db"), "30"],
        stdout=subprocess.PIPE,
        text=True,
    ) as neighbour:
        try:
            assert neighbour.stdout is not None and neighbour.stdout.readline() == "writing\n"
            waits = []
            for _ in range(10):
                time.sleep(pauses.uniform(0.1, 0.2))  # meet the neighbour at any moment
                started = time.monotonic()
                with database.session() as session:
                    session.execute(text("UPDATE counter SET n = n + 1"))
                waits.append(time.monotonic() - started)
            assert statistics.median(waits) < 0.15
        finally:
            neighbour.kill()
    with database.reader() as session:
        assert session.execute(text("SELECT n FROM counter")).scalar_one() % 1000 == 10
