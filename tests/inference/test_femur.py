"""FL geometry on synthetic shapes with known answers: rotated bars, capsules, and the artefacts the
clinical rule excludes (separate or fused epiphysis blob, specular spike)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inference.femur import femur_angle_deg, measure_femur

SHAPE = (300, 320)


def bar(centre, length, width, deg, shape=SHAPE):
    """Rotated rectangle (pixel-centre rasterised): length along ``deg`` from the horizontal."""
    th = math.radians(deg)
    d = np.array([math.cos(th), math.sin(th)])
    n = np.array([-d[1], d[0]])
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    u = (xx - centre[0]) * d[0] + (yy - centre[1]) * d[1]
    v = (xx - centre[0]) * n[0] + (yy - centre[1]) * n[1]
    return (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)


def disc(centre, radius, shape=SHAPE):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2


def capsule(p0, p1, radius, shape=SHAPE):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / (d @ d), 0, 1)
    return (xx - p0[0] - t * d[0]) ** 2 + (yy - p0[1] - t * d[1]) ** 2 <= radius**2


def along(centre, deg, distance):
    th = math.radians(deg)
    return (centre[0] + distance * math.cos(th), centre[1] + distance * math.sin(th))


@pytest.mark.parametrize("deg", [0, 17, 33, 45, 62, 90, -25, -70])
@pytest.mark.parametrize(("length", "width"), [(120, 10), (200, 14)])
def test_rotated_bar_length_and_angle(deg, length, width):
    result = measure_femur(bar((160.3, 149.6), length, width, deg))
    assert result.length_px == pytest.approx(length, abs=1.5)
    assert result.angle_deg == pytest.approx(abs(deg), abs=1.0)
    assert 0 <= result.angle_deg <= 90
    assert result.excluded_px == 0
    assert result.length_mm is None  # no pixel size, no mm


def test_end_points_sit_at_the_bar_ends_left_to_right():
    result = measure_femur(bar((160, 150), 120, 10, 30))
    (x0, y0), (x1, y1) = result.end_points
    ex0, ex1 = along((160, 150), 30, -60), along((160, 150), 30, 60)
    assert x0 < x1
    assert math.dist((x0, y0), ex0) < 1.2
    assert math.dist((x1, y1), ex1) < 1.2


def test_capsule_is_measured_tip_to_tip():
    p0, p1 = (80.0, 200.0), (230.0, 140.0)
    result = measure_femur(capsule(p0, p1, 6.0))
    assert result.length_px == pytest.approx(math.dist(p0, p1) + 12.0, abs=1.5)
    assert result.angle_deg == pytest.approx(femur_angle_deg(p0, p1), abs=0.5)


def test_pixel_size_gives_mm():
    result = measure_femur(bar((160, 150), 150, 10, 0), pixel_size_mm=0.2)
    assert result.length_mm == pytest.approx(30.0, abs=0.3)
    assert result.to_dict()["fl_mm"] == pytest.approx(30.0, abs=0.3)


@pytest.mark.parametrize("deg", [0, 20, 40])
def test_separate_epiphysis_blob_is_excluded(deg):
    centre = (160.0, 150.0)
    mask = bar(centre, 120, 10, deg) | disc(along(centre, deg, 69), 7)
    result = measure_femur(mask)
    assert result.length_px == pytest.approx(120, abs=1.5)
    assert result.excluded_px > 100


@pytest.mark.parametrize("deg", [0, 20, 40])
def test_fused_epiphysis_blob_is_excluded(deg):
    centre = (160.0, 150.0)
    mask = bar(centre, 120, 10, deg) | disc(along(centre, deg, 66), 10)
    result = measure_femur(mask)
    assert result.length_px == pytest.approx(120, abs=2.0)


@pytest.mark.parametrize("deg", [0, 20, 40])
def test_specular_spike_is_excluded(deg):
    centre = (160.0, 150.0)
    mask = bar(centre, 120, 10, deg) | bar(along(centre, deg, 68), 16, 1.2, deg)
    result = measure_femur(mask)
    assert result.length_px == pytest.approx(120, abs=2.5)  # at most a pixel or two of spike


def test_a_small_hole_does_not_cut_the_shaft():
    mask = bar((160, 150), 120, 10, 0)
    mask[146:155, 130:132] = False  # a hole through most of the shaft's thickness
    assert measure_femur(mask).length_px == pytest.approx(120, abs=1.5)


@pytest.mark.parametrize("deg", [0, 25, 60])
def test_a_shaft_broken_in_two_by_the_segmentation_is_measured_whole(deg):
    centre = (160.0, 150.0)
    mask = bar(centre, 140, 10, deg) & ~bar(along(centre, deg, 20), 8, 14, deg)  # an 8-px gap
    result = measure_femur(mask)
    assert result.length_px == pytest.approx(140, abs=2.0)


def test_a_thin_waist_inside_the_shaft_is_bridged():
    mask = bar((160, 150), 160, 12, 0)
    mask[:, 150:166] &= bar((160, 150), 160, 2, 0)[:, 150:166]  # 16 px where only 2 px remain
    assert measure_femur(mask).length_px == pytest.approx(160, abs=2.0)


def test_a_thin_spike_beyond_a_gap_is_not_bridged():
    centre = (160.0, 150.0)
    mask = bar(centre, 120, 10, 0) | bar(along(centre, 0, 75), 16, 1.2, 0)  # spike 7 px beyond
    assert measure_femur(mask).length_px == pytest.approx(120, abs=1.5)


def test_empty_mask_is_refused():
    with pytest.raises(ValueError, match="empty"):
        measure_femur(np.zeros(SHAPE, bool))


def test_a_round_blob_is_not_a_femur():
    with pytest.raises(ValueError, match="no elongated component"):
        measure_femur(disc((150, 150), 20))


def test_bad_pixel_size_is_refused():
    with pytest.raises(ValueError, match="pixel_size_mm"):
        measure_femur(bar((160, 150), 120, 10, 0), pixel_size_mm=0.0)
