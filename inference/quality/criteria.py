"""Criterion evaluators: pure functions from model outputs to a :class:`CriterionResult`.

Inputs are what the models and geometry produce — masks per structure (H, W, bool), detection
probabilities, the measurement geometry (ellipse, femur end points) and the field-of-view mask —
never the raw pixels' "look". Each function returns ``not_assessable`` with the reason when its
inputs cannot decide, never a guess; every verdict carries the numbers it was decided on.

Thresholds are project choices, named in :class:`Thresholds` and echoed in the evidence; the only
number from Salomon 2006 is the 30 % (and the femur's 45°). Where the paper's criterion is
qualitative ("symmetrical plane", "calipers correctly placed") the operational definition is stated
in the function's docstring.

Conventions: points (x, y) = (column, row) px; ellipses have ``cx, cy, a, b, angle`` (rad, major
axis direction; as :class:`inference.geometry.Ellipse`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from inference.femur import FemurMeasurement
from inference.quality.results import CriterionResult, Verdict

__all__ = [
    "Detection",
    "EllipseLike",
    "Thresholds",
    "calipers_on_boundary",
    "femur_angle",
    "femur_calipers",
    "femur_ends_visible",
    "femur_fills_image",
    "mask_bbox",
    "midline_symmetry",
    "paired_symmetry",
    "structure_fills_image",
    "structure_visible",
    "touches_fov_edge",
]

Point = tuple[float, float]


class EllipseLike(Protocol):
    cx: float
    cy: float
    a: float
    b: float
    angle: float


@dataclass(frozen=True)
class Detection:
    """A detector's output for one structure: probability it is visible, optional region mask."""

    probability: float
    mask: NDArray[np.bool_] | None = None


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds (project choices unless marked Salomon 2006)."""

    visible_hi: float = 0.7
    """probability ≥ this: the structure is visible."""
    visible_lo: float = 0.3
    """probability ≤ this: the structure is not visible; in between: not assessable."""
    fill_fraction: float = 0.30  # Salomon 2006: "> 30 % of the image"
    femur_angle_deg: float = 45.0  # Salomon 2006: "< 45° to the horizontal"
    midline_offset: float = 0.05
    """Midline's distance from the ellipse centre, as a fraction of the semi-minor axis."""
    midline_angle_deg: float = 10.0
    """Angle allowed between the midline and the ellipse's major axis."""
    pair_mirror: float = 0.10
    """Paired structures: mirror-image mismatch of their centroids, fraction of the semi-minor axis."""
    pair_area_ratio: float = 0.6
    """Paired structures: smaller / larger area at least this."""
    rib_mirror: float = 0.30
    """Ribs (abdomen): mirror mismatch limit, fraction of b. Ribs are thin arcs whose segmented
    centroids wander more than the thalami's; on phantom validation frames (not the held-out set)
    symmetric sections stayed below 0.14 and oblique ones above 0.54."""
    rib_area_ratio: float = 0.25
    """Ribs: smaller / larger segmented area at least this (a rib seen on one side only fails)."""
    caliper_ellipse: float = 0.025
    """Mean caliper-ellipse to segmented-boundary distance, fraction of the mean radius √(ab)."""
    caliper_ellipse_min_px: float = 1.5
    caliper_femur: float = 0.03
    """Each FL caliper within this fraction of FL of a segmented diaphysis end."""
    caliper_femur_min_px: float = 2.0
    edge_margin_px: float = 3.0
    """A femur closer than this to the field-of-view edge is cut by it: its ends are not 'clearly
    visible' and its length is unknown (an estimated field of view reaches ~1–2 px past the
    sector's true edge, so "touching" needs this margin, not one pixel)."""

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


DEFAULT = Thresholds()


def _na(key: str, why: str, **evidence: Any) -> CriterionResult:
    return CriterionResult(key, Verdict.NOT_ASSESSABLE, evidence, why)


def mask_bbox(mask: NDArray | None) -> list[int] | None:
    """[x0, y0, x1, y1] (inclusive, px) of a mask's non-zero pixels, or None when empty/absent."""
    if mask is None:
        return None
    x, y, w, h = cv2.boundingRect((np.asarray(mask) > 0).astype(np.uint8))
    if w == 0 or h == 0:
        return None
    return [x, y, x + w - 1, y + h - 1]


