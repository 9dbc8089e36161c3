"""Letters as one PDF: DIN 5008 form B on A4, for window envelopes.

Wording and layout are data in the repository's ``letters/`` directory (TOML), so IT
staff can change a sentence or move the security field without touching code. The
renderer draws on reportlab's canvas directly (no platypus): each letter is laid out
first, so that "Seite x von y" is known, then drawn, and a mail run of thousands of
letters takes seconds.

What a letter may print is decided here, not in the templates: each kind has a fixed
set of placeholders, so a key letter can never show a password and a credentials
letter never a key serial (§ 3.2: key and password travel separately).
"""

from __future__ import annotations

import hashlib
import math
import re
import string
import tomllib
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import reportlab  # type: ignore[import-untyped]
from reportlab import rl_config
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.ttfonts import TTFError, TTFont  # type: ignore[import-untyped]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]

from flexnet.errors import ConfigError
from flexnet.models import LetterKind

MM = 72 / 25.4  # PDF points per millimetre
PAGE_WIDTH = 210 * MM
PAGE_HEIGHT = 297 * MM
ELLIPSIS = "…"

COMMON_FIELDS = frozenset({"practice_name", "bsnr", "letter_date", "reference"})
_LOGIN = frozenset({"username", "password", "user_name", "valid_until"})
ALLOWED_FIELDS: Mapping[LetterKind, frozenset[str]] = {
    LetterKind.KEY: COMMON_FIELDS | {"serial"},
    LetterKind.CREDENTIALS: COMMON_FIELDS | _LOGIN,
    LetterKind.NEW_PASSWORD: COMMON_FIELDS | _LOGIN,
    LetterKind.LOCK: COMMON_FIELDS
    | {"username", "serial", "reason", "effective_date", "return_address"},
    LetterKind.LOSS_CONFIRMATION: COMMON_FIELDS | {"serial", "fee", "reported_on"},
}
# May be empty: a line of the template that uses an empty one is left out.
OPTIONAL_FIELDS: Mapping[LetterKind, frozenset[str]] = {
    LetterKind.LOCK: frozenset({"username", "serial", "reason"}),
    LetterKind.LOSS_CONFIRMATION: frozenset({"serial"}),
}
# Refused even if a template were changed to allow them (§ 3.2).
_FORBIDDEN: Mapping[LetterKind, frozenset[str]] = {
    LetterKind.KEY: frozenset({"password"}),
    LetterKind.LOCK: frozenset({"password"}),
    LetterKind.LOSS_CONFIRMATION: frozenset({"password"}),
    LetterKind.CREDENTIALS: frozenset({"serial", "public_id"}),
    LetterKind.NEW_PASSWORD: frozenset({"serial", "public_id"}),
}
SECURITY_PAPER = frozenset({LetterKind.CREDENTIALS, LetterKind.NEW_PASSWORD})
_FIELD_ONLY = "password"  # printed in the security field and nowhere else
# Characters every text font must have; the letters are German.
_REQUIRED_GLYPHS = "äöüÄÖÜß€§–·„“"
_LIST_MARKER = re.compile(r"^(?:\d+\.|[-–•])\s+")
_NBSP = "\u00a0"
_SECRET_SPACING = 1.0  # pt between the characters of a password, so each one stands apart
_NO_BREAK = re.compile(r"(?<=\d) (?=\d|Abs\.)|(?<=§) |(?<=\bAbs\.) |(?<=\bNr\.) ")


@dataclass(frozen=True)
class Address:
    name: str  # practice name (recipient line 1)
    extra: str | None  # e.g. "z. Hd. Dr. Muster"
    street: str
    zip_code: str
    city: str


@dataclass(frozen=True)
class LetterData:
    kind: LetterKind
    recipient: Address
    letter_date: date
    reference: str  # "Unser Zeichen", e.g. "FN-000123"
    fields: Mapping[str, str]  # placeholder values for the kind's template


# --- layout.toml: one dataclass per section; units in the field names ---------------------


@dataclass(frozen=True)
class _Fonts:
    regular: str
    bold: str
    secret: str


@dataclass(frozen=True)
class _Page:
    margin_left_mm: float
    margin_right_mm: float
    body_size_pt: float
    body_leading_pt: float
    paragraph_gap_pt: float
    body_bottom_mm: float


