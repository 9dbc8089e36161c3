"""flexnet: the KV-FlexNet authentication and provisioning server of the KVSA."""

from __future__ import annotations

from flask import Flask

from flexnet.config import Settings, load_settings
from flexnet.db import Database

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> Flask:
    """Wire config, database and blueprints; no work beyond that."""
    from flexnet.web import FlexnetState, register_blueprints

    settings = settings or load_settings()
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_AS_ASCII=False,
    )
    database = Database.from_url(settings.database_url, timeout_ms=settings.db_timeout_ms)
    app.extensions["flexnet"] = FlexnetState(settings, database)
    register_blueprints(app)
    return app
