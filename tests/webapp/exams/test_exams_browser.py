"""Upload through the running site in a real browser (Debian's Chromium via Playwright)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.webapp.exams.conftest import us_file
from webapp.exams.models import IngestEvent, Instance

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
]

# The live server thread's ORM use trips Django's async guard under Playwright's event loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser_upload_with_progress_and_per_file_results(
    chromium, live_server, make_user, tmp_path, media_files, analysis_not_dispatched
) -> None:
    make_user("sonographer", username="sono")
    bad = tmp_path / "report.dcm"
    bad.write_bytes(b"not an image " * 100)
    page = chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/accounts/login/?next=/exams/upload/")
    page.fill("input[name=username]", "sono")
    page.fill("input[name=password]", "pw")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/exams/upload/")
    page.set_input_files("#files", [str(us_file("examples_ybr_color.dcm")), str(bad)])
    page.click("#upload-button")
    page.wait_for_selector("#upload-results:not([hidden])", timeout=30000)
    status = page.inner_text("#upload-status")
    assert status == "1 stored, 0 already received, 1 rejected."
    assert page.get_attribute("#upload-progress", "value") == "100"
    rows = page.locator("#upload-results tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).inner_text().split("\t")[:2] == ["examples_ybr_color.dcm", "stored"]
    assert "30 frame(s)" in rows.nth(0).inner_text()
    assert rows.nth(1).inner_text().split("\t") == [
        "report.dcm",
        "rejected",
        "not a DICOM file (no 'DICM' marker at byte 128), although named .dcm",
    ]
    # The exam link opens the exam page, whose thumbnail is rendered from the stored cine.
    page.click("#upload-studies a")
    page.wait_for_load_state("networkidle")
    width = page.eval_on_selector("figure.instance img", "img => img.naturalWidth")
    assert width == 128
    assert errors == []
    assert Instance.objects.get().received_by.username == "sono"
    assert IngestEvent.objects.filter(outcome="rejected", file_name="report.dcm").exists()
    assert len(media_files()) == 1
    page.close()
