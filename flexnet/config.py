"""Settings from ``FLEXNET_*`` environment variables.

Values come from the process environment first and then from ``flexnet.env`` in the
instance folder (written by ``flexnet init``). A missing or malformed value stops
start-up with one line naming the variable. There is no default secret in code.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from flexnet.errors import ConfigError

ENV_FILE_NAME = "flexnet.env"
MASTER_KEY_BYTES = 32
MIN_SECRET_KEY_LENGTH = 32


@dataclass(frozen=True)
class Settings:
    """Validated settings; ``repr`` never shows a secret."""

    instance_path: Path
    database_url: URL
    secret_key: str = field(repr=False)
    master_key: bytes = field(repr=False)
    lock_after_quarters: int = 4


def generate_master_key() -> str:
    """A fresh master key: 32 random bytes, urlsafe base64."""
    return base64.urlsafe_b64encode(secrets.token_bytes(MASTER_KEY_BYTES)).decode("ascii")


def generate_secret_key() -> str:
    return secrets.token_urlsafe(48)


def instance_path_from(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("FLEXNET_INSTANCE") or Path.cwd() / "instance").resolve()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate all settings; raise ConfigError naming the first bad variable."""
    env = dict(os.environ if environ is None else environ)
    instance = instance_path_from(env)
    env_file = instance / ENV_FILE_NAME
    if env_file.is_file():
        from_file = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
        env = {**from_file, **env}
    return Settings(
        instance_path=instance,
        database_url=_database_url(env, instance),
        secret_key=_secret_key(env),
        master_key=parse_master_key(_required(env, "FLEXNET_MASTER_KEY")),
        lock_after_quarters=_positive_int(env, "FLEXNET_LOCK_AFTER_QUARTERS", default=4),
    )


def parse_master_key(value: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        key = b""
    if len(key) != MASTER_KEY_BYTES:
        raise ConfigError(
            "FLEXNET_MASTER_KEY",
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


def _positive_int(env: Mapping[str, str], name: str, *, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(name, "muss eine positive ganze Zahl sein")
    return int(raw)
