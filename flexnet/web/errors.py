"""Errors as answers, in one place: a German page for people, an RFC 9457 problem
document under ``/api/``.

Two things are refused here before any view (and before any key or CSRF check, so the
answer is the same for everyone and tells nothing about a key): a NUL character anywhere
in the request, which PostgreSQL cannot store and SQLite would keep, and a JSON body
nested deeper than any of flexnet's bodies, which Python's parser would otherwise meet
with a RecursionError. A domain error that a view leaves unhandled is answered with the
status and title its class carries (``flexnet.errors``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, render_template, request

from flexnet.errors import FlexnetError

# flexnet's bodies are flat objects; 20 levels leave room for any client's envelope.
MAX_JSON_DEPTH = 20
BAD_REQUEST = "Ungültige Anfrage"
NUL_FOUND = (
    "Die Anfrage enthält ein NUL-Zeichen (0x00) in {where}; sie wurde nicht verarbeitet "
    "und nichts gespeichert."
)
TOO_DEEP = (
    f"Der JSON-Inhalt ist zu tief verschachtelt (höchstens {MAX_JSON_DEPTH} Ebenen); "
    "die Anfrage wurde nicht verarbeitet."
)
NOT_UNICODE = (
    "Der JSON-Inhalt enthält ungültige Zeichen (einzelne UTF-16-Ersatzzeichen); die "
    "Anfrage wurde nicht verarbeitet."
)


def init_app(app: Flask) -> None:
    """Register the check first, before CSRF protection's own, and the error mapping."""
    app.before_request(refuse_malformed_request)
    app.register_error_handler(FlexnetError, domain_error)


def error_response(status: int, title: str, detail: str) -> Response:
    if request.path.startswith("/api/"):
        from flexnet.web import api

        return api.problem(status, title, detail)
    if request.path.startswith("/wsapi/"):
        # Validation clients read the protocol's status line, as for any bad parameter.
        from flexnet.web import wsapi

        return wsapi.refusal()
    page = render_template("error.html", title=title, message=detail, kept_input=True)
    return Response(page, status=status, mimetype="text/html")


def domain_error(error: FlexnetError) -> Response:
    return error_response(error.status, error.title, error.message)


def refuse_malformed_request() -> Response | None:
    problem = _nul_in_request() or _json_problem()
    return error_response(400, BAD_REQUEST, problem) if problem else None


def _nul_in_request() -> str | None:
    places: Iterable[tuple[str, Iterable[tuple[str, str]]]] = (
        ("der Adresse", [("", request.path)]),
        ("den Suchparametern", request.args.items(multi=True)),
        ("den Kopfzeilen", request.headers.items()),
        ("den Formularfeldern", request.form.items(multi=True)),
        ("den Dateinamen", ((k, f.filename or "") for k, f in request.files.items(multi=True))),
    )
    for where, pairs in places:
        if any("\x00" in key or "\x00" in value for key, value in pairs):
            return NUL_FOUND.format(where=where)
    return None


def _json_problem() -> str | None:
    if not request.is_json:
        return None
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        return TOO_DEEP
    stack: list[tuple[Any, int]] = [(body, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            stack.extend((key, depth) for key in value)
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            if "\x00" in value:
                return NUL_FOUND.format(where="dem JSON-Inhalt")
            if not _encodable(value):
                return NOT_UNICODE
        if depth > MAX_JSON_DEPTH:
            return TOO_DEEP
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
