"""Ellipse geometry on synthetic shapes with known answers (no model, no data files)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inference.geometry import (
    Ellipse,
    area_px_to_mm2,
    boundary_points,
    conic_to_ellipse,
    dice,
    ellipse_from_cv2,
    fit_ellipse_direct,
    fit_ellipse_robust,
    hausdorff,
    hausdorff_ellipses,
    px_to_mm,
    ramanujan_perimeter,
    rasterize_ellipse,
    sampson_distance,
)


def angle_diff(a: float, b: float) -> float:
    """Difference of two axis directions modulo π."""
    d = (a - b) % math.pi
    return min(d, math.pi - d)


def assert_close(e: Ellipse, ref: Ellipse, tol_px: float, tol_rad: float = 0.02) -> None:
    assert e.cx == pytest.approx(ref.cx, abs=tol_px)
    assert e.cy == pytest.approx(ref.cy, abs=tol_px)
    assert e.a == pytest.approx(ref.a, abs=tol_px)
    assert e.b == pytest.approx(ref.b, abs=tol_px)
    assert angle_diff(e.angle, ref.angle) < tol_rad


def test_ramanujan_circle_is_two_pi_r() -> None:
    assert ramanujan_perimeter(10, 10) == pytest.approx(2 * math.pi * 10, rel=1e-12)


def test_ramanujan_matches_exact_elliptic_integral() -> None:
    # exact perimeter of a=10, b=5: 4·a·E(e²=0.75) = 48.44224110273838
    assert ramanujan_perimeter(10, 5) == pytest.approx(48.44224110273838, rel=1e-8)
    # a head-like ellipse (CI 80) against scipy's complete elliptic integral of the second kind
    from scipy.special import ellipe

    assert ramanujan_perimeter(60, 48) == pytest.approx(4 * 60 * ellipe(1 - 0.8**2), rel=1e-10)


def test_ramanujan_rejects_negative_axes() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        ramanujan_perimeter(-1, 2)


def test_ellipse_validation_and_axis_order() -> None:
    with pytest.raises(ValueError, match="a ≥ b"):
        Ellipse(0, 0, 5, 10, 0)
    with pytest.raises(ValueError, match="finite"):
        Ellipse(float("nan"), 0, 10, 5, 0)
    e = Ellipse.from_axes(1, 2, 5, 10, 0.0)
    assert (e.a, e.b) == (10, 5)
    assert e.angle == pytest.approx(math.pi / 2)


def test_axis_endpoints_are_diameters() -> None:
    e = Ellipse(100, 80, 50, 40, 0.3)
    (x1, y1), (x2, y2) = e.major_axis_endpoints()
    assert math.hypot(x2 - x1, y2 - y1) == pytest.approx(100)
    (x1, y1), (x2, y2) = e.minor_axis_endpoints()
    assert math.hypot(x2 - x1, y2 - y1) == pytest.approx(80)
    assert ((x1 + x2) / 2, (y1 + y2) / 2) == pytest.approx((100, 80))


def test_conic_round_trip() -> None:
    e = Ellipse(30.5, -12.0, 20.0, 7.5, 2.0)
    back = conic_to_ellipse(e.conic())
    assert_close(back, e, 1e-9, 1e-9)
    back = conic_to_ellipse(-3.0 * e.conic())  # sign and scale of a conic are arbitrary
    assert_close(back, e, 1e-9, 1e-9)
    with pytest.raises(ValueError, match="not an ellipse"):
        conic_to_ellipse([1, 0, -1, 0, 0, -1])  # hyperbola


@pytest.mark.parametrize("angle", [0.0, 0.4, math.pi / 2, 2.5, math.pi - 0.01])
def test_direct_fit_recovers_exact_ellipse(angle: float) -> None:
    ref = Ellipse(200, 150, 100, 60, angle)
    fit = fit_ellipse_direct(ref.points(50))
    assert_close(fit, ref, 1e-6, 1e-6)


def test_direct_fit_agrees_with_opencv() -> None:
    import cv2

    ref = Ellipse(321.0, 222.0, 140.0, 111.0, 1.1)
    pts = ref.points(200).astype(np.float32)
    assert_close(ellipse_from_cv2(cv2.fitEllipse(pts)), fit_ellipse_direct(pts), 0.05, 1e-3)


def test_direct_fit_rejects_too_few_and_degenerate_points() -> None:
    with pytest.raises(ValueError, match="at least 5"):
        fit_ellipse_direct(np.zeros((4, 2)))
    with pytest.raises(ValueError):
        fit_ellipse_direct(np.stack([np.arange(10.0), 2 * np.arange(10.0)], axis=1))
    with pytest.raises(ValueError, match="NaN"):
        fit_ellipse_direct(np.full((6, 2), np.nan))


def test_robust_fit_ignores_outliers_that_bend_least_squares() -> None:
    rng = np.random.default_rng(1)
    ref = Ellipse(200, 150, 100, 70, 0.7)
    pts = ref.points(400) + rng.normal(0, 0.7, (400, 2))
    outliers = rng.uniform([60, 40], [340, 260], (120, 2))  # 23 % clutter
    cloud = np.vstack([pts, outliers])
    naive = fit_ellipse_direct(cloud)
    robust = fit_ellipse_robust(cloud, threshold=2.5)
    assert abs(naive.perimeter - ref.perimeter) > 10  # clutter bends a plain fit …
    assert_close(robust.ellipse, ref, 0.6, 0.02)  # … but not the robust one
    assert robust.ellipse.perimeter == pytest.approx(ref.perimeter, rel=0.003)
    assert 0.74 < robust.inlier_fraction < 0.8
    assert robust.rms_px == pytest.approx(0.7, abs=0.25)


def test_robust_fit_partial_arc_with_noise() -> None:
    rng = np.random.default_rng(2)
    ref = Ellipse(300, 200, 120, 90, 0.3)
    pts = ref.points(720)
    arc = pts[pts[:, 0] < 330] + rng.normal(0, 0.5, (int((pts[:, 0] < 330).sum()), 2))
    fit = fit_ellipse_robust(arc)
    assert_close(fit.ellipse, ref, 1.5, 0.05)


def test_robust_fit_reports_when_nothing_is_elliptical() -> None:
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError):
        fit_ellipse_robust(rng.uniform(0, 100, (300, 2)), threshold=0.2, min_inlier_fraction=0.6)


def test_sampson_distance_is_geometric_near_curve() -> None:
    e = Ellipse(0, 0, 50, 50, 0)
    d = sampson_distance(e, [[51, 0], [0, -48]])
    assert d == pytest.approx([1, 2], abs=0.05)


def test_head_cut_by_image_edge_is_fitted_from_the_visible_arc() -> None:
    # A filled ellipse whose right part lies outside a 200×300 image: its mask boundary runs along
    # the image edge there. Dropping edge points lets the fit recover the full ellipse.
    ref = Ellipse(250.0, 100.0, 80.0, 60.0, 0.2)
    mask = rasterize_ellipse((200, 300), ref)
    pts, keep = boundary_points(mask)
    assert 0.2 < (~keep).mean() < 0.6
    naive = fit_ellipse_direct(pts)
    fit = fit_ellipse_robust(pts[keep])
    assert abs(naive.perimeter - ref.perimeter) > 20
    # boundary pixel centres lie ≤ 1 px inside the true outline
    assert_close(fit.ellipse, ref, 1.2, 0.03)


def test_boundary_points_respects_field_of_view_and_largest_component() -> None:
    mask = np.zeros((100, 100), np.uint8)
    mask[20:60, 20:60] = 1
    mask[80:83, 80:83] = 1  # small speck, not the largest component
    valid = np.ones((100, 100), np.uint8)
    valid[:, :40] = 0  # left part outside the field of view
    pts, keep = boundary_points(mask, valid=valid, margin=2)
    assert pts[:, 0].min() == 20 and pts[:, 1].max() == 59
    assert not keep[pts[:, 0] < 42].any() and keep[pts[:, 0] > 45].all()
    empty, k = boundary_points(np.zeros((10, 10)))
    assert empty.shape == (0, 2) and k.shape == (0,)


def test_rasterize_area_and_scaling() -> None:
    e = Ellipse(150.3, 99.7, 80, 50, 0.6)
    m = rasterize_ellipse((200, 300), e)
    assert m.dtype == bool and m.sum() == pytest.approx(e.area, rel=0.005)
    cover = rasterize_ellipse((200, 300), e, supersample=4)
    assert cover.sum() == pytest.approx(e.area, rel=0.001)
    half = e.scaled(0.5, offset=0.5)
    assert (half.cx, half.a) == pytest.approx(((150.3 + 0.5) * 0.5 - 0.5, 40))
    assert_close(half.scaled(2, offset=0.5), e, 1e-9, 1e-9)


def test_dice_and_hausdorff_known_values() -> None:
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:, :5] = True
    b[:, 2:7] = True
    assert dice(a, b) == pytest.approx(2 * 30 / 100)
    assert dice(a, a) == 1.0 and dice(a, ~a) == 0.0
    assert dice(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        dice(a, np.zeros((5, 5), bool))
    c1, c2 = Ellipse(0, 0, 10, 10, 0), Ellipse(0, 0, 12, 12, 0)
    assert hausdorff_ellipses(c1, c2) == pytest.approx(2.0, abs=1e-3)
    assert hausdorff([[0, 0]], [[3, 4], [0, 1]]) == pytest.approx(5.0)


def test_mm_conversion_never_guesses() -> None:
    assert px_to_mm(100.0, 0.1) == pytest.approx(10.0)
    assert px_to_mm(100.0, None) is None
    assert area_px_to_mm2(100.0, 0.1) == pytest.approx(1.0)
    assert area_px_to_mm2(100.0, None) is None