@dataclass(frozen=True)
class _Letterhead:
    y_mm: float
    title: str
    title_size_pt: float
    subtitle: str
    subtitle_size_pt: float
    rule_y_mm: float


@dataclass(frozen=True)
class _Window:
    x_mm: float
    y_mm: float
    width_mm: float
    height_mm: float
    inset_left_mm: float
    inset_right_mm: float
    return_line: str
    return_top_mm: float
    return_size_pt: float
    address_top_mm: float
    address_size_pt: float
    address_leading_pt: float
    min_size_pt: float


@dataclass(frozen=True)
class _InfoBlock:
    x_mm: float
    y_mm: float
    size_pt: float
    leading_pt: float
    lines: tuple[str, ...]


@dataclass(frozen=True)
class _Subject:
    y_mm: float
    size_pt: float
    gap_after_pt: float


@dataclass(frozen=True)
class _Closing:
    gap_before_pt: float
    lines: tuple[str, ...]


@dataclass(frozen=True)
class _Continuation:
    y_mm: float
    size_pt: float
    text: str
    rule_y_mm: float
    body_top_mm: float


@dataclass(frozen=True)
class _Footer:
    rule_y_mm: float
    y_mm: float
    size_pt: float
    leading_pt: float
    lines: tuple[str, ...]
    page_label: str


@dataclass(frozen=True)
class _Marks:
    x_mm: float
    fold_mm: tuple[float, ...]
    fold_length_mm: float
    punch_mm: float
    punch_length_mm: float
    width_pt: float


@dataclass(frozen=True)
class _SecurityField:
    x_mm: float
    y_mm: float
    width_mm: float
    height_mm: float
    padding_mm: float
    label_size_pt: float
    secret_size_pt: float
    min_secret_size_pt: float
    cover_field: bool
    cover_label: str
    cover_label_size_pt: float


@dataclass(frozen=True)
class _Layout:
    fonts: _Fonts
    page: _Page
    letterhead: _Letterhead
    window: _Window
    info_block: _InfoBlock
    subject: _Subject
    closing: _Closing
    continuation: _Continuation
    footer: _Footer
    marks: _Marks
    security_field: _SecurityField


@dataclass(frozen=True)
class _SecretLine:
    label: str
    value: str


@dataclass(frozen=True)
class _KindTemplate:
    paper: str
    subject: str
    salutation: str
    paragraphs: tuple[str, ...]
    secret: tuple[_SecretLine, ...]


@dataclass(frozen=True)
class _Font:
    name: str  # as registered with reportlab
    ascent: float  # of 1 pt of size: where the baseline sits below the top of a line


@dataclass(frozen=True)
class LetterTemplates:
    """Loaded wording and layout with registered fonts; opaque to callers."""

    layout: _Layout
    kinds: Mapping[LetterKind, _KindTemplate]
    regular: _Font
    bold: _Font
    secret: _Font


def default_letters_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "letters"


# --- loading and validation ---------------------------------------------------------------

_T = TypeVar("_T")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(str(path), "fehlt") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), f"ist kein gültiges TOML: {exc}") from None


def _convert(value: object, kind: object, where: str, path: Path) -> object:
    """One TOML value as the dataclass field's type, or a ConfigError naming it."""
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(str(path), f"{where}: muss eine endliche Zahl sein")
        return float(value)
    if kind in (str, bool) and type(value) is kind:
        return value
    if typing.get_origin(kind) is tuple and isinstance(value, list):
        item = typing.get_args(kind)[0]
        return tuple(_convert(v, item, f"{where}[{i}]", path) for i, v in enumerate(value))
    name = getattr(kind, "__name__", str(kind))
    raise ConfigError(str(path), f"{where}: erwartet {name}, gefunden {value!r}")


def _section(cls: type[_T], raw: object, where: str, path: Path) -> _T:
    """Build a layout section from its TOML table; unknown keys are refused (typos)."""
    if not isinstance(raw, dict):
        raise ConfigError(str(path), f"Abschnitt [{where}] fehlt")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ConfigError(str(path), f"[{where}]: unbekannte Schlüssel {', '.join(unknown)}")
    missing = [name for name in names if name not in raw]
    if missing:
        raise ConfigError(str(path), f"[{where}]: es fehlt {', '.join(missing)}")
    values = {n: _convert(raw[n], hints[n], f"[{where}] {n}", path) for n in names}
    return cls(**values)


