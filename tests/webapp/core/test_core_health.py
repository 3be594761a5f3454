"""/health/ against the real PostgreSQL, Redis and a real worker process, and with parts down."""

from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_health_ok_with_database_broker_and_worker(client, settings, celery_worker_process) -> None:
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert body["database"]["ok"] is True
    assert body["database"]["detail"].startswith("postgresql postgresql://")
    assert body["broker"] == {"ok": True, "detail": f"redis {settings.CELERY_BROKER_URL}"}
    assert body["worker"]["ok"] is True
    assert celery_worker_process.hostname in body["worker"]["detail"]
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_health_503_names_the_dead_broker(client, settings, closed_port: int) -> None:
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port}/14"
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["broker", "worker"]
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is False
    assert body["broker"]["detail"].startswith(f"redis://127.0.0.1:{closed_port}/14: ")
    assert "Connection refused" in body["broker"]["detail"]
    assert body["worker"] == {"ok": False, "detail": "not checked: the broker is unreachable"}


@pytest.mark.django_db
def test_health_503_when_no_worker_listens(client, settings) -> None:
    # A broker database no worker consumes from: reachable broker, nobody answers the ping.
    unused_db = 12 if settings.CELERY_BROKER_URL.endswith("/13") else 13
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:6379/{unused_db}"
    settings.HEALTH_CHECK_TIMEOUT = 1.0
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["worker"]
    assert body["broker"]["ok"] is True
    assert body["worker"] == {"ok": False, "detail": "no worker answered a ping within 1 s"}


@pytest.mark.django_db
def test_health_in_demo_mode_reports_in_process_worker(client, settings) -> None:
    settings.CELERY_BROKER_URL = None
    settings.CELERY_TASK_ALWAYS_EAGER = True
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["broker"]["detail"] == "none configured: tasks run in-process (demo mode)"
    assert body["worker"] == {
        "ok": True,
        "detail": "in-process (demo mode: tasks run inside the web process)",
    }


def test_health_refuses_post(client) -> None:
    assert client.post("/health/").status_code == 405


@pytest.mark.django_db
def test_health_details_only_for_loopback_and_staff(client, settings, closed_port, make_user):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port}/14"
    remote = client.get("/health/", REMOTE_ADDR="203.0.113.9")
    assert remote.status_code == 503
    assert remote.json() == {
        "status": "unavailable",
        "failing": ["broker", "worker"],
        "database": {"ok": True},
        "broker": {"ok": False},
        "worker": {"ok": False},
    }
    client.force_login(make_user("admin"))
    staff = client.get("/health/", REMOTE_ADDR="203.0.113.9").json()
    assert "Connection refused" in staff["broker"]["detail"]
