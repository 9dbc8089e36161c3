"""Drawing laid-out letters on reportlab's canvas, and ``render``, the entry point.

Coordinates are top-down in pt, as the layout computes them; only the painter turns
them into PDF's bottom-up ones. Page furniture and recurring sentences become PDF
forms drawn once per run (see _Painter).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO

from reportlab import rl_config
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas

from flexnet.provisioning.letters.layout import (
    Placed,
    _address_lines,
    _blocks,
    _fill,
    _fit,
    _Line,
    _paginate,
    _security_band,
    _subject_lines,
    _values,
    _width,
)
from flexnet.provisioning.letters.schema import (
    MM,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    SECURITY_PAPER,
    Address,
    LetterData,
    LetterTemplates,
    _Font,
    _KindTemplate,
    _secret_row,
)
from flexnet.provisioning.letters.templates import _placeholders

_SECRET_SPACING = 1.0  # pt between the characters of a password, so each one stands apart

# --- drawing ------------------------------------------------------------------------------

_PAGE_LABEL_SAMPLE = {"page": "99", "pages": "99"}  # the widest label a footer leaves room for


class _Painter:
    """The canvas, with top-down coordinates and a cache of forms.

    What recurs in many letters (the page furniture, template sentences) is drawn once
    as a PDF form and then only referenced: reportlab spends most of its time encoding
    strings, so this makes a mail run several times faster and its file smaller.
    """

    def __init__(self, canvas: Canvas, templates: LetterTemplates) -> None:
        self.canvas = canvas
        self.templates = templates
        self.left = templates.layout.page.margin_left_mm * MM
        self.right = PAGE_WIDTH - templates.layout.page.margin_right_mm * MM
        self._forms: dict[object, str] = {}
        self._placements = {first: _placements(templates, first) for first in (True, False)}

    def text(
        self, text: str, font: _Font, size: float, x: float, top: float, spacing: float = 0.0
    ) -> None:
        """One line whose top (not its baseline) is ``top`` pt below the top of the page."""
        if text:
            self.canvas.setFont(font.name, size)
            baseline = PAGE_HEIGHT - top - font.ascent * size
            self.canvas.drawString(x, baseline, text, charSpace=spacing)

    def rule(self, x1: float, x2: float, top: float, width: float = 0.5) -> None:
        self.canvas.setLineWidth(width)
        self.canvas.line(x1, PAGE_HEIGHT - top, x2, PAGE_HEIGHT - top)

    def form(self, key: object, draw: Callable[[], None], *, top: float = 0.0) -> None:
        """Draw ``draw`` once as a form, then place it with its origin ``top`` pt lower."""
        name = self._forms.get(key)
        canvas = self.canvas
        if name is None:
            name = self._forms[key] = f"form{len(self._forms)}"
            canvas.beginForm(name)
            draw()
            canvas.endForm()
        if top:
            canvas.saveState()
            canvas.translate(0, -top)
            canvas.doForm(name)
            canvas.restoreState()
        else:
            canvas.doForm(name)

    def lines(self, placed: Placed) -> None:
        """Body lines; each run of lines that recur in other letters becomes one form."""
        run: Placed = []
        for top, line in placed:
            if line.recurring:
                run.append((top, line))
            else:
                self._run(run)
                run = []
                self.text(line.text, line.font, line.size, line.x, top)
        self._run(run)

    def _run(self, run: Placed) -> None:
        if not run:
            return
        first = run[0][0]
        shape = tuple((ln.text, ln.font, ln.size, ln.x, round(top - first, 2)) for top, ln in run)
        self.form(shape, partial(self._draw_shape, shape), top=first)

    def _draw_shape(self, shape: tuple[tuple[str, _Font, float, float, float], ...]) -> None:
        for text, font, size, x, offset in shape:
            self.text(text, font, size, x, offset)

    def furniture(self, first_page: bool, values: Mapping[str, str]) -> None:
        """Marks, rules and layout texts; those without a placeholder are one shared form."""
        placements = self._placements[first_page]
        self.form(("furniture", first_page), partial(self._furniture, first_page, placements))
        for placement in placements:
            if _placeholders(placement.text):
                self.place(placement, values)

    def _furniture(self, first_page: bool, placements: list[_Placement]) -> None:
        layout = self.templates.layout
        marks = layout.marks
        x = marks.x_mm * MM
        for fold in marks.fold_mm:
            self.rule(x, x + marks.fold_length_mm * MM, fold * MM, marks.width_pt)
        self.rule(x, x + marks.punch_length_mm * MM, marks.punch_mm * MM, marks.width_pt)
        head = layout.letterhead.rule_y_mm if first_page else layout.continuation.rule_y_mm
        self.rule(self.left, self.right, head * MM)
        self.rule(self.left, self.right, layout.footer.rule_y_mm * MM)
        for placement in placements:
            if not _placeholders(placement.text):
                self.place(placement, {})

    def place(self, placement: _Placement, values: Mapping[str, str]) -> None:
        """A text from layout.toml, filled, then shrunk or cut to its width."""
        font, min_size = placement.font, self.templates.layout.window.min_size_pt
        text = _fill(placement.text, values)
        text, size = _fit(text, font.name, placement.size, placement.width, min_size)
        self.text(text, font, size, placement.x, placement.top)
        if placement.underline and text:
            underline = placement.top + size * (font.ascent + 0.3)
            self.rule(placement.x, placement.x + _width(text, font.name, size), underline, 0.3)


@dataclass(frozen=True)
class _Placement:
    """A text from layout.toml at its place on the page."""

    text: str  # may contain placeholders
    font: _Font
    size: float
    x: float
    top: float
    width: float
    underline: bool = False


def _placements(templates: LetterTemplates, first_page: bool) -> list[_Placement]:
    layout, regular, bold = templates.layout, templates.regular, templates.bold
    left = layout.page.margin_left_mm * MM
    right = PAGE_WIDTH - layout.page.margin_right_mm * MM
    footer = layout.footer
    label = footer.page_label.format_map(_PAGE_LABEL_SAMPLE)
    footer_width = right - left - _width(label, regular.name, footer.size_pt) - 5 * MM
    placed = [
        _Placement(
            line,
            regular,
            footer.size_pt,
            left,
            (footer.y_mm * MM) + i * footer.leading_pt,
            footer_width,
        )
        for i, line in enumerate(footer.lines)
    ]
    if not first_page:
        cont = layout.continuation
        return [
            _Placement(cont.text, regular, cont.size_pt, left, cont.y_mm * MM, right - left),
            *placed,
        ]
    head, window, info = layout.letterhead, layout.window, layout.info_block
    top = head.y_mm * MM
    placed.append(_Placement(head.title, bold, head.title_size_pt, left, top, right - left))
    top += head.title_size_pt * 1.3
    placed.append(
        _Placement(head.subtitle, regular, head.subtitle_size_pt, left, top, right - left)
    )
    x = (window.x_mm + window.inset_left_mm) * MM
    width = (window.width_mm - window.inset_left_mm - window.inset_right_mm) * MM
    top = (window.y_mm + window.return_top_mm) * MM
    placed.append(
        _Placement(window.return_line, regular, window.return_size_pt, x, top, width, True)
    )
    x = info.x_mm * MM
    for i, line in enumerate(info.lines):
        top = info.y_mm * MM + i * info.leading_pt
        placed.append(_Placement(line, regular, info.size_pt, x, top, right - x))
    return placed


def _draw_address(painter: _Painter, recipient: Address) -> None:
    window, regular = painter.templates.layout.window, painter.templates.regular
    x = (window.x_mm + window.inset_left_mm) * MM
    top = (window.y_mm + window.address_top_mm) * MM
    for line, size in _address_lines(recipient, regular.name, window):
        painter.text(line, regular, size, x, top)
        top += window.address_leading_pt


def _draw_secret(painter: _Painter, template: _KindTemplate, values: Mapping[str, str]) -> None:
    """Username and password in the paper's security field, and nowhere else."""
    templates = painter.templates
    field, regular, secret = templates.layout.security_field, templates.regular, templates.secret
    pad = field.padding_mm * MM
    x, width = field.x_mm * MM + pad, field.width_mm * MM - 2 * pad
    label_size = field.label_size_pt
    labels = [_fill(line.label, values) for line in template.secret]
    label_width = 3 * MM + max(_width(label, regular.name, label_size) for label in labels)
    row = _secret_row(field)
    top = field.y_mm * MM + (field.height_mm * MM - len(labels) * row) / 2
    placed: Placed = []
    for label, line in zip(labels, template.secret, strict=True):
        value = _fill(line.value, values)
        size = field.secret_size_pt
        spacing = _SECRET_SPACING * (len(value) - 1)
        # Measured without _width's cache: a password must not outlive its letter in memory.
        natural = float(pdfmetrics.stringWidth(value, secret.name, size))
        if natural + spacing > width - label_width:
            size = math.floor(size * (width - label_width - spacing) / natural * 10) / 10
            if size < field.min_secret_size_pt:
                # Never cut a password: a letter with half of it is worse than none.
                raise ValueError(f"{label} passt nicht in das Sicherheitsfeld")
        # Label and value share a baseline in the middle of the row.
        baseline = top + (row - field.secret_size_pt) / 2 + secret.ascent * field.secret_size_pt
        recurring = not _placeholders(line.label)
        label_line = _Line(label, regular, label_size, x, row, recurring)
        placed.append((baseline - regular.ascent * label_size, label_line))
        value_top = baseline - secret.ascent * size
        painter.text(value, secret, size, x + label_width, value_top, _SECRET_SPACING)
        top += row
    painter.lines(placed)
    if field.cover_field:
        painter.canvas.setLineWidth(0.8)
        bottom = PAGE_HEIGHT - (field.y_mm + field.height_mm) * MM
        painter.canvas.rect(field.x_mm * MM, bottom, field.width_mm * MM, field.height_mm * MM)
        label_top = field.y_mm * MM - field.cover_label_size_pt * 1.4
        cover = _Placement(
            field.cover_label,
            regular,
            field.cover_label_size_pt,
            field.x_mm * MM,
            label_top,
            field.width_mm * MM,
        )
        painter.place(cover, values)


