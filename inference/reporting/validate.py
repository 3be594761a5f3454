"""Run the DICOM validators on a written file and return their complaints (tests, checks).

* dicom3tools ``dciodvfy``: IOD/module/attribute rules; lines starting ``Error`` are errors.
* dcmtk ``dsrdump``: parses and renders an SR; messages ``E:`` (and a non-zero status) are errors.
* dcmtk ``dcmdump``: parses any DICOM file; ``E:`` messages are errors.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Verdict:
    tool: str
    returncode: int
    errors: list[str]
    warnings: list[str]
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.errors


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    if shutil.which(args[0]) is None:
        raise FileNotFoundError(f"{args[0]} is not installed (Debian packages dcmtk, dicom3tools)")
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def dciodvfy(path: Path) -> Verdict:
    r = _run(["dciodvfy", str(path)])
    lines = (r.stdout + r.stderr).splitlines()
    return Verdict(
        "dciodvfy",
        0,  # dciodvfy's exit status is not meaningful; its "Error" lines are
        [line for line in lines if line.startswith("Error")],
        [line for line in lines if line.startswith("Warning")],
        r.stdout + r.stderr,
    )


def _dcmtk(tool: str, path: Path, *extra: str) -> Verdict:
    r = _run([tool, *extra, str(path)])
    lines = r.stderr.splitlines()
    return Verdict(
        tool,
        r.returncode,
        [line for line in lines if line.startswith(("E:", "F:"))],
        [line for line in lines if line.startswith("W:")],
        r.stdout + r.stderr,
    )


def dsrdump(path: Path) -> Verdict:
    return _dcmtk("dsrdump", path, "+Pt")  # +Pt: print template identification too


def dcmdump(path: Path) -> Verdict:
    return _dcmtk("dcmdump", path)
