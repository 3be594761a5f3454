"""The Celery application: queues ``inference`` (model work) and ``default`` (everything else).

Late acks: a task is acknowledged after it ran, so a worker killed mid-task gets it redelivered;
tasks must therefore be idempotent. Torch and fork: a parent that ran torch before forking can
hang its children, so each pool process pins torch to one thread in ``worker_process_init``;
GPU workers run ``--pool=solo``, one process per GPU.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init
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
)
app.autodiscover_tasks()


@worker_process_init.connect
def _limit_torch_threads(**_: object) -> None:
    """Pin torch to one thread per pool process (see module docstring)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(int(os.environ.get("SONOREVIEW_TORCH_THREADS", "1")))


@app.task(name="webapp.core.ping", queue="default")
def ping() -> str:
    """Round-trip task used by the health endpoint and the worker test."""
    return "pong"
