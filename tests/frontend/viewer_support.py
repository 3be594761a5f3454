"""Support code for the viewer browser tests: stored US instances, the Orthanc handle, and the
same-origin site that serves the bundle and forwards DICOMweb (see conftest.py)."""

from __future__ import annotations

import http.client
import json
import mimetypes
import socket
import subprocess
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLE_DIR = REPO_ROOT / "static" / "viewer"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
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
        self._send(200, file.read_bytes(), ctype)

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
