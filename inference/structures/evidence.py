"""From a :class:`StructurePrediction` to measurements (AC / APAD / TAD, FL) and quality evidence.

Shared by the pipeline and the evaluation command, so that what is evaluated is what ships.
Coordinates: px of the original frame, (x, y) = (column, row).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from numpy.typing import NDArray

from inference.abdomen import AbdomenMeasurement, measure_abdomen
from inference.femur import FemurMeasurement, measure_femur
from inference.quality.assess import PlaneEvidence
from inference.quality.criteria import Detection
from inference.structures.predict import StructurePrediction

#: Detector outputs each rubric reads (structure names as in the rubric).
DETECTED = {
    "head": ("thalami", "cavum_septi_pellucidi", "cerebellum"),
    "abdomen": ("stomach", "umbilical_vein", "kidneys"),
}


def abdomen_measurement(
    pred: StructurePrediction, *, fov: NDArray | None = None, pixel_size_mm: float | None = None
) -> AbdomenMeasurement:
    """AC ellipse (skin line) and APAD / TAD (spine centroid gives the antero-posterior axis).

    ValueError with the reason when no abdomen was segmented or its outline does not fit.
    """
    mask = pred.mask("abdomen")
    if mask is None:
        raise ValueError("no abdomen segmented on this frame")
    return measure_abdomen(mask, pixel_size_mm, fov=fov, spine_xy=pred.centroid("spine"))


def femur_measurement(
    pred: StructurePrediction, *, pixel_size_mm: float | None = None
) -> FemurMeasurement:
    """FL end points, length and angle from the segmented diaphysis (ValueError: none found):
    the femur second look's line when there is one, else the femur mask measured."""
    if pred.femur_line is not None:
        if pixel_size_mm is not None and not (math.isfinite(pixel_size_mm) and pixel_size_mm > 0):
            raise ValueError(f"pixel_size_mm must be positive and finite, got {pixel_size_mm!r}")
        line = pred.femur_line
        mm = None if pixel_size_mm is None else line.length_px * pixel_size_mm
        return replace(line, length_mm=mm, pixel_size_mm=pixel_size_mm)
    mask = pred.mask("femur")
    if mask is None:
        raise ValueError("no femoral diaphysis segmented on this frame")
    return measure_femur(mask, pixel_size_mm)


def detections(pred: StructurePrediction, plane: str) -> dict[str, Detection]:
    """Detector outputs (probability and region) for the rubric's visible / not-visible criteria."""
    return {
        name: Detection(pred.probability[name], pred.mask(name)) for name in DETECTED.get(plane, ())
    }


def plane_evidence(
    plane: str,
    pred: StructurePrediction | None,
    *,
    image: NDArray | None,
    fov: NDArray | None = None,
    head_mask: NDArray | None = None,
    head_ellipse: Any = None,
    abdomen: AbdomenMeasurement | None = None,
    femur: FemurMeasurement | None = None,
) -> PlaneEvidence:
    """Quality evidence for ``plane`` ("head", "abdomen", "femur") on one frame.

    Head: the head model's filled skull and ellipse (``head_mask``, ``head_ellipse``) plus the
    thalami / CSP / cerebellum detections and the thalami pair for symmetry. Abdomen: the segmented
    abdomen and its AC ellipse, stomach / umbilical vein / kidney detections, ribs and spine for
    symmetry. Femur: the segmented diaphysis and the AI's own FL calipers. What is missing stays
    missing (the criteria needing it are not assessable).
    """
    ev: dict[str, Any] = {"image": image, "fov": fov}
    if plane == "head":
        ev["structure_mask"] = head_mask
        ev["ellipse"] = head_ellipse
        if pred is not None:
            ev["detections"] = detections(pred, "head")
            thal = pred.mask("thalami")
            if thal is not None:
                ev["masks"] = {"thalami": thal}
    elif plane == "abdomen":
        if pred is not None:
            ev["structure_mask"] = pred.mask("abdomen")
            ev["detections"] = detections(pred, "abdomen")
            ev["masks"] = {k: m for k in ("ribs", "spine") if (m := pred.mask(k)) is not None}
        if abdomen is not None:
            ev["ellipse"] = abdomen.ellipse
    elif plane == "femur":
        if pred is not None:
            ev["structure_mask"] = pred.mask("femur")
        if femur is not None:
            ev["femur"] = femur
            ev["femur_calipers"] = femur.end_points
    else:
        raise ValueError(f"no quality evidence for plane {plane!r}; expected head, abdomen, femur")
    return PlaneEvidence(**ev)