@lru_cache(maxsize=1024)
def _placeholders(text: str) -> frozenset[str]:
    """The {names} a text uses; only plain names, no format specs or attribute access."""
    names = set()
    for _literal, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"Platzhalter {{{name}}} hat eine unzulässige Form")
        names.add(name)
    return frozenset(names)


def _check_placeholders(texts: Iterable[str], allowed: frozenset[str], path: Path) -> None:
    for text in texts:
        try:
            used = _placeholders(text)
        except ValueError as exc:
            raise ConfigError(str(path), f"{exc} in {text!r}") from None
        unknown = sorted(used - allowed)
        if unknown:
            names = ", ".join(f"{{{name}}}" for name in unknown)
            raise ConfigError(str(path), f"Platzhalter {names} ist hier nicht erlaubt")


def _load_font(spec: str, directory: Path, layout_path: Path) -> _Font:
    """Register a TrueType font once; "reportlab:" names a font bundled with reportlab."""
    if spec.startswith("reportlab:"):
        path = Path(reportlab.__file__).parent / "fonts" / spec.removeprefix("reportlab:")
    else:
        path = directory / spec
    path = path.resolve()
    # Named by file, so the same file serves every role with one embedded subset.
    name = f"flexnet-{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    try:
        font = TTFont(name, str(path))
    except (OSError, TTFError) as exc:
        raise ConfigError(str(layout_path), f"Schrift {spec} nicht ladbar: {exc}") from None
    glyphs = font.face.charToGlyph
    needed = _REQUIRED_GLYPHS + string.ascii_letters + string.digits + string.punctuation
    missing = "".join(ch for ch in needed if ord(ch) not in glyphs)
    if missing:
        raise ConfigError(str(layout_path), f"Schrift {spec} fehlen die Zeichen {missing}")
    pdfmetrics.registerFont(font)
    return _Font(name, float(font.face.ascent) / 1000)


def _load_layout(path: Path) -> _Layout:
    raw = _read_toml(path)
    sections = {f.name for f in fields(_Layout)}
    unknown = sorted(set(raw) - sections)
    if unknown:
        raise ConfigError(str(path), f"unbekannte Abschnitte {', '.join(unknown)}")
    hints = typing.get_type_hints(_Layout)
    parts = {name: _section(hints[name], raw.get(name), name, path) for name in sorted(sections)}
    layout = _Layout(**parts)
    _check_geometry(layout, path)
    texts = [
        layout.letterhead.title,
        layout.letterhead.subtitle,
        layout.window.return_line,
        *layout.info_block.lines,
        *layout.closing.lines,
        layout.continuation.text,
        *layout.footer.lines,
        layout.security_field.cover_label,
    ]
    _check_placeholders(texts, COMMON_FIELDS, path)
    _check_placeholders([layout.footer.page_label], frozenset({"page", "pages"}), path)
    return layout


def _check_geometry(layout: _Layout, path: Path) -> None:
    """Refuse positions that cannot work: outside the page, or where the text collides."""
    problems = []
    for section in (getattr(layout, f.name) for f in fields(layout)):
        for f in fields(section):
            value = getattr(section, f.name)
            values = value if isinstance(value, tuple) else (value,)
            if f.name.endswith("_mm") and not all(0 <= v <= 297 for v in values):
                problems.append(f"{f.name} = {value} liegt nicht auf der Seite")
            if f.name.endswith("_pt") and not all(0 <= v <= 72 for v in values):
                problems.append(f"{f.name} = {value} liegt nicht zwischen 0 und 72 pt")
            if f.name.endswith("size_pt") and not all(v >= 5 for v in values):
                problems.append(f"{f.name} = {value} ist kleiner als 5 pt")
    window, page, field = layout.window, layout.page, layout.security_field
    if window.x_mm + window.width_mm > 210 or window.y_mm + window.height_mm > 297:
        problems.append("das Anschriftfeld ragt über die Seite hinaus")
    address_mm = window.address_top_mm + 6 * window.address_leading_pt / MM
    if address_mm > window.height_mm:
        problems.append("sechs Anschriftzeilen passen nicht in das Anschriftfeld")
    if window.min_size_pt > min(window.address_size_pt, window.return_size_pt):
        problems.append("min_size_pt ist größer als die Schrift im Anschriftfeld")
    info = layout.info_block
    if info.y_mm + len(info.lines) * info.leading_pt / MM > layout.subject.y_mm:
        problems.append("der Infoblock reicht bis in den Betreff")
    if page.margin_left_mm + page.margin_right_mm > 150:
        problems.append("die Ränder lassen keinen Platz für den Text")
    if not layout.subject.y_mm < page.body_bottom_mm < layout.footer.rule_y_mm:
        problems.append("Betreff, Textende und Fußzeile liegen nicht untereinander")
    if layout.continuation.body_top_mm >= page.body_bottom_mm:
        problems.append("auf Folgeseiten bleibt kein Platz für Text")
    if field.x_mm + field.width_mm > 210 or field.y_mm + field.height_mm > page.body_bottom_mm:
        problems.append("das Sicherheitsfeld liegt nicht im Textbereich der Seite")
    if field.y_mm < layout.subject.y_mm:
        problems.append("das Sicherheitsfeld liegt über dem Betreff (Fenster, Infoblock)")
    if field.min_secret_size_pt > field.secret_size_pt:
        problems.append("min_secret_size_pt ist größer als secret_size_pt")
    if problems:
        raise ConfigError(str(path), "; ".join(problems))


