"""Support code for the viewer browser tests: stored US instances, the Orthanc handle, and the
same-origin site that serves the bundle and forwards DICOMweb (see conftest.py)."""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import mimetypes
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import numpy as np
import pytest

from tests.pacs_peer import running_orthanc

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLE_DIR = REPO_ROOT / "static" / "viewer"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def launch_chromium():
    """Headless Debian Chromium through Playwright for Python (never `playwright install`)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def us_file(name: str) -> Path:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not installed (pydicom-data missing?)")
    return Path(path)


@dataclass
class UsInstance:
    """One stored US instance: its UIDs and its file (for reference pixels)."""

    name: str
    path: Path
    study: str
    series: str
    sop: str
    frames: int
    rows: int
    columns: int


@dataclass
class OrthancServer:
    http_port: int
    workdir: Path
    process: subprocess.Popen
    instances: dict[str, UsInstance] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted((self.workdir / "logs").glob("*"))
        )

    def store(self, name: str, path: Path) -> UsInstance:
        import pydicom

        request = urllib.request.Request(
            f"{self.url}/instances",
            data=path.read_bytes(),
            method="POST",
            headers={"Content-Type": "application/dicom"},
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            status = json.loads(response.read())
        assert status.get("Status") in {"Success", "AlreadyStored"}, status
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        inst = UsInstance(
            name=name,
            path=path,
            study=ds.StudyInstanceUID,
            series=ds.SeriesInstanceUID,
            sop=ds.SOPInstanceUID,
            frames=int(ds.get("NumberOfFrames", 1) or 1),
            rows=int(ds.Rows),
            columns=int(ds.Columns),
        )
        self.instances[name] = inst
        return inst


class _SiteHandler(BaseHTTPRequestHandler):
    server: _Site
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/static/viewer/"):
            self._static(path.removeprefix("/static/viewer/"))
        elif path.startswith("/dicom-web/"):
            self._forward(path)
        elif path.startswith("/broken-dicom-web/"):
            if "/frames/" in path:
                self._send(500, b"frame store unavailable (test)", "text/plain")
            else:
                self._forward(path.replace("/broken-dicom-web/", "/dicom-web/", 1))
        elif path in self.server.fixtures:
            self._send(200, self.server.fixtures[path], "application/json")
        else:
            self._send(404, b"not found", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # the bundle may be cached (as whitenoise lets browsers do); data never is
        self.send_header("Cache-Control", "max-age=600" if cache else "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _static(self, rel: str) -> None:
        file = (BUNDLE_DIR / rel).resolve()
        if BUNDLE_DIR.resolve() not in file.parents or not file.is_file():
            self._send(404, b"not found", "text/plain")
            return
        # the MIME types the Django/whitenoise settings use
        if file.suffix == ".wasm":
            ctype = "application/wasm"
        elif file.suffix in {".js", ".mjs"}:
            ctype = "text/javascript"
        else:
            ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        self._send(200, file.read_bytes(), ctype, cache=file.name != "harness.html")

    def _forward(self, path: str) -> None:
        query = urlsplit(self.path).query
        conn = http.client.HTTPConnection("127.0.0.1", self.server.orthanc_port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() in {"accept", "range"}}
        conn.request("GET", path + (f"?{query}" if query else ""), headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        self.server.dicomweb_requests.append((path, resp.status))
        self._send(resp.status, body, resp.getheader("Content-Type") or "application/octet-stream")


class _Site(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        # a page closed while its background frame loads were in flight: not an error here
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def __init__(self, orthanc_port: int) -> None:
        super().__init__(("127.0.0.1", 0), _SiteHandler)
        self.orthanc_port = orthanc_port
        self.fixtures: dict[str, bytes] = {}
        self.dicomweb_requests: list[tuple[str, int]] = []


@dataclass
class ViewerSite:
    server: _Site

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add_json(self, path: str, obj: object) -> str:
        self.server.fixtures[path] = json.dumps(obj).encode()
        return path

    def harness_url(self, inst: UsInstance, *, root: str = "/dicom-web", **params: object) -> str:
        query = {"root": root, "study": inst.study, "series": inst.series, **params}
        return f"{self.url}/static/viewer/harness.html?{urlencode(query)}"


def second_instance_of_cine(workdir: Path, cine: UsInstance) -> Path:
    """US1_UNCR's real pixels filed as a second, single-frame image of the cine's series (an
    exam with several images: the thumbnail strip, showInstance and per-instance overlays)."""
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(us_file("US1_UNCR.dcm"))
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


@contextlib.contextmanager
def run_orthanc(files: dict[str, str]) -> Iterator[OrthancServer]:
    """The Orthanc PACS peer (tests/pacs_peer.py) holding `files` (name -> pydicom test file
    name) and a second image of the "cine" series if there is one."""
    with running_orthanc("SONOREVIEW-VIEWER-TEST") as peer:
        server = OrthancServer(peer.http_port, peer.workdir, peer.process)
        for name, filename in files.items():
            server.store(name, us_file(filename))
        if "cine" in server.instances:
            server.store("second", second_instance_of_cine(peer.workdir, server.instances["cine"]))
        yield server


@contextlib.contextmanager
def serve_site(orthanc_port: int) -> Iterator[ViewerSite]:
    """The same-origin site (bundle + DICOMweb proxy) on a free loopback port."""
    if not (BUNDLE_DIR / "viewer.js").is_file():
        raise RuntimeError("static/viewer/viewer.js is missing: build it with `make viewer`")
    server = _Site(orthanc_port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ViewerSite(server)
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ browser-side helpers

READY_TIMEOUT_MS = 30_000


def open_viewer(
    page, site: ViewerSite | None, inst: UsInstance, *, url: str | None = None, **params
) -> dict:
    """Load the harness for `inst` (or `url`); wait for onReady or onError; return the first such event."""
    page.goto(url or site.harness_url(inst, **params))
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
    from PIL import Image

    png = page.locator(".srv-viewport").screenshot(path=path)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def reference_frame(inst: UsInstance, frame_index: int) -> np.ndarray:
    """pydicom's RGB decoding of one frame, (rows, cols, 3) uint8 (palettes applied)."""
    import pydicom
    from pydicom.pixels import apply_color_lut

    ds = pydicom.dcmread(inst.path)
    arr = ds.pixel_array
    if inst.frames > 1:
        arr = arr[frame_index]
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
        if arr.dtype != np.uint8:  # 16-bit LUT entries
            arr = arr >> 8
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
