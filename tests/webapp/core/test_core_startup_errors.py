"""Bad configuration stops start-up with one line (run as real subprocesses, as an operator would).

Every case asserts the exact single line on stderr and a non-zero exit; no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from webapp.settings.env import database_url_from_settings

REPO_ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
PREFIX = "sonoreview: configuration error: "


def production_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    """A complete production-mode environment on the real local servers, with ``overrides``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SONOREVIEW_", "CELERY_", "DATABASE_", "PYTEST"))
        and key not in {"SECRET_KEY", "ALLOWED_HOSTS", "MEDIA_ROOT"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="webapp.settings.base",
        SECRET_KEY="s3cret-for-this-test",
        ALLOWED_HOSTS="127.0.0.1",
        # The test role's server, but its always-present maintenance database "postgres".
        DATABASE_URL=database_url_from_settings(settings.DATABASES["default"], name="postgres"),
        CELERY_BROKER_URL=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14"),
        SONOREVIEW_VAR_DIR=str(tmp_path / "var"),
        STATIC_ROOT=str(tmp_path),
        # Celery warns (several lines) when a worker runs as root, as CI does; that warning is
        # about the test machine, not about the configuration under test.
        PYTHONWARNINGS="ignore:You're running the worker with superuser privileges",
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def single_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(PREFIX), lines[0]
    return lines[0].removeprefix(PREFIX)


MANAGE = [sys.executable, "manage.py"]
RUNSERVER = [*MANAGE, "runserver", "127.0.0.1:0", "--noreload"]
WORKER = [str(VENV_BIN / "celery"), "-A", "webapp", "worker", "--pool=solo", "-Q", "default"]
GUNICORN = [str(VENV_BIN / "gunicorn"), "--preload", "-b", "127.0.0.1:0", "webapp.wsgi:application"]


@pytest.mark.parametrize(
    "argv", [RUNSERVER, WORKER, GUNICORN], ids=["runserver", "worker", "gunicorn"]
)
def test_missing_secret_key_in_production(tmp_path: Path, argv: list[str]) -> None:
    result = run(argv, production_env(tmp_path, SECRET_KEY=None))
    assert result.returncode in (2, 3)
    assert single_line(result) == (
        "SECRET_KEY is not set: it is required in production mode "
        "(set SONOREVIEW_DEMO=1 for a local demo)"
    )


@pytest.mark.parametrize(
    "argv", [RUNSERVER, WORKER, GUNICORN], ids=["runserver", "worker", "gunicorn"]
)
def test_unreachable_database(tmp_path: Path, argv: list[str], closed_port: int) -> None:
    env = production_env(tmp_path, DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed_port}/x")
    result = run(argv, env)
    assert result.returncode in (2, 3)
    line = single_line(result)
    assert line.startswith(
        f"database unreachable: postgresql://postgres@127.0.0.1:{closed_port}/x:"
    )
    assert "Connection refused" in line
    assert line.endswith("(check DATABASE_URL)")


@pytest.mark.parametrize(
    "argv", [RUNSERVER, WORKER, GUNICORN], ids=["runserver", "worker", "gunicorn"]
)
def test_unreachable_broker(tmp_path: Path, argv: list[str], closed_port: int) -> None:
    env = production_env(tmp_path, CELERY_BROKER_URL=f"redis://:pw@127.0.0.1:{closed_port}/0")
    result = run(argv, env)
    assert result.returncode in (2, 3)
    line = single_line(result)
    assert line.startswith(f"broker unreachable: redis://:***@127.0.0.1:{closed_port}/0:")
    assert "Connection refused" in line
    assert "pw@" not in line


def test_malformed_database_url(tmp_path: Path) -> None:
    result = run(
        [*MANAGE, "migrate"], production_env(tmp_path, DATABASE_URL="postgres://db:54x2/s")
    )
    assert result.returncode == 2
    assert (
        single_line(result) == "DATABASE_URL 'postgres://db:54x2/s' has a port that is not a number"
    )


def test_migrate_against_a_stopped_database_is_one_line(tmp_path: Path, closed_port: int) -> None:
    env = production_env(tmp_path, DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed_port}/x")
    result = run([*MANAGE, "migrate"], env)
    assert result.returncode == 2
    line = single_line(result)
    assert line.startswith("database error: connection failed:")
    assert line.endswith("(check DATABASE_URL)")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS is not set"),
        ({"DATABASE_URL": None}, "DATABASE_URL is not set: a PostgreSQL URL is required"),
        ({"CELERY_BROKER_URL": None}, "CELERY_BROKER_URL is not set: a Redis URL is required"),
        ({"DJANGO_DEBUG": "perhaps"}, "DJANGO_DEBUG='perhaps' is not a boolean"),
        ({"PACS_DICOMWEB_URL": "pacs:8042"}, "PACS_DICOMWEB_URL 'pacs:8042' is not an http(s) URL"),
        ({"DICOM_PORT": "104x"}, "DICOM_PORT='104x' is not a whole number"),
    ],
)
def test_other_production_mistakes(tmp_path: Path, overrides: dict, expected: str) -> None:
    result = run([*MANAGE, "check"], production_env(tmp_path, **overrides))
    assert result.returncode == 2
    assert single_line(result).startswith(expected)


def test_good_configuration_passes_the_check(tmp_path: Path) -> None:
    result = run([*MANAGE, "check"], production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_demo_mode_needs_no_servers_or_secrets(tmp_path: Path) -> None:
    env = production_env(
        tmp_path, SECRET_KEY=None, DATABASE_URL=None, CELERY_BROKER_URL=None, ALLOWED_HOSTS=None
    )
    env["SONOREVIEW_DEMO"] = "1"
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.ALLOWED_HOSTS)"
    )
    result = run([sys.executable, "-c", code], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.sqlite3 True ['127.0.0.1', 'localhost']"
