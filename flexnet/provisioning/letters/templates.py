"""Reading ``letters/*.toml`` into LetterTemplates, refusing anything doubtful.

Templates are edited by IT staff, not developers, so every mistake that would only
show on paper (an unknown or forbidden placeholder, a password letter on plain paper,
a block that leaves the page or collides with the address window, a font without
German glyphs) is a ConfigError naming the file, raised before a single letter is
drawn.
"""

from __future__ import annotations

import hashlib
import math
import string
import tomllib
import typing
from collections.abc import Iterable
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import reportlab
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont

from flexnet import resources
from flexnet.errors import ConfigError
from flexnet.models import LetterKind
from flexnet.provisioning.letters.schema import (
    _FIELD_ONLY,
    ALLOWED_FIELDS,
    COMMON_FIELDS,
    MM,
    OPTIONAL_FIELDS,
    SECURITY_PAPER,
    LetterTemplates,
    _Font,
    _KindTemplate,
    _Layout,
    _secret_row,
    _SecretLine,
)

# Characters every text font must have; the letters are German.
_REQUIRED_GLYPHS = "äöüÄÖÜß€§–·„“"


def default_letters_dir() -> Path:
    """The letters shipped with flexnet (the repository's ``letters/``)."""
    return resources.letters_dir()


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
