"""Fixtures shared by the whole suite.

- ``celery_worker_process`` (session): a real ``celery worker`` subprocess on the test broker
  (Redis db 14) and the test database pytest-django created. Tests that hand rows to the worker
  must use ``@pytest.mark.django_db(transaction=True)`` so the worker can see committed data.
- ``make_user`` / ``client_as``: accounts with a clinical role, and a test client signed in as one.
- ``closed_port``: a loopback TCP port nobody listens on (for "service is down" tests).
- ``chromium_browser`` (module): headless Debian Chromium through Playwright's sync API.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

WORKER_START_TIMEOUT_S = 90.0

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass
class WorkerProcess:
    """A running ``celery worker``; ``hostname`` is its node name, ``log_path`` its output."""

    process: subprocess.Popen
    hostname: str
    log_path: Path
    database_url: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup: None) -> Iterator[WorkerProcess]:
    """Start one real worker (queues ``default`` and ``inference``, solo pool) for the session.

    It waits until the worker answers a control ping, and stops it (TERM, then KILL) after the
    session, before pytest-django drops the test database.
    """
    from django.conf import settings
    from django.db import connections

    from webapp.celery import app
    from webapp.settings.env import database_url_from_settings

    test_database_url = database_url_from_settings(connections["default"].settings_dict)
    hostname = f"sonoreview-test-{os.getpid()}@{socket.gethostname()}"
    # Messages left by an interrupted earlier run would otherwise run against this database.
    app.control.purge()
    log_file = tempfile.NamedTemporaryFile(
        prefix="sonoreview-test-worker-", suffix=".log", delete=False
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
        "DATABASE_URL": test_database_url,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND or settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "OMP_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    process = subprocess.Popen(
        [
            str(VENV_BIN / "celery"),
            "-A",
            "webapp",
            "worker",
            "-Q",
            "default,inference",
            "--pool=solo",
            "-n",
            hostname,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = WorkerProcess(process, hostname, Path(log_file.name), test_database_url)
    try:
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"celery worker exited with {process.returncode}:\n{worker.log()}")
            if app.control.ping(destination=[hostname], timeout=0.5):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"celery worker did not answer a ping in time:\n{worker.log()}")
        yield worker
    finally:
        _stop(process)
        log_file.close()
    # Kept (and named in the failure above) only when the worker failed to start.
    worker.log_path.unlink(missing_ok=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@pytest.fixture
def make_user(db: None) -> Callable[..., object]:
    """``make_user("obstetrician", username=..., is_trainee=...)`` → a saved active User.

    The password is always ``"pw"``.
    """
    from webapp.accounts.models import User

    counter = {"n": 0}

    def factory(role: str = "sonographer", *, username: str | None = None, **fields: object):
        counter["n"] += 1
        user = User(username=username or f"{role}{counter['n']}", role=role, **fields)
        user.set_password("pw")
        user.save()
        return user

    return factory


@pytest.fixture
def client_as(make_user: Callable[..., object], client: object) -> Callable[..., object]:
    """``client_as("supervisor")`` → the test client, signed in as a new user with that role."""

    def sign_in(role: str, **fields: object):
        user = make_user(role, **fields)
        client.force_login(user)
        client.user = user
        return client

    return sign_in


@pytest.fixture
def closed_port() -> int:
    """A loopback TCP port that refuses connections (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator[object]:
    """Headless Debian Chromium (never ``playwright install``), one per test module.

    Module scope on purpose: Playwright's sync API runs an asyncio loop in the main thread while
    it is active, so (1) a second ``sync_playwright()`` started while another is still alive
    fails with "using Playwright Sync API inside the asyncio loop", and (2) Django refuses ORM
    calls from that thread. A session-scoped browser therefore breaks every later browser or
    database module; closing it at the end of each module keeps modules independent. Django's
    async guard is relaxed only while the browser lives (the live server thread uses the ORM).
    """
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def orthanc() -> Iterator[object]:
    """Debian's Orthanc + DICOMweb plugin (tests/pacs_peer.py), one per test session; tests that
    store into it call ``orthanc.clear()`` first."""
    from tests.pacs_peer import running_orthanc

    with running_orthanc("SONOREVIEW-TEST-PACS") as server:
        yield server
