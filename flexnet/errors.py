"""One exception hierarchy for the domain.

Messages are German because staff read them (CLI, admin UI). They never contain a
secret. Each class carries the HTTP status and the German title it is answered with
(``status``, ``title``): the web layer reads them there, for the API's problem
documents and for the admin UI's pages alike, and never picks a status by hand; the
CLI prints the message on one line and exits non-zero.
"""

from __future__ import annotations


class FlexnetError(Exception):
    """Base of every expected, user-facing error."""

    status = 400
    title = "Ungültige Anfrage"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    @property
    def lines(self) -> list[str]:
        """The error as a page shows it, one paragraph per line."""
        return [self.message]


class ConfigError(FlexnetError):
    """A setting is missing or malformed; start-up stops. Met while answering (e.g. a
    broken letter template), it is the server's fault, not the request's."""

    status = 500
    title = "Fehler in der Einrichtung"

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable} {problem}")
        self.variable = variable


class ValidationError(FlexnetError):
    """Input does not meet a rule (format, check digit, date)."""


class NotFoundError(FlexnetError):
    """The referenced practice, user, token or staff account does not exist."""

    status = 404
    title = "Nicht gefunden"


class ConflictError(FlexnetError):
    """The change contradicts existing data (duplicate, wrong state)."""

    status = 409
    title = "Konflikt mit dem Stand"


class PreconditionError(FlexnetError):
    """A business precondition is not met (e.g. terms not accepted, § 1.3)."""

    status = 409
    title = "Voraussetzung nicht erfüllt"
