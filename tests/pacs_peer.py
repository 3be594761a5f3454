"""Debian's Orthanc with its DICOMweb plugin: the PACS peer of every test that needs one.

One launcher (``running_orthanc``) for the exams, reports and viewer tests: free loopback ports,
a throw-away store in a temp dir, ready when ``/system`` answers, killed and waited for on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ORTHANC_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
START_TIMEOUT_S = 20


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Orthanc:
    http_port: int
    dicom_port: int
    workdir: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def rest(self, path: str, method: str = "GET", data: bytes | None = None) -> object:
        headers = {"Content-Type": "application/dicom"} if data is not None else {}
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=20) as response:
            body = response.read()
        return json.loads(body) if body else None

    def clear(self) -> None:
        for study in self.rest("/studies"):  # type: ignore[union-attr]
            self.rest(f"/studies/{study}", method="DELETE")

    def log(self) -> str:
        logs = sorted((self.workdir / "logs").glob("*"))
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in logs)


@contextlib.contextmanager
def running_orthanc(name: str, *, ae_title: str = "TESTPACS") -> Iterator[Orthanc]:
    """Start Orthanc (skip the test when it is not installed); fail with its log if it does not
    answer within ``START_TIMEOUT_S``."""
    binary = shutil.which("Orthanc")
    if binary is None or not ORTHANC_PLUGIN.exists():
        pytest.skip(
            "Orthanc with the DICOMweb plugin is not installed (apt install orthanc orthanc-dicomweb)"
        )
    workdir = Path(tempfile.mkdtemp(prefix="sonoreview-orthanc-"))
    (workdir / "logs").mkdir()
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": name,
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": ae_title,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "UnknownSopClassAccepted": True,
        "Plugins": [str(ORTHANC_PLUGIN)],
        # The port must be in Host or STOW-RS RetrieveURLs lose it.
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Host": f"127.0.0.1:{http_port}"},
    }
    (workdir / "orthanc.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        [binary, f"--logdir={workdir / 'logs'}", str(workdir / "orthanc.json")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = Orthanc(http_port, dicom_port, workdir, process)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"Orthanc exited with {process.returncode}:\n{server.log()}")
            try:
                server.rest("/system")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"Orthanc did not answer within {START_TIMEOUT_S} s:\n{server.log()}"
                    )
                time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            # Its store is a throw-away temp dir, so no graceful stop is owed (SIGTERM takes
            # ~3 s); the wait still guarantees the process is gone before the dir goes.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