def _render_one(painter: _Painter, letter: LetterData) -> int:
    """Lay out one letter, then draw its pages; returns the number of pages."""
    templates = painter.templates
    layout, template = templates.layout, templates.kinds[letter.kind]
    values = _values(letter)
    recurring = not _placeholders(template.subject)
    subject = _subject_lines(_fill(template.subject, values), templates, recurring)
    top = layout.subject.y_mm * MM
    heading: Placed = []
    for line in subject:
        heading.append((top, line))
        top += line.height
    security = letter.kind in SECURITY_PAPER
    pages = _paginate(
        _blocks(letter, templates, values),
        first_top=top + layout.subject.gap_after_pt,
        bottom=layout.page.body_bottom_mm * MM,
        next_top=layout.continuation.body_top_mm * MM,
        avoid=(_security_band(layout.security_field),) if security else (),
    )
    footer, regular = layout.footer, templates.regular
    for number, placed in enumerate(pages, start=1):
        painter.furniture(number == 1, values)
        if number == 1:
            _draw_address(painter, letter.recipient)
            if security:
                _draw_secret(painter, template, values)
        painter.lines(heading + placed if number == 1 else placed)
        label = _fill(footer.page_label, {"page": str(number), "pages": str(len(pages))})
        x = painter.right - _width(label, regular.name, footer.size_pt)
        painter.text(label, regular, footer.size_pt, x, footer.y_mm * MM)
        painter.canvas.showPage()
    return len(pages)


