"""Text folded for search: one function for the stored search keys and for the query.

"MÜLLER", "Müller", "Mueller" and "mueller" fold alike, as do "Weiß" and "WEISS": German
umlauts to their two-letter spelling (ä→ae, ö→oe, ü→ue, ß→ss), then case folded, other
accents dropped (é→e, via NFKD), white space collapsed. Pure and database-free, so that
SQLite and PostgreSQL compare the same strings and an index on the key (trigram, FTS5)
serves every spelling.
"""

from __future__ import annotations

import unicodedata

_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def fold(text: str) -> str:
    """``text`` as search compares it."""
    # NFC first: a "u" with a combining diaeresis is an "ü" and gets its "ue" too.
    lowered = unicodedata.normalize("NFC", text).lower().translate(_GERMAN).casefold()
    decomposed = unicodedata.normalize("NFKD", lowered)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.split())


def search_key(*parts: str | None) -> str:
    """The stored key of a record's searchable fields, each folded, one per line: a query
    (folded, so without a line break) never matches across two fields."""
    return "\n".join(fold(part or "") for part in parts)
