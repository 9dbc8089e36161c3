"""What a letter carries and what its templates may say, as frozen dataclasses.

The placeholder rules per letter kind live here, next to the data they govern, so that
the loader (which refuses templates that break them) and the layout (which refuses
letter data that breaks them) read the same sets. The ``layout.toml`` sections are one
dataclass each; their field names carry the unit, which the loader checks ranges by.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from flexnet.models import LetterKind

MM = 72 / 25.4  # PDF points per millimetre
PAGE_WIDTH = 210 * MM
PAGE_HEIGHT = 297 * MM

COMMON_FIELDS = frozenset({"practice_name", "bsnr", "letter_date", "reference"})
_LOGIN = frozenset({"username", "password", "user_name", "valid_until"})
ALLOWED_FIELDS: Mapping[LetterKind, frozenset[str]] = {
    LetterKind.KEY: COMMON_FIELDS | {"serial"},
    LetterKind.CREDENTIALS: COMMON_FIELDS | _LOGIN,
    LetterKind.NEW_PASSWORD: COMMON_FIELDS | _LOGIN | {"key_replaced_on"},
    LetterKind.LOCK: COMMON_FIELDS
    | {"username", "serial", "reason", "effective_date", "return_address", "legal_ground"},
    LetterKind.LOSS_CONFIRMATION: COMMON_FIELDS | {"serial", "fee", "reported_on"},
    LetterKind.LOCK_NOTICE: COMMON_FIELDS
    | {"practice_scope", "username", "serial", "reason", "last_day", "effective_date"}
    | {"return_address", "legal_ground", "exception_by"},
    LetterKind.RETURN_REMINDER: COMMON_FIELDS | {"serial", "locked_on", "return_address"},
    LetterKind.TERMS: COMMON_FIELDS | {"version", "effective_date", "accept_by"},
}
# May be empty: a line of the template that uses an empty one is left out.
OPTIONAL_FIELDS: Mapping[LetterKind, frozenset[str]] = {
    LetterKind.NEW_PASSWORD: frozenset({"key_replaced_on"}),
    LetterKind.LOCK: frozenset({"username", "serial", "reason", "legal_ground"}),
    LetterKind.LOSS_CONFIRMATION: frozenset({"serial"}),
    # exception_by: only the automatic lock (§ 10.3) offers an exception (sentence 2).
    LetterKind.LOCK_NOTICE: frozenset(
        {"practice_scope", "username", "serial", "reason", "legal_ground", "exception_by"}
    ),
}
# Refused even if a template were changed to allow them (§ 3.2).
_FORBIDDEN: Mapping[LetterKind, frozenset[str]] = {
    LetterKind.KEY: frozenset({"password"}),
    LetterKind.LOCK: frozenset({"password"}),
    LetterKind.LOSS_CONFIRMATION: frozenset({"password"}),
    LetterKind.LOCK_NOTICE: frozenset({"password"}),
    LetterKind.RETURN_REMINDER: frozenset({"password"}),
    LetterKind.TERMS: frozenset({"password"}),
    LetterKind.CREDENTIALS: frozenset({"serial", "public_id"}),
    LetterKind.NEW_PASSWORD: frozenset({"serial", "public_id"}),
}
SECURITY_PAPER = frozenset({LetterKind.CREDENTIALS, LetterKind.NEW_PASSWORD})
_FIELD_ONLY = "password"  # printed in the security field and nowhere else


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


def _secret_row(field: _SecurityField) -> float:
    """Height of one [[secret]] line in pt; the loader and the drawing must agree on it."""
    return field.secret_size_pt * 1.5


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
