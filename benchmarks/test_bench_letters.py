"""A mail run of 5,000 letters (issues 6 and 17): time and peak memory of
``flexnet letters run``, on SQLite and on PostgreSQL.

Two runs, as an onboarding wave produces them: 5,000 key letters, and three working
days after their dispatch 5,000 credentials letters (each with a fresh password hashed
with argon2id), against argon2id alone on all cores measured just before and just after
the run (the machine may be shared: the ratio is against the mean of the two). Each run
is a separate ``flexnet`` process; its peak memory is the largest process's maximum
resident set size (the run's pool of hashing processes included), its CPU time that of
the process and its pool together (PostgreSQL's own is not in it).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from benchmarks.load import CORES, hashes_alone
from benchmarks.report import write_section
from flexnet.config import LetterSettings
from flexnet.db import Database, utcnow
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    Letter,
    LetterKind,
    Practice,
    PracticeKind,
    StaffAccount,
    StaffRole,
    TermsAcceptance,
    TermsChannel,
    Token,
    TokenKind,
    TokenStatus,
    User,
    UserKind,
)
from flexnet.otp.secrets import token_context
from flexnet.provisioning.workdays import add_working_days
from tests.conftest import BOX, TEST_AUDIT_KEY, TEST_MASTER_KEY, TEST_SECRET_KEY

LETTERS = 5000
# Split shipment: the credentials letters go out three working days after the key letters
# are sent, and a run is never made for a future day, so the days count back from today.
CREDENTIALS_DAY = utcnow().astimezone(BERLIN).date()
KEY_DAY = next(
    day
    for day in (CREDENTIALS_DAY - timedelta(days=n) for n in range(3, 15))
    if add_working_days(day, LetterSettings().credentials_delay_days) <= CREDENTIALS_DAY
)
SEEDED_AT = datetime(KEY_DAY.year, KEY_DAY.month, KEY_DAY.day, 9, tzinfo=UTC) - timedelta(days=1)

ACTOR = "bench"


def seed(url: URL) -> None:
    """Practices with accepted terms, an assigned key and a new user each, letters due."""
    database = Database.from_url(url)
    with database.session() as session:
        # The staff account the mail runs are produced as (a CLI change names one).
        session.add(StaffAccount(username=ACTOR, role=StaffRole.HELPDESK, password_hash="-"))  # noqa: S106 - none usable
        for n in range(LETTERS):
            bsnr = f"77{n:07d}"
            practice = Practice(
                bsnr=bsnr,
                name=f"Gemeinschaftspraxis Dr. Müller-Lüdenscheidt {n}",
                street="Doctor-Eisenbart-Ring 2",
                zip_code="39120",
                city="Magdeburg",
                kind=PracticeKind.MEMBER,
                access_profile="full",
                created_at=SEEDED_AT,
            )
            practice.terms_acceptances.append(
                TermsAcceptance(version="1.0", accepted_on=KEY_DAY, channel=TermsChannel.PAPER)
            )
            serial = f"{10_000_000 + n}"
            token = Token(
                serial=serial,
                kind=TokenKind.YUBICO_OTP,
                public_id=f"cccccc{n:06d}".translate(str.maketrans("0123456789", "cbdefghijk")),
                secret=BOX.seal(secrets.token_bytes(22), context=token_context(serial)),
                status=TokenStatus.ASSIGNED,
                practice=practice,
                created_at=SEEDED_AT,
            )
            user = User(
                username=f"praxis{n}", practice=practice, kind=UserKind.STAFF, created_at=SEEDED_AT
            )
            for kind, extra in (
                (LetterKind.KEY, {"token": token}),
                (LetterKind.CREDENTIALS, {"user": user}),
            ):
                session.add(
                    Letter(
                        kind=kind,
                        practice=practice,
                        created_at=SEEDED_AT,
                        created_by="bench",
                        **extra,
                    )
                )
    database.dispose()


# Runs one command and reports its peak resident set size (KB) and the CPU seconds of
# it and its children on the last stderr line, so that each flexnet process is measured
# on its own.
_MEASURE = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "use = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print(use.ru_maxrss, use.ru_utime + use.ru_stime, file=sys.stderr); "
    "sys.exit(code)"
)


def flexnet_env(url: URL, instance: Path) -> dict[str, str]:
    """The environment of a ``flexnet`` process on this database (nothing inherited)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEXNET_")}
    env.update(
        FLEXNET_DATABASE_URL=url.render_as_string(hide_password=False),
        FLEXNET_SECRET_KEY=TEST_SECRET_KEY,
        FLEXNET_MASTER_KEY=TEST_MASTER_KEY,
        FLEXNET_AUDIT_KEY=TEST_AUDIT_KEY,
        FLEXNET_INSTANCE=str(instance),
        FLEXNET_ACTOR=ACTOR,
    )
    return env


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_mb: float
    cpu_seconds: float  # the process and its pool
    stdout: str


