"""Browser tests of the built exam-viewer bundle (static/viewer) in headless Debian Chromium.

Frames come from a real DICOMweb server (Orthanc) through a same-origin proxy; assertions are on
the pixels the browser drew, compared with pydicom's decoding of the same frame.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from viewer_support import (
    UsInstance,
    canvas_pixels,
    fit_mapping,
    open_viewer,
    reference_frame,
    sample_correlation,
    screenshot_pixels,
)

pytestmark = [pytest.mark.browser, pytest.mark.orthanc]


@pytest.mark.parametrize("name", ["cine", "rgb"])
def test_first_frame_matches_the_dicom_pixels(page, viewer_site, viewer_orthanc, artifacts, name):
    inst = viewer_orthanc.instances[name]
    started = time.monotonic()
    event = open_viewer(page, viewer_site, inst)
    assert event["type"] == "ready", f"viewer failed: {event['detail']}\n{page.console_messages}"
    assert event["detail"]["numberOfFrames"] == inst.frames
    page.wait_for_timeout(50)
    canvas = canvas_pixels(page)
    h, w = canvas.shape[:2]
    # not blank: many distinct grey levels where the image is
    assert canvas[..., :3].std() > 10, "canvas is blank"

    to_canvas, _scale = fit_mapping(w, h, inst.columns, inst.rows)
    # the bundle's own image->canvas map (used for overlays) agrees with the independent one
    for x, y in [(0, 0), (inst.columns - 1, inst.rows - 1), (inst.columns / 3, inst.rows / 2)]:
        got = page.evaluate("p => window.viewer.imageToCanvas(p)", [x, y])
        exp = to_canvas(x, y)
        assert math.dist(got, exp) < 0.6, (got, exp)

    corr = sample_correlation(canvas, reference_frame(inst, 0), to_canvas)
    assert corr > 0.97, f"drawn frame does not match pydicom's decoding (r = {corr:.3f})"
    first_render_ms = event["detail"]["firstRenderMs"]
    print(
        f"{name}: first render {first_render_ms:.0f} ms after mount, page ready in {time.monotonic() - started:.2f} s, r={corr:.4f}"
    )
    screenshot_pixels(page, path=artifacts / f"first-frame-{name}.png")


def viewer_state(page) -> dict:
    return page.evaluate("() => window.viewer.getState()")


def frame_events(page) -> list[dict]:
    return page.evaluate("() => window.viewerEvents.filter(e => e.type === 'frame')")


def test_cine_plays_at_the_frame_time_and_steps(page, viewer_site, viewer_orthanc):
    inst = viewer_orthanc.instances["cine"]
    assert open_viewer(page, viewer_site, inst)["type"] == "ready"
    state = viewer_state(page)
    assert state["numberOfFrames"] == 30
    assert state["frameTimeMs"] == pytest.approx(33.333, abs=0.01)
    assert state["frameTimeSource"] == "FrameTime"
    first = canvas_pixels(page)

    page.evaluate("() => window.viewer.play()")
    page.wait_for_timeout(1200)
    playing = viewer_state(page)
    page.evaluate("() => window.viewer.pause()")
    shown = {e["detail"]["frameIndex"] for e in frame_events(page)}
    fps = playing["cineFramesShown"] / playing["cineSeconds"]
    print(
        f"cine: {playing['cineFramesShown']} frames in {playing['cineSeconds']:.2f} s = {fps:.1f} fps"
    )
    assert playing["playing"] is True
    assert len(shown) >= 10, f"only frames {sorted(shown)} were shown"
    # never faster than the file's Frame Time (30 fps); dropped frames are allowed under load
    assert fps <= 31.5
    paused = viewer_state(page)
    assert page.locator(".srv-frame").inner_text() == f"{paused['frameIndex'] + 1} / 30"

    paused_at = viewer_state(page)["frameIndex"]
    page.wait_for_timeout(250)
    assert viewer_state(page)["frameIndex"] == paused_at
    assert viewer_state(page)["playing"] is False

    # step / seek / scrub / keyboard land on exact frames, and the drawn pixels change
    page.evaluate("() => window.viewer.seek(0)")
    page.evaluate("() => window.viewer.step(1)")
    assert viewer_state(page)["frameIndex"] == 1
    page.locator(".srv-scrub").fill("12")
    page.wait_for_function("() => window.viewer.getState().frameIndex === 12")
    page.locator(".srv-viewport").focus()
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => window.viewer.getState().frameIndex === 11")
    assert page.locator(".srv-scrub").input_value() == "11"
    # mouse wheel scrolls frames; Space plays and pauses
    box = page.locator(".srv-viewport").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 120)
    page.wait_for_function("() => window.viewer.getState().frameIndex !== 11")
    page.keyboard.press("Space")
    assert viewer_state(page)["playing"] is True
    page.keyboard.press("Space")
    assert viewer_state(page)["playing"] is False
    assert np.abs(canvas_pixels(page).astype(int) - first.astype(int)).mean() > 1.0


# colours the bundle draws overlays in (frontend/src/overlayTools.js OVERLAY_COLORS)
HC_RGB = (0, 229, 255)
BPD_RGB = (118, 255, 3)
CONTOUR_RGB = (255, 64, 129)

HC = {
    "kind": "ellipse",
    "id": "hc-1",
    "label": "HC",
    "frameIndex": 0,
    "cx": 160.0,
    "cy": 118.0,
    "a": 70.0,
    "b": 48.0,
    "angle": 0.4,
}
BPD = {
    "kind": "length",
    "id": "bpd-1",
    "label": "BPD",
    "frameIndex": 0,
    "p1": [120.0, 190.0],
    "p2": [215.0, 205.0],
}
CONTOUR = {
    "kind": "contour",
    "id": "skull-1",
    "label": "skull",
    "frameIndex": 1,
    "points": [[110, 70], [210, 70], [210, 170], [110, 170]],
}


def colour_mask(img: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> np.ndarray:
    return np.abs(img.astype(int) - np.array(rgb)).sum(axis=-1) <= tol


def colour_near(img: np.ndarray, rgb, xy, radius: int = 3) -> int:
    x, y = round(xy[0]), round(xy[1])
    win = img[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
    return int(colour_mask(win, rgb).sum())


def ellipse_point(e: dict, t: float) -> tuple[float, float]:
    c, s = math.cos(e["angle"]), math.sin(e["angle"])
    x, y = e["a"] * math.cos(t), e["b"] * math.sin(t)
    return e["cx"] + x * c - y * s, e["cy"] + x * s + y * c


def to_canvas(page, p) -> tuple[float, float]:
    return tuple(page.evaluate("p => window.viewer.imageToCanvas(p)", list(p)))


def test_overlays_are_drawn_on_their_own_frame_and_toggle_by_kind(
    page, viewer_site, viewer_orthanc, artifacts
):
    inst = viewer_orthanc.instances["cine"]
    overlays = viewer_site.add_json("/fixtures/overlays-a.json", [HC, BPD, CONTOUR])
    assert open_viewer(page, viewer_site, inst, overlays=overlays)["type"] == "ready"
    page.wait_for_timeout(100)
    shot = screenshot_pixels(page, path=artifacts / "overlays-frame1.png")
    page.locator("#viewer").screenshot(path=artifacts / "viewer-with-controls.png")
    # the HC ellipse passes through its axis ends and the BPD line through its midpoint
    for t in (0, math.pi / 2, math.pi, 3 * math.pi / 2):
        assert colour_near(shot, HC_RGB, to_canvas(page, ellipse_point(HC, t))) > 0, t
    mid = ((BPD["p1"][0] + BPD["p2"][0]) / 2, (BPD["p1"][1] + BPD["p2"][1]) / 2)
    assert colour_near(shot, BPD_RGB, to_canvas(page, mid)) > 0
    # ...and not inside the ellipse away from its axes; the contour belongs to frame 2
    inside = ellipse_point({**HC, "a": HC["a"] / 2, "b": HC["b"] / 2}, math.pi / 4)
    assert colour_near(shot, HC_RGB, to_canvas(page, inside), radius=8) == 0
    assert colour_mask(shot, CONTOUR_RGB).sum() == 0

    # the page's text (server-computed values) replaces the label beside the overlay
    page.evaluate("() => window.viewer.setOverlayText('hc-1', 'HC 172.4 mm')")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.srv-viewport svg text')].some(t => t.textContent === 'HC 172.4 mm')"
    )

    page.evaluate("() => window.viewer.setOverlayVisible('ellipse', false)")
    page.wait_for_timeout(50)
    hidden = screenshot_pixels(page)
    assert colour_mask(hidden, HC_RGB).sum() == 0
    assert colour_near(hidden, BPD_RGB, to_canvas(page, mid)) > 0
    assert page.locator(".srv-toggles input[data-kind=ellipse]").is_checked() is False
    page.locator(".srv-toggles input[data-kind=ellipse]").check()  # the built-in toggle
    page.wait_for_timeout(50)
    assert colour_mask(screenshot_pixels(page), HC_RGB).sum() > 50

    page.evaluate("() => window.viewer.step(1)")
    page.wait_for_function("() => window.viewer.getState().frameIndex === 1")
    page.wait_for_timeout(50)
    frame2 = screenshot_pixels(page)
    assert colour_mask(frame2, HC_RGB).sum() == 0
    assert colour_near(frame2, CONTOUR_RGB, to_canvas(page, (160, 70))) > 0
    assert colour_near(frame2, CONTOUR_RGB, to_canvas(page, (210, 120))) > 0


def drag(page, start, end, steps: int = 8, button: str = "left") -> None:
    page.mouse.move(*start)
    page.mouse.down(button=button)
    for i in range(1, steps + 1):
        page.mouse.move(
            start[0] + (end[0] - start[0]) * i / steps, start[1] + (end[1] - start[1]) * i / steps
        )
        page.wait_for_timeout(20)
    page.mouse.up(button=button)


def geometry_events(page, overlay_id: str) -> list[dict]:
    return page.evaluate(
        "id => window.viewerEvents.filter(e => e.type === 'geometry' && e.detail.id === id).map(e => e.detail)",
        overlay_id,
    )


def test_dragging_ellipse_and_caliper_handles_reports_new_geometry(
    page, viewer_site, viewer_orthanc, artifacts
):
    inst = viewer_orthanc.instances["cine"]
    overlays = viewer_site.add_json("/fixtures/overlays-b.json", [HC, BPD, CONTOUR])
    assert open_viewer(page, viewer_site, inst, overlays=overlays)["type"] == "ready"
    box = page.locator(".srv-viewport canvas").bounding_box()
    scale = to_canvas(page, (1, 0))[0] - to_canvas(page, (0, 0))[0]  # canvas px per image px

    def screen(p):
        cx, cy = to_canvas(page, p)
        return box["x"] + cx, box["y"] + cy

    # 1. one end of the HC a-axis: the opposite end stays, the ellipse turns and grows
    a_plus = ellipse_point(HC, 0)
    a_minus = ellipse_point(HC, math.pi)
    move = (24.0, 30.0)  # canvas px
    drag(page, screen(a_plus), (screen(a_plus)[0] + move[0], screen(a_plus)[1] + move[1]))
    page.wait_for_function(
        "() => window.viewerEvents.some(e => e.type === 'geometry' && e.detail.final)"
    )
    events = geometry_events(page, "hc-1")
    final = events[-1]
    assert final["final"] is True and final["kind"] == "ellipse" and final["label"] == "HC"
    assert final["frameIndex"] == 0 and final["sopInstanceUID"] == inst.sop
    assert any(not e["final"] for e in events), "no throttled updates while dragging"
    new_end = (a_plus[0] + move[0] / scale, a_plus[1] + move[1] / scale)
    g = final["geometry"]
    assert g["cx"] == pytest.approx((new_end[0] + a_minus[0]) / 2, abs=0.5)
    assert g["cy"] == pytest.approx((new_end[1] + a_minus[1]) / 2, abs=0.5)
    assert g["a"] == pytest.approx(math.dist(new_end, a_minus) / 2, abs=0.5)
    assert g["b"] == pytest.approx(HC["b"], abs=1e-6)
    assert g["angle"] == pytest.approx(
        math.atan2(new_end[1] - a_minus[1], new_end[0] - a_minus[0]), abs=0.01
    )

    # 2. an end of the b-axis changes b only
    before = g
    b_end = ellipse_point({**HC, **before}, math.pi / 2)
    normal = (-math.sin(before["angle"]), math.cos(before["angle"]))
    drag(
        page,
        screen(b_end),
        (screen(b_end)[0] + 10 * scale * normal[0], screen(b_end)[1] + 10 * scale * normal[1]),
    )
    page.wait_for_function(
        "() => window.viewerEvents.filter(e => e.type === 'geometry' && e.detail.final).length >= 2"
    )
    g2 = geometry_events(page, "hc-1")[-1]["geometry"]
    assert g2["b"] == pytest.approx(before["b"] + 10, abs=0.5)
    for k in ("cx", "cy", "a", "angle"):
        assert g2[k] == pytest.approx(before[k], abs=1e-6), k

    # 3. a caliper end moves alone
    p2 = BPD["p2"]
    drag(page, screen(p2), (screen(p2)[0] - 20, screen(p2)[1] + 8))
    page.wait_for_function(
        "() => window.viewerEvents.some(e => e.type === 'geometry' && e.detail.id === 'bpd-1' && e.detail.final)"
    )
    gl = geometry_events(page, "bpd-1")[-1]["geometry"]
    assert gl["p1"] == pytest.approx(BPD["p1"], abs=1e-6)
    assert gl["p2"] == pytest.approx([p2[0] - 20 / scale, p2[1] + 8 / scale], abs=0.5)
    page.wait_for_timeout(50)
    shot = screenshot_pixels(page, path=artifacts / "overlays-after-drag.png")
    assert colour_near(shot, HC_RGB, to_canvas(page, ellipse_point({**HC, **g2}, 0))) > 0

    # 4. the state the page reads back agrees with the callbacks
    state = {o["id"]: o for o in viewer_state(page)["overlays"]}
    assert state["hc-1"]["geometry"] == pytest.approx(g2)


def test_window_level_zoom_and_pan_by_mouse_and_keyboard(page, viewer_site, viewer_orthanc):
    inst = viewer_orthanc.instances["rgb"]
    assert open_viewer(page, viewer_site, inst)["type"] == "ready"
    box = page.locator(".srv-viewport canvas").bounding_box()
    before = canvas_pixels(page)
    voi_before = viewer_state(page)["voiRange"]

    # left drag (not on an overlay): window / level
    start = (box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    drag(page, start, (start[0] + 120, start[1] + 60))
    voi_after = viewer_state(page)["voiRange"]
    assert voi_after != voi_before
    page.wait_for_timeout(50)
    assert np.abs(canvas_pixels(page).astype(int) - before.astype(int)).mean() > 2.0

    # keyboard (after a click on the image, as a reviewer does): zoom in, pan right, reset
    assert page.locator(".srv-viewport").get_attribute("tabindex") == "0"  # reachable by Tab
    page.mouse.click(*start)
    assert page.evaluate("() => document.activeElement.classList.contains('srv-viewport')")
    zoom0 = viewer_state(page)["zoom"]
    corner0 = to_canvas(page, (0, 0))
    page.keyboard.press("+")
    assert viewer_state(page)["zoom"] == pytest.approx(zoom0 * 1.25, rel=1e-3)
    zoomed = to_canvas(page, (0, 0))
    page.keyboard.press("Shift+ArrowRight")
    panned = to_canvas(page, (0, 0))
    assert panned[0] - zoomed[0] == pytest.approx(40, abs=0.5)
    assert panned[1] == pytest.approx(zoomed[1], abs=0.5)
    page.keyboard.press("0")
    assert to_canvas(page, (0, 0)) == pytest.approx(corner0, abs=0.5)
    assert viewer_state(page)["zoom"] == pytest.approx(zoom0, rel=1e-3)

    # mouse: right drag zooms (not within ~400 ms of the click above: Cornerstone holds a mouse
    # press that soon after a click back, waiting to see whether it is a double click)
    page.wait_for_timeout(500)
    drag(page, start, (start[0], start[1] - 80), button="right")
    assert viewer_state(page)["zoom"] != pytest.approx(zoom0, rel=1e-3)


def test_frame_load_failure_is_reported_in_the_element(page, viewer_site, viewer_orthanc):
    inst = viewer_orthanc.instances["cine"]
    t0 = time.monotonic()
    event = open_viewer(page, viewer_site, inst, root="/broken-dicom-web", timeout=8000)
    assert event["type"] == "error"
    message = event["detail"]["message"]
    assert "500" in message and "/frames/1" in message, message
    assert time.monotonic() - t0 < 10
    alert = page.locator(".srv-error")
    assert alert.is_visible()
    assert "Could not show the image" in alert.inner_text() and "500" in alert.inner_text()
    assert page.locator(".srv-root").get_attribute("data-state") == "error"
    assert viewer_state(page)["error"] == message


def test_unknown_study_is_reported_with_the_failed_request(page, viewer_site, viewer_orthanc):
    inst = viewer_orthanc.instances["cine"]
    missing = UsInstance(**{**inst.__dict__, "study": "1.2.3.4.5.404"})
    event = open_viewer(page, viewer_site, missing, timeout=8000)
    assert event["type"] == "error"
    message = event["detail"]["message"]
    assert "HTTP 404" in message and "1.2.3.4.5.404" in message, message
    assert "1.2.3.4.5.404" in page.locator(".srv-error").inner_text()


def test_invalid_overlay_is_rejected_with_a_message_naming_the_field(
    page, viewer_site, viewer_orthanc
):
    inst = viewer_orthanc.instances["cine"]
    assert open_viewer(page, viewer_site, inst)["type"] == "ready"
    message = page.evaluate(
        """() => { try { window.viewer.setOverlays([{kind: 'ellipse', id: 'x', cx: 1, cy: 2, a: 'big', b: 3}]); return null; }
                   catch (e) { return e.message; } }"""
    )
    assert message is not None and "a must be a finite number" in message and "id x" in message


def test_an_exam_with_several_images_switches_instances_and_their_overlays(
    page, viewer_site, viewer_orthanc
):
    cine = viewer_orthanc.instances["cine"]
    second = viewer_orthanc.instances["second"]
    fl = {
        "kind": "length",
        "id": "fl-1",
        "label": "FL",
        "frameIndex": 0,
        "sopInstanceUID": second.sop,
        "p1": [200, 300],
        "p2": [420, 260],
    }
    overlays = viewer_site.add_json("/fixtures/overlays-c.json", [HC, fl])
    ev = open_viewer(page, viewer_site, cine, overlays=overlays)
    assert ev["type"] == "ready", ev
    state = viewer_state(page)
    assert [i["sopInstanceUID"] for i in state["instances"]] == [cine.sop, second.sop]
    thumbs = page.locator(".srv-thumb")
    assert thumbs.count() == 2
    assert thumbs.nth(0).get_attribute("aria-selected") == "true"
    fl_rgb = (255, 234, 0)
    assert colour_mask(screenshot_pixels(page), fl_rgb).sum() == 0  # FL belongs to image 2

    thumbs.nth(1).click()
    page.wait_for_function(f"() => window.viewer.getState().sopInstanceUID === '{second.sop}'")
    page.wait_for_timeout(50)
    state = viewer_state(page)
    assert state["numberOfFrames"] == 1 and state["frameIndex"] == 0
    assert thumbs.nth(1).get_attribute("aria-selected") == "true"
    canvas = canvas_pixels(page)
    to_canvas_fit, _ = fit_mapping(canvas.shape[1], canvas.shape[0], second.columns, second.rows)
    assert sample_correlation(canvas, reference_frame(second, 0), to_canvas_fit) > 0.97
    shot = screenshot_pixels(page)
    assert colour_near(shot, fl_rgb, to_canvas(page, (310, 280))) > 0
    assert colour_mask(shot, HC_RGB).sum() == 0
    assert page.locator(".srv-play").is_disabled()  # a single frame has no cine

    # back to the cine at a given frame, through the API
    page.evaluate(f"() => window.viewer.showInstance('{cine.sop}', 5)")
    page.wait_for_function("() => window.viewer.getState().frameIndex === 5")
    assert viewer_state(page)["sopInstanceUID"] == cine.sop


def test_destroy_empties_the_element_and_a_new_viewer_mounts(page, viewer_site, viewer_orthanc):
    inst = viewer_orthanc.instances["cine"]
    assert open_viewer(page, viewer_site, inst)["type"] == "ready"
    result = page.evaluate(
        """async ([study, series]) => {
            window.viewer.destroy();
            const el = document.getElementById('viewer');
            const emptied = el.childElementCount === 0;
            const { mountExamViewer } = await import('./viewer.js');
            const v = mountExamViewer(el, { dicomwebRoot: '/dicom-web', studyUID: study, seriesUID: series, initialFrameIndex: 3 });
            const info = await v.ready;
            window.viewer = v;
            return { emptied, frames: info.numberOfFrames, frame: v.getState().frameIndex };
        }""",
        [inst.study, inst.series],
    )
    assert result == {"emptied": True, "frames": 30, "frame": 3}
    assert canvas_pixels(page)[..., :3].std() > 10
    assert not [m for m in page.console_messages if m.startswith(("error", "pageerror"))]


def test_overlays_sit_on_the_image_and_handles_drag_on_a_hidpi_screen(
    browser, viewer_site, viewer_orthanc, artifacts
):
    """devicePixelRatio 2 (HiDPI laptops, 200 % scaling): Cornerstone 5.14's CPU path drew
    overlays at half their place there until the bundle patched its pixel conversion."""
    inst = viewer_orthanc.instances["cine"]
    overlays = viewer_site.add_json("/fixtures/overlays-d.json", [HC])
    context = browser.new_context(viewport={"width": 900, "height": 760}, device_scale_factor=2)
    try:
        page = context.new_page()
        assert open_viewer(page, viewer_site, inst, overlays=overlays)["type"] == "ready"
        page.wait_for_timeout(100)
        shot = screenshot_pixels(page, path=artifacts / "overlays-hidpi.png")  # device px
        css_w = page.locator(".srv-viewport").bounding_box()["width"]
        ratio = shot.shape[1] / css_w
        assert ratio == pytest.approx(2, abs=0.01)
        for t in (0, math.pi / 2, math.pi):
            x, y = to_canvas(page, ellipse_point(HC, t))
            assert colour_near(shot, HC_RGB, (x * ratio, y * ratio), radius=5) > 0, t
        # the image under the overlay is where the fit-to-canvas map says (its bright wall)
        canvas = canvas_pixels(page)
        to_canvas_fit, _ = fit_mapping(canvas.shape[1], canvas.shape[0], inst.columns, inst.rows)
        assert sample_correlation(canvas, reference_frame(inst, 0), to_canvas_fit) > 0.97

        handles = page.evaluate("() => window.viewer.getOverlayHandles('hc-1')")
        box = page.locator(".srv-viewport canvas").bounding_box()
        start = (box["x"] + handles[1][0], box["y"] + handles[1][1])  # the a-axis minus end
        drag(page, start, (start[0] - 20, start[1]))
        page.wait_for_function(
            "() => window.viewerEvents.some(e => e.type === 'geometry' && e.detail.final)"
        )
        g = geometry_events(page, "hc-1")[-1]["geometry"]
        scale = to_canvas(page, (1, 0))[0] - to_canvas(page, (0, 0))[0]
        a_plus, a_minus = ellipse_point(HC, 0), ellipse_point(HC, math.pi)
        moved = (a_minus[0] - 20 / scale, a_minus[1])
        assert g["a"] == pytest.approx(math.dist(a_plus, moved) / 2, abs=0.5)
        assert g["cx"] == pytest.approx((a_plus[0] + moved[0]) / 2, abs=0.5)
    finally:
        context.close()


def test_instances_given_by_the_page_load_only_the_shown_instances_metadata(
    page, viewer_site, viewer_orthanc
):
    """The review page passes the exam's instances: the first frame must not wait for the
    metadata of every image in the series, only for the shown one's."""
    cine = viewer_orthanc.instances["cine"]
    second = viewer_orthanc.instances["second"]
    listing = viewer_site.add_json(
        "/fixtures/instances-a.json",
        [
            {"sopInstanceUID": second.sop, "seriesInstanceUID": second.series},
            {"sopInstanceUID": cine.sop, "seriesInstanceUID": cine.series, "numberOfFrames": 30},
        ],
    )
    viewer_site.server.dicomweb_requests.clear()
    event = open_viewer(page, viewer_site, cine, instances=listing, sop=cine.sop, frame=4)
    assert event["type"] == "ready", event
    metadata = [p for p, _ in viewer_site.server.dicomweb_requests if p.endswith("/metadata")]
    assert metadata == [
        f"/dicom-web/studies/{cine.study}/series/{cine.series}/instances/{cine.sop}/metadata"
    ]
    state = viewer_state(page)
    assert state["frameIndex"] == 4 and state["numberOfFrames"] == 30
    assert state["frameTimeSource"] == "FrameTime"
    # the other instance's metadata comes when it is shown
    page.evaluate(f"() => window.viewer.showInstance('{second.sop}')")
    page.wait_for_function(f"() => window.viewer.getState().sopInstanceUID === '{second.sop}'")
    assert viewer_state(page)["numberOfFrames"] == 1
    assert any(
        p.endswith(f"/instances/{second.sop}/metadata")
        for p, _ in viewer_site.server.dicomweb_requests
    )


