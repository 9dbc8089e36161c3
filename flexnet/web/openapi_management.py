"""The OpenAPI description of ``api_management``: the fee ledger, terminations corrected
or withdrawn, a key unlocked after a false alarm, exceptions, the management's reports."""

from __future__ import annotations

from typing import Any

from flexnet.web.openapi_parts import BSNR, NULLABLE_STRING, json_, object_, operation, ref

_DATE = {"type": "string", "format": "date"}
_REASON = {"type": "string", "maxLength": 300}
FORMAT = {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}}


def json_or_csv(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """JSON by default, CSV (semicolon, UTF-8 with BOM, decimal comma) with format=csv."""
    answer = json_(schema, description)
    answer["content"]["text/csv"] = {"schema": {"type": "string"}}
    return answer


FEE = object_(
    {
        "id": {"type": "integer"},
        "bsnr": {"type": "string"},
        "serial": {"type": "string"},
        "amount_cents": {"type": "integer"},
        "owed_on": {"type": "string"},
        "state": {"enum": ["offen", "berechnet", "bezahlt", "erlassen"]},
        "invoiced_on": NULLABLE_STRING,
        "paid_on": NULLABLE_STRING,
        "waived_on": NULLABLE_STRING,
        "waive_reason": NULLABLE_STRING,
    }
)
_FEE_ID = {
    "name": "fee_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
}


def _fee_step(summary: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": operation(
            summary,
            json_(FEE, "Erfasst"),
            errors=("400", "401", "403", "404", "409"),
            parameters=[_FEE_ID],
            body=body,
        )
    }


PATHS: dict[str, Any] = {
    "/fees": {
        "get": operation(
            "Gebühren nach § 6 Abs. 3 (verlorene Yubikeys), älteste zuerst; open=true: "
            "weder bezahlt noch erlassen",
            json_or_csv(object_({"items": {"type": "array", "items": FEE}}), "Die Gebühren"),
            parameters=[
                {"name": "open", "in": "query", "schema": {"enum": ["true", "false"]}},
                FORMAT,
            ],
        )
    },
    "/fees/{fee_id}/invoiced": _fee_step(
        "Gebühr als berechnet erfassen (Standard: heute)", object_({"on": _DATE}, [])
    ),
    "/fees/{fee_id}/paid": _fee_step(
        "Zahlungseingang erfassen (Standard: heute)", object_({"on": _DATE}, [])
    ),
    "/fees/{fee_id}/waived": _fee_step("Gebühr mit Grund erlassen", object_({"reason": _REASON})),
}

_UNDONE = object_(
    {
        "practice": ref("Practice"),
        "last_day": NULLABLE_STRING,
        "lock_lifted": {"type": "boolean"},
        "cancelled": {"type": "array", "items": {"type": "string"}},
        "already_sent": {"type": "array", "items": {"type": "string"}},
    }
)
_EXCEPTION = object_(
    {
        "bsnr": NULLABLE_STRING,
        "username": NULLABLE_STRING,
        "until": {"type": "string"},
        "reason": {"type": "string"},
        "decision_ref": {"type": "string"},
        "decided_by": {"type": "string"},
    }
)
_UNDO_ERRORS = ("400", "401", "403", "404", "409")

PATHS.update(
    {
        "/unlocks": {
            "post": operation(
                "Sperre eines Benutzers, einer Betriebsstätte oder (nach Selbstsperre oder "
                "Missbrauchsverdacht) eines Yubikeys aufheben; ein verlorener bleibt gesperrt",
                json_(object_({"unlocked": {"type": "string"}}), "Entsperrt"),
                errors=_UNDO_ERRORS,
                body=object_(
                    {
                        "what": {"enum": ["user", "key", "practice"]},
                        "id": {"type": "string", "maxLength": 64},
                        "reason": _REASON,
                    }
                ),
            )
        },
        "/practices/{bsnr}/termination/correction": {
            "post": operation(
                "Kündigung berichtigen (Eingang, gewünschtes Ende; § 10.2), mit Grund",
                json_(_UNDONE, "Berichtigt"),
                errors=_UNDO_ERRORS,
                parameters=[BSNR],
                body=object_(
                    {"notice_date": _DATE, "requested_date": _DATE, "reason": _REASON},
                    ["reason"],
                ),
            )
        },
        "/practices/{bsnr}/termination/withdrawal": {
            "post": operation(
                "Kündigung zurücknehmen, mit Grund; die Sperre durch sie wird aufgehoben",
                json_(_UNDONE, "Zurückgenommen"),
                errors=_UNDO_ERRORS,
                parameters=[BSNR],
                body=object_({"reason": _REASON}),
            )
        },
        "/exceptions": {
            "get": operation(
                "Ausnahmen von der automatischen Sperre (§ 10.3 Satz 2) mit ihrem Ende",
                json_(object_({"items": {"type": "array", "items": _EXCEPTION}}), "Die Liste"),
                errors=("401", "403"),
            )
        },
        "/exceptions/end": {
            "post": operation(
                "Ausnahme vorzeitig beenden: die Daten gelten ab sofort wieder",
                json_(object_({"ended": {"type": "string"}}), "Beendet"),
                errors=_UNDO_ERRORS,
                body=object_(
                    {
                        "bsnr": {"type": "string", "maxLength": 9},
                        "username": {"type": "string", "maxLength": 64},
                        "reason": _REASON,
                    },
                    ["reason"],
                ),
            )
        },
    }
)

PATHS["/reports/{name}"] = {
    "get": operation(
        "Bericht für die Geschäftsführung zum jetzigen Zeitpunkt (as_of; in der CSV die "
        "erste Spalte „Stand“ jeder Zeile)",
        json_or_csv(
            object_(
                {
                    "report": {"type": "string"},
                    "title": {"type": "string"},
                    "as_of": {"type": "string"},
                    "rows": {"type": "array", "items": {"type": "object"}},
                }
            ),
            "Der Bericht",
        ),
        errors=("400", "401", "403", "404"),
        parameters=[
            {
                "name": "name",
                "in": "path",
                "required": True,
                "schema": {
                    "enum": ["practices", "keys-out", "locks-next-quarter", "fees", "terms"]
                },
            },
            FORMAT,
        ],
    )
}

PATHS["/practices/{bsnr}/reactivation"] = {
    "post": operation(
        "Gekündigte Betriebsstätte nimmt wieder teil: neue Annahme der Nutzungsbedingungen, "
        "neuer Yubikey, neue Zugangsdaten-Briefe",
        json_(
            object_(
                {
                    "practice": ref("Practice"),
                    "credentials_for": {"type": "array", "items": {"type": "string"}},
                    "letters": {"type": "array", "items": {"type": "string"}},
                }
            ),
            "Wieder aufgenommen",
        ),
        status="201",
        errors=_UNDO_ERRORS,
        parameters=[BSNR],
        body=object_(
            {
                "terms_version": {"type": "string", "maxLength": 32},
                "channel": {"enum": ["paper", "portal"]},
                "accepted_on": _DATE,
                "key": {"type": "string", "maxLength": 32},
                "reason": _REASON,
            },
            ["terms_version", "channel", "reason"],
        ),
    )
}