def _load_kind(path: Path, kind: LetterKind, layout: _Layout) -> _KindTemplate:
    raw = _read_toml(path)
    secret_raw = raw.pop("secret", [])
    if not isinstance(secret_raw, list):
        raise ConfigError(str(path), "secret muss eine Liste von [[secret]]-Tabellen sein")
    secret = tuple(
        _section(_SecretLine, s, f"[secret] {i}", path) for i, s in enumerate(secret_raw)
    )
    template = _section(_KindTemplate, {**raw, "secret": []}, kind.value, path)
    template = _KindTemplate(**{**template.__dict__, "secret": secret})
    allowed = ALLOWED_FIELDS[kind] - {_FIELD_ONLY}
    _check_placeholders(template.paragraphs, allowed, path)
    # These lines cannot be left out, so they cannot use a value that may be empty.
    required = allowed - OPTIONAL_FIELDS.get(kind, frozenset())
    fixed = [template.subject, template.salutation, *(line.label for line in secret)]
    _check_placeholders(fixed, required, path)
    _check_placeholders([line.value for line in secret], required | {_FIELD_ONLY}, path)
    _check_paper(template, kind, layout, path)
    return template


def _check_paper(template: _KindTemplate, kind: LetterKind, layout: _Layout, path: Path) -> None:
    """Password letters go on security paper with the password in its field, others not."""
    if template.paper not in ("plain", "security"):
        raise ConfigError(str(path), 'paper muss "plain" oder "security" sein')
    if kind not in SECURITY_PAPER:
        if template.paper != "plain" or template.secret:
            raise ConfigError(str(path), 'braucht paper = "plain" und keinen [[secret]]-Block')
        return
    if template.paper != "security":
        raise ConfigError(str(path), 'braucht paper = "security" (§ 3.2)')
    if not any(_FIELD_ONLY in _placeholders(line.value) for line in template.secret):
        raise ConfigError(str(path), "der [[secret]]-Block muss {password} enthalten")
    field = layout.security_field
    needed = 2 * field.padding_mm + len(template.secret) * _secret_row(field) / MM
    if needed > field.height_mm:
        raise ConfigError(str(path), "der [[secret]]-Block passt nicht in das Sicherheitsfeld")


def load_templates(directory: Path) -> LetterTemplates:
    """Read layout.toml and one <kind>.toml per letter kind; refuse anything doubtful."""
    layout_path = directory / "layout.toml"
    layout = _load_layout(layout_path)
    fonts = layout.fonts
    regular = _load_font(fonts.regular, directory, layout_path)
    bold = _load_font(fonts.bold, directory, layout_path)
    secret = _load_font(fonts.secret, directory, layout_path)
    kinds = {
        kind: _load_kind(directory / f"{kind.value}.toml", kind, layout) for kind in LetterKind
    }
    return LetterTemplates(layout, kinds, regular, bold, secret)


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


def _secret_row(field: _SecurityField) -> float:
    return field.secret_size_pt * 1.5


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
        natural = _width(value, secret.name, size)
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
