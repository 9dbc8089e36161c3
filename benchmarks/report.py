"""Writes benchmark results into docs/BENCHMARKS.md, one replaceable section per benchmark."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
from datetime import UTC, datetime
from pathlib import Path

REPORT = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"
_HEADER = """# Benchmarks

Measured by `make bench` (pytest over `benchmarks/`), on the machine named in each
section. Targets come from the issues; each section says whether its run met them.
Re-run `make bench` after changes on the hot path and commit the updated file.
"""


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    postgres = _pg_version()
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {_sqlite_version()}, {postgres}"
    )


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def _pg_version() -> str:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not candidates:
        return "PostgreSQL not installed"
    out = subprocess.run([str(candidates[-1]), "--version"], capture_output=True, text=True)
    return out.stdout.strip().replace("postgres (PostgreSQL)", "PostgreSQL")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_summary(seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"p50 {statistics.median(ms):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms, "
        f"max {max(ms):.2f} ms"
    )


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section ``name`` of the report."""
    REPORT.parent.mkdir(exist_ok=True)
    text = REPORT.read_text() if REPORT.exists() else _HEADER
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- bench:{name} -->\n{body.rstrip()}\n\n"
        f"Run {stamp} on: {machine()}.\n<!-- /bench:{name} -->"
    )
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.DOTALL)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else f"{text}\n{section}\n"
    REPORT.write_text(text)
