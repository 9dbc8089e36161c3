"""The OpenAPI description of the routes for data that changes over the years
(``api_changes``): list filters, a member's end of activity, takeovers, returned
letters, versions of the terms of use."""

from __future__ import annotations

from typing import Any

from flexnet.web.openapi_parts import (
    BSNR,
    NULLABLE_STRING,
    PAGING,
    PERSON,
    TEXT,
    USERNAME,
    json_,
    object_,
    operation,
    page_of,
    ref,
)

_DATE = {"type": "string", "format": "date"}
_LOCK_RANGE = [
    {"name": "lock_from", "in": "query", "schema": _DATE},
    {"name": "lock_to", "in": "query", "schema": _DATE},
]
_STATE = {"enum": ["active", "pending", "locked", "revoked"]}
PRACTICE_FILTERS = [
    *PAGING,
    {"name": "status", "in": "query", "schema": _STATE},
    {"name": "kind", "in": "query", "schema": {"enum": ["member", "third_party"]}},
    {"name": "terms_version", "in": "query", "schema": {"type": "string", "maxLength": 32}},
    {"name": "terms_due", "in": "query", "schema": {"enum": ["true", "false"]}},
    *_LOCK_RANGE,
]
_USER_FILTERS = [
    *PAGING,
    {"name": "status", "in": "query", "schema": _STATE},
    {
        "name": "kind",
        "in": "query",
        "schema": {"enum": ["member", "staff", "third_party", "practice_access"]},
    },
    {"name": "bsnr", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]{9}$"}},
    *_LOCK_RANGE,
]
_END = object_(
    {
        "ended_on": _DATE,
        "clear": {"type": "boolean"},
        "reason": {"type": "string", "maxLength": 300},
    },
    [],
)
TERMS_VERSION = object_(
    {
        "version": {"type": "string"},
        "effective_on": {"type": "string"},
        "accept_by": {"type": "string"},
        "published_by": {"type": "string"},
        "accepted_by": {"type": "integer"},
    }
)

PATHS: dict[str, Any] = {
    "/users": {
        "get": operation(
            "Benutzer, gefiltert und seitenweise",
            json_(page_of(ref("User")), "Eine Seite"),
            parameters=_USER_FILTERS,
        )
    },
    "/users/{username}/activity-end": {
        "post": operation(
            "Eigenes Ende der Tätigkeit eines Mitglieds erfassen, berichtigen oder streichen "
            "(§ 10.3; Berichtigen und Streichen mit Grund)",
            json_(ref("User"), "Erfasst"),
            errors=("400", "401", "403", "404", "409"),
            parameters=[USERNAME],
            body=_END,
        )
    },
    "/practices/{bsnr}/activity-end": {
        "post": operation(
            "Ende der Tätigkeit der ganzen Betriebsstätte erfassen, berichtigen oder streichen",
            json_(ref("PracticeDetail"), "Erfasst"),
            errors=("400", "401", "403", "404", "409"),
            parameters=[BSNR],
            body=_END,
        )
    },
    "/terms": {
        "get": operation(
            "Veröffentlichte Versionen der Nutzungsbedingungen, wer welche zuletzt annahm",
            json_(
                object_(
                    {
                        "versions": {"type": "array", "items": TERMS_VERSION},
                        "pending": {"type": "integer"},
                    }
                ),
                "Die Versionen",
            ),
            errors=("401", "403"),
        ),
        "post": operation(
            "Neue Version veröffentlichen (gilt ab, anzunehmen bis); Briefe werden vorgemerkt",
            json_(TERMS_VERSION, "Veröffentlicht"),
            status="201",
            errors=("400", "401", "403", "409"),
            body=object_(
                {
                    "version": {"type": "string", "maxLength": 32},
                    "effective_on": _DATE,
                    "accept_by": _DATE,
                }
            ),
        ),
    },
    "/practices/{bsnr}/takeover": {
        "post": operation(
            "Praxisübernahme (§ 2.3): Zugänge und Yubikey des bisherigen Inhabers enden, "
            "der neue Inhaber bekommt eigene",
            json_(
                object_(
                    {
                        "practice": ref("PracticeDetail"),
                        "ended": {"type": "array", "items": {"type": "string"}},
                        "letters": {"type": "array", "items": {"type": "string"}},
                    }
                ),
                "Erfasst: die fortgeführte Betriebsstätte",
            ),
            status="201",
            errors=("400", "401", "403", "404", "409"),
            parameters=[BSNR],
            body=object_(
                {
                    "on": {"type": "string", "format": "date"},
                    "new_name": TEXT,
                    "new_bsnr": {"type": "string", "maxLength": 9},
                    "terms_version": {"type": "string", "maxLength": 32},
                    "terms_channel": {"enum": ["portal", "paper"]},
                    "accepted_on": {"type": "string", "format": "date"},
                    "members": {"type": "array", "items": PERSON, "maxItems": 20},
                    "staff": {"type": "array", "items": PERSON, "maxItems": 50},
                    "practice_access": {"type": "string", "maxLength": 64},
                    "key": {"type": "string", "maxLength": 32},
                    "street": TEXT,
                    "zip_code": {"type": "string", "maxLength": 5},
                    "city": TEXT,
                    "address_extra": TEXT,
                    "phone": {"type": "string", "maxLength": 40},
                    "contact_person": TEXT,
                },
                ["on", "new_name", "terms_version", "members"],
            ),
        )
    },
    "/letters/{reference}/returned": {
        "post": operation(
            "Brief als unzustellbar erfassen: neu vorgemerkt, ein Kennwort darin gilt nicht mehr",
            json_(
                object_(
                    {
                        "letter": {"type": "string"},
                        "status": {"enum": ["returned"]},
                        "resend": NULLABLE_STRING,
                    }
                ),
                "Erfasst, mit dem neu vorgemerkten Brief",
            ),
            errors=("400", "401", "403", "404", "409"),
            parameters=[
                {
                    "name": "reference",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^FN-[0-9]{6}$"},
                }
            ],
            body=object_({"returned_on": {"type": "string", "format": "date"}}, []),
        )
    },
}
