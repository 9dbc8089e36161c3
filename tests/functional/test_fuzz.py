"""The coverage-guided fuzzers run for a few seconds in every test run.

``make fuzz`` runs them for minutes; here each harness is started as a developer starts
it, ``python -m fuzz.<harness>`` from the repository root, for a fixed time. A crash (an
exception escaping the RADIUS handler, an Access-Accept, a malformed reply, a broken
parser property), a hang (libFuzzer's -timeout) or a failing set-up (the harness's
self-check) is a non-zero exit. The libFuzzer seed comes from ``random``, which
pytest-randomly seeds: ``-p randomly -p "randomly_seed=N"`` repeats a run.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Seconds of fuzzing per harness. With start-up (imports under instrumentation, the
# migration, one argon2 hash) both stay under 25 s on a slow, busy 2-core machine.
FUZZ_SECONDS = {"radius_packets": 6, "otp_parser": 4}
# A harness that ran but hardly executed anything is broken too (e.g. every input
# rejected at set-up); both manage hundreds per second even on a busy machine.
MIN_EXECUTIONS = 200


def _run(harness: str, artifacts: Path) -> tuple[int, str]:
    seed = random.randrange(1, 2**31)  # noqa: S311 - libFuzzer's seed, not a secret
    command = [
        sys.executable,
        "-m",
        f"fuzz.{harness}",
        f"-max_total_time={FUZZ_SECONDS[harness]}",
        f"-seed={seed}",
        f"-artifact_prefix={artifacts}/",
        "-print_final_stats=1",
    ]
    # A session of its own: on a time-out the whole group goes (the harness forks).
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
        # Every finding is a failure here, with a reproducer in ``artifacts``.
        env={**os.environ, "FLEXNET_FUZZ_STRICT": "1"},
    )
    try:
        output, _ = process.communicate(timeout=FUZZ_SECONDS[harness] + 90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"fuzz.{harness} did not stop (seed {seed}):\n{_tail(output)}")
    return process.returncode, output


def _tail(output: str, lines: int = 80) -> str:
    kept = [line for line in output.splitlines() if not line.startswith("INFO: Instrumenting")]
    return "\n".join(kept[-lines:])


@pytest.mark.parametrize("harness", sorted(FUZZ_SECONDS))
def test_the_fuzzer_finds_no_crash_hang_or_accept(harness: str, tmp_path: Path) -> None:
    returncode, output = _run(harness, tmp_path)

    assert returncode == 0, f"fuzz.{harness} exited with {returncode}:\n{_tail(output)}"
    assert "Uncaught Python exception" not in output, _tail(output)
    assert "ERROR: libFuzzer" not in output, _tail(output)
    assert not list(tmp_path.iterdir()), f"crash artifacts written:\n{_tail(output)}"
    executed = re.search(r"stat::number_of_executed_units: (\d+)", output)
    assert executed is not None, _tail(output)
    assert int(executed[1]) >= MIN_EXECUTIONS, _tail(output)
