"""schemathesis against the Yubico validation protocol endpoint /wsapi/2.0/verify.

The protocol is Yubico's (key=value lines, not JSON), so the document below describes it
as the yubikey-val server does; generated requests, signed and unsigned, of a real
client and of strangers, must never get a server error, always get a text answer with a
status line, and never an ``OK``: the generator cannot know a key's AES secret.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.otp import wsapi
from flexnet.web import state
from tests.functional.conftest import seed

STATUSES = {s.value for s in wsapi.Status}
_PARAMETERS = {
    "id": {"type": "string", "pattern": "^[0-9]{1,6}$"},
    "otp": {"type": "string", "minLength": 0, "maxLength": 80},
    "nonce": {"type": "string", "pattern": "^[A-Za-z0-9]{16,40}$"},
    "timestamp": {"type": "string", "enum": ["1", "0"]},
    "sl": {"type": "string", "maxLength": 8},
    "timeout": {"type": "string", "maxLength": 8},
    "h": {"type": "string", "maxLength": 64},
}
REQUIRED = ("id", "otp", "nonce")
_ANSWER = {"200": {"description": "key=value lines", "content": {"text/plain": {}}}}
DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Yubico validation protocol 2.0", "version": "2.0"},
    "paths": {
        "/wsapi/2.0/verify": {
            "get": {
                "parameters": [
                    {"name": name, "in": "query", "required": name in REQUIRED, "schema": s}
                    for name, s in _PARAMETERS.items()
                ],
                "responses": _ANSWER,
            },
            "post": {
                "requestBody": {
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "properties": _PARAMETERS,
                                "required": list(REQUIRED),
                            }
                        }
                    }
                },
                "responses": _ANSWER,
            },
        }
    },
}


def answer_fields(body: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in body.splitlines() if "=" in line)


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The default per-client rate limit: generated requests reach the OTP check."""
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    application = create_app()
    yield application
    state(application).database.dispose()


def test_generated_requests_never_break_or_pass(app: Flask) -> None:
    client_id, api_key, key = seed(app)
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    schema.app = app
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 2
    otps = st.one_of(
        st.just(key.public_id + "c" * 32),  # the real key's id, a ciphertext it never made
        st.text(alphabet="cbdefghijklnrtuv", min_size=32, max_size=48),
    )

    for operation in operations:

        @given(case=operation.as_strategy(), otp=otps, sign=st.booleans(), own_id=st.booleans())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case, otp: str, sign: bool, own_id: bool) -> None:
            fields = case.query if case.query is not None else case.body
            if isinstance(fields, dict):
                if own_id:
                    fields["id"] = client_id
                    fields["otp"] = otp
                if sign:
                    fields.pop("h", None)
                    fields["h"] = wsapi.signature(fields, base64.b64decode(api_key))
            response = case.call_and_validate(
                checks=[not_a_server_error, status_code_conformance, content_type_conformance]
            )
            status = answer_fields(response.text).get("status")
            assert status in STATUSES and status != "OK", response.text

        check()
