"""Reading rendered letters back: text per page and the credentials printed on them."""

from __future__ import annotations

import io
import re

import pdfplumber

_CREDENTIALS = re.compile(r"Benutzername:\s*(\S+)\s+Kennwort:\s*(\S+)")


def page_texts(pdf: bytes) -> list[str]:
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        return [page.extract_text() or "" for page in document.pages]


def printed_credentials(pdf: bytes) -> dict[str, str]:
    """Username -> password as printed in the security field of each letter."""
    found: dict[str, str] = {}
    for text in page_texts(pdf):
        for username, password in _CREDENTIALS.findall(text):
            found[username] = password
    return found
