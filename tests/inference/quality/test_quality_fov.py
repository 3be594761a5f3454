"""Field-of-view estimate: synthetic sector frames with known truth, and real HC18 frames."""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.quality import estimate_field_of_view

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("SONOREVIEW_SHARED_DATA", REPO.parent / "shared" / "data"))


def sector_frame(seed: int = 0, shape=(480, 640)):
    """Curvilinear sector with speckle, an anechoic pocket, text and a grey bar outside it."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    apex = (w / 2, -40.0)
    r = np.hypot(xx - apex[0], yy - apex[1])
    theta = np.arctan2(xx - apex[0], yy - apex[1])
    truth = (r >= 70) & (r <= 500) & (np.abs(theta) <= math.radians(36))
    img = np.clip(rng.rayleigh(45, shape), 0, 255)
    img = cv2.GaussianBlur(img, (0, 0), 1.2)
    pocket = (xx - 360) ** 2 / 50**2 + (
        yy - 250
    ) ** 2 / 35**2 <= 1  # fluid: black inside the sector
    img[pocket] = rng.integers(0, 3, int(pocket.sum()))
    img[~truth] = 0
    out = img.astype(np.uint8)
    cv2.putText(out, "GA 20w3d  HC 175mm", (8, 470), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 1)
    out[40:200, 10:22] = np.linspace(255, 0, 160, dtype=np.uint8)[:, None]  # grey scale bar
    return out, truth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sector_estimate_matches_truth(seed):
    image, truth = sector_frame(seed)
    fov = estimate_field_of_view(image)
    iou = (fov & truth).sum() / (fov | truth).sum()
    assert iou > 0.97
    assert not fov[460:475, 8:200].any()  # the text is not image
    assert not fov[40:200, 10:22].any()  # nor the grey bar


def test_colour_and_float_frames():
    image, truth = sector_frame(3)
    rgb = np.dstack([image, image, image])
    assert np.array_equal(estimate_field_of_view(rgb), estimate_field_of_view(image))
    as_float = image.astype(np.float32) / 255.0
    iou = (estimate_field_of_view(as_float) & truth).sum() / truth.sum()
    assert iou > 0.97


def test_black_frame_and_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="black"):
        estimate_field_of_view(np.zeros((100, 100), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        estimate_field_of_view(np.zeros((4, 100, 100), np.uint8))


def test_real_hc18_frames_keep_the_head_inside_and_the_border_out():
    folder = SHARED / "hc18" / "training_set"
    if not folder.is_dir():
        pytest.skip(f"HC18 data not found at {folder}")
    names = sorted(p.name for p in folder.glob("*_HC.png"))[::90][:8]
    fractions = []
    for name in names:
        image = cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE)
        outline = cv2.imread(
            str(folder / name.replace(".png", "_Annotation.png")), cv2.IMREAD_GRAYSCALE
        )
        fov = estimate_field_of_view(image)
        ys, xs = np.nonzero(outline)
        assert fov[ys, xs].all(), name  # the whole annotated skull lies in the field of view
        fractions.append(fov.mean())
    assert np.mean(fractions) < 0.95  # the black screen border is not counted
