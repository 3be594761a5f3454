"""The project's Celery app with a short Redis visibility timeout, for the redelivery tests.

Production keeps 3600 s (``webapp.celery``); a test cannot wait an hour for a killed worker's
task to come back. ``SONOREVIEW_TEST_VISIBILITY_TIMEOUT`` seconds, and unacknowledged messages
are scanned for every second.
"""

import os

from webapp.celery import app

app.conf.broker_transport_options = {
    **(app.conf.broker_transport_options or {}),
    "visibility_timeout": float(os.environ.get("SONOREVIEW_TEST_VISIBILITY_TIMEOUT", "3600")),
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}

__all__ = ["app"]