# --- structure visible / not visible ----------------------------------------------------------
def structure_visible(
    key: str,
    structure: str,
    detection: Detection | float | None,
    *,
    expect_visible: bool,
    thresholds: Thresholds = DEFAULT,
) -> CriterionResult:
    """Criterion "<structure> visible" (``expect_visible``) or "<structure> not visible".

    met / not met when the probability is decisive (≥ ``visible_hi`` or ≤ ``visible_lo``);
    not assessable between the two, or when no detector output exists for the structure.
    """
    if detection is None:
        return _na(key, f"no detector output for {structure}", structure=structure)
    det = detection if isinstance(detection, Detection) else Detection(float(detection))
    p = float(det.probability)
    evidence: dict[str, Any] = {
        "structure": structure,
        "probability": p,
        "visible_if_at_least": thresholds.visible_hi,
        "absent_if_at_most": thresholds.visible_lo,
    }
    box = mask_bbox(det.mask)
    if box is not None:
        evidence["region_bbox_xyxy"] = box
        evidence["region_area_px"] = int(np.count_nonzero(det.mask))
    if not (0.0 <= p <= 1.0):  # also catches NaN
        return _na(key, f"invalid probability {p!r} for {structure}", **evidence)
    if p >= thresholds.visible_hi:
        seen = True
    elif p <= thresholds.visible_lo:
        seen = False
    else:
        return _na(key, f"{structure} detection uncertain (p = {p:.2f})", **evidence)
    met = seen == expect_visible
    state = "visible" if seen else "not visible"
    return CriterionResult(
        key, Verdict.MET if met else Verdict.NOT_MET, evidence, f"{structure} {state} (p = {p:.2f})"
    )


# --- "occupies > 30 % of the image" -----------------------------------------------------------
def structure_fills_image(
    key: str,
    structure_mask: NDArray | None,
    fov: NDArray | None,
    *,
    fov_source: str = "given",
    thresholds: Thresholds = DEFAULT,
) -> CriterionResult:
    """Head / abdomen "> 30 % of the image": area(structure ∩ FOV) / area(FOV) > 0.30.

    The denominator is the ultrasound field of view, not the screen with its black border.
    """
    if fov is None or not np.any(fov):
        return _na(key, "no field of view to measure the image against")
    if structure_mask is None or not np.any(structure_mask):
        return _na(key, "structure not segmented: its size is unknown")
    fov_b = np.asarray(fov) > 0
    s = np.asarray(structure_mask) > 0
    if s.shape != fov_b.shape:
        raise ValueError(
            f"structure mask {s.shape} and field of view {fov_b.shape} differ in shape"
        )
    fov_area = int(fov_b.sum())
    area = int((s & fov_b).sum())
    ratio = area / fov_area
    evidence = {
        "ratio": ratio,
        "threshold": thresholds.fill_fraction,
        "structure_area_px": area,
        "fov_area_px": fov_area,
        "fov_source": fov_source,
        "definition": "structure area / ultrasound field-of-view area",
        "region_bbox_xyxy": mask_bbox(s),
    }
    met = ratio > thresholds.fill_fraction
    return CriterionResult(
        key,
        Verdict.MET if met else Verdict.NOT_MET,
        evidence,
        f"occupies {ratio:.0%} of the field of view ({'>' if met else '≤'} "
        f"{thresholds.fill_fraction:.0%})",
    )


