"""One exception hierarchy for the domain.

Messages are German because staff read them (CLI, admin UI). They never contain a
secret. The web layer maps these types to HTTP in one place; the CLI prints the
message on one line and exits non-zero.
"""

from __future__ import annotations


class FlexnetError(Exception):
    """Base of every expected, user-facing error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(FlexnetError):
    """A setting is missing or malformed; start-up stops."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable} {problem}")
        self.variable = variable


class ValidationError(FlexnetError):
    """Input does not meet a rule (format, check digit, date)."""


class NotFoundError(FlexnetError):
    """The referenced practice, user, token or staff account does not exist."""


class ConflictError(FlexnetError):
    """The change contradicts existing data (duplicate, wrong state)."""


class PreconditionError(FlexnetError):
    """A business precondition is not met (e.g. terms not accepted, § 1.3)."""
