"""The README's two commands and CI's entry point are wired as documented."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_exactly_make_test() -> None:
    script = (REPO_ROOT / ".ci" / "run").read_text()
    commands = [
        line.strip()
        for line in script.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands[-1] == "exec make test"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_installs_starts_services_lints_then_runs_pytest() -> None:
    result = subprocess.run(
        ["make", "-n", "-W", "pyproject.toml", "test"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.splitlines()
    steps = [
        next(i for i, line in enumerate(lines) if "scripts/bootstrap-venv.sh" in line),
        next(i for i, line in enumerate(lines) if "scripts/ensure-services.sh" in line),
        next(i for i, line in enumerate(lines) if "ruff check ." in line),
        next(i for i, line in enumerate(lines) if "-m pytest" in line),
    ]
    assert steps == sorted(steps)


def test_scripts_parse() -> None:
    for script in ["scripts/ensure-services.sh", "scripts/demo.sh", "scripts/bootstrap-venv.sh"]:
        subprocess.run(["bash", "-n", str(REPO_ROOT / script)], check=True)
        assert os.access(REPO_ROOT / script, os.X_OK), script


def test_ensure_services_is_quiet_when_everything_runs() -> None:
    # The suite itself runs on these services, so they are up: a second call must be silent.
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "ensure-services.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""
