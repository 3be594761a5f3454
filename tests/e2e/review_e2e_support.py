"""Helpers of the review browser tests (constants, sign-in, screenshots)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
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
PLANES = (("fetal_brain", "trans_thalamic"), ("fetal_abdomen", None), ("fetal_femur", None))


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def login(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def copy_for_docs(names: list[str]) -> None:
    """Copy the main screenshots next to the README (docs/screenshots/) when
    SONOREVIEW_UPDATE_DOCS_SCREENSHOTS=1 (so ordinary test runs leave the checkout clean)."""
    if os.environ.get("SONOREVIEW_UPDATE_DOCS_SCREENSHOTS") != "1":
        return
    docs = REPO_ROOT / "docs" / "screenshots"
    docs.mkdir(parents=True, exist_ok=True)
    for name in names:
        src = SCREENSHOTS / f"{name}.png"
        if src.exists():
            shutil.copyfile(src, docs / f"review-{name}.png")
