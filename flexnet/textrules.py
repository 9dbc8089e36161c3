"""Free text that people type: names, addresses, reasons, notes, messages.

Text is cleaned on the way in, by the domain, so that the admin UI, the API and the CLI
store the same thing: no control or format characters (NUL, ESC, bidi overrides,
zero-width marks), one line where one line is meant, and a maximum length. What cannot
be cleaned is a ``ValidationError`` that names the field in German. Text that was stored
before these rules, or that comes from machines (RADIUS attributes), is made harmless
where it is shown: ``visible``.
"""

from __future__ import annotations

import unicodedata

from flexnet.errors import ValidationError

# Lock, unlock and termination reasons: printed on lock letters and notices, which must
# stay one page with the longest practice name (test_letters.py).
REASON_MAX_LENGTH = 300

_NAMES = {"Cc": "ein Steuerzeichen", "Cf": "ein unsichtbares Formatzeichen"}


def clean_line(value: str, *, field: str, max_length: int) -> str:
    """One line of text: runs of white space (tabs and line breaks too) become one space,
    the ends are trimmed; empty, too long, or holding a control or format character is an
    error naming ``field``."""
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if not text:
        raise ValidationError(f"{field} darf nicht leer sein")
    _check_characters(text, field)
    _check_length(text, field, max_length)
    return text


def optional_line(value: str | None, *, field: str, max_length: int) -> str | None:
    """``clean_line`` for a field that may be left empty: None when it is."""
    if value is None or not value.strip():
        return None
    return clean_line(value, field=field, max_length=max_length)


def clean_text(
    value: str, *, field: str, max_length: int, max_lines: int, required: bool = True
) -> str:
    """Several lines of text: every kind of line break (CR LF, CR, U+2028 …) becomes LF,
    white space within a line is collapsed, empty lines at the start and end are dropped.
    Too many lines, too long, or a control or format character is an error."""
    lines = [" ".join(line.split()) for line in unicodedata.normalize("NFC", value).splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    if not lines:
        if required:
            raise ValidationError(f"{field} darf nicht leer sein")
        return ""
    for line in lines:
        _check_characters(line, field)
    if len(lines) > max_lines:
        raise ValidationError(f"{field} hat zu viele Zeilen (höchstens {max_lines})")
    text = "\n".join(lines)
    _check_length(text, field, max_length)
    return text


def _check_characters(text: str, field: str) -> None:
    if text.isprintable():
        return
    bad = next(ch for ch in text if not ch.isprintable())
    what = _NAMES.get(unicodedata.category(bad), "ein nicht druckbares Zeichen")
    raise ValidationError(
        f"{field} enthält {what} (U+{ord(bad):04X}); bitte ohne dieses Zeichen eingeben"
    )


def _check_length(text: str, field: str, max_length: int) -> None:
    if len(text) > max_length:
        raise ValidationError(
            f"{field} ist zu lang: {len(text)} Zeichen, höchstens {max_length} sind möglich"
        )


# Control, format (bidi marks, zero-width), line and paragraph separators and lone
# surrogates; tab and newline stay as they are.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def visible(value: object) -> str:
    """Text for a page or a terminal with control and bidi characters shown as \\xNN or
    \\uNNNN instead of acting (an ESC sequence setting a terminal's title, U+202E turning
    a line around): for what was stored before these rules or comes from machines."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(_shown(ch) for ch in text)


def _shown(ch: str) -> str:
    if ch in "\t\n" or unicodedata.category(ch) not in _INVISIBLE:
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