def femur_fills_image(
    key: str,
    femur: FemurMeasurement | None,
    fov: NDArray | None,
    *,
    truncated: bool = False,
    fov_source: str = "given",
    thresholds: Thresholds = DEFAULT,
) -> CriterionResult:
    """Femur "> 30 % of the image": FL (px) / horizontal width of the field of view (px) > 0.30.

    A bone's area is never 30 % of a picture, so for the femur the ratio is one of lengths — the
    project's reading of Salomon's criterion (also the phantom generator's): the femur spans more than
    30 % of the picture's width. A bone cut by the field-of-view edge (``truncated``) that looks
    short is not assessable: its hidden part may be long.
    """
    if fov is None or not np.any(fov):
        return _na(key, "no field of view to measure the image against")
    if femur is None:
        return _na(key, "femur not measured: its length is unknown")
    cols = np.nonzero(np.any(np.asarray(fov) > 0, axis=0))[0]
    width = float(cols.max() - cols.min() + 1)
    ratio = femur.length_px / width
    evidence = {
        "ratio": ratio,
        "threshold": thresholds.fill_fraction,
        "fl_px": femur.length_px,
        "fov_width_px": width,
        "fov_source": fov_source,
        "definition": "femur length / field-of-view width",
    }
    met = ratio > thresholds.fill_fraction
    if not met and truncated:
        return _na(
            key, "femur cut by the field-of-view edge: its full length is unknown", **evidence
        )
    return CriterionResult(
        key,
        Verdict.MET if met else Verdict.NOT_MET,
        evidence,
        f"femur spans {ratio:.0%} of the field-of-view width",
    )


# --- symmetry ----------------------------------------------------------------------------------
def midline_symmetry(
    key: str,
    ellipse: EllipseLike | None,
    midline: tuple[Point, Point] | None,
    *,
    thresholds: Thresholds = DEFAULT,
) -> CriterionResult:
    """Head "symmetrical plane" from the midline echo (falx) and the skull ellipse.

    In a symmetric axial section the midline runs along the ellipse's major (OFD) axis through its
    centre: met when the midline's distance from the centre is ≤ ``midline_offset`` · b and its angle
    to the major axis ≤ ``midline_angle_deg``. ``midline``: two (x, y) points on it.
    """
    if ellipse is None:
        return _na(key, "no head ellipse")
    if midline is None:
        return _na(key, "no midline detected")
    (x0, y0), (x1, y1) = midline
    dx, dy = x1 - x0, y1 - y0
    length = math.hypot(dx, dy)
    if length < 1.0:
        return _na(key, "midline shorter than a pixel")
    offset = abs(dy * (ellipse.cx - x0) - dx * (ellipse.cy - y0)) / length
    rel = offset / ellipse.b
    diff = abs(math.degrees(math.atan2(dy, dx) - ellipse.angle)) % 180.0
    angle = min(diff, 180.0 - diff)
    evidence = {
        "midline_offset_px": offset,
        "midline_offset_rel_b": rel,
        "midline_angle_to_major_axis_deg": angle,
        "offset_limit_rel_b": thresholds.midline_offset,
        "angle_limit_deg": thresholds.midline_angle_deg,
        "method": "midline",
    }
    met = rel <= thresholds.midline_offset and angle <= thresholds.midline_angle_deg
    return CriterionResult(
        key,
        Verdict.MET if met else Verdict.NOT_MET,
        evidence,
        f"midline {rel:.1%} of b off centre, {angle:.1f}° to the major axis",
    )


