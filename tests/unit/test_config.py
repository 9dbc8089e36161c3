from __future__ import annotations

import base64
from pathlib import Path

import pytest

from flexnet.config import TermsOverdue, generate_master_key, load_settings, parse_master_key
from flexnet.errors import ConfigError
from flexnet.ops.instance import ensure_instance


def test_complete_environment_loads(env: dict[str, str]) -> None:
    settings = load_settings()

    assert settings.instance_path == Path(env["FLEXNET_INSTANCE"]).resolve()
    assert settings.database_url.get_backend_name() == "sqlite"
    assert settings.database_url.database == str(settings.instance_path / "flexnet.sqlite3")
    assert len(settings.master_key) == 32
    assert settings.lock_after_quarters == 4
    assert settings.terms_overdue is TermsOverdue.REFUSE  # refused at login, not locked


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FLEXNET_SECRET_KEY", ""),
        ("FLEXNET_SECRET_KEY", "too-short"),
        ("FLEXNET_MASTER_KEY", ""),
        ("FLEXNET_MASTER_KEY", "not base64 at all!"),
        ("FLEXNET_MASTER_KEY", base64.urlsafe_b64encode(b"16 bytes only...").decode()),
        ("FLEXNET_AUDIT_KEY", ""),
        ("FLEXNET_AUDIT_KEY", base64.urlsafe_b64encode(b"16 bytes only...").decode()),
        ("FLEXNET_REQUEST_RETENTION_DAYS", "0"),
        ("FLEXNET_RECORD_RETENTION_YEARS", "zehn"),
        ("FLEXNET_DATABASE_URL", "no url"),
        ("FLEXNET_DATABASE_URL", "mysql://u@h/db"),
        ("FLEXNET_LOCK_AFTER_QUARTERS", "0"),
        ("FLEXNET_LOCK_AFTER_QUARTERS", "vier"),
        ("FLEXNET_TERMS_OVERDUE", "sperren"),
        ("FLEXNET_SESSION_TIMEOUT_HOURS", "0"),
        ("FLEXNET_SESSION_TIMEOUT_HOURS", "745"),  # a month at most; 2**32 s would wrap
        ("FLEXNET_RADIUS_METRICS", "192.0.2.1:9812"),  # beyond loopback only when allowed
        ("FLEXNET_RADIUS_METRICS", "localhost:9812"),  # an address, not a name
        ("FLEXNET_RADIUS_METRICS", "127.0.0.1:99999"),
        ("FLEXNET_RADIUS_METRICS_REMOTE", "vielleicht"),
        ("FLEXNET_METRICS_NETWORKS", "10.0.0.0/8 intranet"),
        ("FLEXNET_METRICS_NETWORKS", "10.0.0.1/8"),  # host bits set: a typo, probably
    ],
)
def test_bad_value_is_refused_naming_the_variable(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as raised:
        load_settings()

    assert raised.value.variable == variable
    assert str(raised.value).startswith(variable)
    assert "\n" not in str(raised.value)


def test_missing_secret_is_refused(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEXNET_MASTER_KEY")

    with pytest.raises(ConfigError, match="FLEXNET_MASTER_KEY ist nicht gesetzt"):
        load_settings()


def test_missing_audit_key_is_refused(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEXNET_AUDIT_KEY")

    with pytest.raises(ConfigError, match="FLEXNET_AUDIT_KEY ist nicht gesetzt"):
        load_settings()


def test_init_adds_the_audit_key_to_an_older_instance_file(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLEXNET_AUDIT_KEY")
    older = Path(env["FLEXNET_INSTANCE"]) / "flexnet.env"
    older.write_text("# written by an older flexnet\nFLEXNET_DEMO=1", encoding="utf-8")

    done = ensure_instance(older.parent, {})
    again = ensure_instance(older.parent, {})

    lines = older.read_text(encoding="utf-8").splitlines()
    assert lines[:2] == ["# written by an older flexnet", "FLEXNET_DEMO=1"]
    assert [line.split("=")[0] for line in lines[2:]] == [
        "FLEXNET_SECRET_KEY",
        "FLEXNET_MASTER_KEY",
        "FLEXNET_AUDIT_KEY",
    ]
    assert done == [
        f"Fehlende Schlüssel ergänzt in {older}: "
        + ", ".join(["FLEXNET_SECRET_KEY", "FLEXNET_MASTER_KEY", "FLEXNET_AUDIT_KEY"])
    ]
    assert again == []
    settings = load_settings()
    assert settings.audit_key is not None and settings.audit_key != settings.master_key


def test_instance_file_fills_in_and_environment_wins(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLEXNET_SECRET_KEY")
    monkeypatch.delenv("FLEXNET_MASTER_KEY")
    instance = Path(env["FLEXNET_INSTANCE"])
    ensure_instance(instance, {})
    from_file = load_settings()
    other_key = generate_master_key()
    monkeypatch.setenv("FLEXNET_MASTER_KEY", other_key)

    overridden = load_settings()

    assert len(from_file.secret_key) >= 32
    assert overridden.secret_key == from_file.secret_key
    assert overridden.master_key == parse_master_key(other_key) != from_file.master_key


def test_ensure_instance_writes_private_file_once(tmp_path: Path) -> None:
    instance = tmp_path / "new-instance"

    first = ensure_instance(instance, {})
    content = (instance / "flexnet.env").read_text()
    second = ensure_instance(instance, {})

    assert len(first) == 2
    assert second == []
    assert (instance / "flexnet.env").stat().st_mode & 0o777 == 0o600
    assert "FLEXNET_MASTER_KEY=" in content and "FLEXNET_SECRET_KEY=" in content
    assert "FLEXNET_AUDIT_KEY=" in content
    assert (instance / "flexnet.env").read_text() == content


def test_ensure_instance_does_not_copy_secrets_given_by_environment(tmp_path: Path) -> None:
    ensure_instance(tmp_path / "i", {"FLEXNET_MASTER_KEY": "x", "FLEXNET_SECRET_KEY": "y"})

    assert "FLEXNET_MASTER_KEY=" not in (tmp_path / "i" / "flexnet.env").read_text()


def test_repr_hides_secrets(env: dict[str, str]) -> None:
    text = repr(load_settings())

    assert env["FLEXNET_SECRET_KEY"] not in text
    assert "master_key" not in text and "audit_key" not in text


def test_generated_master_keys_parse_and_differ() -> None:
    first, second = generate_master_key(), generate_master_key()

    assert len(parse_master_key(first)) == 32
    assert first != second


@pytest.mark.parametrize("value", ["\u00b2", "4.0", "-1", "99999999999"])
def test_odd_numbers_are_refused_cleanly(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("FLEXNET_LOCK_AFTER_QUARTERS", value)

    with pytest.raises(ConfigError, match="FLEXNET_LOCK_AFTER_QUARTERS"):
        load_settings()


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://api.example.org/wsapi/2.0/verify", True),
        ("http://127.0.0.1:8080/wsapi/2.0/verify", True),
        ("http://api.example.org/wsapi/2.0/verify", False),
        ("ftp://x", False),
    ],
)
def test_remote_validation_needs_https_off_this_machine(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, url: str, accepted: bool
) -> None:
    monkeypatch.setenv("FLEXNET_YUBICO_API_URLS", url)
    monkeypatch.setenv("FLEXNET_YUBICO_CLIENT_ID", "1")
    monkeypatch.setenv("FLEXNET_YUBICO_API_KEY", "c2VjcmV0")

    if accepted:
        assert load_settings().otp.remote_urls == (url,)
    else:
        with pytest.raises(ConfigError, match="FLEXNET_YUBICO_API_URLS"):
            load_settings()


def test_password_policy_from_settings(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEXNET_PASSWORD_MIN_LENGTH", "16")
    monkeypatch.setenv("FLEXNET_PASSWORD_HISTORY", "12")
    monkeypatch.setenv("FLEXNET_PASSWORD_MIN_AGE_HOURS", "48")

    policy = load_settings().password_policy

    assert (policy.min_length, policy.history, policy.min_strength) == (16, 12, 3)
    assert policy.min_age.total_seconds() == 48 * 3600


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FLEXNET_PASSWORD_MIN_LENGTH", "6"),
        ("FLEXNET_PASSWORD_HISTORY", "99"),
        ("FLEXNET_PASSWORD_MIN_STRENGTH", "5"),
    ],
)
def test_password_policy_limits(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError, match=variable):
        load_settings()


def test_metrics_are_off_unless_configured(env: dict[str, str]) -> None:
    settings = load_settings()

    assert settings.radius_metrics is None
    assert settings.metrics_networks == ()


def test_metrics_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXNET_RADIUS_METRICS", "[::]:9812")
    monkeypatch.setenv("FLEXNET_RADIUS_METRICS_REMOTE", "1")
    monkeypatch.setenv("FLEXNET_METRICS_NETWORKS", "10.1.0.0/16, 2001:db8::/32 127.0.0.1/32")

    settings = load_settings()

    assert settings.radius_metrics == ("::", 9812)
    assert [str(n) for n in settings.metrics_networks] == [
        "10.1.0.0/16",
        "2001:db8::/32",
        "127.0.0.1/32",
    ]
