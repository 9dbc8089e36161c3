"""Settings from ``FLEXNET_*`` environment variables.

Values come from the process environment first and then from ``flexnet.env`` in the
instance folder (written by ``flexnet init``). A missing or malformed value stops
start-up with one line naming the variable. There is no default secret in code.
"""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from flexnet.auditformat import AuditKey
from flexnet.authn.passwords import HISTORY_KEPT, MAX_LENGTH, PasswordPolicy
from flexnet.errors import ConfigError

ENV_FILE_NAME = "flexnet.env"
MASTER_KEY_BYTES = 32
MIN_SECRET_KEY_LENGTH = 32
MAX_SESSION_TIMEOUT_HOURS = 24 * 31  # Session-Timeout of a VPN session: at most a month

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class OtpSettings:
    """Possession factor: checks, windows and the optional external validation service."""

    delay_check: bool = False  # yubikey-val's phishing check within one key session
    hotp_window: int = 10
    remote_urls: tuple[str, ...] = ()
    remote_client_id: str | None = None
    remote_api_key: str | None = field(default=None, repr=False)
    remote_timeout: float = 5.0
    wsapi_rate_limit: int = 600  # validation-protocol requests per client and minute


class ExpiredPasswordMode(enum.StrEnum):
    REJECT = "reject"  # Access-Reject with a Reply-Message pointing to self-service
    RESTRICTED = "restricted"  # accept into the password-change access profile
    CHALLENGE = "challenge"  # ask for a new password in-band (Access-Challenge)


class TermsOverdue(enum.StrEnum):
    """A practice still on an older version of the terms after the period to accept the
    new one (MD § 2(4), § 14.2): refused at login either way, until it accepts."""

    REFUSE = "refuse"  # refused at login only; accepting opens the access at once
    LOCK = "lock"  # also locked by the nightly job with the cause "objection" (§ 14.2)


@dataclass(frozen=True)
class AuthSettings:
    """Throttling, lockout and password-state handling of the authentication pipeline."""

    lockout_threshold: int = 5  # consecutive failures before a temporary lock
    lockout_delay_seconds: int = 60  # first temporary lock; doubles per further failure
    lockout_max_delay_seconds: int = 3600
    hard_lock_after: int = 10  # consecutive failures; only staff can lift this lock
    source_failure_limit: int = 50  # failures per source address and 5 minutes
    key_failure_limit: int = 20  # failures per Yubikey and 5 minutes
    failure_window_seconds: int = 300
    expired_password_mode: ExpiredPasswordMode = ExpiredPasswordMode.REJECT
    self_service_url: str = ""
    password_max_age_days: int = 180
    password_warning_days: int = 14
    initial_password_days: int = 60


@dataclass(frozen=True)
class LetterSettings:
    """Letters and mail runs (§ 3.2 split shipment, § 6.3 loss fee)."""

    directory: Path | None = None  # wording and layout; None: the letters/ shipped with flexnet
    credentials_delay_days: int = 3  # working days after the key letter left (Sachsen-Anhalt)
    loss_fee_cents: int = 6000  # replacement and licence costs of a lost Yubikey


