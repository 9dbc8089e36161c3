"""The OpenAPI description of ``api_management``: the fee ledger, terminations corrected
or withdrawn, a key unlocked after a false alarm, exceptions, the management's reports."""

from __future__ import annotations

from typing import Any

from flexnet.web.openapi_parts import NULLABLE_STRING, json_, object_, operation

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
