"""Every kind of domain error carries the HTTP status and the German title it is
answered with; the web layer reads them there (``web/errors.py``, the API, the admin
pages), so a new kind is answered right everywhere the moment it names its status."""

from __future__ import annotations

import importlib
import pkgutil

import flexnet
from flexnet.errors import FlexnetError

BAD = (400, "Ungültige Anfrage")
EXPECTED = {
    "flexnet.errors.FlexnetError": BAD,
    "flexnet.errors.ValidationError": BAD,
    "flexnet.otp.importer.ImportFailed": BAD,
    "flexnet.errors.NotFoundError": (404, "Nicht gefunden"),
    "flexnet.errors.ConflictError": (409, "Konflikt mit dem Stand"),
    "flexnet.errors.PreconditionError": (409, "Voraussetzung nicht erfüllt"),
    "flexnet.accounts.servicerequests.TooManyRequests": (429, "Zu viele Anfragen"),
    "flexnet.errors.ConfigError": (500, "Fehler in der Einrichtung"),
}
# The module gunicorn loads builds the app when imported; it defines no error.
NOT_IMPORTED = {"flexnet.wsgi"}


def _kinds() -> dict[str, type[FlexnetError]]:
    for module in pkgutil.walk_packages(flexnet.__path__, "flexnet."):
        if module.name not in NOT_IMPORTED:
            importlib.import_module(module.name)
    found: dict[str, type[FlexnetError]] = {}
    pending: list[type[FlexnetError]] = [FlexnetError]
    while pending:
        kind = pending.pop()
        found[f"{kind.__module__}.{kind.__qualname__}"] = kind
        pending.extend(kind.__subclasses__())
    return found


def test_every_kind_of_domain_error_names_its_status_and_a_german_title() -> None:
    kinds = _kinds()

    assert {name: (kind.status, kind.title) for name, kind in kinds.items()} == EXPECTED


def test_a_refused_file_shows_its_lines_and_any_other_error_its_message() -> None:
    from flexnet.otp.importer import ImportFailed

    failed = ImportFailed([f"Zeile {n}: kaputt" for n in range(1, 61)])

    assert failed.lines[0] == "Import abgebrochen, nichts übernommen (60 Fehler, die ersten 50):"
    assert failed.lines[1:] == [f"Zeile {n}: kaputt" for n in range(1, 51)]
    assert FlexnetError("Kein Benutzer x").lines == ["Kein Benutzer x"]
