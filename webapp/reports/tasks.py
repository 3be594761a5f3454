"""Celery tasks of the reports app (queue ``default``): ids in, one service call, outcome recorded.

``generate_reports`` retries transient errors (database, broker) with backoff; a generation that
still fails stays visible as failed on the exam's report panel. ``stow_object`` never raises for a
PACS problem: the service records the attempt and this task re-queues itself after the service's
backoff delay until the write-back is sent or has used its attempts (then admins are told).
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from webapp.reports import services
from webapp.reports.models import WritebackStatus

log = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


@shared_task(
    name="webapp.reports.tasks.generate_reports",
    autoretry_for=TRANSIENT,
    max_retries=3,
    retry_backoff=5,
    retry_backoff_max=120,
    acks_late=True,
)
def generate_reports(generation_id: int) -> list[int]:
    docs = services.generate_reports(generation_id=generation_id)
    log.info("report generation %s: %d documents", generation_id, len(docs))
    return [d.pk for d in docs]


@shared_task(
    name="webapp.reports.tasks.stow_object",
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=3,
    retry_backoff=5,
    acks_late=True,
)
def stow_object(writeback_id: int) -> str:
    outcome = services.send_writeback(writeback_id=writeback_id)
    if outcome.status == WritebackStatus.RETRYING and outcome.retry_in_s is not None:
        services._publish_stow(writeback_id, countdown=outcome.retry_in_s)
    log.info("write-back %s: %s", writeback_id, outcome.status)
    return outcome.status


@shared_task(name="webapp.reports.tasks.send_pending_reports")
def send_pending_reports() -> list[int]:
    """Celery beat: re-queue report generations and write-backs whose message was lost."""
    generations, writebacks = services.sweep()
    return [generations, writebacks]
