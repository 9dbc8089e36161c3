from __future__ import annotations

import pytest
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.config import load_settings


def test_health_reports_database_ok(
    env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    client = create_app().test_client()

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


@pytest.mark.postgres
def test_health_reports_unreachable_database(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A port where nothing listens: the check must answer 503, not raise.
    monkeypatch.setenv(
        "FLEXNET_DATABASE_URL",
        "postgresql+psycopg://flexnet@127.0.0.1:9/flexnet?connect_timeout=2",
    )
    client = create_app().test_client()

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json == {"status": "error", "database": "unreachable"}


def test_app_factory_refuses_to_start_without_secret_key(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLEXNET_SECRET_KEY")

    with pytest.raises(Exception, match="FLEXNET_SECRET_KEY"):
        create_app()


def test_app_uses_the_configured_secret(env: dict[str, str]) -> None:
    app = create_app(load_settings())

    assert app.secret_key == env["FLEXNET_SECRET_KEY"]
