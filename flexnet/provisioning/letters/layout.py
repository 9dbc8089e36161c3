"""One letter laid out before it is drawn: placeholders filled, text wrapped, pages cut.

Laying out first is what lets the footer of page 1 already say "Seite 1 von y". Widths
come from reportlab's font metrics and are cached, since a mail run measures the same
sentences thousands of times.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from reportlab.pdfbase import pdfmetrics

from flexnet.provisioning.letters.schema import (
    _FORBIDDEN,
    ALLOWED_FIELDS,
    MM,
    OPTIONAL_FIELDS,
    PAGE_WIDTH,
    Address,
    LetterData,
    LetterTemplates,
    _Font,
    _SecurityField,
    _Window,
)
from flexnet.provisioning.letters.templates import _placeholders

ELLIPSIS = "…"
_LIST_MARKER = re.compile(r"^(?:\d+\.|[-–•])\s+")
_NBSP = "\u00a0"
_NO_BREAK = re.compile(r"(?<=\d) (?=\d|Abs\.)|(?<=§) |(?<=\bAbs\.) |(?<=\bNr\.) ")

# --- text measuring -----------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _width(text: str, font: str, size: float) -> float:
    return float(pdfmetrics.stringWidth(text, font, size))


@lru_cache(maxsize=16384)
def _wrap(text: str, font: str, size: float, width: float) -> tuple[str, ...]:
    """Lines of at most ``width``, broken at spaces, but not inside "§ 7", "Abs. 1" or
    a phone number; a word longer than a line is broken between characters."""
    words = [w.replace(_NBSP, " ") for w in _NO_BREAK.sub(_NBSP, text).split(" ") if w]
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if current and _width(candidate, font, size) > width:
            lines.append(current)
            candidate = word
        while len(candidate) > 1 and _width(candidate, font, size) > width:
            cut = len(candidate) - 1
            while cut > 1 and _width(candidate[:cut], font, size) > width:
                cut -= 1
            lines.append(candidate[:cut])
            candidate = candidate[cut:]
        current = candidate
    return (*lines, current)


def _fit(text: str, font: str, size: float, width: float, min_size: float) -> tuple[str, float]:
    """A line that is too wide shrinks down to ``min_size``, below that it is cut with …"""
    natural = _width(text, font, size)
    if natural <= width:
        return text, size
    scaled = math.floor(size * width / natural * 10) / 10
    if scaled >= min_size:
        return text, scaled
    while text and _width(text + ELLIPSIS, font, min_size) > width:
        text = text[:-1]
    return text.rstrip() + ELLIPSIS, min_size


# --- layout of one letter -----------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    text: str
    font: _Font
    size: float
    x: float  # pt from the left edge
    height: float  # pt
    recurring: bool  # the same in every letter of this kind: drawn once as a form


@dataclass(frozen=True)
class _Block:
    lines: tuple[_Line, ...]
    gap_before: float  # pt; dropped at the top of a page
    keep_together: bool


Placed = list[tuple[float, _Line]]  # top of the line in pt from the top of the page
Band = tuple[float, float]  # a vertical stretch of page 1 where body text must not go


def _values(letter: LetterData) -> dict[str, str]:
    """The placeholder values, after refusing fields this kind of letter must never carry."""
    given = set(letter.fields)
    forbidden = sorted(given & _FORBIDDEN[letter.kind])
    if forbidden:
        raise ValueError(f"Ein Brief {letter.kind.value} darf {', '.join(forbidden)} nicht tragen")
    unknown = sorted(given - ALLOWED_FIELDS[letter.kind])
    if unknown:
        raise ValueError(f"Unbekannte Felder für {letter.kind.value}: {', '.join(unknown)}")
    values = {"practice_name": letter.recipient.name, **letter.fields}
    values["letter_date"] = f"{letter.letter_date:%d.%m.%Y}"
    values["reference"] = letter.reference
    return values


def _fill(text: str, values: Mapping[str, str], optional: frozenset[str] = frozenset()) -> str:
    """The text with its placeholders filled; "" if it uses an optional value that is empty."""
    for name in _placeholders(text):
        value = values.get(name)
        if value is None:
            raise ValueError(f"Feld {name} fehlt")
        if not value.strip():
            if name in optional:
                return ""
            raise ValueError(f"Feld {name} ist leer")
    return text.format_map(values)


def _segment_lines(
    text: str, templates: LetterTemplates, x: float, width: float, recurring: bool
) -> list[_Line]:
    """One template line, wrapped: "**…**" is bold; "1. " or "– " starts a list item whose
    continuation lines are indented; a value with line breaks keeps them."""
    page = templates.layout.page
    size, leading = page.body_size_pt, page.body_leading_pt
    font = templates.regular
    if len(text) > 4 and text.startswith("**") and text.endswith("**"):
        text, font = text[2:-2], templates.bold
    marker = _LIST_MARKER.match(text)
    indent = _width(marker.group(0), font.name, size) if marker else 0.0
    lines = []
    for part in text.split("\n"):
        for i, line in enumerate(_wrap(part, font.name, size, width - indent)):
            lines.append(_Line(line, font, size, x + (indent if i else 0.0), leading, recurring))
    return lines


def _blocks(
    letter: LetterData, templates: LetterTemplates, values: Mapping[str, str]
) -> list[_Block]:
    """Salutation, paragraphs and closing as blocks of wrapped lines, before pagination."""
    layout = templates.layout
    template = templates.kinds[letter.kind]
    optional = OPTIONAL_FIELDS.get(letter.kind, frozenset())
    x = layout.page.margin_left_mm * MM
    width = PAGE_WIDTH - x - layout.page.margin_right_mm * MM

    def block(texts: Iterable[str], gap: float, keep: bool = False) -> _Block:
        lines = []
        for segment in (s for text in texts for s in text.split("\n")):
            filled = _fill(segment, values, optional)
            # An empty optional value drops its own line, not the whole paragraph.
            if filled or not segment:
                recurring = not _placeholders(segment)
                lines += _segment_lines(filled, templates, x, width, recurring)
        # Short paragraphs are not split over two pages.
        return _Block(tuple(lines), gap, keep or len(lines) <= 3)

    blocks = [block([template.salutation], 0.0)]
    blocks += [block([p], layout.page.paragraph_gap_pt) for p in template.paragraphs]
    blocks.append(block(layout.closing.lines, layout.closing.gap_before_pt, keep=True))
    return [b for b in blocks if b.lines]


def _below(top: float, height: float, avoid: Iterable[Band]) -> float:
    for start, end in avoid:
        if top < end and top + height > start:
            top = end
    return top


def _fits(block: _Block, y: float, bottom: float, avoid: tuple[Band, ...]) -> bool:
    for i, line in enumerate(block.lines):
        y = _below(y + (block.gap_before if i == 0 else 0.0), line.height, avoid)
        if y + line.height > bottom:
            return False
        y += line.height
    return True


def _paginate(
    blocks: Iterable[_Block],
    *,
    first_top: float,
    bottom: float,
    next_top: float,
    avoid: tuple[Band, ...],
) -> list[Placed]:
    """Place lines from ``first_top`` down; a page ends at ``bottom``, the next starts at
    ``next_top``. Bands in ``avoid`` (the security field) are skipped on page 1."""
    pages: list[Placed] = [[]]
    y = first_top
    for block in blocks:
        bands = avoid if len(pages) == 1 else ()
        if block.keep_together and pages[-1] and not _fits(block, y, bottom, bands):
            pages.append([])
            y = next_top
        for i, line in enumerate(block.lines):
            bands = avoid if len(pages) == 1 else ()
            top = _below(
                y + (block.gap_before if i == 0 and pages[-1] else 0.0), line.height, bands
            )
            if top + line.height > bottom and pages[-1]:
                pages.append([])
                top = next_top
            pages[-1].append((top, line))
            y = top + line.height
    return pages


def _subject_lines(subject: str, templates: LetterTemplates, recurring: bool) -> list[_Line]:
    layout = templates.layout
    x = layout.page.margin_left_mm * MM
    width = PAGE_WIDTH - x - layout.page.margin_right_mm * MM
    size = layout.subject.size_pt
    wrapped = _wrap(subject, templates.bold.name, size, width)
    return [_Line(line, templates.bold, size, x, size * 1.3, recurring) for line in wrapped]


def _security_band(field: _SecurityField) -> Band:
    above = field.cover_label_size_pt * 1.5 if field.cover_field else 0.0
    return (field.y_mm * MM - above - 3 * MM, (field.y_mm + field.height_mm + 3) * MM)


def _address_lines(recipient: Address, font: str, window: _Window) -> list[tuple[str, float]]:
    """The recipient in at most five lines, each shrunk or cut to the window's width."""
    size = window.address_size_pt
    width = (window.width_mm - window.inset_left_mm - window.inset_right_mm) * MM
    name = list(_wrap(recipient.name, font, size, width))
    if len(name) > 2:
        name = [name[0], " ".join(name[1:])]
    extra = [recipient.extra] if recipient.extra and recipient.extra.strip() else []
    lines = [*name, *extra, recipient.street, f"{recipient.zip_code} {recipient.city}"]
    return [_fit(line.strip(), font, size, width, window.min_size_pt) for line in lines]
