"""The built viewer bundle against the SITE's own DICOMweb endpoints (webapp/exams), served by
Django's live server with its static files, signed in as an obstetrician: the contract between
the bundle (wadors: loader) and the ingest engineer's metadata / multipart frame responses."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pydicom
import pytest
from viewer_support import (
    UsInstance,
    canvas_pixels,
    fit_mapping,
    launch_chromium,
    open_viewer,
    reference_frame,
    sample_correlation,
    screenshot_pixels,
    us_file,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


SITE_FILES = [
    "examples_ybr_color.dcm",  # JPEG baseline YBR_FULL_422 cine (browser JPEG decode path)
    "US1_J2KR.dcm",  # JPEG 2000 lossless RGB (openjpeg wasm codec, served as application/wasm)
    "OBXXXX1A_rle_2frame.dcm",  # RLE palette colour, 2 frames (numeric LUTs in the metadata)
]


def test_bundle_draws_frames_from_the_sites_dicomweb(live_server, make_user, client, artifacts):
    """One test for the three transfer-syntax families: one database set-up and one browser
    launch (each costs seconds); every file is still checked and reported by name."""
    from django.conf import settings

    from webapp.exams import services
    from webapp.exams.models import ExamSource

    user = make_user("obstetrician")
    instances = []
    for filename in SITE_FILES:
        path = us_file(filename)
        [result] = services.ingest_batch(
            files=[(filename, path)], route=ExamSource.UPLOAD, user=user
        )
        assert result.outcome == "stored", result
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        instances.append(
            UsInstance(
                name=filename,
                path=path,
                study=ds.StudyInstanceUID,
                series=ds.SeriesInstanceUID,
                sop=ds.SOPInstanceUID,
                frames=int(ds.get("NumberOfFrames", 1) or 1),
                rows=int(ds.Rows),
                columns=int(ds.Columns),
            )
        )
    client.force_login(user)
    session_cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    # The browser starts after the database work and is closed before the test's database
    # teardown: Playwright's sync API runs an asyncio loop that makes Django refuse ORM calls.
    with launch_chromium() as browser:
        for inst in instances:
            _check_bundle_on_site(browser, live_server.url, session_cookie, inst, artifacts)


def _check_bundle_on_site(browser, base_url, session_cookie, inst, artifacts) -> None:
    from django.conf import settings

    context = browser.new_context(viewport={"width": 900, "height": 760}, device_scale_factor=1)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session_cookie,
                "url": base_url,
            }
        ]
    )
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    try:
        params = {"root": "/dicomweb", "study": inst.study, "series": inst.series}
        if inst.name != SITE_FILES[0]:
            # as the review page does: the instance list from the page (a data: URL here), so
            # the viewer asks the site's per-instance metadata endpoint instead of the series'
            listing = [{"sopInstanceUID": inst.sop, "seriesInstanceUID": inst.series}]
            params["instances"] = "data:application/json," + json.dumps(listing)
        query = urlencode(params)
        event = open_viewer(page, None, inst, url=f"{base_url}/static/viewer/harness.html?{query}")
        assert event["type"] == "ready", f"{inst.name}: {event['detail']}\n" + "\n".join(
            messages[-20:]
        )
        assert event["detail"]["numberOfFrames"] == inst.frames
        page.wait_for_timeout(50)
        canvas = canvas_pixels(page)
        to_canvas, _ = fit_mapping(canvas.shape[1], canvas.shape[0], inst.columns, inst.rows)
        corr = sample_correlation(canvas, reference_frame(inst, 0), to_canvas)
        print(f"{inst.name}: first render {event['detail']['firstRenderMs']:.0f} ms, r={corr:.4f}")
        assert corr > 0.95, (
            f"{inst.name}: drawn frame differs from pydicom's decoding (r = {corr:.3f})"
        )
        if inst.frames > 1:
            page.evaluate("() => window.viewer.seek(1)")
            page.wait_for_function("() => window.viewer.getState().frameIndex === 1")
            page.wait_for_timeout(50)
            corr2 = sample_correlation(canvas_pixels(page), reference_frame(inst, 1), to_canvas)
            assert corr2 > 0.95, (
                f"{inst.name}: frame 2 differs from pydicom's decoding (r = {corr2:.3f})"
            )
        screenshot_pixels(page, path=artifacts / f"site-{inst.path.stem}.png")
    finally:
        context.close()
