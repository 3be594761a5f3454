"""Criterion evaluators on synthetic inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inference.femur import measure_femur
from inference.geometry import Ellipse, rasterize_ellipse
from inference.quality import Detection, Verdict
from inference.quality.criteria import (
    calipers_on_boundary,
    femur_angle,
    femur_calipers,
    femur_ends_visible,
    femur_fills_image,
    midline_symmetry,
    paired_symmetry,
    structure_fills_image,
    structure_visible,
)

MET, NOT_MET, NA = Verdict.MET, Verdict.NOT_MET, Verdict.NOT_ASSESSABLE


def disc(shape, centre, radius):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2


def bar(shape, centre, length, width, deg):
    th = math.radians(deg)
    d = np.array([math.cos(th), math.sin(th)])
    n = np.array([-d[1], d[0]])
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    u = (xx - centre[0]) * d[0] + (yy - centre[1]) * d[1]
    v = (xx - centre[0]) * n[0] + (yy - centre[1]) * n[1]
    return (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)


# --- visible ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("p", "expect_visible", "verdict"),
    [
        (0.9, True, MET),
        (0.1, True, NOT_MET),
        (0.5, True, NA),
        (0.9, False, NOT_MET),
        (0.1, False, MET),
        (0.7, True, MET),  # at the threshold
        (0.3, False, MET),
    ],
)
def test_structure_visible_thresholds(p, expect_visible, verdict):
    result = structure_visible("k", "thalami", p, expect_visible=expect_visible)
    assert result.verdict is verdict
    assert result.evidence["probability"] == p


def test_structure_visible_without_detector_or_with_bad_probability():
    assert structure_visible("k", "cerebellum", None, expect_visible=False).verdict is NA
    bad = structure_visible("k", "cerebellum", float("nan"), expect_visible=False)
    assert bad.verdict is NA and "invalid probability" in bad.rationale


def test_structure_visible_reports_the_region():
    mask = np.zeros((50, 60), bool)
    mask[10:20, 30:41] = True
    result = structure_visible("k", "stomach", Detection(0.95, mask), expect_visible=True)
    assert result.evidence["region_bbox_xyxy"] == [30, 10, 40, 19]
    assert result.evidence["region_area_px"] == 110


# --- fills the image -------------------------------------------------------------------------------
def test_fill_ratio_uses_the_field_of_view_not_the_screen():
    shape = (400, 600)
    fov = np.zeros(shape, bool)
    fov[50:350, 150:450] = True  # 300 x 300 picture in a black screen
    head = disc(
        shape, (300, 200), 103
    )  # pi*103^2 ≈ 33,329 px ≈ 37 % of the FOV, 14 % of the screen
    result = structure_fills_image("head.fills_30pct", head, fov)
    assert result.verdict is MET
    assert result.evidence["ratio"] == pytest.approx(head.sum() / 90000, rel=1e-9)
    assert head.sum() / head.size < 0.30
    small = structure_fills_image("head.fills_30pct", disc(shape, (300, 200), 80), fov)
    assert small.verdict is NOT_MET


def test_fill_without_fov_or_structure_is_not_assessable():
    mask = disc((100, 100), (50, 50), 30)
    assert structure_fills_image("k", mask, None).verdict is NA
    assert structure_fills_image("k", None, np.ones((100, 100), bool)).verdict is NA


def test_femur_fill_is_length_over_fov_width():
    shape = (300, 400)
    fov = np.zeros(shape, bool)
    fov[:, 50:350] = True  # 300 px wide
    femur = measure_femur(bar(shape, (200, 150), 120, 8, 10))
    result = femur_fills_image("femur.fills_30pct", femur, fov)
    assert result.verdict is MET
    assert result.evidence["ratio"] == pytest.approx(femur.length_px / 300)
    short = measure_femur(bar(shape, (200, 150), 60, 6, 10))
    assert femur_fills_image("k", short, fov).verdict is NOT_MET
    assert femur_fills_image("k", short, fov, truncated=True).verdict is NA


# --- symmetry --------------------------------------------------------------------------------------
HEAD = Ellipse(200, 150, 90, 70, math.radians(20))


def along(e, t):
    return (e.cx + t * math.cos(e.angle), e.cy + t * math.sin(e.angle))


def test_midline_on_the_major_axis_is_symmetric():
    result = midline_symmetry("head.symmetric", HEAD, (along(HEAD, -70), along(HEAD, 70)))
    assert result.verdict is MET
    assert result.evidence["midline_offset_px"] == pytest.approx(0, abs=1e-6)


def test_midline_off_centre_or_tilted_is_not_symmetric():
    n = (-math.sin(HEAD.angle), math.cos(HEAD.angle))
    shift = 0.2 * HEAD.b
    p0, p1 = along(HEAD, -70), along(HEAD, 70)
    moved = (
        (p0[0] + shift * n[0], p0[1] + shift * n[1]),
        (p1[0] + shift * n[0], p1[1] + shift * n[1]),
    )
    assert midline_symmetry("k", HEAD, moved).verdict is NOT_MET
    tilt = math.radians(20)
    q = (HEAD.cx + 70 * math.cos(HEAD.angle + tilt), HEAD.cy + 70 * math.sin(HEAD.angle + tilt))
    tilted = midline_symmetry("k", HEAD, ((HEAD.cx, HEAD.cy), q))
    assert tilted.verdict is NOT_MET
    assert tilted.evidence["midline_angle_to_major_axis_deg"] == pytest.approx(20, abs=1e-6)
    assert midline_symmetry("k", HEAD, None).verdict is NA


def pair(shape, e, offset_v, sizes=(12, 12), u=-10.0):
    """Two discs mirrored about the major axis at ±offset_v (plus a common shift)."""
    c, s = math.cos(e.angle), math.sin(e.angle)
    out = np.zeros(shape, bool)
    for sign, r in zip((-1, 1), sizes, strict=True):
        v = sign * 30 + offset_v
        out |= disc(shape, (e.cx + u * c - v * s, e.cy + u * s + v * c), r)
    return out


def test_paired_structures_mirror_images_are_symmetric():
    result = paired_symmetry(
        "head.symmetric", HEAD, pair((300, 400), HEAD, 0.0), structure="thalami"
    )
    assert result.verdict is MET
    assert result.evidence["mirror_mismatch_rel_b"] == pytest.approx(0, abs=0.02)


def test_paired_structures_shifted_or_unequal_are_not_symmetric():
    shifted = paired_symmetry("k", HEAD, pair((300, 400), HEAD, 10.0), structure="thalami")
    assert shifted.verdict is NOT_MET
    assert shifted.evidence["mirror_mismatch_rel_b"] == pytest.approx(20 / 70, abs=0.02)
    unequal = paired_symmetry(
        "k", HEAD, pair((300, 400), HEAD, 0.0, sizes=(8, 14)), structure="thalami"
    )
    assert unequal.verdict is NOT_MET


def test_pair_about_a_spine_axis():
    body = Ellipse(200, 150, 80, 75, 0.0)
    spine = (200.0, 210.0)  # posterior, straight down: the axis is vertical
    ribs = disc((300, 400), (140, 170), 6) | disc((300, 400), (260, 170), 6)
    result = paired_symmetry("k", body, ribs, structure="ribs", axis_point=spine)
    assert result.verdict is MET
    lopsided = disc((300, 400), (140, 170), 6) | disc((300, 400), (260, 120), 6)
    assert (
        paired_symmetry("k", body, lopsided, structure="ribs", axis_point=spine).verdict is NOT_MET
    )
    one_side = disc((300, 400), (140, 170), 6)
    assert paired_symmetry("k", body, one_side, structure="ribs", axis_point=spine).verdict is NA


def test_ribs_allow_more_centroid_wander_than_the_thalami():
    body = Ellipse(200, 150, 80, 75, 0.0)
    spine = (200.0, 210.0)
    # one rib 15 px (0.2 b) higher than its mirror image: thin arcs' centroids wander that much
    ribs = disc((300, 400), (140, 170), 6) | disc((300, 400), (260, 155), 6)
    rib = paired_symmetry("k", body, ribs, structure="ribs", axis_point=spine)
    assert rib.verdict is MET and rib.evidence["mismatch_limit_rel_b"] == 0.30
    assert rib.evidence["mirror_mismatch_rel_b"] == pytest.approx(0.2, abs=0.01)
    same = paired_symmetry("k", body, ribs, structure="thalami", axis_point=spine)
    assert same.verdict is NOT_MET  # the thalami's limit is 0.10 b


def test_symmetry_of_a_section_cut_by_the_field_of_view_is_not_assessable():
    from inference.quality import PlaneEvidence, assess_plane

    shape = (300, 400)
    body = Ellipse(200, 150, 80, 75, 0.0)
    ribs = disc(shape, (140, 170), 6) | disc(shape, (260, 170), 6)
    spine = disc(shape, (200, 210), 5)
    fov = np.zeros(shape, bool)
    fov[:, :250] = True  # the sector's edge cuts the abdomen's right side
    evidence = PlaneEvidence(
        fov=fov,
        structure_mask=rasterize_ellipse(shape, body) > 0,
        ellipse=body,
        masks={"ribs": ribs, "spine": spine},
    )
    result = assess_plane("abdomen", evidence).result("abdomen.symmetric")
    assert result.verdict is NA
    assert result.rationale.startswith("section cut by the field-of-view edge")
    whole = PlaneEvidence(
        fov=np.ones(shape, bool),
        structure_mask=rasterize_ellipse(shape, body) > 0,
        ellipse=body,
        masks={"ribs": ribs, "spine": spine},
    )
    assert assess_plane("abdomen", whole).result("abdomen.symmetric").verdict is MET


# --- calipers ----------------------------------------------------------------------------------
def test_ellipse_on_the_outer_border_is_correct_and_inner_border_is_not():
    shape = (300, 400)
    outer = Ellipse(200, 150, 90, 75, 0.4)
    head = rasterize_ellipse(shape, outer)
    good = calipers_on_boundary(
        "head.calipers_outer_skull", outer, head, boundary="outer skull border"
    )
    assert good.verdict is MET
    assert good.evidence["mean_distance_px"] < 1.0
    inner = Ellipse(200, 150, 84, 69, 0.4)  # on the inner skull border, 6 px inside
    bad = calipers_on_boundary("k", inner, head, boundary="outer skull border")
    assert bad.verdict is NOT_MET
    assert "inside the boundary" in bad.rationale
    assert bad.evidence["mean_distance_px"] == pytest.approx(6, abs=1)


def test_calipers_ignore_the_part_cut_by_the_field_of_view():
    shape = (300, 400)
    e = Ellipse(200, 150, 90, 75, 0.0)
    fov = np.zeros(shape, bool)
    fov[:, :250] = True
    result = calipers_on_boundary(
        "k", e, rasterize_ellipse(shape, e) & fov, boundary="skin line", fov=fov
    )
    assert result.verdict is MET
    assert result.evidence["ellipse_usable_fraction"] < 0.9


def test_calipers_need_geometry_and_mask():
    mask = disc((100, 100), (50, 50), 30)
    assert calipers_on_boundary("k", None, mask, boundary="skin line").verdict is NA
    assert (
        calipers_on_boundary("k", Ellipse(50, 50, 30, 30, 0), None, boundary="skin line").verdict
        is NA
    )


def test_femur_calipers_at_the_diaphysis_ends():
    femur = measure_femur(bar((300, 400), (200, 150), 140, 9, 15))
    p0, p1 = femur.end_points
    assert femur_calipers("k", (p0, p1), femur).verdict is MET
    assert femur_calipers("k", (p1, p0), femur).verdict is MET  # order does not matter
    th = math.radians(15)
    short = (p0, (p1[0] - 10 * math.cos(th), p1[1] - 10 * math.sin(th)))  # 10 px short of the end
    result = femur_calipers("k", short, femur)
    assert result.verdict is NOT_MET
    assert max(result.evidence["end_errors_px"]) == pytest.approx(10, abs=0.5)
    assert femur_calipers("k", None, femur).verdict is NA


# --- femur ends and angle ----------------------------------------------------------------------
def test_femur_ends_inside_the_field_of_view():
    shape = (300, 400)
    fov = np.zeros(shape, bool)
    fov[20:280, 20:380] = True
    mask = bar(shape, (200, 150), 140, 9, 15)
    femur = measure_femur(mask)
    assert femur_ends_visible("k", mask, femur, fov).verdict is MET
    low = femur_ends_visible("k", mask, femur, fov, end_probabilities=(0.9, 0.1))
    assert low.verdict is NOT_MET
    unsure = femur_ends_visible("k", mask, femur, fov, end_probabilities=(0.9, 0.5))
    assert unsure.verdict is NA


def test_femur_cut_by_the_sector_edge_is_not_fully_visible():
    shape = (300, 400)
    fov = np.zeros(shape, bool)
    fov[20:280, 20:240] = True
    mask = bar(shape, (200, 150), 140, 9, 0) & fov
    result = femur_ends_visible("k", mask, measure_femur(mask), fov)
    assert result.verdict is NOT_MET
    assert result.evidence["mask_px_on_fov_edge"] > 0


@pytest.mark.parametrize(("deg", "verdict"), [(30, MET), (44, MET), (46, NOT_MET), (-60, NOT_MET)])
def test_femur_angle(deg, verdict):
    femur = measure_femur(bar((400, 400), (200, 200), 150, 9, deg))
    assert femur_angle("femur.angle_below_45", femur).verdict is verdict


def test_femur_angle_of_a_stub_is_not_assessable():
    stub = measure_femur(bar((100, 100), (50, 50), 24, 8, 30))  # 3 x as long as wide
    assert femur_angle("k", stub).verdict is NA
