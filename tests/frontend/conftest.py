"""Fixtures for the viewer bundle's browser tests.

- ``viewer_orthanc`` (session): Debian's Orthanc with the DICOMweb plugin on free loopback ports,
  holding real US files from pydicom / pydicom-data (``US_FILES``).
- ``viewer_site`` (session): one same-origin HTTP server (like the Django site will be) that
  serves the BUILT bundle from static/viewer under /static/viewer/, forwards /dicom-web/ to
  Orthanc, answers /broken-dicom-web/ with Orthanc's metadata but HTTP 500 for every frame (a
  load failure that must not be silent), and serves JSON fixtures registered by tests.
- ``browser`` (module) / ``page``: headless Debian Chromium driven by Playwright for Python.

These tests exercise the committed bundle; rebuild it with ``make viewer`` (or
``cd frontend && npm ci && npm run build``) after changing frontend/src.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from viewer_support import (
    BUNDLE_DIR,
    OrthancServer,
    UsInstance,
    ViewerSite,
    _Site,
    free_port,
    launch_chromium,
    us_file,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "artifacts" / "frontend"
ORTHANC_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
# name -> pydicom test file (all shipped in wheels, never downloaded)
US_FILES = {
    # 30 frames, JPEG baseline YBR_FULL_422, 320x240, Frame Time 33.333 ms, US regions
    "cine": "examples_ybr_color.dcm",
    # single frame, uncompressed RGB, 640x480 (pydicom-data)
    "rgb": "US1_UNCR.dcm",
}


def second_instance_of_cine(workdir: Path, cine: UsInstance) -> Path:
    """US1_UNCR's real pixels filed as a second, single-frame image of the cine's series (an
    exam with several images: the thumbnail strip, showInstance and per-instance overlays)."""
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(us_file(US_FILES["rgb"]))
    # same patient too: Orthanc keys a study by Patient ID + Study Instance UID
    cine_ds = pydicom.dcmread(cine.path, stop_before_pixels=True)
    for keyword in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex"):
        setattr(ds, keyword, cine_ds.get(keyword, ""))
    ds.StudyInstanceUID = cine.study
    ds.SeriesInstanceUID = cine.series
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = int(cine_ds.get("InstanceNumber", 0) or 0) + 1  # listed after the cine
    path = workdir / "second.dcm"
    ds.save_as(path)
    return path


@pytest.fixture(scope="session")
def viewer_orthanc() -> Iterator[OrthancServer]:
    binary = shutil.which("Orthanc")
    if binary is None or not ORTHANC_PLUGIN.exists():
        pytest.skip(
            "Orthanc with the DICOMweb plugin is not installed (apt install orthanc orthanc-dicomweb)"
        )
    workdir = Path(tempfile.mkdtemp(prefix="sonoreview-viewer-orthanc-"))
    (workdir / "logs").mkdir()
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "SONOREVIEW-VIEWER-TEST",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "UnknownSopClassAccepted": True,
        "Plugins": [str(ORTHANC_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Host": f"127.0.0.1:{http_port}"},
    }
    (workdir / "orthanc.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        [binary, f"--logdir={workdir / 'logs'}", str(workdir / "orthanc.json")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = OrthancServer(http_port, workdir, process)
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail(f"Orthanc exited with {process.returncode}:\n{server.log()}")
            try:
                urllib.request.urlopen(f"{server.url}/system", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"Orthanc did not answer within 20 s:\n{server.log()}")
                time.sleep(0.1)
        for name, filename in US_FILES.items():
            server.store(name, us_file(filename))
        server.store("second", second_instance_of_cine(workdir, server.instances["cine"]))
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def viewer_site(viewer_orthanc: OrthancServer) -> Iterator[ViewerSite]:
    if not (BUNDLE_DIR / "viewer.js").is_file():
        pytest.fail("static/viewer/viewer.js is missing: build it with `make viewer`")
    server = _Site(viewer_orthanc.http_port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ViewerSite(server)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Module-scoped on purpose: Playwright's sync API keeps an asyncio loop running in the main
    thread, and Django refuses ORM calls while one runs (SynchronousOnlyOperation), so the
    browser must be gone before other modules' database tests run."""
    with launch_chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def browser_context(browser: object) -> Iterator[object]:
    """One context per module: its HTTP and code caches make later page loads import the
    4 MB module faster, as a returning reviewer's browser would."""
    context = browser.new_context(viewport={"width": 900, "height": 760}, device_scale_factor=1)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(browser_context: object) -> Iterator[object]:
    page = browser_context.new_page()
    page.console_messages = []  # type: ignore[attr-defined]
    page.on("console", lambda m: page.console_messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: page.console_messages.append(f"pageerror: {e}"))
    try:
        yield page
    finally:
        page.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
