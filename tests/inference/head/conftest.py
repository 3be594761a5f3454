"""Paths and a shared predictor for the head tests (no Django)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_DATA = Path(os.environ.get("SONOREVIEW_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
HC18 = SHARED_DATA / "hc18"
WEIGHTS = REPO_ROOT / "inference" / "weights" / "head_unet.pt"


@pytest.fixture(scope="session")
def hc18_dir() -> Path:
    if not (HC18 / "training_set").is_dir():
        pytest.skip(f"HC18 data not found at {HC18} (set SONOREVIEW_SHARED_DATA)")
    return HC18


@pytest.fixture(scope="session")
def head_predictor():
    if not WEIGHTS.is_file():
        pytest.skip(f"shipped head weights not found at {WEIGHTS}")
    from inference.head.predict import HeadPredictor

    return HeadPredictor(WEIGHTS, device="cpu", threads=1)
