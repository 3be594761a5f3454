"""Judge one frame against its plane's Salomon 2006 rubric from what the models produced.

:class:`PlaneEvidence` gathers the model outputs for a frame (any of them may be missing — the
criteria that need a missing input come out ``not_assessable``); :func:`assess_plane` runs every
criterion of the rubric and scores the plane.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from inference.femur import FemurMeasurement, measure_femur
from inference.quality.criteria import (
    DEFAULT,
    Detection,
    EllipseLike,
    Point,
    Thresholds,
    calipers_on_boundary,
    femur_angle,
    femur_calipers,
    femur_ends_visible,
    femur_fills_image,
    midline_symmetry,
    paired_symmetry,
    structure_fills_image,
    structure_visible,
    touches_fov_edge,
)
from inference.quality.fov import estimate_field_of_view
from inference.quality.results import CriterionResult, PlaneQuality, Verdict, score_plane
from inference.quality.rubric import Criterion, rubric_for

__all__ = ["PlaneEvidence", "assess_plane"]


@dataclass(frozen=True)
class PlaneEvidence:
    """Model outputs for one frame (px; masks (H, W) bool).

    structure_mask: the plane's main structure — filled head to the outer skull border, filled
        abdomen to the skin line, or the femur's ossified diaphysis.
    ellipse: the HC / AC caliper ellipse being judged (AI or a sonographer's).
    femur_calipers: the two FL caliper points being judged.
    femur: FL geometry of the segmented diaphysis; computed from ``structure_mask`` when None.
    fov: ultrasound field of view; estimated from ``image`` when None (and ``image`` given).
    detections: structure name → probability (or :class:`Detection`) from a detector, for
        thalami, cavum_septi_pellucidi, cerebellum, stomach, umbilical_vein, kidneys.
    masks: extra anatomical masks used for symmetry: thalami (head), ribs and spine (abdomen).
    midline: two points on the midline echo (head symmetry).
    femur_end_probabilities: an end detector's visibility probabilities for the two ends.
    """

    image: NDArray | None = None
    fov: NDArray | None = None
    structure_mask: NDArray | None = None
    ellipse: EllipseLike | None = None
    femur_calipers: tuple[Point, Point] | None = None
    femur: FemurMeasurement | None = None
    detections: Mapping[str, Detection | float | None] = field(default_factory=dict)
    masks: Mapping[str, NDArray] = field(default_factory=dict)
    midline: tuple[Point, Point] | None = None
    femur_end_probabilities: tuple[float, float] | None = None


def _fov(evidence: PlaneEvidence) -> tuple[NDArray | None, str]:
    if evidence.fov is not None:
        return np.asarray(evidence.fov) > 0, "given"
    if evidence.image is not None:
        try:
            return estimate_field_of_view(evidence.image), "estimated from the image"
        except ValueError:
            return None, "none"
    return None, "none"


def _centroid(mask: NDArray | None) -> Point | None:
    if mask is None:
        return None
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return float(xs.mean()), float(ys.mean())


def _femur(evidence: PlaneEvidence) -> tuple[FemurMeasurement | None, str | None]:
    if evidence.femur is not None:
        return evidence.femur, None
    if evidence.structure_mask is None:
        return None, "femur not segmented"
    try:
        return measure_femur(evidence.structure_mask), None
    except ValueError as exc:
        return None, str(exc)


def assess_plane(
    plane: str, evidence: PlaneEvidence, *, thresholds: Thresholds = DEFAULT
) -> PlaneQuality:
    """Every criterion of ``plane``'s rubric (``"head"``, ``"abdomen"``, ``"femur"`` or a taxonomy
    key) judged from ``evidence``, and the score (points met / points assessable)."""
    rubric = rubric_for(plane)
    fov, fov_source = _fov(evidence)
    femur, femur_problem = (None, None)
    truncated = False  # the femur cut by the field-of-view edge
    if rubric.plane == "femur":
        femur, femur_problem = _femur(evidence)
        truncated = (
            fov is not None
            and evidence.structure_mask is not None
            and touches_fov_edge(evidence.structure_mask, fov, within_px=thresholds.edge_margin_px)
            > 0
        )
    results: list[CriterionResult] = []
    for crit in rubric.criteria:
        result = _judge(rubric.plane, crit, evidence, fov, fov_source, femur, truncated, thresholds)
        if femur_problem and result.verdict is Verdict.NOT_ASSESSABLE:
            result = CriterionResult(
                result.key, result.verdict, result.evidence, f"{result.rationale}: {femur_problem}"
            )
        results.append(result)
    return score_plane(rubric, results)


def _judge(
    plane: str,
    crit: Criterion,
    ev: PlaneEvidence,
    fov: NDArray | None,
    fov_source: str,
    femur: FemurMeasurement | None,
    truncated: bool,
    t: Thresholds,
) -> CriterionResult:
    key = crit.key
    if crit.kind in {"visible", "not_visible"}:
        assert crit.structure is not None
        return structure_visible(
            key,
            crit.structure,
            ev.detections.get(crit.structure),
            expect_visible=crit.kind == "visible",
            thresholds=t,
        )
    if crit.kind == "symmetry":
        if (
            fov is not None
            and ev.structure_mask is not None
            and touches_fov_edge(ev.structure_mask, fov, within_px=t.edge_margin_px) > 0
        ):
            return CriterionResult(
                key,
                Verdict.NOT_ASSESSABLE,
                {"fov_source": fov_source},
                "section cut by the field-of-view edge: one side of a pair may be hidden",
            )
        if plane == "head":
            if ev.midline is not None:
                return midline_symmetry(key, ev.ellipse, ev.midline, thresholds=t)
            return paired_symmetry(
                key, ev.ellipse, ev.masks.get("thalami"), structure="thalami", thresholds=t
            )
        spine = _centroid(ev.masks.get("spine"))
        if spine is None:
            return CriterionResult(
                key, Verdict.NOT_ASSESSABLE, {}, "no spine located: the section's axis is unknown"
            )
        return paired_symmetry(
            key, ev.ellipse, ev.masks.get("ribs"), structure="ribs", axis_point=spine, thresholds=t
        )
    if crit.kind == "fills_image":
        if plane == "femur":
            return femur_fills_image(
                key, femur, fov, truncated=truncated, fov_source=fov_source, thresholds=t
            )
        return structure_fills_image(
            key, ev.structure_mask, fov, fov_source=fov_source, thresholds=t
        )
    if crit.kind == "calipers":
        if plane == "femur":
            return femur_calipers(key, ev.femur_calipers, femur, thresholds=t)
        boundary = "outer skull border" if plane == "head" else "skin line"
        return calipers_on_boundary(
            key, ev.ellipse, ev.structure_mask, boundary=boundary, fov=fov, thresholds=t
        )
    if crit.kind == "ends_visible":
        return femur_ends_visible(
            key,
            ev.structure_mask,
            femur,
            fov,
            end_probabilities=ev.femur_end_probabilities,
            fov_source=fov_source,
            thresholds=t,
        )
    if crit.kind == "angle":
        return femur_angle(key, femur, truncated=truncated, thresholds=t)
    raise ValueError(f"{key}: no evaluator for criterion kind {crit.kind!r}")
