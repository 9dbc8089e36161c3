"""``GET|POST /wsapi/2.0/verify``: the Yubico validation protocol for other portals."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from sqlalchemy.exc import SQLAlchemyError

from flexnet.db import utcnow
from flexnet.otp import wsapi
from flexnet.web import state

blueprint = Blueprint("wsapi", __name__, url_prefix="/wsapi/2.0")
log = logging.getLogger(__name__)


@blueprint.route("/verify", methods=["GET", "POST"])
def verify() -> Response:
    flexnet = state()
    now = utcnow()
    params = {key: request.values.get(key, "") for key in request.values}
    try:
        with flexnet.database.session() as session:
            answer = wsapi.verify_request(
                session,
                params,
                box=flexnet.secret_box,
                settings=flexnet.settings.otp,
                now=now,
                remote=flexnet.remote_validator,
            )
    except SQLAlchemyError:
        log.exception("wsapi: database error, answering BACKEND_ERROR")
        answer = wsapi.unsigned_error(now)
    status_code = 429 if answer.rate_limited else 200
    response = Response(answer.body(), status=status_code, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response
