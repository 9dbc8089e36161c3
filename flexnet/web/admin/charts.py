"""Charts for the dashboard, drawn on the server as SVG (no script, CSP stays strict):
the geometry here, the markup in ``admin/_charts.html``. Each chart has a German summary
for screen readers (its ``<title>``) and a title per bar for the pointer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flexnet.authn.loginlog import Hour
from flexnet.lifecycle.rules import BERLIN

WEEKDAYS = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str  # bar-accept, bar-reject, bar-neutral, bar-low
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    text: str


@dataclass
class Chart:
    width: int
    height: int
    summary: str
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)  # labels under or beside the bars
    grid: list[Tick] = field(default_factory=list)  # horizontal lines with their value
    baseline: float = 0.0


def _scale(top: int) -> int:
    """A round maximum for the axis: 1, 2 or 5 times a power of ten at or above ``top``."""
    if top <= 0:
        return 1
    power = int(10 ** math.floor(math.log10(top)))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= top)


def logins(hours: Sequence[Hour], *, width: int = 840, height: int = 180) -> Chart:
    """Accepted (green) and refused (red) logins per hour, stacked, oldest left."""
    left, bottom, top_pad = 36, 22, 8
    plot = height - bottom - top_pad
    peak = _scale(max((h.accepted + h.rejected for h in hours), default=0))
    step = (width - left) / max(1, len(hours))
    accepted = sum(h.accepted for h in hours)
    rejected = sum(h.rejected for h in hours)
    chart = Chart(
        width,
        height,
        f"Anmeldungen je Stunde in den letzten {len(hours) // 24} Tagen: {accepted} "
        f"angenommen, {rejected} abgelehnt; in der stärksten Stunde "
        f"{max((h.accepted + h.rejected for h in hours), default=0)}.",
        baseline=height - bottom,
    )
    for value in sorted({0, peak // 2, peak}):
        chart.grid.append(Tick(left, height - bottom - plot * value / peak, str(value)))
    for index, hour in enumerate(hours):
        x = left + index * step
        local = hour.start.astimezone(BERLIN)
        when = f"{local:%d.%m. %H} Uhr"
        ok = plot * hour.accepted / peak
        bad = plot * hour.rejected / peak
        base = height - bottom
        if hour.accepted:
            chart.bars.append(
                Bar(
                    x,
                    base - ok,
                    step * 0.9,
                    ok,
                    "bar-accept",
                    f"{when}: {hour.accepted} angenommen",
                )
            )
        if hour.rejected:
            chart.bars.append(
                Bar(
                    x,
                    base - ok - bad,
                    step * 0.9,
                    bad,
                    "bar-reject",
                    f"{when}: {hour.rejected} abgelehnt",
                )
            )
        if local.hour == 0:
            chart.ticks.append(Tick(x, height - 6, f"{WEEKDAYS[local.weekday()]} {local:%d.%m.}"))
    return chart


def stock(counts: Sequence[tuple[str, str, int]], *, low: int, width: int = 420) -> Chart:
    """Keys by state as horizontal bars (``counts``: value, German label, count); the
    stock bar is red when it is below ``low``. (An image holds no links: the figures
    beside it do.)"""
    row, label_width = 24, 150
    height = row * len(counts) + 8
    peak = _scale(max((count for _, _, count in counts), default=0))
    in_stock = next((count for value, _, count in counts if value == "stock"), 0)
    warning = f" Warnung: nur {in_stock} im Lager (Schwelle {low})." if in_stock < low else ""
    chart = Chart(
        width,
        height,
        "Yubikeys nach Status: "
        + ", ".join(f"{label} {count}" for _, label, count in counts)
        + "."
        + warning,
    )
    for index, (value, label, count) in enumerate(counts):
        y = 4 + index * row
        length = (width - label_width - 40) * count / peak
        css = "bar-low" if value == "stock" and count < low else "bar-neutral"
        chart.ticks.append(Tick(label_width - 6, y + row * 0.65, label))
        chart.bars.append(
            Bar(label_width, y + 3, max(length, 1), row - 8, css, f"{label}: {count}")
        )
        chart.grid.append(Tick(label_width + length + 4, y + row * 0.65, str(count)))
    return chart


def weekly(
    instants: Sequence[datetime],
    *,
    now: datetime,
    weeks: int = 8,
    width: int = 420,
    height: int = 160,
) -> Chart:
    """How many locks fall into each of the next ``weeks`` weeks (from today)."""
    left, bottom, top_pad = 30, 22, 8
    plot = height - bottom - top_pad
    start = now.astimezone(BERLIN).replace(hour=0, minute=0, second=0, microsecond=0)
    counts = [0] * weeks
    for instant in instants:
        index = (instant.astimezone(BERLIN) - start) // timedelta(weeks=1)
        counts[min(max(index, 0), weeks - 1)] += 1
    peak = _scale(max(counts, default=0))
    step = (width - left) / weeks
    chart = Chart(
        width,
        height,
        f"Sperren nach Fristablauf in den nächsten {weeks} Wochen: {sum(counts)}; "
        + ", ".join(
            f"ab {start + timedelta(weeks=i):%d.%m.} {count}" for i, count in enumerate(counts)
        )
        + ".",
        baseline=height - bottom,
    )
    for value in sorted({0, peak // 2, peak}):
        chart.grid.append(Tick(left, height - bottom - plot * value / peak, str(value)))
    for index, count in enumerate(counts):
        x = left + index * step + step * 0.15
        bar = plot * count / peak
        week_start = start + timedelta(weeks=index)
        chart.ticks.append(Tick(x, height - 6, f"{week_start:%d.%m.}"))
        if count:
            chart.bars.append(
                Bar(
                    x,
                    height - bottom - bar,
                    step * 0.7,
                    bar,
                    "bar-neutral",
                    f"Woche ab {week_start:%d.%m.%Y}: {count} Sperren",
                )
            )
    return chart
