"""Start-up guards: a bad configuration stops the process with one line, not a traceback.

``manage.py``, ``webapp.wsgi`` and the Celery worker (``webapp.celery``) call these. The line is
always ``sonoreview: configuration error: <what is wrong>`` on stderr, and the exit status is 2
(3 inside gunicorn, whose master treats 3 as "worker failed to boot" and stops instead of
respawning).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from webapp.settings.env import ConfigurationError

PREFIX = "sonoreview: configuration error: "


def fail(message: str, *, code: int = 2) -> NoReturn:
    """Print the one-line message to stderr and exit the process with ``code``."""
    sys.stdout.flush()
    print(PREFIX + " ".join(message.split()), file=sys.stderr, flush=True)
    raise SystemExit(code)


@contextmanager
def configuration_errors_exit(*, code: int = 2) -> Iterator[None]:
    """Turn a ConfigurationError raised inside the block into the one-line exit."""
    try:
        yield
    except ConfigurationError as exc:
        fail(str(exc), code=code)


def require_services(*, code: int = 2) -> None:
    """Exit with one line unless the database and (when configured) the broker answer.

    Side effect: opens and then closes a database connection (closing matters before a
    pre-forking server or worker forks its children).
    """
    from django.db import connections

    from webapp.core.readiness import probe_broker, probe_database

    database = probe_database()
    connections["default"].close()
    if not database.ok:
        fail(f"database unreachable: {database.detail} (check DATABASE_URL)", code=code)
    broker = probe_broker()
    if not broker.ok:
        fail(f"broker unreachable: {broker.detail} (check CELERY_BROKER_URL)", code=code)
