"""Web layer: blueprints only call the domain; no business rule lives here."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from flexnet.config import Settings
from flexnet.db import Database


@dataclass(frozen=True)
class FlexnetState:
    settings: Settings
    database: Database


def state() -> FlexnetState:
    result: FlexnetState = current_app.extensions["flexnet"]
    return result


def register_blueprints(app: Flask) -> None:
    from flexnet.web import health

    app.register_blueprint(health.blueprint)
