"""``/api/v1/privacy``: access reports (Art. 15 DSGVO) for the association's systems, admin
role only; the same report as ``flexnet privacy export`` (JSON), audited alike."""

from __future__ import annotations

from typing import Any

from flask import Response, g

from flexnet.db import utcnow
from flexnet.errors import NotFoundError, ValidationError
from flexnet.models import StaffRole
from flexnet.ops import privacy
from flexnet.web import state
from flexnet.web.api import blueprint
from flexnet.web.api_resources import client_with

ADMIN = frozenset({StaffRole.ADMIN})


@blueprint.get("/privacy/users/<username>")
@client_with(ADMIN)
def privacy_user(username: str) -> Response:
    with state().database.session() as db:
        report = privacy.for_user(db, username, actor=g.api_actor, now=utcnow())
        return Response(report.as_json(), mimetype="application/json")


@blueprint.get("/privacy/practices/<bsnr>")
@client_with(ADMIN)
def privacy_practice(bsnr: str) -> Response:
    with state().database.session() as db:
        try:
            report = privacy.for_practice(db, bsnr, actor=g.api_actor, now=utcnow())
        except ValidationError:
            raise NotFoundError(f"Keine Betriebsstätte mit BSNR {bsnr}") from None
        return Response(report.as_json(), mimetype="application/json")


_PROBLEM = {
    "description": "Fehler (RFC 9457)",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
_REPORT = {
    "description": "Alles Gespeicherte (nie Kennwörter, Hashes oder Schlüssel)",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "auskunft_nach": {"type": "string"},
                    "ueber": {
                        "type": "object",
                        "properties": {"art": {"type": "string"}, "kennung": {"type": "string"}},
                        "required": ["art", "kennung"],
                    },
                    "erstellt_am": {"type": "string"},
                },
                "required": ["auskunft_nach", "ueber", "erstellt_am"],
            }
        }
    },
}


def _operation(summary: str, parameter: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "description": "Nur für Clients mit der Rolle admin; jede Auskunft wird protokolliert.",
            "parameters": [parameter],
            "responses": {"200": _REPORT, **dict.fromkeys(("401", "403", "404"), _PROBLEM)},
        }
    }


PATHS: dict[str, Any] = {
    "/privacy/users/{username}": _operation(
        "Auskunft nach Art. 15 DSGVO über einen Benutzer",
        {
            "name": "username",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"},
        },
    ),
    "/privacy/practices/{bsnr}": _operation(
        "Auskunft nach Art. 15 DSGVO über eine Betriebsstätte",
        {
            "name": "bsnr",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]{9}$"},
        },
    ),
}
