"""The letter renderer, checked by reading the PDF back (pdfplumber, pypdf, pdftoppm).

Positions are compared in millimetres from the top-left corner of the page, as
DIN 5008 and letters/layout.toml give them.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tomllib
from collections.abc import Mapping
from datetime import date
from io import BytesIO
from pathlib import Path
from typing import Any

import pdfplumber
import pypdf
import pytest

from flexnet.errors import ConfigError
from flexnet.models import LetterKind
from flexnet.provisioning import letters
from flexnet.provisioning.letters import Address, LetterData, LetterTemplates

MM_PER_PT = 25.4 / 72
WINDOW = (20.0, 45.0, 105.0, 90.0)  # left, top, right, bottom in mm (DIN 5008 form B)
PASSWORD = "Kx7#pR2m!Vq9"
SERIAL = "24681357"
PUBLIC_ID = "ccccccbcgujh"
BSNR = "123456789"
RETURN_LINE = "KV Sachsen-Anhalt · IT-Service · Postfach 1664 · 39006 Magdeburg"
RECIPIENT = Address(
    name="Praxis Dr. Müller-Lüdenscheidt",
    extra="z. Hd. Frau Dr. Anna Müller-Lüdenscheidt",
    street="Straße des Friedens 12",
    zip_code="39104",
    city="Magdeburg",
)
LONG_RECIPIENT = Address(
    name=(
        "Überörtliche Berufsausübungsgemeinschaft für Allgemeinmedizin, Innere Medizin und "
        "Psychotherapie Dr. med. Friederike Müller-Lüdenscheidt-Wolkenstein und Kollegen"
    ),
    extra="z. Hd. Frau Prof. Dr. med. habil. Anna-Katharina Müller-Lüdenscheidt-Wolkenstein",
    street="Otto-von-Guericke-Straße 123a, Hinterhaus, 3. Obergeschoss links",
    zip_code="39104",
    city="Magdeburg-Stadtfeld-Ost",
)
LOGIN = {
    "username": "mueller-l01",
    "password": PASSWORD,
    "user_name": "Dr. Anna Müller-Lüdenscheidt",
    "valid_until": "01.04.2026",
}
FIELDS: Mapping[LetterKind, Mapping[str, str]] = {
    LetterKind.KEY: {"serial": SERIAL},
    LetterKind.CREDENTIALS: LOGIN,
    LetterKind.NEW_PASSWORD: LOGIN | {"key_replaced_on": ""},
    LetterKind.LOCK: {
        "username": "mueller-l01",
        "serial": SERIAL,
        "reason": "Kündigung durch die Praxis",
        "effective_date": "31.03.2026",
        "return_address": "KV Sachsen-Anhalt, IT-Service, Postfach 1664, 39006 Magdeburg",
        "legal_ground": "§ 10 Abs. 2 der Nutzungsbedingungen (Kündigung)",
    },
    LetterKind.LOSS_CONFIRMATION: {"serial": SERIAL, "fee": "45,00 €", "reported_on": "02.02.2026"},
    LetterKind.LOCK_NOTICE: {
        "practice_scope": "Praxis Dr. Müller (BSNR 881234500)",
        "username": "",
        "serial": SERIAL,
        "reason": "Ende der Tätigkeit am 15.11.2025 (§ 10.3)",
        "last_day": "31.12.2026",
        "effective_date": "01.01.2027",
        "return_address": "KV Sachsen-Anhalt, IT-Service, Postfach 1664, 39006 Magdeburg",
        "legal_ground": "§ 10 Abs. 3 der Nutzungsbedingungen",
        "exception_by": "31.12.2026",
    },
    LetterKind.RETURN_REMINDER: {
        "serial": SERIAL,
        "locked_on": "01.10.2026",
        "return_address": "KV Sachsen-Anhalt, IT-Service, Postfach 1664, 39006 Magdeburg",
    },
    LetterKind.TERMS: {
        "version": "2.0",
        "effective_date": "01.07.2030",
        "accept_by": "30.09.2030",
    },
}
PASSWORD_KINDS = [LetterKind.CREDENTIALS, LetterKind.NEW_PASSWORD]


@pytest.fixture(scope="module")
def templates() -> LetterTemplates:
    return letters.load_templates(letters.default_letters_dir())


@pytest.fixture
def letters_copy(tmp_path: Path) -> Path:
    """A copy of the shipped letters/ directory that a test may break."""
    return Path(shutil.copytree(letters.default_letters_dir(), tmp_path / "letters"))


def make_letter(
    kind: LetterKind, recipient: Address = RECIPIENT, reference: str = "FN-000123", **extra: str
) -> LetterData:
    fields = {"practice_name": recipient.name, "bsnr": BSNR, **FIELDS[kind], **extra}
    return LetterData(kind, recipient, date(2026, 2, 3), reference, fields)


def render(templates: LetterTemplates, *items: LetterData) -> tuple[bytes, list[int]]:
    out = BytesIO()
    pages = letters.render(items, out, templates=templates)
    return out.getvalue(), pages


def page_words(pdf: bytes, page: int = 0) -> list[dict[str, Any]]:
    """Words of one page with their box in mm from the top-left corner."""
    with pdfplumber.open(BytesIO(pdf)) as document:
        words = document.pages[page].extract_words(use_text_flow=True)
    for word in words:
        for key in ("x0", "x1", "top", "bottom"):
            word[key] = word[key] * MM_PER_PT
    return words


def page_texts(pdf: bytes) -> list[str]:
    with pdfplumber.open(BytesIO(pdf)) as document:
        return [page.extract_text() or "" for page in document.pages]


def inside(word: Mapping[str, Any], left: float, top: float, right: float, bottom: float) -> bool:
    return bool(
        word["x0"] >= left
        and word["x1"] <= right
        and word["top"] >= top
        and word["bottom"] <= bottom
    )


def overlaps(word: Mapping[str, Any], left: float, top: float, right: float, bottom: float) -> bool:
    return bool(
        word["x0"] < right and word["x1"] > left and word["top"] < bottom and word["bottom"] > top
    )


def window_text(words: list[dict[str, Any]]) -> str:
    """The text in the window, line by line; every word touching it must lie inside it."""
    touching = [w for w in words if overlaps(w, *WINDOW)]
    outside = [w["text"] for w in touching if not inside(w, *WINDOW)]
    assert outside == []
    lines: dict[int, list[dict[str, Any]]] = {}
    for word in touching:
        lines.setdefault(round(word["bottom"] * 2), []).append(word)
    return "\n".join(
        " ".join(w["text"] for w in sorted(line, key=lambda w: w["x0"]))
        for _, line in sorted(lines.items())
    )


def security_field(directory: Path) -> tuple[float, float, float, float]:
    with (directory / "layout.toml").open("rb") as handle:
        field = tomllib.load(handle)["security_field"]
    left, top = field["x_mm"], field["y_mm"]
    return left, top, left + field["width_mm"], top + field["height_mm"]


# --- the window envelope ------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LetterKind))
def test_return_line_and_recipient_lie_inside_the_window(
    templates: LetterTemplates, kind: LetterKind
) -> None:
    pdf, _ = render(templates, make_letter(kind))

    text = window_text(page_words(pdf))

    assert text.split("\n") == [
        RETURN_LINE,
        RECIPIENT.name,
        RECIPIENT.extra,
        RECIPIENT.street,
        "39104 Magdeburg",
    ]


@pytest.mark.parametrize("kind", [LetterKind.KEY, LetterKind.CREDENTIALS])
def test_a_very_long_address_is_shrunk_or_cut_but_stays_inside_the_window(
    templates: LetterTemplates, kind: LetterKind
) -> None:
    pdf, _ = render(templates, make_letter(kind, LONG_RECIPIENT))

    lines = window_text(page_words(pdf)).split("\n")

    assert lines[0] == RETURN_LINE
    assert lines[1].startswith("Überörtliche Berufsausübungsgemeinschaft")
    assert lines[-1] == "39104 Magdeburg-Stadtfeld-Ost"
    assert lines[-2].startswith("Otto-von-Guericke-Straße 123a")
    assert any(line.startswith("z. Hd. Frau Prof. Dr. med. habil.") for line in lines)


# --- what each kind may print -------------------------------------------------------------


def test_key_letter_shows_serial_and_bsnr_but_no_credentials(templates: LetterTemplates) -> None:
    pdf, pages = render(templates, make_letter(LetterKind.KEY))

    text = "\n".join(page_texts(pdf))
    assert pages == [1]
    assert f"Seriennummer des Yubikeys: {SERIAL}" in text
    assert f"BSNR: {BSNR}" in text
    assert "Kennwort:" not in text
    assert "Benutzername:" not in text


@pytest.mark.parametrize("kind", sorted(set(LetterKind) - set(PASSWORD_KINDS)))
def test_a_password_is_refused_for_letters_without_security_paper(
    templates: LetterTemplates, kind: LetterKind
) -> None:
    out = BytesIO()

    with pytest.raises(ValueError, match="password"):
        letters.render([make_letter(kind, password=PASSWORD)], out, templates=templates)
    assert out.getvalue() == b""  # nothing half-written


@pytest.mark.parametrize("kind", PASSWORD_KINDS)
@pytest.mark.parametrize(("name", "value"), [("serial", SERIAL), ("public_id", PUBLIC_ID)])
def test_a_key_identity_is_refused_for_password_letters(
    templates: LetterTemplates, kind: LetterKind, name: str, value: str
) -> None:
    with pytest.raises(ValueError, match=name):
        render(templates, make_letter(kind, **{name: value}))


def test_unknown_fields_are_refused(templates: LetterTemplates) -> None:
    with pytest.raises(ValueError, match="otp_secret"):
        render(templates, make_letter(LetterKind.KEY, otp_secret="00" * 16))


@pytest.mark.parametrize("kind", PASSWORD_KINDS)
def test_password_letter_puts_username_and_password_into_the_security_field(
    templates: LetterTemplates, kind: LetterKind
) -> None:
    pdf, pages = render(templates, make_letter(kind))

    words = page_words(pdf)
    text = "\n".join(page_texts(pdf))
    assert pages == [1]
    assert text.count("Benutzername:") == 1
    assert text.count("Kennwort:") == 1
    field = security_field(letters.default_letters_dir())
    for label, value in (("Benutzername:", "mueller-l01"), ("Kennwort:", PASSWORD)):
        [label_word] = [w for w in words if w["text"] == label]
        [value_word] = [w for w in words if w["text"] == value]
        assert abs(label_word["bottom"] - value_word["bottom"]) < 1  # on one line
        assert label_word["x1"] < value_word["x0"]
        assert inside(label_word, *field)
        assert inside(value_word, *field)
    assert SERIAL not in text
    assert PUBLIC_ID not in text
    assert "Seriennummer" not in text


def test_password_is_printed_only_once(templates: LetterTemplates) -> None:
    pdf, _ = render(templates, make_letter(LetterKind.CREDENTIALS))

    assert "\n".join(page_texts(pdf)).count(PASSWORD) == 1


def test_a_password_too_long_for_the_field_is_refused_not_cut(templates: LetterTemplates) -> None:
    with pytest.raises(ValueError, match="Sicherheitsfeld"):
        render(templates, make_letter(LetterKind.CREDENTIALS, password="Ab3#" * 16))


def test_lock_letter_leaves_out_lines_of_empty_optional_values(templates: LetterTemplates) -> None:
    with_key, _ = render(templates, make_letter(LetterKind.LOCK))
    without, _ = render(templates, make_letter(LetterKind.LOCK, serial="", username=""))

    full, short = "\n".join(page_texts(with_key)), "\n".join(page_texts(without))
    assert f"Betroffener Yubikey, Seriennummer: {SERIAL}" in full
    assert "Betroffener Benutzername: mueller-l01" in full
    assert "§ 10 Abs. 2" in full
    assert "Seriennummer" not in short
    assert "Benutzername" not in short
    assert "Bitte senden Sie den Yubikey" not in short
    assert "mit Wirkung vom 31.03.2026" in short


def test_lock_notice_names_the_last_day_and_asks_for_the_key_only_when_it_goes(
    templates: LetterTemplates,
) -> None:
    practice_ends, _ = render(templates, make_letter(LetterKind.LOCK_NOTICE))
    member_ends, _ = render(
        templates,
        make_letter(LetterKind.LOCK_NOTICE, serial="", username="mueller-l01", practice_scope=""),
    )

    practice_text = " ".join(" ".join(page_texts(practice_ends)).split())
    member_text = " ".join(" ".join(page_texts(member_ends)).split())
    assert "mit Ablauf des 31.12.2026" in practice_text
    assert "Ab dem 01.01.2027" in practice_text
    assert f"Den Yubikey mit der Seriennummer {SERIAL}" in practice_text
    assert "Benutzers" not in practice_text
    assert "der Zugang des Benutzers mueller-l01 zu KV-FlexNet" in member_text
    assert "die übrigen Zugänge Ihrer Betriebsstätte bleiben bestehen" in member_text
    assert "Zugangsdaten Ihrer Betriebsstätte" not in member_text
    assert "Yubikey" not in member_text  # the practice keeps its key


def test_return_reminder_names_key_and_lock_date(templates: LetterTemplates) -> None:
    pdf, pages = render(templates, make_letter(LetterKind.RETURN_REMINDER))

    text = " ".join(" ".join(page_texts(pdf)).split())
    assert pages == [1]
    assert f"Yubikey mit der Seriennummer {SERIAL}" in text
    assert "ist seit dem 01.10.2026 für KV-FlexNet gesperrt" in text


def test_the_terms_letter_names_version_effect_and_deadline(templates: LetterTemplates) -> None:
    pdf, pages = render(templates, make_letter(LetterKind.TERMS))

    text = " ".join(" ".join(page_texts(pdf)).split())
    assert pages == [1]
    assert "Neue Nutzungsbedingungen für KV-FlexNet (Version 2.0)" in text
    assert "ab dem 01.07.2030 gilt die Version 2.0" in text
    assert "bis zum 30.09.2030 an." in text and f"(BSNR {BSNR})" in text
    assert "**" not in text  # the bold line is printed bold, not with its marks
    assert "Kennwort" not in text and SERIAL not in text


def test_a_required_value_must_not_be_empty(templates: LetterTemplates) -> None:
    with pytest.raises(ValueError, match="serial"):
        render(templates, make_letter(LetterKind.KEY, serial=""))


# --- text and fonts -----------------------------------------------------------------------


def test_umlauts_and_sharp_s_survive(templates: LetterTemplates) -> None:
    pdf, _ = render(templates, make_letter(LetterKind.LOSS_CONFIRMATION))

    text = page_texts(pdf)[0]
    for word in ("Grüßen", "Betriebsstätte", "Straße", "Müller-Lüdenscheidt", "Bestätigung"):
        assert word in text
    assert "45,00 €" in text
    assert "Kassenärztliche Vereinigung Sachsen-Anhalt" in text
    assert "Datum: 03.02.2026" in text


def _fonts(resources: Any, seen: dict[str, Any]) -> None:
    resources = resources.get_object()
    for name, font in resources.get("/Font", {}).items():
        seen[str(name)] = font.get_object()
    for xobject in resources.get("/XObject", {}).values():
        xobject = xobject.get_object()
        if "/Resources" in xobject:
            _fonts(xobject["/Resources"], seen)


def test_fonts_are_embedded_truetype(templates: LetterTemplates) -> None:
    pdf, _ = render(templates, *(make_letter(kind) for kind in LetterKind))

    fonts: dict[str, Any] = {}
    for page in pypdf.PdfReader(BytesIO(pdf)).pages:
        _fonts(page["/Resources"], fonts)
    assert len(fonts) >= 2  # regular and bold
    for font in fonts.values():
        assert font["/Subtype"] == "/TrueType"
        assert "/FontFile2" in font["/FontDescriptor"]


# --- pages --------------------------------------------------------------------------------


def _long_key_template(directory: Path) -> None:
    """A key letter of two pages whose paragraphs (five lines each) break across pages."""
    path = directory / "key.toml"
    text = path.read_text(encoding="utf-8")
    sentence = "Bitte bewahren Sie den Yubikey {serial} sicher auf und geben Sie ihn nicht weiter. "
    body = ", ".join(f'"Absatz {n}: {sentence * 5}Ende {n}."' for n in range(1, 13))
    start = text.index("paragraphs = [")
    path.write_text(text[:start] + f"paragraphs = [{body}]\n", encoding="utf-8")


def test_a_long_letter_flows_onto_a_second_page_with_page_numbers(letters_copy: Path) -> None:
    _long_key_template(letters_copy)
    templates = letters.load_templates(letters_copy)
    calls: list[int] = []
    out = BytesIO()

    pages = letters.render(
        [make_letter(LetterKind.KEY), make_letter(LetterKind.LOCK, reference="FN-000124")],
        out,
        templates=templates,
        progress=calls.append,
    )

    texts = page_texts(out.getvalue())
    assert pages == [2, 1]
    assert calls == [1, 1]
    assert len(texts) == 3
    assert "Seite 1 von 2" in texts[0]
    assert "Seite 2 von 2" in texts[1]
    assert "Seite 1 von 1" in texts[2]
    assert "Unser Zeichen: FN-000123" in texts[1]  # the continuation header
    body = texts[0] + texts[1]
    for n in range(1, 13):  # every paragraph once, none lost at the page break
        assert body.count(f"Absatz {n}:") == 1
        assert body.count(f"Ende {n}.") == 1
    assert "Mit freundlichen Grüßen" in texts[1]
    assert "Sperrung Ihres Zugangs" in texts[2]


def test_body_text_stays_between_header_and_footer(letters_copy: Path) -> None:
    _long_key_template(letters_copy)
    templates = letters.load_templates(letters_copy)
    pdf, _ = render(templates, make_letter(LetterKind.KEY))

    first, second = page_words(pdf, 0), page_words(pdf, 1)
    for words in (first, second):
        assert [w["text"] for w in words if overlaps(w, 0, 272.5, 210, 276)] == []
        assert max(w["x1"] for w in words) <= 190.5  # 20 mm right margin
        assert min(w["x0"] for w in words) >= 24.9  # 25 mm left margin
    assert [w["text"] for w in second if overlaps(w, 0, 19, 210, 25.5)] == []
    assert min(w["top"] for w in second if w["top"] > 20) < 27  # the body goes on at the top


def test_the_credentials_body_flows_around_the_security_field(letters_copy: Path) -> None:
    layout = letters_copy / "layout.toml"
    # A field in the middle of the body text: the text has to skip it.
    text = layout.read_text(encoding="utf-8").replace("y_mm = 107\n", "y_mm = 170\n")
    layout.write_text(text, encoding="utf-8")
    templates = letters.load_templates(letters_copy)
    pdf, _ = render(templates, make_letter(LetterKind.CREDENTIALS))

    left, top, right, bottom = security_field(letters_copy)
    words = page_words(pdf)
    in_field = {w["text"] for w in words if overlaps(w, left, top, right, bottom)}
    assert in_field == {"Benutzername:", "mueller-l01", "Kennwort:", PASSWORD}
    body = [w for w in words if 100 < w["top"] < 272]
    assert any(w["bottom"] < top for w in body)  # text above the field
    assert any(w["top"] > bottom for w in body)  # and below it


def test_a_cover_field_gets_a_frame_and_a_label_above_it(letters_copy: Path) -> None:
    _edit(letters_copy / "layout.toml", "cover_field = false", "cover_field = true")
    templates = letters.load_templates(letters_copy)
    pdf, _ = render(templates, make_letter(LetterKind.CREDENTIALS))

    left, top, right, bottom = security_field(letters_copy)
    with pdfplumber.open(BytesIO(pdf)) as document:
        frames = [
            [r[key] * MM_PER_PT for key in ("x0", "top", "x1", "bottom")]
            for r in document.pages[0].rects
        ]
    assert len(frames) == 1
    assert [left, top, right, bottom] == [pytest.approx(v, abs=0.5) for v in frames[0]]
    label = [w for w in page_words(pdf) if w["text"] == "Sicherheitsfeld"]
    assert len(label) == 1
    assert top - 6 < label[0]["top"] < label[0]["bottom"] <= top


def test_nothing_to_print_is_refused(templates: LetterTemplates) -> None:
    with pytest.raises(ValueError, match="Keine Briefe"):
        letters.render([], BytesIO(), templates=templates)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_pdftoppm_renders_one_png_per_page(letters_copy: Path, tmp_path: Path) -> None:
    _long_key_template(letters_copy)
    templates = letters.load_templates(letters_copy)
    pdf, pages = render(templates, *(make_letter(kind) for kind in LetterKind))
    path = tmp_path / "run.pdf"
    path.write_bytes(pdf)

    result = subprocess.run(
        ["/usr/bin/pdftoppm", "-png", "-r", "50", str(path), str(tmp_path / "page")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == sum(pages) == len(LetterKind) + 1  # the key letter runs to 2
    for image in images:
        width, height = _png_size(image)
        assert (width, height) in {(413, 585), (414, 585), (413, 584)}  # A4 at 50 dpi


# --- refusing broken templates ------------------------------------------------------------


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_shipped_templates_load(templates: LetterTemplates) -> None:
    pdf, pages = render(templates, *(make_letter(kind) for kind in LetterKind))

    assert pages == [1] * len(LetterKind)
    assert pdf.startswith(b"%PDF-")


def test_key_template_with_a_password_is_refused(letters_copy: Path) -> None:
    _edit(letters_copy / "key.toml", "Seriennummer des Yubikeys: {serial}", "Kennwort: {password}")

    with pytest.raises(ConfigError, match=r"key\.toml.*\{password\}"):
        letters.load_templates(letters_copy)


def test_credentials_template_with_a_serial_is_refused(letters_copy: Path) -> None:
    _edit(letters_copy / "credentials.toml", "BSNR {bsnr}", "Yubikey {serial}")

    with pytest.raises(ConfigError, match=r"credentials\.toml.*\{serial\}"):
        letters.load_templates(letters_copy)


def test_password_outside_the_security_field_is_refused(letters_copy: Path) -> None:
    _edit(letters_copy / "new_password.toml", "BSNR {bsnr}", "Kennwort {password}")

    with pytest.raises(ConfigError, match=r"new_password\.toml.*\{password\}"):
        letters.load_templates(letters_copy)


def test_a_missing_kind_file_is_refused(letters_copy: Path) -> None:
    (letters_copy / "lock.toml").unlink()

    with pytest.raises(ConfigError, match=r"lock\.toml fehlt"):
        letters.load_templates(letters_copy)


def test_an_unknown_placeholder_is_refused(letters_copy: Path) -> None:
    _edit(letters_copy / "loss_confirmation.toml", "Höhe von {fee}", "Höhe von {gebuehr}")

    with pytest.raises(ConfigError, match=r"loss_confirmation\.toml.*\{gebuehr\}"):
        letters.load_templates(letters_copy)


@pytest.mark.parametrize("placeholder", ["{serial.__class__}", "{serial!r}", "{serial:>20}", "{}"])
def test_placeholders_are_plain_names(letters_copy: Path, placeholder: str) -> None:
    _edit(letters_copy / "key.toml", "Yubikeys: {serial}", f"Yubikeys: {placeholder}")

    with pytest.raises(ConfigError, match=r"key\.toml"):
        letters.load_templates(letters_copy)


def test_broken_toml_is_refused(letters_copy: Path) -> None:
    _edit(letters_copy / "credentials.toml", 'paper = "security"', "paper = security")

    with pytest.raises(ConfigError, match=r"credentials\.toml ist kein gültiges TOML"):
        letters.load_templates(letters_copy)


def test_credentials_on_plain_paper_are_refused(letters_copy: Path) -> None:
    _edit(letters_copy / "credentials.toml", 'paper = "security"', 'paper = "plain"')

    with pytest.raises(ConfigError, match=r"credentials\.toml.*security"):
        letters.load_templates(letters_copy)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("y_mm = 107\n", "y_mm = 60\n", "Sicherheitsfeld"),  # would show through the window
        ("x_mm = 20\n", "x_mm = 150\n", "Anschriftfeld"),
        ("body_size_pt = 10\n", "body_size_pt = 2\n", "body_size_pt"),
        ("margin_left_mm = 25\n", "margin_left_mm = -5\n", "margin_left_mm"),
        ('regular = "reportlab:Vera.ttf"', 'regular = "fehlt.ttf"', "fehlt.ttf"),
        ("[marks]\n", "[marks]\nfarbe = 1\n", "farbe"),
        ("width_pt = 0.5\n", 'width_pt = "dünn"\n', "width_pt"),
    ],
)
def test_layout_problems_are_refused(letters_copy: Path, old: str, new: str, problem: str) -> None:
    _edit(letters_copy / "layout.toml", old, new)

    with pytest.raises(ConfigError, match=rf"layout\.toml.*{problem}"):
        letters.load_templates(letters_copy)


def test_the_password_never_enters_the_measuring_cache(
    templates: LetterTemplates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """_width keeps what it measured (lru_cache): a password there would outlive its letter."""
    from flexnet.provisioning.letters import drawing, layout

    measured: list[str] = []
    cached = layout._width

    def spy(text: str, font: str, size: float) -> float:
        measured.append(text)
        return cached(text, font, size)

    monkeypatch.setattr(drawing, "_width", spy)
    monkeypatch.setattr(layout, "_width", spy)

    render(templates, make_letter(LetterKind.CREDENTIALS, password="Zq7#Wx9-Pv4+Km8%"))

    assert measured and not any("Zq7#Wx9-Pv4+Km8%" in text for text in measured)
