"""The OpenAPI 3.1 document of ``/api/v1``, written by hand next to the routes it
describes; ``tests/functional/test_api_schema.py`` runs schemathesis against it, so a
route that answers differently from this document fails the suite."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from flexnet.web.api import blueprint
from flexnet.web.api_privacy import PATHS as PRIVACY_PATHS
from flexnet.web.openapi_changes import PATHS as CHANGES
from flexnet.web.openapi_changes import PRACTICE_FILTERS
from flexnet.web.openapi_management import PATHS as MANAGEMENT
from flexnet.web.openapi_parts import BSNR as _BSNR
from flexnet.web.openapi_parts import NULLABLE_STRING as _NULLABLE_STRING
from flexnet.web.openapi_parts import PAGING as _PAGING
from flexnet.web.openapi_parts import TEXT as _TEXT
from flexnet.web.openapi_parts import USERNAME as _USERNAME
from flexnet.web.openapi_parts import json_ as _json
from flexnet.web.openapi_parts import object_ as _object
from flexnet.web.openapi_parts import operation as _operation
from flexnet.web.openapi_parts import page_of as _page_of
from flexnet.web.openapi_parts import ref as _ref

_PRACTICE = {
    "bsnr": {"type": "string"},
    "name": {"type": "string"},
    "kind": {"enum": ["member", "third_party"]},
    "status": {"enum": ["active", "pending", "locked", "revoked"]},
    "status_reason": _NULLABLE_STRING,
    "lock_at": _NULLABLE_STRING,
    "terms_version": _NULLABLE_STRING,
    "terms_due_version": _NULLABLE_STRING,
    "terms_due_by": _NULLABLE_STRING,
    "activity_ended_on": _NULLABLE_STRING,
}
_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
        },
        "required": ["type", "title", "status"],
    },
    "Practice": _object(_PRACTICE),
    "PracticeDetail": _object(
        {
            **_PRACTICE,
            "address": _object(
                {
                    "extra": _NULLABLE_STRING,
                    "street": {"type": "string"},
                    "zip_code": {"type": "string"},
                    "city": {"type": "string"},
                }
            ),
            "phone": _NULLABLE_STRING,
            "contact_person": _NULLABLE_STRING,
            "users": {"type": "array", "items": {"type": "string"}},
            "keys": {
                "type": "array",
                "items": _object({"serial": {"type": "string"}, "status": {"type": "string"}}),
            },
        }
    ),
    "User": _object(
        {
            "username": {"type": "string"},
            "bsnr": {"type": "string"},
            "kind": {"enum": ["member", "staff", "third_party", "practice_access"]},
            "name": _NULLABLE_STRING,
            "lanr": _NULLABLE_STRING,
            "activity_ended_on": _NULLABLE_STRING,
            "status": {"enum": ["active", "pending", "locked", "revoked"]},
            "status_reason": _NULLABLE_STRING,
            "lock_at": _NULLABLE_STRING,
        }
    ),
    "Token": _object(
        {
            "serial": {"type": "string"},
            "kind": {"type": "string"},
            "status": {"type": "string"},
            "bsnr": _NULLABLE_STRING,
            "lock_reason": _NULLABLE_STRING,
            "returned_on": _NULLABLE_STRING,
        }
    ),
    "Letter": _object(
        {
            "reference": {"type": "string"},
            "kind": {"type": "string"},
            "bsnr": {"type": "string"},
            "username": _NULLABLE_STRING,
            "waiting_because": _NULLABLE_STRING,
        }
    ),
}


_REQUEST_ITEM = _object(
    {
        "id": {"type": "integer"},
        "created_at": {"type": "string"},
        "bsnr": {"type": "string"},
        "known_practice": {"type": "boolean"},
        "practice_phone": _NULLABLE_STRING,
        "kind": {"type": "string"},
        "kind_label": {"type": "string"},
        "status": {"type": "string"},
    }
)
_RUN_ITEM = _object(
    {
        "id": {"type": "integer"},
        "status": {"type": "string"},
        "run_date": {"type": "string"},
        "letters": {"type": "integer"},
        "dispatched_on": _NULLABLE_STRING,
    }
)
_PATHS: dict[str, Any] = {
    "/auth": {
        "post": _operation(
            "Benutzername, Kennwort und ggf. OTP prüfen (§ 5.4)",
            _json(
                _object(
                    {
                        "result": {"type": "string"},
                        "profile": _NULLABLE_STRING,
                        "message": _NULLABLE_STRING,
                    },
                    ["result"],
                ),
                "Entscheidung: accept, reject oder password_change_required",
            ),
            errors=("400", "401", "503"),
            body=_object(
                {
                    "username": {"type": "string", "maxLength": 64},
                    "password": {"type": "string", "maxLength": 128},
                    "otp": {"type": "string", "maxLength": 64},
                    "client_ip": {"type": "string", "maxLength": 45},
                },
                ["username", "password"],
            ),
        )
    },
    "/practices": {
        "get": _operation(
            "Betriebsstätten, gefiltert (Status, Art, Version der Nutzungsbedingungen, "
            "Sperrdatum von/bis) und seitenweise",
            _json(_page_of(_ref("Practice")), "Eine Seite"),
            parameters=PRACTICE_FILTERS,
        ),
        "post": _operation(
            "Betriebsstätte anlegen",
            _json(_ref("PracticeDetail"), "Angelegt"),
            status="201",
            errors=("400", "401", "403", "409"),
            body=_object(
                {
                    "bsnr": {"type": "string", "maxLength": 9},
                    "name": _TEXT,
                    "street": _TEXT,
                    "zip_code": {"type": "string", "maxLength": 5},
                    "city": _TEXT,
                    "address_extra": _TEXT,
                    "kind": {"enum": ["member", "third_party"]},
                },
                ["bsnr", "name", "street", "zip_code", "city"],
            ),
        ),
    },
    "/practices/{bsnr}": {
        "get": _operation(
            "Eine Betriebsstätte mit Benutzern und Yubikey",
            _json(_ref("PracticeDetail"), "Die Betriebsstätte"),
            errors=("401", "403", "404"),
            parameters=[_BSNR],
        ),
        "patch": _operation(
            "Name, Anschrift, Telefon oder Ansprechpartner ändern (leer: entfernen)",
            _json(_ref("PracticeDetail"), "Geändert"),
            errors=("400", "401", "403", "404"),
            parameters=[_BSNR],
            body=_object(
                {
                    "name": _TEXT,
                    "street": _TEXT,
                    "zip_code": {"type": "string", "maxLength": 5},
                    "city": _TEXT,
                    "address_extra": _TEXT,
                    "phone": {"type": "string", "maxLength": 40},
                    "contact_person": _TEXT,
                },
                [],
            ),
        ),
    },
    "/practices/{bsnr}/terms": {
        "post": _operation(
            "Annahme der Nutzungsbedingungen erfassen (§ 1.3)",
            _json(_ref("PracticeDetail"), "Erfasst"),
            status="201",
            errors=("400", "401", "403", "404", "409"),
            parameters=[_BSNR],
            body=_object(
                {
                    "version": {"type": "string", "maxLength": 32},
                    "accepted_on": {"type": "string", "format": "date"},
                    "channel": {"enum": ["portal", "paper"]},
                },
                ["version", "accepted_on"],
            ),
        )
    },
    "/practices/{bsnr}/users": {
        "post": _operation(
            "Benutzer anlegen; der Zugangsdaten-Brief wird vorgemerkt",
            _json(_ref("User"), "Angelegt"),
            status="201",
            errors=("400", "401", "403", "404", "409"),
            parameters=[_BSNR],
            body=_object(
                {
                    "username": {"type": "string", "maxLength": 64},
                    "kind": {"enum": ["member", "staff", "third_party", "practice_access"]},
                    "name": _TEXT,
                    "lanr": {"type": "string", "maxLength": 9},
                },
                ["username", "kind"],
            ),
        )
    },
    "/practices/{bsnr}/termination": {
        "post": _operation(
            "Kündigung erfassen (§ 10.2)",
            _json(
                _object({"practice": _ref("Practice"), "last_day": _NULLABLE_STRING}),
                "Erfasst, mit dem letzten Tag mit Zugang",
            ),
            errors=("400", "401", "403", "404", "409"),
            parameters=[_BSNR],
            body=_object(
                {
                    "by": {"enum": ["member", "association", "extraordinary"]},
                    "notice_date": {"type": "string", "format": "date"},
                    "requested_date": {"type": "string", "format": "date"},
                    "reason": {"type": "string", "maxLength": 500},
                },
                ["by", "notice_date"],
            ),
        )
    },
    "/users/{username}": {
        "get": _operation(
            "Ein Benutzer",
            _json(_ref("User"), "Der Benutzer"),
            errors=("401", "403", "404"),
            parameters=[_USERNAME],
        ),
        "patch": _operation(
            "Namen oder LANR (nur Mitglieder) ändern",
            _json(_ref("User"), "Geändert"),
            errors=("400", "401", "403", "404", "409"),
            parameters=[_USERNAME],
            body=_object({"name": _TEXT, "lanr": {"type": "string", "maxLength": 9}}, []),
        ),
    },
    "/tokens/{serial}": {
        "get": _operation(
            "Ein Yubikey",
            _json(_ref("Token"), "Der Yubikey"),
            errors=("401", "403", "404"),
            parameters=[
                {
                    "name": "serial",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]{1,32}$"},
                }
            ],
        )
    },
    "/locks": {
        "post": _operation(
            "Benutzer, Yubikey oder Betriebsstätte sperren (§ 7.2, § 10.1, § 14.2)",
            _json(
                _object(
                    {
                        "locked": {"type": "array", "items": {"type": "string"}},
                        "status": {"type": "string"},
                    },
                    ["locked"],
                ),
                "Gesperrt",
            ),
            errors=("400", "401", "403", "404", "409"),
            body=_object(
                {
                    "what": {"enum": ["user", "key", "practice"]},
                    "id": {"type": "string", "maxLength": 64},
                    "cause": {"enum": ["manual", "misuse", "loss", "objection"]},
                    "reason": {"type": "string", "maxLength": 500},
                    "all_practice_credentials": {"type": "boolean"},
                },
                ["what", "id", "cause", "reason"],
            ),
        )
    },
    "/requests": {
        "get": _operation(
            "Anfragen der Praxen, seitenweise",
            _json(_page_of(_REQUEST_ITEM), "Eine Seite"),
            parameters=[
                *_PAGING,
                {"name": "status", "in": "query", "schema": {"enum": ["open", "all"]}},
            ],
        )
    },
    "/letters/due": {
        "get": _operation(
            "Was ein Versandlauf heute enthielte, und was warum wartet",
            _json(
                _object(
                    {
                        "day": {"type": "string"},
                        "due": {"type": "array", "items": _ref("Letter")},
                        "waiting": {"type": "array", "items": _ref("Letter")},
                    }
                ),
                "Die Liste",
            ),
            errors=("401", "403"),
        )
    },
    "/letters/runs": {
        "get": _operation(
            "Versandläufe, seitenweise",
            _json(_page_of(_RUN_ITEM), "Eine Seite"),
            parameters=_PAGING,
        )
    },
}

_PATHS.update(CHANGES)
_PATHS.update(PRIVACY_PATHS)
_PATHS.update(MANAGEMENT)

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "KV-FlexNet API",
        "version": "1",
        "description": (
            "Für die Systeme der KV Sachsen-Anhalt. Jeder Client hat einen eigenen Schlüssel "
            "(Authorization: Bearer …) und eine Rolle: auditor liest, helpdesk und admin ändern "
            "auch. Fehler als RFC 9457 problem+json."
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"apiKey": []}],
    "components": {
        "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        "schemas": _SCHEMAS,
    },
    "paths": _PATHS,
}


@blueprint.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(DOCUMENT)
