"""Letters as one PDF: DIN 5008 form B on A4, for window envelopes.

Wording and layout are data in the repository's ``letters/`` directory (TOML), so IT
staff can change a sentence or move the security field without touching code. The
renderer draws on reportlab's canvas directly (no platypus): each letter is laid out
first, so that "Seite x von y" is known, then drawn, and a mail run of thousands of
letters takes seconds.

What a letter may print is decided here, not in the templates: each kind has a fixed
set of placeholders, so a key letter can never show a password and a credentials
letter never a key serial (§ 3.2: key and password travel separately).

The package is split by stage, each module importing only those before it:
``schema`` (field rules, the letter data and the template dataclasses), ``templates``
(reading and checking the TOML files), ``layout`` (wrapping and pagination) and
``drawing`` (the PDF canvas and ``render``). Callers use the names re-exported here.
"""

from flexnet.provisioning.letters.drawing import render
from flexnet.provisioning.letters.layout import ELLIPSIS
from flexnet.provisioning.letters.schema import (
    ALLOWED_FIELDS,
    COMMON_FIELDS,
    MM,
    OPTIONAL_FIELDS,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    SECURITY_PAPER,
    Address,
    LetterData,
    LetterTemplates,
)
from flexnet.provisioning.letters.templates import default_letters_dir, load_templates

__all__ = [
    "ALLOWED_FIELDS",
    "COMMON_FIELDS",
    "ELLIPSIS",
    "MM",
    "OPTIONAL_FIELDS",
    "PAGE_HEIGHT",
    "PAGE_WIDTH",
    "SECURITY_PAPER",
    "Address",
    "LetterData",
    "LetterTemplates",
    "default_letters_dir",
    "load_templates",
    "render",
]
