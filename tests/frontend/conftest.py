"""Fixtures for the viewer bundle's browser tests (the machinery is in viewer_support.py).

- ``viewer_orthanc`` (session): Debian's Orthanc with the DICOMweb plugin on free loopback ports,
  holding real US files from pydicom / pydicom-data (``US_FILES``) and a second image filed in
  the cine's series.
- ``viewer_site`` (session): one same-origin HTTP server (like the Django site will be) that
  serves the BUILT bundle from static/viewer under /static/viewer/, forwards /dicom-web/ to
  Orthanc, answers /broken-dicom-web/ with Orthanc's metadata but HTTP 500 for every frame (a
  load failure that must not be silent), and serves JSON fixtures registered by tests.
- ``browser`` (module) / ``browser_context`` (module) / ``page``: headless Debian Chromium driven
  by Playwright for Python.

These tests exercise the committed bundle; rebuild it with ``make viewer`` (or
``cd frontend && npm ci && npm run build``) after changing frontend/src.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from viewer_support import (
    OrthancServer,
    ViewerSite,
    run_orthanc,
    serve_site,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "artifacts" / "frontend"

# name -> pydicom test file (all shipped in wheels, never downloaded)
US_FILES = {
    # 30 frames, JPEG baseline YBR_FULL_422, 320x240, Frame Time 33.333 ms, US regions
    "cine": "examples_ybr_color.dcm",
    # single frame, uncompressed RGB, 640x480 (pydicom-data)
    "rgb": "US1_UNCR.dcm",
}


@pytest.fixture(scope="session")
def viewer_orthanc() -> Iterator[OrthancServer]:
    with run_orthanc(US_FILES) as server:
        yield server


@pytest.fixture(scope="session")
def viewer_site(viewer_orthanc: OrthancServer) -> Iterator[ViewerSite]:
    with serve_site(viewer_orthanc.http_port) as site:
        yield site


@pytest.fixture(scope="module")
def browser(chromium_browser: object) -> object:
    """The suite's module-scoped headless Chromium (tests/conftest.py): module scope because
    Playwright's sync API keeps an asyncio loop running, which later modules must not inherit."""
    return chromium_browser


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
