"""Modhex: Yubico's hex alphabet made of keys that sit alike on most keyboard layouts."""

from __future__ import annotations

MODHEX = "cbdefghijklnrtuv"
_HEX = "0123456789abcdef"
# The same key positions typed on a Dvorak layout (as yubikey-val translates them).
_DVORAK = "jxe.uidchtnbpygk"

_TO_HEX = str.maketrans(MODHEX, _HEX)
_FROM_HEX = str.maketrans(_HEX, MODHEX)
_FROM_DVORAK = str.maketrans(_DVORAK, MODHEX)
_MODHEX_SET = frozenset(MODHEX)
_DVORAK_SET = frozenset(_DVORAK)


def is_modhex(text: str) -> bool:
    return bool(text) and len(text) % 2 == 0 and set(text) <= _MODHEX_SET


def to_bytes(text: str) -> bytes:
    """Decode modhex; raises ValueError on any other character or an odd length."""
    if not is_modhex(text):
        raise ValueError("not modhex")
    return bytes.fromhex(text.translate(_TO_HEX))


def from_bytes(data: bytes) -> str:
    return data.hex().translate(_FROM_HEX)


def normalize_typed(text: str) -> str | None:
    """The modhex a key produced, from what a keyboard typed, or None.

    Upper case (caps lock) is folded. Text that is not modhex but consists of Dvorak
    key positions is translated back; valid modhex is never translated, because the
    two alphabets share twelve letters.
    """
    lowered = text.strip().lower()
    if is_modhex(lowered):
        return lowered
    if lowered and set(lowered) <= _DVORAK_SET:
        translated = lowered.translate(_FROM_DVORAK)
        return translated if is_modhex(translated) else None
    return None
