"""flexnet: the KV-FlexNet authentication and provisioning server of the KVSA."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flexnet import resources
from flexnet.config import Settings, load_settings
from flexnet.db import Database

if TYPE_CHECKING:  # Flask is imported by the web app only, not by every CLI command
    from flask import Flask

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> Flask:
    """Wire config, database and blueprints; no work beyond that."""
    from flask import Flask
    from flask_wtf.csrf import CSRFProtect

    from flexnet.ops import logsetup
    from flexnet.web import FlexnetState, add_security_headers, errors, register_blueprints, shown

    logsetup.configure()  # under gunicorn nobody else does (FLEXNET_LOG_LEVEL)
    settings = settings or load_settings()
    app = Flask(
        __name__,
        instance_path=str(settings.instance_path),
        template_folder=resources.templates_dir(),
        static_folder=resources.static_dir(),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        JSON_AS_ASCII=False,
        WTF_CSRF_TIME_LIMIT=3600,
        # Above the key import's own 5 MB: larger bodies are refused before any parsing.
        MAX_CONTENT_LENGTH=8 * 1024 * 1024,
    )
    if settings.proxies:
        # Behind nginx: the client's address (throttles, audit, sessions) and scheme come
        # from the proxies' headers, trusting exactly this many hops.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxies, x_proto=settings.proxies
        )
    database = Database.from_url(
        settings.database_url, timeout_ms=settings.db_timeout_ms, audit_key=settings.chain_key
    )
    app.extensions["flexnet"] = FlexnetState(settings, database)
    errors.init_app(app)  # first: its check runs before CSRF protection's
    register_blueprints(app, CSRFProtect(app))
    app.after_request(add_security_headers)
    app.jinja_env.finalize = shown
    return app
