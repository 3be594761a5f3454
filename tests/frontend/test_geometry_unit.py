"""The viewer's pure overlay geometry (frontend/src/geometry.js), through its node unit tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


def test_geometry_unit_tests_pass_under_node():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (needed only for the frontend's own unit tests)")
    result = subprocess.run(
        [node, "--test", "test/"], cwd=FRONTEND, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 6" in result.stdout, result.stdout[-1500:]
