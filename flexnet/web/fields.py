"""What the web forms share: checks of a typed value before any domain code sees it."""

from __future__ import annotations

from typing import Any

from wtforms.validators import ValidationError

from flexnet.authn import passwords


class PasswordFits:
    """A typed password no longer than any password can be (``passwords.too_long``): an
    overlong one is a form error that keeps the other fields, never a server error."""

    message = (
        f"Das Kennwort ist zu lang (höchstens {passwords.MAX_PASSWORD_BYTES} Bytes; "
        "ein Umlaut zählt doppelt)."
    )

    def __call__(self, form: Any, field: Any) -> None:
        if field.data and passwords.too_long(field.data):
            raise ValidationError(self.message)