def paired_symmetry(
    key: str,
    ellipse: EllipseLike | None,
    pair_mask: NDArray | None,
    *,
    structure: str,
    axis_point: Point | None = None,
    thresholds: Thresholds = DEFAULT,
) -> CriterionResult:
    """Criterion "symmetrical plane" from a left/right pair of structures mirrored about the section's axis.

    The axis runs through the ellipse centre towards ``axis_point`` (abdomen: the spine) or, without
    one, along the major axis (head: the falx). The pair's pixels are split by side of the axis; met
    when the mirror image of one side's centroid lies within ``pair_mirror`` · b of the other's and
    their areas agree (smaller / larger ≥ ``pair_area_ratio``); ribs use ``rib_mirror`` and
    ``rib_area_ratio``. Pairs: thalami (head), ribs (abdomen).
    A pair seen on one side only is not assessable (an oblique cut, or a missed detection).
    """
    if ellipse is None:
        return _na(key, "no ellipse for the section")
    if pair_mask is None or not np.any(pair_mask):
        return _na(key, f"no {structure} segmented to compare left and right")
    cx, cy = ellipse.cx, ellipse.cy
    if axis_point is not None:
        ax, ay = axis_point[0] - cx, axis_point[1] - cy
        if math.hypot(ax, ay) < 1.0:
            return _na(key, "axis point at the ellipse centre")
        theta = math.atan2(ay, ax)
        method = f"{structure} mirrored about the centre-to-spine axis"
    else:
        theta = ellipse.angle
        method = f"{structure} mirrored about the major axis"
    d = np.array([math.cos(theta), math.sin(theta)])
    n = np.array([-d[1], d[0]])
    # The two largest regions are the pair (an asymmetric cut can push one across the axis, so
    # regions, not half-planes, define the sides); a fused pair falls back to the axis split.
    pm = (np.asarray(pair_mask) > 0).astype(np.uint8)
    bx, by, bw, bh = cv2.boundingRect(pm)  # work on the pair's box: masks are full frames
    _, labels, stats, _ = cv2.connectedComponentsWithStats(
        pm[by : by + bh, bx : bx + bw], connectivity=8
    )
    order = 1 + np.argsort(stats[1:, cv2.CC_STAT_AREA])[::-1]
    regions = []
    for k in order[:2]:
        ys, xs = np.nonzero(labels == k)
        regions.append(np.stack([xs + bx - cx, ys + by - cy], axis=1).astype(np.float64))
    if len(regions) == 2:
        # Two separate structures are the pair even when an oblique cut puts both on one side of
        # the axis: mirroring then shows the shift (splitting a structure along the axis would
        # hide it).
        left, right = sorted(regions, key=lambda r: float(r.mean(0) @ n))
    else:
        rel = np.concatenate(regions)
        side = rel @ n
        left, right = rel[side < 0], rel[side > 0]
    if len(left) == 0 or len(right) == 0:
        return _na(key, f"{structure} seen on one side of the axis only", method=method)
    cl, cr = left.mean(axis=0), right.mean(axis=0)
    mirrored = cr - 2 * (cr @ n) * n  # reflect across the axis line
    mismatch = float(np.linalg.norm(mirrored - cl)) / ellipse.b
    area_ratio = min(len(left), len(right)) / max(len(left), len(right))
    ribs = structure == "ribs"
    mirror_limit = thresholds.rib_mirror if ribs else thresholds.pair_mirror
    area_min = thresholds.rib_area_ratio if ribs else thresholds.pair_area_ratio
    evidence = {
        "method": method,
        "mirror_mismatch_rel_b": mismatch,
        "area_ratio": area_ratio,
        "mismatch_limit_rel_b": mirror_limit,
        "area_ratio_min": area_min,
        "region_bbox_xyxy": mask_bbox(pair_mask),
    }
    met = mismatch <= mirror_limit and area_ratio >= area_min
    return CriterionResult(
        key,
        Verdict.MET if met else Verdict.NOT_MET,
        evidence,
        f"{structure}: mirror mismatch {mismatch:.1%} of b, area ratio {area_ratio:.2f}",
    )


# --- calipers ------------------------------------------------------------------------------------
def _ellipse_points(e: EllipseLike, n: int = 360) -> NDArray[np.float64]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = math.cos(e.angle), math.sin(e.angle)
    x, y = e.a * np.cos(t), e.b * np.sin(t)
    return np.stack([e.cx + c * x - s * y, e.cy + s * x + c * y], axis=1)


