"""Web layer: blueprints only call the domain; no business rule lives here."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from flask import Flask, current_app

from flexnet.config import Settings
from flexnet.db import Database
from flexnet.otp.remote import RemoteValidator
from flexnet.otp.secrets import SecretBox


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


def state(app: Flask | None = None) -> FlexnetState:
    """flexnet's part of an app: of ``app``, or of the app handling the current request."""
    result: FlexnetState = (app or current_app).extensions["flexnet"]
    return result


def register_blueprints(app: Flask) -> None:
    from flexnet.web import api, health, wsapi

    app.register_blueprint(api.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(wsapi.blueprint)
