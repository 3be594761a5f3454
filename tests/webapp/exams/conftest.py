"""Fixtures for the exams tests: real US DICOM files, the C-STORE receiver in its own process,
and media checks. (The Orthanc PACS peer, ``orthanc``, is tests/conftest.py's session fixture.)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pacs_peer import free_port

REPO_ROOT = Path(__file__).resolve().parents[3]


def us_file(name: str) -> Path:
    """A test file shipped by pydicom or pydicom-data (never downloaded at run time)."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not installed (pydicom-data missing?)")
    return Path(path)


def shared_data() -> Path:
    return Path(os.environ.get("SONOREVIEW_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture
def media_files() -> callable:
    """Empties MEDIA_ROOT/dicom, then returns a function listing the files stored there since.

    (Files of earlier tests whose transactions were rolled back would otherwise linger.)
    """
    from django.conf import settings

    shutil.rmtree(Path(settings.MEDIA_ROOT) / "dicom", ignore_errors=True)

    def files() -> set[str]:
        root = Path(settings.MEDIA_ROOT) / "dicom"
        return {str(p.relative_to(settings.MEDIA_ROOT)) for p in root.rglob("*") if p.is_file()}

    return files


@dataclass
class Receiver:
    port: int
    ae_title: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def dicom_receiver(django_db_setup: None) -> Iterator[Receiver]:
    """``manage.py dicom_receiver`` as its own process on a free port, using the test database.

    Tests that use it need ``@pytest.mark.django_db(transaction=True)`` so they see its rows.
    """
    import sys

    from django.conf import settings
    from django.db import connections

    from webapp.settings.env import database_url_from_settings

    if shutil.which("storescu") is None:
        pytest.skip("dcmtk's storescu is not installed (apt install dcmtk)")
    port = free_port()
    log_file = tempfile.NamedTemporaryFile(
        prefix="sonoreview-receiver-", suffix=".log", delete=False
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
        "DATABASE_URL": database_url_from_settings(connections["default"].settings_dict),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PYTHONWARNINGS": "ignore",
    }
    process = subprocess.Popen(
        # --no-analysis: these tests are about arrival; the analysis pipeline has its own tests.
        [
            sys.executable,
            "manage.py",
            "dicom_receiver",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-analysis",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    receiver = Receiver(port, settings.DICOM_AE_TITLE, process, Path(log_file.name))
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"dicom_receiver exited with {process.returncode}:\n{receiver.log()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"dicom_receiver did not listen within 60 s:\n{receiver.log()}")
            time.sleep(0.2)
        yield receiver
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        log_file.close()


STORESCU_OPTION = {
    "1.2.840.10008.1.2.4.50": "-xy",
    "1.2.840.10008.1.2.4.51": "-xx",
    "1.2.840.10008.1.2.4.70": "-xs",
    "1.2.840.10008.1.2.4.90": "-xv",
    "1.2.840.10008.1.2.4.91": "-xw",
    "1.2.840.10008.1.2.4.80": "-xt",
    "1.2.840.10008.1.2.4.81": "-xu",
    "1.2.840.10008.1.2.5": "-xr",
    "1.2.840.10008.1.2.2": "-xb",
}


def storescu(receiver: Receiver, path: Path) -> subprocess.CompletedProcess:
    """Send one file with dcmtk's storescu, proposing the file's own transfer syntax."""
    import pydicom

    ts = str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    option = STORESCU_OPTION.get(ts, "-xe")
    return subprocess.run(
        [
            "storescu",
            "-v",  # prints the C-STORE response status
            option,
            "-aet",
            "TESTMODALITY",
            "-aec",
            receiver.ae_title,
            "127.0.0.1",
            str(receiver.port),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def analysis_not_dispatched() -> Iterator[None]:
    """Ingest tests that commit: keep the analysis pipeline's receiver from queueing real work
    for a worker that may be running in this session (arrival is what these tests check)."""
    from webapp.exams.services import exam_ready_for_analysis

    saved = list(exam_ready_for_analysis.receivers)
    exam_ready_for_analysis.receivers = []
    exam_ready_for_analysis.sender_receivers_cache.clear()
    try:
        yield
    finally:
        exam_ready_for_analysis.receivers = saved
        exam_ready_for_analysis.sender_receivers_cache.clear()
