"""Head pipeline steps without the network: input checks, post-processing, measurements, data."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from inference.geometry import Ellipse, rasterize_ellipse
from inference.head.data import (
    annotation_ellipse,
    filled_ellipse_mask,
    letterbox,
    split_subjects,
    subject_of,
)
from inference.head.predict import (
    BPD_CONVENTION,
    HeadMeasurement,
    check_pixel_size,
    measure,
    postprocess,
    preprocess,
    to_gray_frame,
)


def test_to_gray_frame_accepts_grey_colour_and_ranges() -> None:
    grey = np.arange(64 * 80, dtype=np.uint16).reshape(64, 80) % 256
    assert to_gray_frame(grey.astype(np.uint8)).dtype == np.float32
    rgb = np.stack([grey, grey, grey], axis=2).astype(np.uint8)
    assert np.allclose(to_gray_frame(rgb), grey, atol=0.01)
    assert to_gray_frame(np.ones((40, 40, 4), np.uint8) * 10).shape == (40, 40)
    assert to_gray_frame(np.full((40, 40), 0.5, np.float64)).max() == pytest.approx(127.5)
    wide = to_gray_frame(np.linspace(0, 4095, 40 * 40).reshape(40, 40).astype(np.uint16))
    assert (wide.min(), wide.max()) == pytest.approx((0.0, 255.0))
    assert to_gray_frame(np.ones((40, 40), bool)).max() == 255.0


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((1, 1), np.uint8), "too small"),
        (np.zeros((100, 100), np.complex64), "unsupported pixel type"),
        (np.array([[object()] * 40] * 40), "unsupported pixel type"),
        (np.full((40, 40), "a"), "unsupported pixel type"),
        (np.zeros((40, 40, 5), np.uint8), "2-D grey image"),
        (np.zeros((2, 40, 40), np.uint8), "2-D grey image"),
        (np.zeros(100, np.uint8), "2-D grey image"),
        (np.where(np.eye(40) > 0, np.nan, 1.0), "NaN or infinite"),
        (np.full((40, 40), np.inf), "NaN or infinite"),
    ],
)
def test_to_gray_frame_rejects_bad_input_with_reason(frame: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_gray_frame(frame)


def test_pixel_size_checks() -> None:
    assert check_pixel_size(None) is None
    assert check_pixel_size(0.1) == 0.1
    for bad in (0, -0.1, float("nan"), "x"):
        with pytest.raises(ValueError, match="pixel size"):
            check_pixel_size(bad)


def _synthetic_case(ref: Ellipse, shape: tuple[int, int]):
    """A perfect skull probability map for ``ref`` (original px) on the network grid."""
    gray = np.full(shape, 90, np.float32)
    x, boxed, s = preprocess(gray)
    net = ref.scaled(s, offset=0.5)
    prob = rasterize_ellipse(x.shape, net, supersample=4).astype(np.float32)
    return prob, boxed, s


def test_postprocess_recovers_ellipse_from_perfect_probability() -> None:
    ref = Ellipse(400.0, 270.0, 180.0, 140.0, 0.5)
    prob, boxed, s = _synthetic_case(ref, (540, 800))
    e, quality, reason, region = postprocess(prob, boxed, s, (540, 800))
    assert reason is None and region is not None
    assert e.cx == pytest.approx(ref.cx, abs=0.5) and e.cy == pytest.approx(ref.cy, abs=0.5)
    assert e.perimeter == pytest.approx(ref.perimeter, rel=0.003)
    assert quality["confidence"] > 0.95


def test_postprocess_fits_head_cut_by_the_image_edge() -> None:
    ref = Ellipse(730.0, 270.0, 180.0, 140.0, 0.2)  # right third outside the 800-px-wide frame
    prob, boxed, s = _synthetic_case(ref, (540, 800))
    e, _, reason, _ = postprocess(prob, boxed, s, (540, 800))
    assert reason is None
    assert e.perimeter == pytest.approx(ref.perimeter, rel=0.01)
    assert e.cx == pytest.approx(ref.cx, abs=3)


def test_postprocess_says_no_head_for_empty_tiny_or_odd_regions() -> None:
    gray = np.full((540, 800), 90, np.float32)
    x, boxed, s = preprocess(gray)
    empty = np.zeros(x.shape, np.float32)
    assert postprocess(empty, boxed, s, (540, 800))[2] == "no skull region segmented"
    tiny = empty.copy()
    tiny[60:63, 60:63] = 1.0
    assert "too small" in postprocess(tiny, boxed, s, (540, 800))[2]
    bar = empty.copy()
    bar[70:80, 10:230] = 1.0  # long thin stripe: no head-shaped ellipse
    e, _, reason, _ = postprocess(bar, boxed, s, (540, 800))
    assert e is None and reason


def test_measure_hc_bpd_ofd_and_cephalic_index() -> None:
    e = Ellipse(100, 100, 50, 40, 0.0)
    m = measure(e, 0.1)
    assert m["ofd_mm"] == pytest.approx(10.0) and m["bpd_mm"] == pytest.approx(8.0)
    assert m["hc_mm"] == pytest.approx(e.perimeter * 0.1)
    assert m["cephalic_index"] == pytest.approx(80.0)
    assert m["bpd_points"] == ((100.0, 60.0), (100.0, 140.0))
    none = measure(e, None)
    assert (
        none["hc_mm"] is None
        and none["bpd_mm"] is None
        and none["hc_px"] == pytest.approx(e.perimeter)
    )


def test_measurement_serialises_to_json() -> None:
    r = HeadMeasurement(found=True, ellipse=Ellipse(1, 2, 4, 3, 0.1), hc_mm=5.0)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["ellipse"]["a"] == 4 and d["bpd_convention"] == BPD_CONVENTION == "outer-to-outer"


def test_subject_split_is_deterministic_and_disjoint() -> None:
    assert subject_of("010_2HC.png") == "010"
    subjects = [f"{i:03d}" for i in range(200)]
    train, val = split_subjects(subjects, 0.15, seed=0)
    assert (train, val) == split_subjects(list(reversed(subjects)), 0.15, seed=0)
    assert len(val) == 30 and not set(train) & set(val) and len(train) + len(val) == 200


def test_annotation_outline_fill_and_letterbox() -> None:
    ref = Ellipse(300.0, 200.0, 150.0, 100.0, 0.25)
    outline = np.zeros((400, 600), np.uint8)
    cv2.ellipse(outline, ((300, 200), (300, 200), math.degrees(0.25)), 255, 1)
    got = Ellipse.from_axes(*annotation_ellipse(outline))
    assert got.perimeter == pytest.approx(ref.perimeter, rel=0.003)
    filled = filled_ellipse_mask((400, 600), (ref.cx, ref.cy, ref.a, ref.b, ref.angle))
    assert filled.sum() / 255 == pytest.approx(ref.area, rel=0.01)
    boxed, s = letterbox(np.ones((540, 800), np.uint8), (256, 384))
    assert boxed.shape == (256, 384) and s == pytest.approx(256 / 540)
    assert boxed[:, : round(800 * s)].all() and not boxed[:, round(800 * s) :].any()
