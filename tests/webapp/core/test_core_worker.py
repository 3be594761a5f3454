"""A task travels through Redis to a real worker process and its result comes back."""

from __future__ import annotations

import pytest
from django.db import connections

from webapp.celery import app, ping
from webapp.core.tasks import describe_worker


def test_ping_task_round_trips_through_a_real_worker(celery_worker_process) -> None:
    result = ping.apply_async()
    assert result.get(timeout=30) == "pong"
    assert result.status == "SUCCESS"


@pytest.mark.django_db(transaction=True)
def test_worker_uses_the_test_database_and_sees_committed_rows(
    celery_worker_process, make_user
) -> None:
    make_user("obstetrician", username="dr-a")
    make_user("supervisor", username="sup-b")

    answer = describe_worker.delay().get(timeout=30)

    assert answer["database"] == connections["default"].settings_dict["NAME"]
    assert answer["database"].startswith("test_")
    assert answer["users"] == 2
    assert answer["pid"] == celery_worker_process.process.pid


def test_worker_consumes_both_queues(celery_worker_process) -> None:
    queues = app.control.inspect(
        destination=[celery_worker_process.hostname], timeout=5
    ).active_queues()
    names = {queue["name"] for queue in queues[celery_worker_process.hostname]}
    assert names == {"default", "inference"}


def test_a_task_sent_to_the_inference_queue_is_run(celery_worker_process) -> None:
    result = ping.apply_async(queue="inference")
    assert result.get(timeout=30) == "pong"


def test_celery_configuration_acks_late_and_routes_analysis_to_inference() -> None:
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_default_queue == "default"
    assert app.amqp.router.route({}, "webapp.analysis.tasks.analyse_exam")["queue"].name == (
        "inference"
    )
