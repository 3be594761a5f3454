"""Celery tasks of the analysis pipeline: ids in, one service call, outcome recorded.

All run on the ``inference`` queue (``webapp.celery`` routes ``webapp.analysis.tasks.*``; the
services publish with an explicit queue so tests can isolate theirs). Late acks: a task whose
worker dies is redelivered, and every service step is idempotent. Transient errors (database or
broker connection) are retried three times with backoff; anything else, or a transient error that
persists, fails the run with the reason, and the exam can be retried from the exam page.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError

from webapp.analysis import services
from webapp.analysis.models import AnalysisBatch

log = logging.getLogger(__name__)

TRANSIENT = (
    OperationalError,
    InterfaceError,
    BrokerOperationalError,
    ConnectionError,
    TimeoutError,
)


def _run_id_of(task_name: str, args: tuple) -> int | None:
    if not args:
        return None
    if task_name.endswith("analyse_batch"):
        return AnalysisBatch.objects.filter(pk=args[0]).values_list("run_id", flat=True).first()
    return int(args[0])


class AnalysisTask(Task):
    """Fails the run (with the reason) when a task gives up; the exam then shows it as failed."""

    autoretry_for = TRANSIENT
    max_retries = 3
    retry_backoff = 2
    retry_backoff_max = 60
    retry_jitter = True
    acks_late = True
    reject_on_worker_lost = True

    def on_failure(
        self, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: Any
    ) -> None:
        try:
            run_id = _run_id_of(self.name, args)
            if run_id is not None:
                services.fail_run(run_id=run_id, reason=f"{type(exc).__name__}: {exc}")
        except Exception:  # the database itself may be what failed
            log.exception("could not record the failure of %s%s", self.name, args)


@shared_task(base=AnalysisTask, name="webapp.analysis.tasks.start_analysis")
def start_analysis(run_id: int) -> int:
    """Split the run's exam into frame batches and queue them."""
    return services.start_run(run_id=run_id)


@shared_task(base=AnalysisTask, name="webapp.analysis.tasks.analyse_batch")
def analyse_batch(batch_id: int) -> str:
    """Classify one batch of frames."""
    return services.analyse_batch(batch_id=batch_id)


@shared_task(base=AnalysisTask, name="webapp.analysis.tasks.finalize_run")
def finalize_run(run_id: int) -> str:
    """Best frames, measurements, quality and biometry of a run whose batches are done."""
    return services.finalize_run(run_id=run_id)


@shared_task(name="webapp.analysis.tasks.sweep_stuck_exams", acks_late=True)
def sweep_stuck_exams(older_than_minutes: float = 10.0) -> list[str]:
    """Periodic (Celery beat): re-queue exams stuck in received / queued / analysing."""
    return services.sweep_stuck(older_than=timedelta(minutes=older_than_minutes))
