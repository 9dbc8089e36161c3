"""``GET|POST /wsapi/2.0/verify``: the Yubico validation protocol for other portals.

Three short transactions per request: check the caller, count it against its rate
limit, check the OTP. No lock of one phase is held while the next one runs.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request

from flexnet.authn import ratelimit
from flexnet.db import utcnow
from flexnet.otp import wsapi
from flexnet.web import state

blueprint = Blueprint("wsapi", __name__, url_prefix="/wsapi/2.0")
log = logging.getLogger(__name__)


@blueprint.route("/verify", methods=["GET", "POST"])
def verify() -> Response:
    flexnet = state()
    database = flexnet.database
    now = utcnow()
    params = {key: request.values.get(key, "") for key in request.values}
    try:
        with database.session() as session:
            caller = wsapi.check_request(session, params, box=flexnet.secret_box, now=now)
        if isinstance(caller, wsapi.Answer):
            return _response(caller, 200)
        with database.session() as session:
            allowed = ratelimit.hit(
                session,
                wsapi.rate_limit_key(caller),
                limit=flexnet.settings.otp.wsapi_rate_limit,
                window_seconds=wsapi.RATE_WINDOW_SECONDS,
                now=now,
            )
        if not allowed:
            return _response(wsapi.rate_limited(caller, params, now=now), 429)
        with database.session() as session:
            answer = wsapi.verify_otp(
                session,
                caller,
                params,
                box=flexnet.secret_box,
                settings=flexnet.settings.otp,
                now=now,
                remote=flexnet.remote_validator,
            )
    except Exception:
        # Fail closed: whatever broke inside, the answer is an unsigned BACKEND_ERROR.
        log.exception("wsapi: internal error, answering BACKEND_ERROR")
        return _response(wsapi.unsigned_error(now), 503)
    return _response(answer, 200)


def refusal() -> Response:
    """The protocol's answer to a request the web layer refused (``web.errors``)."""
    return _response(wsapi.malformed(utcnow()), 200)


def _response(answer: wsapi.Answer, status: int) -> Response:
    response = Response(answer.body(), status=status, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response
