"""Form fields and validators that apply the domain's input rules, so that a form shows
the rule's German message next to the field and keeps what was typed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from wtforms import DateField, RadioField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import StopValidation
from wtforms.validators import ValidationError as FieldError

from flexnet import days, textrules
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


class Rule:
    """A validator that runs a domain rule (e.g. ``textrules.clean_line``) on the field's
    data; its ``ValidationError`` becomes the field's error. Empty fields are left to
    ``DataRequired``/``Optional``."""

    def __init__(self, rule: Callable[[str], object]) -> None:
        self.rule = rule

    def __call__(self, form: Any, field: Any) -> None:
        if not field.data:
            return
        try:
            self.rule(field.data)
        except ValidationError as error:
            raise FieldError(error.message) from None


def one_line(field: str, max_length: int) -> Rule:
    """The domain's rule for a one-line text (``textrules.clean_line``) as a validator."""
    return Rule(partial(textrules.clean_line, field=field, max_length=max_length))


# A select shows its first option when the page selected none: a select whose choice has
# consequences starts with this, so that nothing is chosen that staff did not choose.
NOBODY = SelectChoice("", "– bitte wählen –")


class Chosen:
    """A validator: the field holds one of ``values``; else ``message`` and no other."""

    def __init__(self, values: Sequence[str], message: str) -> None:
        self.values, self.message = frozenset(values), message

    def __call__(self, form: Any, field: Any) -> None:
        if (field.data or "") not in self.values:
            field.errors[:] = []
            raise StopValidation(self.message)


def chosen(label: str, choices: Sequence[SelectChoice], message: str) -> Any:
    """A select that starts with "– bitte wählen –": a form sent without a choice is
    refused with ``message`` (a forgotten choice is an error, never a default)."""
    values = [choice.value for choice in choices]
    return SelectField(
        label,
        choices=[NOBODY, *choices],
        validate_choice=False,
        validators=[Chosen(values, message)],
    )


def chosen_radio(label: str, choices: Sequence[SelectChoice], message: str) -> Any:
    """Radio buttons none of which is ticked at first (``chosen``)."""
    values = [choice.value for choice in choices]
    return RadioField(
        label, choices=list(choices), validate_choice=False, validators=[Chosen(values, message)]
    )


def maybe_chosen(label: str, choices: Sequence[SelectChoice]) -> Any:
    """A select that may stay at "– bitte wählen –" (nothing chosen: empty data)."""
    values = ["", *(choice.value for choice in choices)]
    return SelectField(
        label,
        choices=[NOBODY, *choices],
        validate_choice=False,
        validators=[Chosen(values, "Bitte einen der angebotenen Werte wählen.")],
    )
