"""Browser tests of the built exam-viewer bundle (static/viewer) in headless Debian Chromium.

Frames come from a real DICOMweb server (Orthanc) through a same-origin proxy; assertions are on
the pixels the browser drew, compared with pydicom's decoding of the same frame.
"""

from __future__ import annotations

import base64
import math
import time

import numpy as np
import pytest
from viewer_support import UsInstance, ViewerSite

pytestmark = [pytest.mark.browser, pytest.mark.orthanc]

READY_TIMEOUT_MS = 30_000


def open_viewer(page, site: ViewerSite, inst: UsInstance, **params) -> dict:
    """Load the harness for `inst`; wait for onReady or onError; return the first such event."""
    page.goto(site.harness_url(inst, **params))
    page.wait_for_function(
        "() => (window.viewerEvents || []).some(e => e.type === 'ready' || e.type === 'error')",
        timeout=READY_TIMEOUT_MS,
    )
    return page.evaluate(
        "() => window.viewerEvents.find(e => e.type === 'ready' || e.type === 'error')"
    )


def canvas_pixels(page) -> np.ndarray:
    """The viewport canvas as an (H, W, 4) uint8 array (CPU rendering: a readable 2-D canvas)."""
    data = page.evaluate(
        """() => {
        const c = window.viewer.getCanvas();
        const ctx = c.getContext('2d');
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let s = '';
        for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode.apply(null, d.subarray(i, i + 0x8000));
        return {w: c.width, h: c.height, b64: btoa(s)};
    }"""
    )
    arr = np.frombuffer(base64.b64decode(data["b64"]), dtype=np.uint8)
    return arr.reshape(data["h"], data["w"], 4)


def screenshot_pixels(page, path=None) -> np.ndarray:
    """What the user sees in the viewport (canvas + SVG overlays) as (H, W, 3) uint8."""
    import io

    from PIL import Image

    png = page.locator(".srv-viewport").screenshot(path=path)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def reference_frame(inst: UsInstance, frame_index: int) -> np.ndarray:
    """pydicom's RGB decoding of one frame, (rows, cols, 3) uint8."""
    import pydicom

    ds = pydicom.dcmread(inst.path)
    arr = ds.pixel_array
    if inst.frames > 1:
        arr = arr[frame_index]
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return arr.astype(np.uint8)


def fit_mapping(canvas_w: int, canvas_h: int, cols: int, rows: int):
    """Expected image-px -> canvas-px map of a freshly fitted stack viewport (independent of the
    bundle): uniform scale to fit, image centred, pixel centres at integer image coordinates."""
    s = min(canvas_w / cols, canvas_h / rows)
    ox = (canvas_w - s * cols) / 2
    oy = (canvas_h - s * rows) / 2
    return lambda x, y: (ox + s * (x + 0.5), oy + s * (y + 0.5)), s


def sample_correlation(canvas: np.ndarray, ref: np.ndarray, to_canvas, step: int = 7) -> float:
    rows, cols = ref.shape[:2]
    a, b = [], []
    for y in range(3, rows - 3, step):
        for x in range(3, cols - 3, step):
            cx, cy = to_canvas(x, y)
            a.append(canvas[round(cy - 0.5), round(cx - 0.5), :3].astype(float))
            b.append(ref[y, x, :3].astype(float))
    a_arr, b_arr = np.array(a).ravel(), np.array(b).ravel()
    return float(np.corrcoef(a_arr, b_arr)[0, 1])


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