def calipers_on_boundary(
    key: str,
    ellipse: EllipseLike | None,
    structure_mask: NDArray | None,
    *,
    boundary: str,
    fov: NDArray | None = None,
    thresholds: Thresholds = DEFAULT,
) -> CriterionResult:
    """HC / AC "calipers correctly placed": the caliper ellipse lies on the segmented outer boundary.

    ``structure_mask`` is the filled head (to the outer skull border) or abdomen (to the skin line).
    Distance measured both ways: ellipse samples → nearest mask-contour pixel, and contour →
    ellipse; parts on the image or field-of-view edge are ignored (the boundary there is the
    picture's). Met when the mean of both ≤ max(``caliper_ellipse_min_px``, ``caliper_ellipse`` ·
    √(ab)). An ellipse on the inner skull border sits a skull thickness (≈ 6–9 % of the radius)
    inside and fails.
    """
    if ellipse is None:
        return _na(key, "no caliper ellipse to judge")
    if structure_mask is None or not np.any(structure_mask):
        return _na(key, f"no segmented {boundary} to compare the calipers with")
    m = (np.asarray(structure_mask) > 0).astype(np.uint8)
    h, w = m.shape
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=len).reshape(-1, 2)
    valid = np.zeros((h, w), np.uint8)
    valid[2 : h - 2, 2 : w - 2] = 1
    if fov is not None:
        valid &= cv2.erode((np.asarray(fov) > 0).astype(np.uint8), np.ones((5, 5), np.uint8))
    cont_ok = contour[valid[contour[:, 1], contour[:, 0]] > 0]
    pts = _ellipse_points(ellipse)
    xi, yi = np.round(pts[:, 0]).astype(int), np.round(pts[:, 1]).astype(int)
    inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    inside[inside] &= valid[yi[inside], xi[inside]] > 0
    if inside.mean() < 0.5 or len(cont_ok) < 0.5 * len(contour):
        return _na(
            key,
            "most of the ellipse or boundary lies outside the usable field of view",
            ellipse_usable_fraction=float(inside.mean()),
        )
    d_fwd, _ = cKDTree(contour.astype(np.float64)).query(pts[inside])
    # contour → ellipse: radial distance via the ellipse's normalised radius (good for b/a > 0.5)
    c, s = math.cos(ellipse.angle), math.sin(ellipse.angle)
    dx, dy = cont_ok[:, 0] - ellipse.cx, cont_ok[:, 1] - ellipse.cy
    u, v = c * dx + s * dy, -s * dx + c * dy
    rho = np.hypot(u / ellipse.a, v / ellipse.b)
    d_back = np.abs(np.hypot(u, v) * (1 - 1 / np.maximum(rho, 1e-9)))
    mean_px = 0.5 * (float(d_fwd.mean()) + float(d_back.mean()))
    radius = math.sqrt(ellipse.a * ellipse.b)
    limit = max(thresholds.caliper_ellipse_min_px, thresholds.caliper_ellipse * radius)
    outside = float(np.mean(rho > 1.0))  # share of the boundary lying outside the ellipse
    evidence = {
        "mean_distance_px": mean_px,
        "mean_distance_rel_radius": mean_px / radius,
        "p95_distance_px": float(np.percentile(np.concatenate([d_fwd, d_back]), 95)),
        "limit_px": limit,
        "boundary": boundary,
        "boundary_outside_ellipse_fraction": outside,
        "ellipse_usable_fraction": float(inside.mean()),
    }
    met = mean_px <= limit
    where = ""
    if not met:
        where = " (inside the boundary)" if outside > 0.5 else " (outside the boundary)"
    return CriterionResult(
        key,
        Verdict.MET if met else Verdict.NOT_MET,
        evidence,
        f"ellipse {mean_px:.1f} px from the {boundary} on average (limit {limit:.1f} px){where}",
    )


def femur_calipers(
    key: str,
    calipers: Sequence[Point] | None,
    femur: FemurMeasurement | None,
    *,
    thresholds: Thresholds = DEFAULT,
) -> CriterionResult:
    """FL "calipers correctly placed": each caliper within ``caliper_femur`` · FL (≥
    ``caliper_femur_min_px``) of an end of the segmented ossified diaphysis (epiphysis excluded, see
    :mod:`inference.femur`)."""
    if calipers is None:
        return _na(key, "no FL calipers to judge")
    if femur is None:
        return _na(key, "no segmented femur diaphysis to compare the calipers with")
    c = np.asarray(calipers, dtype=np.float64).reshape(2, 2)
    e = np.asarray(femur.end_points, dtype=np.float64)
    direct = np.linalg.norm(c - e, axis=1)
    swapped = np.linalg.norm(c - e[::-1], axis=1)
    errors = direct if direct.max() <= swapped.max() else swapped
    limit = max(thresholds.caliper_femur_min_px, thresholds.caliper_femur * femur.length_px)
    caliper_length = float(np.linalg.norm(c[0] - c[1]))
    evidence = {
        "end_errors_px": [float(errors[0]), float(errors[1])],
        "limit_px": limit,
        "caliper_length_px": caliper_length,
        "diaphysis_length_px": femur.length_px,
        "diaphysis_end_points_px": [list(p) for p in femur.end_points],
    }
    met = float(errors.max()) <= limit
    return CriterionResult(
        key,
        Verdict.MET if met else Verdict.NOT_MET,
        evidence,
        f"calipers {errors.max():.1f} px from the diaphysis ends at worst (limit {limit:.1f} px)",
    )


