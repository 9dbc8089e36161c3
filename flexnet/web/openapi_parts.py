"""Building blocks of the OpenAPI document (``openapi``): schemas, parameters and the
shape of an operation, shared by the modules that describe the routes."""

from __future__ import annotations

from typing import Any

NULLABLE_STRING = {"type": ["string", "null"]}
BSNR = {
    "name": "bsnr",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]{9}$"},
}
USERNAME = {
    "name": "username",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"},
}
PAGING = [
    {
        "name": "page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100_000},
    },
    {
        "name": "per_page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
    },
]


def object_(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required if required is not None else list(properties),
        "additionalProperties": False,
    }


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


PROBLEM = {
    "description": "Fehler (RFC 9457)",
    "content": {"application/problem+json": {"schema": ref("Problem")}},
}


def operation(
    summary: str,
    ok: dict[str, Any],
    *,
    status: str = "200",
    errors: tuple[str, ...] = ("400", "401", "403"),
    body: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {status: ok, **dict.fromkeys(errors, PROBLEM)},
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    if parameters:
        operation["parameters"] = parameters
    return operation


def page_of(item: dict[str, Any]) -> dict[str, Any]:
    return object_(
        {
            "items": {"type": "array", "items": item},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {"type": "integer"},
        }
    )


TEXT = {"type": "string", "maxLength": 200}
PERSON = object_(
    {
        "username": {"type": "string", "maxLength": 64},
        "name": TEXT,
        "lanr": {"type": "string", "maxLength": 9},
    },
    ["username"],
)
