"""Fixtures for the analysis tests: phantom exams ingested for real, dedicated analysis workers.

- ``plane_weights``: a seeded, untrained PlaneNet saved with the project's own
  ``save_weights`` — the fault tests compare runs with each other, so they need a fixed model,
  not an accurate one, and must not depend on the training in progress. Set as
  ``SONOREVIEW_PLANES_WEIGHTS`` for the test that asks for it and given to the workers.
- ``phantom_exam(seed, frames)``: a synthetic cine written as US Multi-frame DICOM by
  ``inference.phantom.dicom`` and stored through the real ingest service (which announces it to
  the analysis app after commit, as in production).
- ``analysis_workers`` (module): starts real ``celery worker`` processes on a queue of their own
  (``SONOREVIEW_ANALYSIS_QUEUE``), so the suite's shared worker never takes these tasks, with a
  short Redis visibility timeout (``worker_app.py``) so a killed worker's task is redelivered in
  seconds instead of an hour.
"""

from __future__ import annotations

import dataclasses
import hashlib
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

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
VENV_BIN = Path(sys.executable).parent
VISIBILITY_TIMEOUT_S = 6
#: The exam of the "model raises on one frame" test: phantom seed, frames, the failing frame.
FAULT_EXAM_SEED, FAULT_EXAM_FRAMES, FAULT_FRAME = 32, 32, 13


@pytest.fixture(scope="session")
def untrained_plane_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from inference.planes.model import PlaneNet, save_weights

    path = tmp_path_factory.mktemp("weights") / "planes_seed0.pt"
    torch.manual_seed(0)
    save_weights(PlaneNet().eval(), path, {"width": 24, "version": "test-untrained-seed0"})
    return path


