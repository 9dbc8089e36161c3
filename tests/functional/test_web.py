from __future__ import annotations

import http.client

import pytest
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.clients import apiclients
from flexnet.config import load_settings
from flexnet.web import state
from tests.support.web import served


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


NO_STORE_PATHS = [
    ("GET", "/self-service/login"),
    ("POST", "/self-service/login"),  # no CSRF token: refused
    ("GET", "/self-service/"),  # not signed in: a redirect
    ("GET", "/self-service/password"),
    ("GET", "/self-service/lock"),
    ("GET", "/self-service/unknown"),
    ("GET", "/requests/new"),
    ("POST", "/api/v1/auth"),  # no key
    ("GET", "/api/v1/practices"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/unknown"),
    ("DELETE", "/api/v1/auth"),
    ("GET", "/wsapi/2.0/verify"),
]


@pytest.mark.parametrize(("method", "path"), NO_STORE_PATHS)
def test_answers_with_personal_data_or_credentials_are_never_stored(
    env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch, method: str, path: str
) -> None:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    app = create_app()

    with served(app) as base:
        connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
        connection.request(method, path)
        response = connection.getresponse()
        response.read()
        connection.close()
    state(app).database.dispose()

    assert response.getheader("Cache-Control") == "no-store", response.status


def test_an_internal_error_of_the_api_is_not_stored_either(
    env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    app = create_app()

    def broken(*_args: object) -> None:
        raise RuntimeError("simulated fault")

    monkeypatch.setattr(apiclients, "authenticate_client", broken)
    with served(app) as base:
        connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
        connection.request("GET", "/api/v1/practices", headers={"X-API-Key": "fx_irgendwas"})
        response = connection.getresponse()
        response.read()
        connection.close()
    state(app).database.dispose()

    assert response.status >= 500
    assert response.getheader("Cache-Control") == "no-store"


def test_the_stylesheet_may_be_cached(
    env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    app = create_app()

    response = app.test_client().get("/static/flexnet.css")

    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
    response.close()
    state(app).database.dispose()


def test_the_start_page_is_german_and_leads_to_every_public_page_and_the_staff_sign_in(
    env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    app = create_app()

    response = app.test_client().get("/")

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="de">' in page and "<h1>KV-FlexNet" in page
    for target in ("/self-service/login", "/self-service/lock", "/requests/new", "/admin/"):
        assert f'href="{target}"' in page
    state(app).database.dispose()


@pytest.mark.parametrize("path", ["/gibt-es-nicht", "/self-service/gibt-es-nicht"])
def test_an_unknown_page_is_answered_in_german(
    env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    app = create_app()

    response = app.test_client().get(path)

    page = response.get_data(as_text=True)
    assert response.status_code == 404
    assert '<html lang="de">' in page and "Seite nicht gefunden" in page
    assert "Not Found" not in page and 'href="/"' in page
    state(app).database.dispose()
