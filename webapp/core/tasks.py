"""Diagnostic tasks: prove that a worker runs project code against the site's database."""

from __future__ import annotations

import os
import socket

from celery import shared_task
from django.db import connection


@shared_task(name="webapp.core.describe_worker")
def describe_worker() -> dict[str, object]:
    """Which database the worker uses and how many user accounts it sees there (read-only)."""
    from webapp.accounts.models import User

    return {
        "database": str(connection.settings_dict["NAME"]),
        "users": User.objects.count(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
