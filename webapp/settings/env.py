"""Reading configuration from the environment, with one clear line per mistake.

A misconfigured production start must stop with a single sentence saying what is wrong, not a
traceback; ``ConfigurationError`` carries that sentence and ``manage.py``/WSGI print it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlparse


class ConfigurationError(Exception):
    """The environment does not describe a runnable site; the message says what to fix."""


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool = False) -> bool:
    value = env_str(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no)")


def env_list(name: str, default: list[str]) -> list[str]:
    value = env_str(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


@dataclass(frozen=True)
class DatabaseURL:
    engine: str
    name: str
    user: str
    password: str
    host: str
    port: str
    options: dict[str, str]

    def as_django(self) -> dict[str, object]:
        config: dict[str, object] = {
            "ENGINE": self.engine,
            "NAME": self.name,
            "USER": self.user,
            "PASSWORD": self.password,
            "HOST": self.host,
            "PORT": self.port,
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
        if self.options:
            config["OPTIONS"] = self.options
        return config


def parse_database_url(url: str) -> DatabaseURL:
    """Parse ``postgres://user:pass@host:port/name`` or ``sqlite:///path`` into Django settings."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme in {"postgres", "postgresql", "psql", "pgsql"}:
        name = unquote(parsed.path.lstrip("/"))
        if not name:
            raise ConfigurationError(f"DATABASE_URL {url!r} names no database (…/dbname)")
        options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return DatabaseURL(
            engine="django.db.backends.postgresql",
            name=name,
            user=unquote(parsed.username or ""),
            password=unquote(parsed.password or ""),
            host=parsed.hostname or "",
            port=str(parsed.port or ""),
            options=options,
        )
    if scheme == "sqlite":
        path = parsed.path
        if url.startswith("sqlite:////"):
            path = "/" + path.lstrip("/")
        elif url.startswith("sqlite:///"):
            path = path.lstrip("/")
        return DatabaseURL("django.db.backends.sqlite3", path or ":memory:", "", "", "", "", {})
    raise ConfigurationError(
        f"DATABASE_URL scheme {scheme!r} is not supported (use postgres://… or sqlite:///…)"
    )
