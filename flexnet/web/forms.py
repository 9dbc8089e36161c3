"""Form fields that apply the domain's input rules, so that a form shows the rule's
German message next to the field and keeps what was typed."""

from __future__ import annotations

from typing import Any

from wtforms import DateField

from flexnet import days
from flexnet.errors import ValidationError


class DayField(DateField):  # type: ignore[misc]  # WTForms ships no type information
    """A day (JJJJ-MM-TT) read by the same parser as the API and the CLI, range included."""

    data: Any  # a date once validated, as with WTForms' DateField

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist or not str(valuelist[0]).strip():
            self.data = None
            return
        try:
            self.data = days.parse_day(str(valuelist[0]), field=self.label.text)
        except ValidationError as error:
            self.data = None
            raise ValueError(error.message) from None
