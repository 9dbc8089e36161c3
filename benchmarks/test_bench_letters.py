"""A mail run of 5,000 letters (issue 6): time and peak memory of ``flexnet letters run``.

Two runs, as an onboarding wave produces them: 5,000 key letters, and three working
days after their dispatch 5,000 credentials letters (each with a fresh password hashed
with argon2id). Each run is a separate ``flexnet`` process on PostgreSQL (fsync on);
its peak memory is the child's maximum resident set size.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from benchmarks.report import write_section
from flexnet.config import LetterSettings
from flexnet.db import Database, utcnow
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    Letter,
    LetterKind,
    Practice,
    PracticeKind,
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


def seed(url: URL) -> None:
    """Practices with accepted terms, an assigned key and a new user each, letters due."""
    database = Database.from_url(url)
    with database.session() as session:
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


# Runs one command and reports its peak resident set size (KB) on the last stderr line,
# so that each flexnet process is measured on its own.
_MEASURE = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
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
    )
    return env


def flexnet(env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """Seconds and peak MB of one ``flexnet`` process; its standard output."""
    command = [sys.executable, "-c", _MEASURE, str(Path(sys.executable).parent / "flexnet")]
    started = time.perf_counter()
    result = subprocess.run([*command, *args], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-2000:]
    peak_kb = int(result.stderr.strip().splitlines()[-1])
    return seconds, peak_kb / 1024, result.stdout


@pytest.mark.postgres
def test_mail_run_of_5000_letters(pg_url: URL, tmp_path: Path) -> None:
    seed(pg_url)
    env = flexnet_env(pg_url, tmp_path)
    key_pdf, credentials_pdf = tmp_path / "keys.pdf", tmp_path / "credentials.pdf"

    keys = flexnet(env, "letters", "run", "--out", str(key_pdf), "--today", f"{KEY_DAY}")
    run_id = keys[2].splitlines()[-1]
    flexnet(env, "letters", "dispatched", run_id, "--date", f"{KEY_DAY}")
    creds = flexnet(
        env, "letters", "run", "--out", str(credentials_pdf), "--today", f"{CREDENTIALS_DAY}"
    )

    assert f"{LETTERS} Briefe" in keys[2] and f"{LETTERS} Briefe" in creds[2]
    rows = []
    verdicts = []
    for name, (seconds, peak, _), pdf in (
        ("key letters", keys, key_pdf),
        ("credentials letters (argon2id per password)", creds, credentials_pdf),
    ):
        size = pdf.stat().st_size / 1024 / 1024
        rows.append(f"| {LETTERS:,} {name} | {seconds:.1f} s | {peak:.0f} MB | {size:.1f} MB |")
        verdicts.append(
            f"| {name}: ≤ 30 s and ≤ 300 MB | "
            f"{'met' if seconds <= 30 and peak <= 300 else 'NOT met'} |"
        )
    table = "\n".join(rows)
    verdict_rows = "\n".join(verdicts)
    write_section(
        "letters",
        f"""## Mail runs (issue 6)

`flexnet letters run` as a separate process on PostgreSQL (fsync on): select what is
due, generate and hash passwords (argon2id, on all cores), render the PDF with
reportlab, write it, commit. Peak memory is the process's maximum resident set size.
Command: `make bench` (`benchmarks/test_bench_letters.py`).

| run | time | peak memory | PDF |
| --- | --- | --- | --- |
{table}

| target | this run |
| --- | --- |
{verdict_rows}
""",
    )