def flexnet(env: dict[str, str], *args: str) -> Measured:
    """Seconds, peak MB and CPU time of one ``flexnet`` process; its standard output."""
    command = [sys.executable, "-c", _MEASURE, str(Path(sys.executable).parent / "flexnet")]
    started = time.perf_counter()
    result = subprocess.run([*command, *args], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-2000:]
    peak_kb, cpu = result.stderr.strip().splitlines()[-1].split()
    return Measured(seconds, int(peak_kb) / 1024, float(cpu), result.stdout)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, URL]:
    if request.param == "postgresql":
        url: URL = request.getfixturevalue("pg_url")
        return "postgresql", url
    template: Path = request.getfixturevalue("sqlite_template")
    shutil.copyfile(template, tmp_path / "bench.sqlite3")
    return "sqlite", URL.create("sqlite+pysqlite", database=str(tmp_path / "bench.sqlite3"))


def test_mail_run_of_5000_letters(backend: tuple[str, URL], tmp_path: Path) -> None:
    name, url = backend
    seed(url)
    env = flexnet_env(url, tmp_path)
    key_pdf, credentials_pdf = tmp_path / "keys.pdf", tmp_path / "credentials.pdf"

    keys = flexnet(env, "letters", "run", "--out", str(key_pdf), "--today", f"{KEY_DAY}")
    run_id = keys.stdout.splitlines()[-1]
    flexnet(env, "letters", "dispatched", run_id, "--date", f"{KEY_DAY}")
    before = hashes_alone(CORES, 1000)  # as the run hashes: a pool of all cores
    creds = flexnet(
        env, "letters", "run", "--out", str(credentials_pdf), "--today", f"{CREDENTIALS_DAY}"
    )
    after = hashes_alone(CORES, 1000)

    assert f"{LETTERS} Briefe" in keys.stdout and f"{LETTERS} Briefe" in creds.stdout
    reference = (before + after) / 2
    rate = LETTERS / creds.seconds
    share = rate / reference
    rows = []
    for label, run, pdf in (
        ("key letters", keys, key_pdf),
        ("credentials letters (argon2id per password)", creds, credentials_pdf),
    ):
        size = pdf.stat().st_size / 1024 / 1024
        rows.append(
            f"| {LETTERS:,} {label} | {run.seconds:.1f} s ({LETTERS / run.seconds:.0f}/s) "
            f"| {run.cpu_seconds / LETTERS * 1000:.1f} ms | {run.peak_mb:.0f} MB "
            f"| {size:.1f} MB |"
        )
    verdicts = {
        "key letters: ≤ 30 s and ≤ 300 MB": keys.seconds <= 30 and keys.peak_mb <= 300,
        "credentials letters: ≥ 80 % of argon2id alone on all cores, ≤ 300 MB": (
            share >= 0.8 and creds.peak_mb <= 300
        ),
    }
    table = "\n".join(rows)
    verdict_rows = "\n".join(
        f"| {goal} | {'met' if ok else 'NOT met'} |" for goal, ok in verdicts.items()
    )
    database = "SQLite (a file, WAL)" if name == "sqlite" else "PostgreSQL (fsync on)"
    write_section(
        f"letters-{name}",
        f"""## Mail runs on {database} (issues 6 and 17)

`flexnet letters run` as a separate process on {database}: read what is due and
commit; hash the passwords in a process pool of all {CORES} cores while this process
renders the PDF with reportlab; write the run set-based in one short transaction. The
reference is argon2id alone hashing fresh passwords in a pool of {CORES} processes, just
before and just after the run (the machine may be shared with other work): {before:.0f}
and {after:.0f} hashes/s, {reference:.0f} on average. Peak memory is the largest process's
maximum resident set size; CPU is that of the `flexnet` process and its hashing pool
per letter (PostgreSQL's server processes not included): what a credentials letter costs
beyond a key letter is about one argon2id hash. Command: `make bench`
(`benchmarks/test_bench_letters.py`).

| run | time | CPU per letter | peak memory | PDF |
| --- | --- | --- | --- | --- |
{table}

Credentials letters: {rate:.0f} letters/s, {share:.0%} of argon2id alone.

| target | this run |
| --- | --- |
{verdict_rows}
""",
    )
