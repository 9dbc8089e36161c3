"""Errors as answers, in one place: a German page for people (inside the admin UI's
frame under ``/admin/``), an RFC 9457 problem document under ``/api/``.

Every HTTP error a person can meet (400, 403, 404, 405, 413, 429, 500) has a German page
saying what happened and what to do. A form sent with a stale or missing CSRF token (the
page stood open for more than an hour, or the browser sent no Referer over HTTPS) is shown
again with what was typed and a German request to send it again, for the views that say
they can (``reshows_stale_form``); nothing is changed by it.

Two things are refused here before any view (and before any key or CSRF check, so the
answer is the same for everyone and tells nothing about a key): a NUL character anywhere
in the request, which PostgreSQL cannot store and SQLite would keep, and a JSON body
nested deeper than any of flexnet's bodies, which Python's parser would otherwise meet
with a RecursionError. A domain error that a view leaves unhandled is answered with the
status and title its class carries (``flexnet.errors``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import HTTPException

from flexnet.errors import FlexnetError

log = logging.getLogger(__name__)

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


# What a person reads for each HTTP error: a title and what to do.
HTTP_PAGES = {
    400: (
        "Ungültige Anfrage",
        "Diese Anfrage ließ sich nicht verarbeiten; es wurde nichts geändert. Bitte laden Sie "
        "die Seite neu und versuchen Sie es noch einmal.",
    ),
    403: (
        "Keine Berechtigung",
        "Diese Seite oder Aktion steht Ihrer Rolle nicht zur Verfügung. Wenden Sie sich bei "
        "Bedarf an die Administration.",
    ),
    404: (
        "Seite nicht gefunden",
        "Diese Seite gibt es nicht (mehr). Bitte prüfen Sie die Adresse.",
    ),
    405: (
        "Nicht möglich",
        "Diese Seite lässt sich so nicht aufrufen, etwa ein Formular, dessen Adresse direkt "
        "geöffnet wurde. Bitte gehen Sie zurück und nutzen Sie den Knopf auf der Seite.",
    ),
    413: (
        "Zu groß",
        "Die gesendeten Daten sind größer als 8 MB; es wurde nichts gespeichert.",
    ),
    429: (
        "Zu viele Anfragen",
        "Zu viele Anfragen in kurzer Zeit. Bitte warten Sie einige Minuten und versuchen Sie "
        "es dann erneut.",
    ),
    500: (
        "Interner Fehler",
        "Ein unerwarteter Fehler ist aufgetreten; er ist protokolliert. Bitte prüfen Sie, ob "
        "Ihre letzte Änderung übernommen wurde, bevor Sie sie wiederholen, und melden Sie "
        "den Fehler dem IT-Service (0391 627 7000), wenn er wieder auftritt.",
    ),
}
# A form sent with a stale token: Flask-WTF's reasons, as staff and practices read them.
STALE_FORM = (
    "Das Formular war zu lange geöffnet oder wurde in einem anderen Fenster neu geladen; "
    "aus Sicherheitsgründen wurde nichts gespeichert. Ihre Eingaben stehen wieder im "
    "Formular (Kennwörter bitte neu eingeben): bitte prüfen und erneut senden."
)
FOREIGN_REFERRER = (
    "Die Anfrage kam nicht erkennbar von dieser Seite (der Browser sandte keinen oder "
    "einen fremden Referer); aus Sicherheitsgründen wurde nichts gespeichert. Ihre Eingaben "
    "stehen wieder im Formular (Kennwörter bitte neu eingeben): bitte erneut senden. "
    "Tritt das wiederholt auf, bitte die Browser-Einstellungen zum Referer prüfen."
)

V = TypeVar("V", bound=Callable[..., ResponseReturnValue])


def reshows_stale_form(view: V) -> V:
    """Mark a view whose POST validates a Flask-WTF form before it changes anything: on a
    stale CSRF token it is run again without the token, so that its form fails to
    validate and the page comes back with what was typed (status 400)."""
    view.reshows_stale_form = True  # type: ignore[attr-defined]
    return view


def init_app(app: Flask) -> None:
    """Register the check first, before CSRF protection's own, and the error mapping."""
    app.before_request(refuse_malformed_request)
    app.register_error_handler(FlexnetError, domain_error)
    app.register_error_handler(CSRFError, stale_form)
    for code in HTTP_PAGES:
        app.register_error_handler(code, http_error)


def _admin_frame() -> dict[str, Any]:
    """For a page under /admin/: the signed-in staff member and the navigation, so that
    an error page keeps the way back; nothing if no one is signed in (or the database
    cannot tell)."""
    if not request.path.startswith("/admin/"):
        return {}
    from flexnet.web.admin import principal
    from flexnet.web.admin.navigation import navigation

    try:
        staff = g.get("staff") or principal()
    except Exception:
        log.exception("no staff member for the error page")
        staff = None
    if staff is None or not staff.verified:
        return {"admin": True, "staff": None, "navigation": None}
    g.staff = staff
    return {"admin": True, "staff": staff, "navigation": navigation()}


def page(status: int, title: str, detail: str, *, kept_input: bool = False) -> Response:
    """The German error page (in the admin UI's frame under /admin/)."""
    frame = _admin_frame()
    template = "admin/error.html" if frame else "error.html"
    html = render_template(
        template, title=title, message=detail, kept_input=kept_input, status=status, **frame
    )
    return Response(html, status=status, mimetype="text/html")


def error_response(status: int, title: str, detail: str) -> Response:
    if request.path.startswith("/api/"):
        from flexnet.web import api

        return api.problem(status, title, detail)
    if request.path.startswith("/wsapi/"):
        # Validation clients read the protocol's status line, as for any bad parameter.
        from flexnet.web import wsapi

        return wsapi.refusal()
    return page(status, title, detail, kept_input=True)


def http_error(error: HTTPException) -> ResponseReturnValue:
    """An HTTP error (unknown path, wrong method, 403, 413, 429, an unexpected error): a
    problem document under /api/, elsewhere a German page with the way back."""
    code = error.code or 500
    if request.path.startswith("/api/"):
        from flexnet.web import api

        return api.problem(code, error.name)
    title, text = HTTP_PAGES.get(code, HTTP_PAGES[500 if code >= 500 else 400])
    return page(code, title, text)


def stale_form(error: CSRFError) -> ResponseReturnValue:
    """A form whose CSRF token is stale, missing or came without a matching Referer:
    nothing is done. A view marked ``reshows_stale_form`` shows its page again with
    what was typed; any other answers with the German page."""
    foreign = "referrer" in (error.description or "").lower()
    message = FOREIGN_REFERRER if foreign else STALE_FORM
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or not getattr(view, "reshows_stale_form", False):
        return page(400, "Formular nicht gesendet", message, kept_input=True)
    g.stale_form = message
    # Without a token the view's form cannot validate, whatever the reason was (a valid
    # token with a foreign Referer included): the view can only show the page again.
    fields = [(k, v) for k, v in request.form.items(multi=True) if k != "csrf_token"]
    request.form = ImmutableMultiDict(fields)
    try:
        response = current_app.make_response(view(**(request.view_args or {})))  # type: ignore[arg-type]
    except (HTTPException, FlexnetError):  # the page itself is gone: the stale form it is
        return page(400, "Formular nicht gesendet", message, kept_input=True)
    if response.status_code < 300:
        response.status_code = 400
    return response


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