def render(
    letters: Iterable[LetterData],
    out: BinaryIO,
    *,
    templates: LetterTemplates,
    progress: Callable[[int], None] | None = None,
) -> list[int]:
    """Write all letters, in order, as one PDF to ``out``; returns each letter's page count.

    Nothing is written to ``out`` unless every letter could be laid out: a refused field
    (ValueError) leaves it untouched. ``progress(1)`` is called after each letter.
    """
    # Streams stay binary: smaller, and reportlab's ASCII85 in pure Python is slow.
    # This is process-wide, but nothing in flexnet wants ASCII85.
    rl_config.useA85 = 0
    canvas = Canvas(
        out,
        pagesize=(PAGE_WIDTH, PAGE_HEIGHT),
        pageCompression=1,
        initialFontName=templates.regular.name,  # or Helvetica, not embedded, is listed
    )
    canvas.setTitle("KV-FlexNet – Briefe")
    canvas.setAuthor("Kassenärztliche Vereinigung Sachsen-Anhalt, IT-Service")
    canvas.setCreator("flexnet")
    painter = _Painter(canvas, templates)
    counts: list[int] = []
    for letter in letters:
        counts.append(_render_one(painter, letter))
        if progress is not None:
            progress(1)
    if not counts:
        raise ValueError("Keine Briefe zum Drucken")
    canvas.save()
    return counts
