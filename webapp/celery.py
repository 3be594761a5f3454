"""The Celery application: queues ``inference`` (model work) and ``default`` (everything else).

Late acks: a task is acknowledged after it ran, so a worker killed mid-task gets it redelivered;
tasks must therefore be idempotent. Torch and fork: a parent that ran torch before forking can
hang its children, so each pool process pins torch to one thread in ``worker_process_init``;
GPU workers run ``--pool=solo``, one process per GPU.

Start-up: under the ``celery`` command line a bad configuration prints one
``sonoreview: configuration error: …`` line and exits 2, and a worker refuses to start when the
database or broker does not answer (``webapp.core.startup``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from celery import Celery
from celery.signals import worker_init, worker_process_init
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.base")

app = Celery("sonoreview")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=(Queue("default"), Queue("inference")),
    task_default_queue="default",
    task_routes={"webapp.analysis.tasks.*": {"queue": "inference"}},
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": 3600},
    # Control messages (ping, inspect) older than this are dropped, so a health check never
    # wakes up a restarted worker with stale pings.
    control_queue_expires=60,
)
app.autodiscover_tasks()


def _started_by_celery_cli() -> bool:
    return Path(sys.argv[0]).name in {"celery", "celery.exe"} or (
        len(sys.argv) > 0 and sys.argv[0].endswith("celery/__main__.py")
    )


if _started_by_celery_cli():
    # Celery reads the Django settings lazily deep inside its CLI, where a ConfigurationError
    # would surface as a traceback; read them now so the mistake is one line.
    from webapp.core.startup import configuration_errors_exit

    with configuration_errors_exit():
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018


@worker_init.connect
def _require_services(**_: object) -> None:
    """A worker without its database or broker would only log retries; stop it with one line."""
    if os.environ.get("SONOREVIEW_SKIP_STARTUP_CHECKS") == "1":
        return
    from webapp.core.startup import require_services

    require_services()


@worker_process_init.connect
def _limit_torch_threads(**_: object) -> None:
    """Pin torch to one thread per pool process (see module docstring)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(int(os.environ.get("SONOREVIEW_TORCH_THREADS", "1")))


@app.task(name="webapp.core.ping")
def ping() -> str:
    """Round-trip task used by the worker tests (the health endpoint uses a control ping)."""
    return "pong"
