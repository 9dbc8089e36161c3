"""Web layer: blueprints only call the domain; no business rule lives here."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

from flask import Flask, Response, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFProtect
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError

from flexnet.authn.pipeline import Authenticator
from flexnet.config import Settings
from flexnet.db import UNAVAILABLE, Database, describe_error
from flexnet.otp.remote import RemoteValidator
from flexnet.otp.secrets import SecretBox
from flexnet.textrules import visible


@dataclass(frozen=True)
class FlexnetState:
    settings: Settings
    database: Database

    @cached_property
    def secret_box(self) -> SecretBox:
        return SecretBox(self.settings.master_key)

    @cached_property
    def remote_validator(self) -> RemoteValidator | None:
        return RemoteValidator.from_settings(self.settings.otp)

    @cached_property
    def authenticator(self) -> Authenticator:
        """The login pipeline with its fixed dependencies, once per process."""
        return Authenticator(self.settings, self.secret_box, self.remote_validator)


log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = (
    "Die Datenbank ist gerade nicht erreichbar oder nicht beschreibbar; es wurde nichts "
    "gespeichert. Ihre Eingaben finden Sie mit „Zurück“ im Browser wieder. Bitte versuchen "
    "Sie es in einigen Minuten erneut."
)


def state(app: Flask | None = None) -> FlexnetState:
    """flexnet's part of an app: of ``app``, or of the app handling the current request."""
    result: FlexnetState = (app or current_app).extensions["flexnet"]
    return result


SECURITY_HEADERS = {
    # Pages use their own stylesheet only: no inline script or style, no framing.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # Same-origin requests keep their Referer: over HTTPS Flask-WTF's CSRF check requires
    # it; other sites never see our URLs.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # Every answer but the stylesheet and scripts may carry personal data or credentials
    # (self-service, requests, /api/v1, staff pages), error answers included: no browser
    # or proxy keeps a copy. Runs for every response, whichever blueprint or error
    # handler made it.
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    if state().settings.cookie_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def shown(value: object) -> object:
    """What every ``{{ … }}`` of a page prints (Jinja's ``finalize``): text with control
    and bidi characters made visible (``textrules.visible``), for rows stored before the
    text rules and for what machines send (RADIUS usernames, accounting data). Markup
    (rendered form fields) stays as it is; HTML is escaped afterwards as always."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value)
    return value


def register_blueprints(app: Flask, csrf: CSRFProtect) -> None:
    from flexnet.web import (
        admin,
        api,
        api_changes,
        api_management,
        api_privacy,
        api_resources,
        health,
        metrics,
        openapi,
        selfservice,
        service_requests,
        start,
        wsapi,
    )

    # imported for their routes on api.blueprint
    del api_changes, api_management, api_privacy, api_resources, openapi

    # Machine clients authenticate with keys, not cookies: CSRF does not apply to them.
    csrf.exempt(api.blueprint)
    csrf.exempt(wsapi.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(service_requests.blueprint)
    app.register_blueprint(selfservice.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(metrics.blueprint)
    app.register_blueprint(wsapi.blueprint)
    admin.init_app(app)
    app.register_blueprint(start.blueprint)
    for unavailable in UNAVAILABLE:
        app.register_error_handler(unavailable, database_unavailable)


def database_unavailable(error: SQLAlchemyError) -> ResponseReturnValue:
    """The database is down, full or read-only: the unit of work has rolled back, so
    nothing half-done remains; say so in German instead of a bare error 500."""
    log.error("database error on %s %s: %s", request.method, request.path, describe_error(error))
    if request.path.startswith("/api/"):
        from flexnet.web import api

        response = api.problem(503, "Datenbank nicht verfügbar", DATABASE_UNAVAILABLE)
    else:
        response = Response(
            render_template("unavailable.html", message=DATABASE_UNAVAILABLE), status=503
        )
    response.headers["Retry-After"] = "60"
    return response
