"""Test settings: the real PostgreSQL and Redis on loopback, a temporary media root.

Override with TEST_DATABASE_URL / TEST_REDIS_URL when the servers live elsewhere. The default role
``sonoreview`` (password ``sonoreview``, CREATEDB) is created by ``scripts/ensure-services.sh``; a
password login works under Debian's default scram-sha-256 loopback rule as well as under trust. pytest-django
creates ``test_<name>`` beside the named database; the Celery worker that tests start
(``celery_worker_process`` in tests/conftest.py) is pointed at that test database and at this
process's MEDIA_ROOT through the environment, so both sides see the same rows and files.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault(
    "DATABASE_URL",
    os.environ.get(
        "TEST_DATABASE_URL", "postgres://sonoreview:sonoreview@127.0.0.1:5432/sonoreview"
    ),
)
os.environ.setdefault(
    "CELERY_BROKER_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
)
# One temporary media root per test session, inherited by subprocesses (worker, runserver).
if not os.environ.get("MEDIA_ROOT"):
    os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="sonoreview-test-media-")

from webapp.settings.base import *  # noqa: F403
from webapp.settings.base import VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; tests only
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CELERY_TASK_ALWAYS_EAGER = False
STATIC_ROOT = VAR_DIR / "test-staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request otherwise
# Test-only fault hooks of the analysis pipeline (webapp.analysis.runtime.fault_frames): inert
# unless a test worker is started with SONOREVIEW_ANALYSIS_FAULT_FRAMES / _SLOW_BATCH set.
ANALYSIS_DEBUG_FAULTS = True
