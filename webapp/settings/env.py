"""Reading configuration from the environment, with one clear line per mistake.

A misconfigured production start must stop with a single sentence saying what is wrong, not a
traceback; ``ConfigurationError`` carries that sentence and ``manage.py``, the WSGI module and the
Celery worker print it (see ``webapp.core.startup``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlparse, urlunparse


class ConfigurationError(Exception):
    """The environment does not describe a runnable site; the message says what to fix."""


def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value, or ``default`` when it is unset or empty."""
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


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigurationError(f"{name}={value!r} is not a whole number") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ConfigurationError(f"{name}={number} is outside {minimum}…{maximum}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; surrounding blanks and empty items are dropped."""
    value = env_str(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` so it can be printed in errors and logs."""
    try:
        parsed = urlparse(url)
        if parsed.password is None:
            return url
        netloc = parsed.netloc.rsplit("@", 1)
        userinfo = netloc[0].split(":", 1)[0]
        return urlunparse(parsed._replace(netloc=f"{userinfo}:***@{netloc[1]}"))
    except ValueError:
        return "<unparseable URL>"


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
        }
        options: dict[str, object] = dict(self.options)
        if self.engine.endswith("postgresql"):
            # Persistent connections with a health check: cheap for web workers, and a dead
            # connection after a server restart is replaced instead of failing one request.
            config["CONN_MAX_AGE"] = 60
            config["CONN_HEALTH_CHECKS"] = True
            # A black-holed database host must fail a request or a start-up check in seconds,
            # not hang it (libpq's default is to wait forever).
            options.setdefault("connect_timeout", "5")
        if options:
            config["OPTIONS"] = options
        return config


def parse_database_url(url: str, *, variable: str = "DATABASE_URL") -> DatabaseURL:
    """Parse ``postgres://user:pass@host:port/name`` or ``sqlite:///path`` into Django settings.

    Raises ConfigurationError naming ``variable`` and what is wrong with the URL (the password,
    if any, is never echoed).
    """
    shown = redact_url(url)
    if "://" not in url:
        raise ConfigurationError(
            f"{variable} {shown!r} is not a URL (expected postgres://user@host:5432/dbname)"
        )
    parsed = urlparse(url.strip())
    scheme = parsed.scheme.lower()
    if scheme in {"postgres", "postgresql", "psql", "pgsql"}:
        try:
            port = parsed.port
        except ValueError:
            raise ConfigurationError(
                f"{variable} {shown!r} has a port that is not a number"
            ) from None
        if not parsed.hostname:
            raise ConfigurationError(
                f"{variable} {shown!r} names no host (postgres://user@host:5432/dbname)"
            )
        name = unquote(parsed.path.lstrip("/"))
        if not name or "/" in name:
            raise ConfigurationError(
                f"{variable} {shown!r} names no database (postgres://user@host:5432/dbname)"
            )
        options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return DatabaseURL(
            engine="django.db.backends.postgresql",
            name=name,
            user=unquote(parsed.username or ""),
            password=unquote(parsed.password or ""),
            host=parsed.hostname,
            port=str(port or ""),
            options=options,
        )
    if scheme == "sqlite":
        # sqlite:////abs/path (absolute) or sqlite:///rel/path (relative to the working directory)
        rest = url.strip()[len("sqlite://") :]
        if not rest.startswith("/"):
            raise ConfigurationError(f"{variable} {shown!r} must look like sqlite:///path/to/file")
        path = rest[1:]
        return DatabaseURL("django.db.backends.sqlite3", path or ":memory:", "", "", "", "", {})
    raise ConfigurationError(
        f"{variable} scheme {scheme!r} is not supported (use postgres://… or sqlite:///…)"
    )


def database_url_from_settings(settings_dict: dict, *, name: str | None = None) -> str:
    """The inverse of ``parse_database_url`` for PostgreSQL: a URL for a Django DATABASES entry.

    Used to hand a subprocess (a test worker) the database this process uses; ``name`` replaces
    the database name.
    """
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    userinfo = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{userinfo}{host}{port}/{quote(str(name or settings_dict['NAME']))}"


def parse_broker_url(url: str, *, variable: str = "CELERY_BROKER_URL") -> str:
    """Check that ``url`` is a Redis URL Celery can use; return it unchanged."""
    shown = redact_url(url)
    parsed = urlparse(url.strip())
    if parsed.scheme not in {"redis", "rediss"}:
        raise ConfigurationError(
            f"{variable} {shown!r} is not a Redis URL (expected redis://host:6379/0)"
        )
    try:
        parsed.port  # noqa: B018 - urlparse validates the port lazily
    except ValueError:
        raise ConfigurationError(f"{variable} {shown!r} has a port that is not a number") from None
    if not parsed.hostname:
        raise ConfigurationError(f"{variable} {shown!r} names no host (redis://host:6379/0)")
    db = parsed.path.lstrip("/")
    if db and not db.isdigit():
        raise ConfigurationError(f"{variable} {shown!r}: database {db!r} is not a number")
    return url.strip()
