"""Reachability probes for the database, the Celery broker and the workers.

Used by the health endpoint and by the start-up checks of ``manage.py runserver``, the WSGI
application and the Celery worker. Each probe returns a ``Probe`` instead of raising, has a
short timeout, and never puts a password into its detail text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import connections

from webapp.settings.env import redact_url


@dataclass(frozen=True)
class Probe:
    """Outcome of one reachability probe: ``ok`` and a one-line human-readable ``detail``."""

    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.splitlines()[0].split())


def describe_database(alias: str = "default") -> str:
    """Where the database lives, for messages: ``postgresql://user@host:port/name`` or a path."""
    db = settings.DATABASES[alias]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = f"{db.get('USER')}@" if db.get("USER") else ""
    port = f":{db.get('PORT')}" if db.get("PORT") else ""
    return f"postgresql://{user}{db.get('HOST') or 'localhost'}{port}/{db['NAME']}"


def probe_database(alias: str = "default") -> Probe:
    """Open (or re-check) the connection ``alias`` and run ``SELECT 1``.

    Side effect: leaves the connection closed when it failed, so the next request retries.
    """
    connection = connections[alias]
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not usable"; the detail says which
        connection.close_if_unusable_or_obsolete()
        return Probe("database", False, f"{describe_database(alias)}: {_first_line(exc)}")
    return Probe("database", True, f"{connection.vendor} {describe_database(alias)}")


def tasks_run_in_process() -> bool:
    """True in demo mode without a broker: Celery tasks execute inside the calling process."""
    return bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))


def probe_broker(*, timeout: float | None = None) -> Probe:
    """PING the Redis broker named by ``CELERY_BROKER_URL``."""
    url = settings.CELERY_BROKER_URL
    if not url:
        return Probe("broker", True, "none configured: tasks run in-process (demo mode)")
    timeout = timeout or settings.HEALTH_CHECK_TIMEOUT
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except Exception as exc:
        return Probe("broker", False, f"{redact_url(url)}: {_first_line(exc)}")
    finally:
        client.close()
    return Probe("broker", True, f"redis {redact_url(url)}")


def probe_workers(*, timeout: float | None = None) -> Probe:
    """Broadcast a Celery control ``ping`` on the configured broker and count the replies.

    Only meaningful once ``probe_broker`` succeeded (the broadcast itself needs the broker).
    """
    if tasks_run_in_process():
        return Probe("worker", True, "in-process (demo mode: tasks run inside the web process)")
    from webapp.celery import app

    timeout = timeout or settings.HEALTH_CHECK_TIMEOUT
    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            replies = app.control.ping(timeout=min(timeout, 2.0), connection=conn)
    except Exception as exc:
        return Probe("worker", False, f"ping failed: {_first_line(exc)}")
    names = sorted(name for reply in replies for name in reply)
    if not names:
        return Probe("worker", False, f"no worker answered a ping within {min(timeout, 2.0):g} s")
    return Probe("worker", True, f"{len(names)} answering: {', '.join(names)}")


def probe_all() -> list[Probe]:
    """Database, broker and workers; the worker probe is skipped (failed) when the broker is down."""
    database = probe_database()
    broker = probe_broker()
    if broker.ok:
        worker = probe_workers()
    else:
        worker = Probe("worker", False, "not checked: the broker is unreachable")
    return [database, broker, worker]
