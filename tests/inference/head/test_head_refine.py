"""The crop geometry of the head's second look (inference/head/refine.py), on synthetic ellipses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inference.geometry import Ellipse
from inference.head.refine import CropWindow, crop_window, cut, jittered, to_frame


def test_the_window_holds_the_ellipse_with_margin_at_the_network_aspect() -> None:
    e = Ellipse(300.0, 200.0, 60.0, 40.0, 0.0)
    w = crop_window(e, aspect_wh=1.5, margin=1.4)
    # the bounding box (120 × 80) × 1.4 = 168 × 112 is already 3:2
    assert (w.width, w.height) == (168, 112)
    assert (w.x0 + w.width / 2, w.y0 + w.height / 2) == (300.0, 200.0)
    # a tall head (major axis vertical) is widened to 3:2, not squeezed
    tall = crop_window(Ellipse(300.0, 200.0, 60.0, 40.0, math.pi / 2), aspect_wh=1.5, margin=1.4)
    assert tall.height == 168 and tall.width == 252
    for p in Ellipse(300.0, 200.0, 60.0, 40.0, math.pi / 2).points(72):
        assert tall.x0 <= p[0] < tall.x0 + tall.width and tall.y0 <= p[1] < tall.y0 + tall.height


def test_cut_is_zero_outside_the_frame_and_exact_inside() -> None:
    frame = np.arange(20 * 30, dtype=np.float32).reshape(20, 30)
    window = CropWindow(x0=-5, y0=10, width=12, height=15)
    patch = cut(frame, window)
    assert patch.shape == (15, 12)
    assert (patch[:, :5] == 0).all() and (patch[10:, :] == 0).all()
    assert patch[0, 5] == frame[10, 0] and patch[9, 11] == frame[19, 6]


def test_an_ellipse_found_in_the_crop_maps_back_to_the_frame() -> None:
    window = CropWindow(x0=120, y0=-30, width=200, height=140)
    local = Ellipse(80.0, 90.0, 50.0, 30.0, 0.3)
    back = to_frame(local, window)
    assert (back.cx, back.cy, back.a, back.b, back.angle) == pytest.approx(
        (200.0, 60.0, 50.0, 30.0, 0.3)
    )


def test_training_jitter_is_small_and_reproducible() -> None:
    e = Ellipse(300.0, 200.0, 100.0, 80.0, 0.5)
    moved = [jittered(e, np.random.default_rng(7)) for _ in range(2)]
    assert moved[0] == moved[1]
    many = [jittered(e, rng) for rng in [np.random.default_rng(1)] for _ in range(300)]
    shift = np.array([math.hypot(m.cx - e.cx, m.cy - e.cy) for m in many])
    assert 2.0 < shift.mean() < 10.0  # ~4 % of a = 4 px per axis
    assert all(m.a >= m.b > 0 for m in many)