# --- femur: ends, angle ----------------------------------------------------------------------------
def fov_inner_distance(fov: NDArray) -> NDArray[np.float32]:
    """Distance (px) of every pixel to the nearest pixel outside the field of view (or the frame)."""
    f = (np.asarray(fov) > 0).astype(np.uint8)
    return cv2.distanceTransform(np.pad(f, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]


def touches_fov_edge(mask: NDArray, fov: NDArray, *, within_px: float = 1.5) -> int:
    """How many mask pixels lie within ``within_px`` of the field-of-view edge (0: not cut by it)."""
    return int(np.count_nonzero((np.asarray(mask) > 0) & (fov_inner_distance(fov) <= within_px)))


def femur_ends_visible(
    key: str,
    femur_mask: NDArray | None,
    femur: FemurMeasurement | None,
    fov: NDArray | None,
    *,
    end_probabilities: tuple[float, float] | None = None,
    fov_source: str = "given",
    thresholds: Thresholds = DEFAULT,
) -> CriterionResult:
    """Femur "both ends of the bone clearly visible": both diaphysis ends inside the field of view with a
    margin of ``edge_margin_px`` and no bone pixel within that margin of its edge; if an end
    detector gives probabilities, a low one (≤ ``visible_lo``) fails and an uncertain one makes the
    criterion not assessable.
    """
    if femur is None or femur_mask is None:
        return _na(key, "femur not segmented")
    if fov is None or not np.any(fov):
        return _na(key, "no field of view to check the ends against")
    inner = fov_inner_distance(fov)
    h, w = inner.shape
    margins = []
    for x, y in femur.end_points:
        xi, yi = round(x), round(y)
        margins.append(float(inner[yi, xi]) if 0 <= xi < w and 0 <= yi < h else 0.0)
    fm = np.asarray(femur_mask) > 0
    touching = int(np.count_nonzero(fm & (inner <= thresholds.edge_margin_px)))
    evidence: dict[str, Any] = {
        "end_margins_px": margins,
        "margin_required_px": thresholds.edge_margin_px,
        "mask_px_on_fov_edge": touching,
        "fov_source": fov_source,
    }
    if min(margins) < thresholds.edge_margin_px or touching > 0:
        return CriterionResult(
            key, Verdict.NOT_MET, evidence, "the bone reaches the edge of the field of view"
        )
    if end_probabilities is not None:
        probs = [float(p) for p in end_probabilities]
        evidence["end_probabilities"] = probs
        if min(probs) <= thresholds.visible_lo:
            return CriterionResult(key, Verdict.NOT_MET, evidence, "an end is not clearly visible")
        if min(probs) < thresholds.visible_hi:
            return _na(key, "end visibility uncertain", **evidence)
    return CriterionResult(key, Verdict.MET, evidence, "both ends inside the field of view")


MIN_ANGLE_ELONGATION = 4.0
"""Below this length/width ratio (a stub at the sector edge) a segment's direction is noise."""


def femur_angle(
    key: str,
    femur: FemurMeasurement | None,
    *,
    truncated: bool = False,
    thresholds: Thresholds = DEFAULT,
) -> CriterionResult:
    """Femur "angle < 45° to the horizontal" from the FL end points.

    Not assessable on a stub: a segment shorter than ``MIN_ANGLE_ELONGATION`` × its width, or —
    when the field-of-view edge cuts the bone (``truncated``), whose oblique cut skews a short
    segment's axis — shorter than twice that.
    """
    if femur is None:
        return _na(key, "femur not measured")
    needed = MIN_ANGLE_ELONGATION * (2.0 if truncated else 1.0)
    if femur.elongation < needed:
        return _na(
            key,
            f"visible segment too short for an angle (length {femur.elongation:.1f} x width)",
            elongation=femur.elongation,
        )
    angle = femur.angle_deg
    met = angle < thresholds.femur_angle_deg
    return CriterionResult(
        key,
        Verdict.MET if met else Verdict.NOT_MET,
        {"angle_deg": angle, "limit_deg": thresholds.femur_angle_deg},
        f"femur at {angle:.1f}° to the horizontal",
    )
