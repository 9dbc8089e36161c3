"""``/``: the start page, in German, for practices and for the IT staff."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

blueprint = Blueprint("start", __name__)


@blueprint.get("/")
def start() -> ResponseReturnValue:
    return render_template("start.html")