@dataclass(frozen=True)
class Settings:
    """Validated settings; ``repr`` never shows a secret."""

    instance_path: Path
    database_url: URL
    secret_key: str = field(repr=False)
    master_key: bytes = field(repr=False)
    # Seals the audit chain and signs its checkpoints (flexnet.auditformat); not in the
    # database. None only for settings built in code (their audit entries are unsealed).
    audit_key: bytes | None = field(default=None, repr=False)
    lock_after_quarters: int = 4
    otp: OtpSettings = field(default_factory=OtpSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    db_timeout_ms: int = 5000  # PostgreSQL connect/statement/lock timeout, SQLite lock wait
    # The same for the RADIUS server: below the NAS's timeout (it waits 3-5 s, then fails
    # over), and a login has two short writes that may each wait this long.
    radius_db_timeout_ms: int = 1000
    cookie_secure: bool = True  # only over HTTPS; make run turns it off for http://127.0.0.1
    password_policy: PasswordPolicy = field(default_factory=PasswordPolicy)
    radius_reject_on_error: bool = False  # default: stay silent so the NAS fails over
    # Session-Timeout of an Access-Accept whose access profile sets none.
    session_timeout_hours: int = 12
    letters: LetterSettings = field(default_factory=LetterSettings)
    connection_log_days: int = 31  # connection data with full IP addresses (KVS)
    audit_retention_years: int = 10  # the audit trail (purged by the lifecycle job)
    request_retention_days: int = 365  # service requests after they were closed
    record_retention_years: int = 10  # practices, users, letters after their end
    return_reminder_days: int = 28  # a locked Yubikey not back by then: reminder letter
    terms_overdue: TermsOverdue = TermsOverdue.REFUSE  # new terms not accepted in time
    proxies: int = 0  # reverse proxies in front of the web app (X-Forwarded-For hops)
    # Prometheus: the RADIUS process's endpoint (address, port; None: off), and the
    # networks whose scrapers the web app's /metrics answers (none: it answers nobody).
    radius_metrics: tuple[str, int] | None = None
    radius_metrics_remote: bool = False  # another address than loopback is allowed
    metrics_networks: tuple[IpNetwork, ...] = ()
    demo: bool = False

    @cached_property
    def chain_key(self) -> AuditKey | None:
        """The audit key in the form the audit chain uses (seals, checkpoints)."""
        return AuditKey(self.audit_key) if self.audit_key is not None else None


def generate_master_key() -> str:
    """A fresh master key: 32 random bytes, urlsafe base64."""
    return base64.urlsafe_b64encode(secrets.token_bytes(MASTER_KEY_BYTES)).decode("ascii")


def generate_secret_key() -> str:
    return secrets.token_urlsafe(48)


def instance_path_from(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("FLEXNET_INSTANCE") or Path.cwd() / "instance").resolve()


def environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment, and for every variable not set there the value from
    ``flexnet.env`` in the instance folder."""
    env = dict(os.environ if environ is None else environ)
    env_file = instance_path_from(env) / ENV_FILE_NAME
    if env_file.is_file():
        from_file = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
        env = {**from_file, **env}
    return env


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate all settings; raise ConfigError naming the first bad variable."""
    env = environment(environ)
    instance = instance_path_from(env)
    return Settings(
        instance_path=instance,
        database_url=_database_url(env, instance),
        secret_key=_secret_key(env),
        master_key=parse_master_key(_required(env, "FLEXNET_MASTER_KEY")),
        audit_key=parse_audit_key(_required(env, "FLEXNET_AUDIT_KEY")),
        lock_after_quarters=_positive_int(env, "FLEXNET_LOCK_AFTER_QUARTERS", default=4),
        otp=_otp_settings(env),
        auth=_auth_settings(env),
        db_timeout_ms=_positive_int(env, "FLEXNET_DB_TIMEOUT_MS", default=5000),
        radius_db_timeout_ms=_positive_int(env, "FLEXNET_RADIUS_DB_TIMEOUT_MS", default=1000),
        password_policy=_password_policy(env),
        cookie_secure=not env.get("FLEXNET_COOKIE_SECURE", "").strip()
        or _flag(env, "FLEXNET_COOKIE_SECURE"),
        radius_reject_on_error=_flag(env, "FLEXNET_RADIUS_REJECT_ON_ERROR"),
        session_timeout_hours=_session_timeout_hours(env),
        letters=_letter_settings(env),
        connection_log_days=_positive_int(env, "FLEXNET_CONNECTION_LOG_DAYS", default=31),
        audit_retention_years=_positive_int(env, "FLEXNET_AUDIT_RETENTION_YEARS", default=10),
        request_retention_days=_positive_int(env, "FLEXNET_REQUEST_RETENTION_DAYS", default=365),
        record_retention_years=_positive_int(env, "FLEXNET_RECORD_RETENTION_YEARS", default=10),
        return_reminder_days=_positive_int(env, "FLEXNET_RETURN_REMINDER_DAYS", default=28),
        proxies=_non_negative_int(env, "FLEXNET_PROXIES", default=0),
        radius_metrics=_radius_metrics(env),
        radius_metrics_remote=_flag(env, "FLEXNET_RADIUS_METRICS_REMOTE"),
        metrics_networks=_metrics_networks(env),
        terms_overdue=_terms_overdue(env),
        demo=_flag(env, "FLEXNET_DEMO"),
    )


def parse_metrics_address(text: str, *, remote: bool = False) -> tuple[str, int]:
    """``PORT``, ``ADDRESS:PORT`` or ``[IPv6]:PORT`` as (address, port); the address
    defaults to 127.0.0.1. Only a loopback address unless ``remote``: the counters tell
    an outsider how busy and how healthy the server is. ValueError names the problem."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        host, port_text = "127.0.0.1", text.strip()
    host = host.removeprefix("[").removesuffix("]") or "127.0.0.1"
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"kein Port zwischen 0 und 65535: {port_text!r}")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"keine IP-Adresse: {host!r}") from None
    if not address.is_loopback and not remote:
        raise ValueError(
            f"{host} ist keine Loopback-Adresse; andere nur mit FLEXNET_RADIUS_METRICS_REMOTE=1"
        )
    return str(address), int(port_text)


def _radius_metrics(env: Mapping[str, str]) -> tuple[str, int] | None:
    raw = env.get("FLEXNET_RADIUS_METRICS", "").strip()
    if not raw:
        return None
    try:
        return parse_metrics_address(raw, remote=_flag(env, "FLEXNET_RADIUS_METRICS_REMOTE"))
    except ValueError as error:
        raise ConfigError("FLEXNET_RADIUS_METRICS", str(error)) from None


def _metrics_networks(env: Mapping[str, str]) -> tuple[IpNetwork, ...]:
    networks = []
    for part in env.get("FLEXNET_METRICS_NETWORKS", "").replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(part, strict=True))
        except ValueError:
            raise ConfigError(
                "FLEXNET_METRICS_NETWORKS", f"kein Netz in CIDR-Schreibweise: {part}"
            ) from None
    return tuple(networks)


def _terms_overdue(env: Mapping[str, str]) -> TermsOverdue:
    mode = env.get("FLEXNET_TERMS_OVERDUE", "").strip() or TermsOverdue.REFUSE.value
    if mode not in {m.value for m in TermsOverdue}:
        raise ConfigError("FLEXNET_TERMS_OVERDUE", "muss refuse oder lock sein")
    return TermsOverdue(mode)


def _letter_settings(env: Mapping[str, str]) -> LetterSettings:
    directory = env.get("FLEXNET_LETTERS_DIR", "").strip()
    if directory and not Path(directory).is_dir():
        raise ConfigError("FLEXNET_LETTERS_DIR", f"ist kein Verzeichnis: {directory}")
    return LetterSettings(
        directory=Path(directory) if directory else None,
        credentials_delay_days=_positive_int(env, "FLEXNET_CREDENTIALS_DELAY_DAYS", default=3),
        loss_fee_cents=_euro_cents(env, "FLEXNET_LOSS_FEE_EUR", default=6000),
    )


def _euro_cents(env: Mapping[str, str], name: str, *, default: int) -> int:
    """An amount like ``60`` or ``59,50`` (a point works too) in cents."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    match = re.fullmatch(r"([0-9]{1,6})(?:[,.]([0-9]{2}))?", raw)
    if match is None:
        raise ConfigError(name, "muss ein Euro-Betrag sein, z. B. 60 oder 59,50")
    return int(match[1]) * 100 + int(match[2] or 0)


def _password_policy(env: Mapping[str, str]) -> PasswordPolicy:
    defaults = PasswordPolicy()
    policy = PasswordPolicy(
        min_length=_positive_int(env, "FLEXNET_PASSWORD_MIN_LENGTH", default=defaults.min_length),
        history=_positive_int(env, "FLEXNET_PASSWORD_HISTORY", default=defaults.history),
        min_strength=_positive_int(
            env, "FLEXNET_PASSWORD_MIN_STRENGTH", default=defaults.min_strength
        ),
        min_age=timedelta(hours=_positive_int(env, "FLEXNET_PASSWORD_MIN_AGE_HOURS", default=24)),
    )
    if not 8 <= policy.min_length <= MAX_LENGTH:
        raise ConfigError("FLEXNET_PASSWORD_MIN_LENGTH", f"muss zwischen 8 und {MAX_LENGTH} liegen")
    if policy.history > HISTORY_KEPT:
        raise ConfigError("FLEXNET_PASSWORD_HISTORY", f"höchstens {HISTORY_KEPT}")
    if policy.min_strength > 4:
        raise ConfigError("FLEXNET_PASSWORD_MIN_STRENGTH", "muss zwischen 1 und 4 liegen")
    return policy


def _auth_settings(env: Mapping[str, str]) -> AuthSettings:
    mode = env.get("FLEXNET_EXPIRED_PASSWORD_MODE", "").strip() or "reject"
    if mode not in {m.value for m in ExpiredPasswordMode}:
        raise ConfigError(
            "FLEXNET_EXPIRED_PASSWORD_MODE", "muss reject, restricted oder challenge sein"
        )
    defaults = AuthSettings()
    return AuthSettings(
        lockout_threshold=_positive_int(
            env, "FLEXNET_LOCKOUT_THRESHOLD", default=defaults.lockout_threshold
        ),
        lockout_delay_seconds=_positive_int(
            env, "FLEXNET_LOCKOUT_DELAY_SECONDS", default=defaults.lockout_delay_seconds
        ),
        hard_lock_after=_positive_int(
            env, "FLEXNET_HARD_LOCK_AFTER", default=defaults.hard_lock_after
        ),
        source_failure_limit=_positive_int(
            env, "FLEXNET_SOURCE_FAILURE_LIMIT", default=defaults.source_failure_limit
        ),
        key_failure_limit=_positive_int(
            env, "FLEXNET_KEY_FAILURE_LIMIT", default=defaults.key_failure_limit
        ),
        expired_password_mode=ExpiredPasswordMode(mode),
        self_service_url=env.get("FLEXNET_SELF_SERVICE_URL", "").strip(),
        password_max_age_days=_positive_int(
            env, "FLEXNET_PASSWORD_MAX_AGE_DAYS", default=defaults.password_max_age_days
        ),
    )


def _otp_settings(env: Mapping[str, str]) -> OtpSettings:
    urls = tuple(u.strip() for u in env.get("FLEXNET_YUBICO_API_URLS", "").split(",") if u.strip())
    for url in urls:
        if not (url.startswith("https://") or _is_loopback_http(url)):
            raise ConfigError(
                "FLEXNET_YUBICO_API_URLS",
                f"{url!r}: nur https:// (http:// nur auf dieser Maschine, 127.0.0.1/localhost)",
            )
    client_id = env.get("FLEXNET_YUBICO_CLIENT_ID", "").strip() or None
    api_key = env.get("FLEXNET_YUBICO_API_KEY", "").strip() or None
    if urls and not (client_id and client_id.isdigit()):
        raise ConfigError("FLEXNET_YUBICO_CLIENT_ID", "muss bei externer Prüfung eine Zahl sein")
    if urls and not _is_base64(api_key):
        raise ConfigError("FLEXNET_YUBICO_API_KEY", "muss bei externer Prüfung Base64 sein")
    return OtpSettings(
        delay_check=_flag(env, "FLEXNET_OTP_DELAY_CHECK"),
        hotp_window=_positive_int(env, "FLEXNET_HOTP_WINDOW", default=10),
        remote_urls=urls,
        remote_client_id=client_id,
        remote_api_key=api_key,
        remote_timeout=_positive_int(env, "FLEXNET_YUBICO_TIMEOUT", default=5),
        wsapi_rate_limit=_positive_int(env, "FLEXNET_WSAPI_RATE_LIMIT", default=600),
    )


def _is_loopback_http(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return url.startswith("http://") and host in ("127.0.0.1", "localhost", "::1")


def _is_base64(value: str | None) -> bool:
    if not value:
        return False
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(name, "muss 0 oder 1 sein")


def parse_master_key(value: str) -> bytes:
    return _key_bytes(value, "FLEXNET_MASTER_KEY")


def parse_audit_key(value: str) -> bytes:
    """``FLEXNET_AUDIT_KEY``: the same form as the master key, a different value."""
    return _key_bytes(value, "FLEXNET_AUDIT_KEY")


def _key_bytes(value: str, name: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        key = b""
    if len(key) != MASTER_KEY_BYTES:
        raise ConfigError(
            name,
            "muss 32 Zufallsbytes in URL-sicherem Base64 enthalten "
            "(neu erzeugen mit 'flexnet keygen')",
        )
    return key


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(name, "ist nicht gesetzt")
    return value


def _secret_key(env: Mapping[str, str]) -> str:
    value = _required(env, "FLEXNET_SECRET_KEY")
    if len(value) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            "FLEXNET_SECRET_KEY", f"muss mindestens {MIN_SECRET_KEY_LENGTH} Zeichen lang sein"
        )
    return value


def _database_url(env: Mapping[str, str], instance: Path) -> URL:
    raw = env.get("FLEXNET_DATABASE_URL", "").strip()
    if not raw:
        return URL.create("sqlite+pysqlite", database=str(instance / "flexnet.sqlite3"))
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError("FLEXNET_DATABASE_URL", "ist keine gültige SQLAlchemy-URL") from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            "FLEXNET_DATABASE_URL", "unterstützt sind nur sqlite:// und postgresql+psycopg://"
        )
    return url


def _non_negative_int(env: Mapping[str, str], name: str, *, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,2}", raw):
        raise ConfigError(name, "muss eine ganze Zahl zwischen 0 und 99 sein")
    return int(raw)


def _session_timeout_hours(env: Mapping[str, str]) -> int:
    hours = _positive_int(env, "FLEXNET_SESSION_TIMEOUT_HOURS", default=12)
    if hours > MAX_SESSION_TIMEOUT_HOURS:
        raise ConfigError(
            "FLEXNET_SESSION_TIMEOUT_HOURS", f"höchstens {MAX_SESSION_TIMEOUT_HOURS} Stunden"
        )
    return hours


def _positive_int(env: Mapping[str, str], name: str, *, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw) or int(raw) < 1:
        raise ConfigError(name, "muss eine positive ganze Zahl sein")
    return int(raw)
