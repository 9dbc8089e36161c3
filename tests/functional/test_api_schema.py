"""schemathesis against /api/v1/openapi.json: generated requests of every operation, as a
client with the admin role, never get a server error and always get the answer the
document promises (status code, content type, body schema).

The operations are driven with hypothesis directly (schemathesis' pytest plugin does not
support this pytest version)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.clients import apiclients
from flexnet.db import utcnow
from flexnet.models import StaffRole
from flexnet.web import state
from tests.conftest import BOX, STAFF
from tests.support.seed import add_login

# What the issue asks (no server error, answers as documented); whether every request
# the schema allows is also accepted (BSNR check digits, name rules) is not claimed.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_app(
    env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    app = create_app()
    with state(app).database.session() as db:
        add_login(db, BOX, bsnr="881234500", username="emuster", password="Sommer-Regen-2026!")
        _, key = apiclients.add_client(
            db, name="portal", require_otp=False, role=StaffRole.ADMIN, actor=STAFF, now=utcnow()
        )
    app.config["TEST_API_KEY"] = key
    yield app
    state(app).database.dispose()


def test_every_operation_answers_as_documented(api_app: Flask) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api_app)
    headers = {"Authorization": f"Bearer {api_app.config['TEST_API_KEY']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