@pytest.fixture
def plane_weights(untrained_plane_weights: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Per test, not per session: a session-wide environment change would hand the untrained
    # network to every later test module of the run (the e2e and reports tests among them).
    monkeypatch.setenv("SONOREVIEW_PLANES_WEIGHTS", str(untrained_plane_weights))
    return untrained_plane_weights


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 8 frames, so a 24–30-frame phantom cine is split into several tasks."""
    monkeypatch.setenv("SONOREVIEW_ANALYSIS_BATCH_FRAMES", "8")


@pytest.fixture(scope="module")
def analysis_queue() -> Iterator[str]:
    """A queue name private to this module's workers, set for this process's publishers too."""
    name = f"inference-test-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    old = os.environ.get("SONOREVIEW_ANALYSIS_QUEUE")
    os.environ["SONOREVIEW_ANALYSIS_QUEUE"] = name
    yield name
    if old is None:
        os.environ.pop("SONOREVIEW_ANALYSIS_QUEUE", None)
    else:
        os.environ["SONOREVIEW_ANALYSIS_QUEUE"] = old


@dataclass
class PhantomFile:
    path: Path
    study_uid: str
    sop_uid: str
    frames: int
    pixel_mm: float


def stable_uid(*parts: object) -> str:
    """A UID (2.25 form) that depends only on ``parts`` (so a test can name a file's UIDs
    before writing it; pydicom's ``generate_uid(prefix=None)`` is random whatever the entropy)."""
    digest = hashlib.sha256("|".join(map(str, ("sonoreview-analysis-test", *parts))).encode())
    return f"2.25.{int(digest.hexdigest()[:30], 16)}"


def phantom_sop_uid(seed: int, frames: int) -> str:
    return stable_uid(seed, frames, "cine")


@pytest.fixture
def fault_exam() -> dict[str, int]:
    """The phantom exam on which every module worker's plane model raises at one frame."""
    return {"seed": FAULT_EXAM_SEED, "frames": FAULT_EXAM_FRAMES, "bad_frame": FAULT_FRAME}


def write_phantom(folder: Path, *, seed: int, frames: int) -> PhantomFile:
    from inference.phantom.dicom import ExamIds, write_us_multiframe
    from inference.phantom.sweep import make_sweep

    sweep = make_sweep(seed=seed, n_frames=frames, shape=(192, 240))
    ids = ExamIds.for_exam(seed, 1, "analysis test sweep")
    ids = dataclasses.replace(ids, study_uid=stable_uid(seed, frames, "study"))
    sop = phantom_sop_uid(seed, frames)
    path = write_us_multiframe(
        folder / f"sweep-{seed}-{frames}.dcm",
        sweep.frames,
        fov=sweep.fov,
        pixel_mm=sweep.pixel_mm,
        frame_time_ms=sweep.frame_time_ms,
        ids=ids,
        series_uid=stable_uid(seed, frames, "series"),
        sop_uid=sop,
    )
    return PhantomFile(path, ids.study_uid, sop, frames, sweep.pixel_mm)


@pytest.fixture
def phantom_exam(tmp_path: Path) -> Callable[..., object]:
    """``phantom_exam(seed=…, frames=…, queue=True)`` → the stored Study (ingested for real)."""
    from webapp.exams.models import Study
    from webapp.exams.services import ingest_file

    def make(*, seed: int, frames: int = 24, queue: bool = True) -> Study:
        phantom = write_phantom(tmp_path, seed=seed, frames=frames)
        result = ingest_file(
            source=phantom.path, file_name=phantom.path.name, route="upload", queue=queue
        )
        assert result.outcome == "stored", result.reason
        study = Study.objects.get(pk=result.study_id)
        study.phantom = phantom  # type: ignore[attr-defined]
        return study

    return make


@dataclass
class AnalysisWorker:
    process: subprocess.Popen
    hostname: str
    log_path: Path
    env: dict[str, str]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole worker (no shutdown, no acknowledgement, no requeue by itself)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture(scope="module")
def analysis_workers(
    django_db_setup: None,
    django_db_blocker: object,
    untrained_plane_weights: Path,
    analysis_queue: str,
) -> Iterator[Callable[..., AnalysisWorker]]:
    """``start(**env)`` → the one running worker on this module's queue (earlier ones are
    stopped first, so a test knows which process takes its tasks); stopped at the end."""
    from django.conf import settings
    from django.db import connections

    from webapp.settings.env import database_url_from_settings

    started: list[AnalysisWorker] = []
    test_database_url = database_url_from_settings(connections["default"].settings_dict)

    def start(**extra_env: str) -> AnalysisWorker:
        """The running worker if it was started with the same ``extra_env``; else stop the
        module's earlier workers (one consumer at a time) and start a new one."""
        from webapp.celery import app

        if started and started[-1].env == extra_env and started[-1].process.poll() is None:
            return started[-1]
        for earlier in started:
            earlier.stop()

        hostname = f"analysis-test-{len(started)}-{os.getpid()}@{socket.gethostname()}"
        log_file = tempfile.NamedTemporaryFile(
            prefix="sonoreview-analysis-worker-", suffix=".log", delete=False
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
            "DATABASE_URL": test_database_url,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND or settings.CELERY_BROKER_URL,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "SONOREVIEW_PLANES_WEIGHTS": str(untrained_plane_weights),
            "SONOREVIEW_ANALYSIS_QUEUE": analysis_queue,
            "SONOREVIEW_TEST_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S),
            "SONOREVIEW_ANALYSIS_BATCH_FRAMES": "8",
            # The fault test's exam (and only it) has a frame the model raises on.
            "SONOREVIEW_ANALYSIS_FAULT_FRAMES": (
                f"{phantom_sop_uid(FAULT_EXAM_SEED, FAULT_EXAM_FRAMES)}:{FAULT_FRAME}"
            ),
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO_ROOT)]),
            "PYTHONWARNINGS": "ignore",
            **extra_env,
        }
        process = subprocess.Popen(
            [
                str(VENV_BIN / "celery"),
                "-A",
                "worker_app",
                "worker",
                "-Q",
                analysis_queue,
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
        worker = AnalysisWorker(process, hostname, Path(log_file.name), dict(extra_env))
        started.append(worker)
        deadline = time.monotonic() + 90
        while not app.control.ping(destination=[hostname], timeout=0.5):
            if process.poll() is not None:
                pytest.fail(f"analysis worker exited with {process.returncode}:\n{worker.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"analysis worker did not answer a ping:\n{worker.log()}")
        return worker

    yield start
    for worker in started:
        worker.stop()


def _wait_for(
    predicate: Callable[[], object],
    *,
    timeout: float,
    what: str,
    log: Callable[[], str] | None = None,
) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n{log()}" if log else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(0.2)


@pytest.fixture
def wait_for() -> Callable[..., object]:
    """``wait_for(predicate, timeout=…, what=…)``: poll every 0.2 s until truthy, else fail."""
    return _wait_for