def test_locked_overlays_cannot_be_dragged(page, viewer_site, viewer_orthanc):
    """A signed exam's measurements come with editable: false: drawn, but no handle moves."""
    inst = viewer_orthanc.instances["cine"]
    overlays = viewer_site.add_json("/fixtures/overlays-e.json", [{**HC, "editable": False}])
    assert open_viewer(page, viewer_site, inst, overlays=overlays)["type"] == "ready"
    page.wait_for_timeout(50)
    assert colour_near(screenshot_pixels(page), HC_RGB, to_canvas(page, ellipse_point(HC, 0))) > 0
    handles = page.evaluate("() => window.viewer.getOverlayHandles('hc-1')")
    box = page.locator(".srv-viewport canvas").bounding_box()
    start = (box["x"] + handles[0][0], box["y"] + handles[0][1])
    voi = viewer_state(page)["voiRange"]
    drag(page, start, (start[0] + 30, start[1] + 30))
    page.wait_for_timeout(150)
    assert geometry_events(page, "hc-1") == []
    assert viewer_state(page)["overlays"][0]["geometry"]["cx"] == HC["cx"]
    assert viewer_state(page)["voiRange"] != voi  # the drag went to window / level instead


def test_zoom_survives_a_layout_change_and_overlays_stay_on_the_image(
    page, viewer_site, viewer_orthanc
):
    inst = viewer_orthanc.instances["cine"]
    overlays = viewer_site.add_json("/fixtures/overlays-f.json", [HC])
    assert open_viewer(page, viewer_site, inst, overlays=overlays)["type"] == "ready"
    page.locator(".srv-viewport").focus()
    page.keyboard.press("+")
    page.keyboard.press("+")
    page.evaluate("() => { document.getElementById('viewer').style.height = '480px'; }")
    page.wait_for_function("() => window.viewer.getCanvas().getBoundingClientRect().height < 450")
    page.wait_for_timeout(150)

    def bundle_map(x, y):
        return to_canvas(page, (x, y))

    # still zoomed in (not reset to fit): more canvas px per image px than a fitted view has
    canvas = canvas_pixels(page)
    h, w = canvas.shape[:2]
    magnification = bundle_map(1, 0)[0] - bundle_map(0, 0)[0]
    assert magnification > 1.3 * min(w / inst.columns, h / inst.rows)
    # the drawn image and the overlay map still agree (sampled where the zoomed image is shown)
    ref = reference_frame(inst, 0)
    a, b = [], []
    for y in range(20, inst.rows - 20, 9):
        for x in range(20, inst.columns - 20, 9):
            cx, cy = bundle_map(x, y)
            if 2 <= cx < w - 2 and 2 <= cy < h - 2:
                a.append(canvas[round(cy - 0.5), round(cx - 0.5), :3].astype(float))
                b.append(ref[y, x, :3].astype(float))
    assert len(a) > 100
    assert np.corrcoef(np.ravel(a), np.ravel(b))[0, 1] > 0.97
    shot = screenshot_pixels(page)
    visible = [
        ellipse_point(HC, t)
        for t in np.linspace(0, 2 * math.pi, 12, endpoint=False)
        if 5 < bundle_map(*ellipse_point(HC, t))[0] < w - 5
        and 5 < bundle_map(*ellipse_point(HC, t))[1] < h - 5
    ]
    assert visible
    for p in visible:
        assert colour_near(shot, HC_RGB, bundle_map(*p), radius=4) > 0, p
