"""``/api/v1``: JSON for the association's other systems. Errors are RFC 9457 problems."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request

from flexnet.authn import pipeline
from flexnet.authn.pipeline import Channel, Client
from flexnet.clients import apiclients
from flexnet.db import utcnow
from flexnet.web import state

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)


def problem(status: int, title: str, detail: str | None = None) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def api_key() -> str:
    """The key a client sent: ``Authorization: Bearer …`` or ``X-API-Key``."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer ") :].strip()
    return request.headers.get("X-API-Key", "").strip()


@blueprint.post("/auth")
def auth() -> Response:
    """Check username + password (+ OTP if the client requires it) through the pipeline."""
    flexnet = state()
    body = request.get_json(silent=True)
    fields = ("username", "password", "otp", "client_ip")
    if not isinstance(body, dict) or not all(isinstance(body.get(f, ""), str) for f in fields):
        return problem(400, "Ungültige Anfrage", "JSON mit username, password und ggf. otp")
    # The end user's address as the portal saw it; the portal's own address would put
    # all of its users under one per-source limit.
    client_ip = body.get("client_ip") or None
    if client_ip is not None:
        try:
            client_ip = str(ipaddress.ip_address(client_ip))
        except ValueError:
            return problem(400, "Ungültige Anfrage", "client_ip ist keine IP-Adresse")
    now = utcnow()
    try:
        with flexnet.database.session() as session:
            client = apiclients.authenticate_client(session, api_key())
            if client is None:
                return problem(401, "API-Schlüssel fehlt oder ist ungültig")
            otp = body.get("otp") or None
            if client.require_otp and otp is None:
                return problem(400, "Ungültige Anfrage", "Dieser Client muss ein otp mitsenden")
            decision = flexnet.authenticator.authenticate(
                session,
                username=body.get("username", ""),
                password=body.get("password", ""),
                otp=otp if client.require_otp or otp else None,
                client=Client(Channel.API, client.name, client_ip),
                now=now,
            )
    except Exception:
        # Fail closed: an internal error is never an accept.
        log.exception("api auth: internal error")
        return problem(503, "Dienst vorübergehend nicht verfügbar")
    if decision.must_change_password:
        # Never "accept" for a password that must be changed: a portal might not look at
        # the profile. The user changes it in self-service.
        message = "Ihr Kennwort muss geändert werden. Bitte nutzen Sie das Selbstbedienungsportal."
        return jsonify(result="password_change_required", message=message)
    if decision.accepted:
        return jsonify(result="accept", profile=decision.profile, message=decision.reply_message)
    # The caller learns reject only; which factor failed stays in the auth log.
    return jsonify(result="reject", message=decision.reply_message or pipeline.GENERIC_REJECT)
