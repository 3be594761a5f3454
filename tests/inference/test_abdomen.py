"""AC / APAD / TAD geometry on synthetic ellipses with known answers, and on phantom abdomen masks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inference.abdomen import chord_through_centre, measure_abdomen
from inference.geometry import Ellipse, rasterize_ellipse


def spine_at(e: Ellipse, fraction: float = 0.7) -> tuple[float, float]:
    """A point on the minor axis, posterior: the spine of an abdomen whose AP axis is the minor one."""
    d = e.angle + math.pi / 2
    return (e.cx + fraction * e.b * math.cos(d), e.cy + fraction * e.b * math.sin(d))


@pytest.mark.parametrize(
    ("a", "b", "angle"), [(80, 70, 0.3), (120, 100, -1.0), (40, 38, 2.0), (150, 60, 0.7)]
)
def test_ellipse_mask_gives_ac_apad_tad(a, b, angle):
    truth = Ellipse(200.3, 180.7, a, b, angle)
    mask = rasterize_ellipse((400, 420), truth)
    result = measure_abdomen(mask, pixel_size_mm=0.25, spine_xy=spine_at(truth))
    assert result.ac_px == pytest.approx(truth.perimeter, rel=0.003)
    assert result.ac_mm == pytest.approx(truth.perimeter * 0.25, rel=0.003)
    assert result.apad_px == pytest.approx(2 * b, abs=0.5)  # spine on the minor axis
    assert result.tad_px == pytest.approx(2 * a, abs=0.5)
    assert result.dice > 0.995
    assert result.boundary_used_fraction == 1.0


def test_apad_tad_follow_the_spine_direction():
    truth = Ellipse(200, 200, 100, 80, 0.0)
    mask = rasterize_ellipse((400, 400), truth)
    along_major = measure_abdomen(mask, spine_xy=(270, 200))  # spine on the major axis
    assert along_major.apad_px == pytest.approx(200, abs=0.6)
    assert along_major.tad_px == pytest.approx(160, abs=0.6)
    (x0, y0), (x1, y1) = along_major.apad_points
    assert (y0, y1) == pytest.approx((200, 200), abs=0.5)
    assert sorted((x0, x1)) == pytest.approx([100, 300], abs=0.6)


def test_without_spine_no_apad_tad_but_principal_diameters():
    truth = Ellipse(200, 200, 100, 80, 0.4)
    result = measure_abdomen(rasterize_ellipse((400, 400), truth))
    assert result.apad_px is None and result.tad_px is None
    assert result.major_diameter_px == pytest.approx(200, abs=0.6)
    assert result.minor_diameter_px == pytest.approx(160, abs=0.6)
    assert result.ac_mm is None  # no pixel size: px only
    assert result.to_dict()["ac_mm"] is None


def test_chord_formula():
    e = Ellipse(0, 0, 10, 5, 0.0)
    assert chord_through_centre(e, 0.0) == pytest.approx(20)
    assert chord_through_centre(e, math.pi / 2) == pytest.approx(10)
    assert chord_through_centre(e, math.pi / 4) == pytest.approx(2 * 10 * 5 / math.sqrt(62.5))


def test_boundary_cut_by_the_field_of_view_is_not_used():
    truth = Ellipse(200, 200, 100, 90, 0.0)
    fov = np.zeros((400, 400), bool)
    fov[:, :260] = True  # the sector edge cuts the right part of the abdomen
    mask = rasterize_ellipse((400, 400), truth) & fov
    result = measure_abdomen(mask, fov=fov)
    assert result.boundary_used_fraction < 0.9
    assert result.ac_px == pytest.approx(truth.perimeter, rel=0.01)


def test_empty_and_tiny_masks_are_refused():
    with pytest.raises(ValueError, match="empty"):
        measure_abdomen(np.zeros((50, 50), bool))
    tiny = np.zeros((50, 50), bool)
    tiny[20:22, 20:22] = True
    with pytest.raises(ValueError, match="too small"):
        measure_abdomen(tiny)


def test_phantom_abdomen_masks_within_2_percent_of_truth():
    phantom = pytest.importorskip("inference.phantom.generator")
    errors = []
    for seed in range(6):
        frame = phantom.make_frame("fetal_abdomen", seed=seed)
        result = measure_abdomen(frame.masks["abdomen"], frame.pixel_mm, fov=frame.fov)
        errors.append(abs(result.ac_mm / frame.measurements_mm["AC"] - 1))
    assert max(errors) < 0.02
