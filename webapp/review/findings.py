"""The AI findings of an exam, read from webapp.analysis into one plain shape for the review page.

The review app judges findings but never writes them. This module is the only place that reads
the analysis models' fields; everything else in review works on ``AIFinding`` values. Only the
newest finished analysis run of an exam is shown (older runs keep their findings).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from typing import Any

from webapp.analysis.models import (
    AnalysisRun,
    BestFrameFinding,
    DerivedFinding,
    MeasurementFinding,
    QualityFinding,
    RunStatus,
    SegmentationFinding,
)
from webapp.exams.models import Study

# Measurements a physician decides on with geometry; CI is a ratio of BPD and OFD and follows them.
GEOMETRIC_KINDS = ("HC", "BPD", "OFD", "AC", "FL", "APAD", "TAD")


@dataclass
class AIFinding:
    """One AI proposal. ``frame_number`` is 1-based (DICOMweb); geometry in image px."""

    type: str  # FindingType value
    id: int
    label: str = ""  # view key, measurement kind, quality criterion key, structure
    display: str = ""
    instance_id: int | None = None
    sop_instance_uid: str = ""
    frame_number: int | None = None
    confidence: float | None = None
    flag: str = (
        ""  # planes: optimal / sub_optimal / absent; quality: met / not_met / not_assessable
    )
    geometry_px: dict[str, Any] | None = None
    geometry_mm: dict[str, Any] | None = None
    value_px: float | None = None
    value_mm: float | None = None
    calibration: dict[str, Any] | None = None
    convention: str = ""
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def snapshot(self) -> dict[str, Any]:
        """What a decision row keeps of the proposal it judged."""
        keep = (
            "label",
            "flag",
            "confidence",
            "geometry_px",
            "geometry_mm",
            "value_px",
            "value_mm",
            "calibration",
            "convention",
            "model",
            "frame_number",
            "sop_instance_uid",
        )
        return {k: v for k, v in self.as_dict().items() if k in keep}


def latest_run(study: Study) -> AnalysisRun | None:
    """The newest finished run, else the newest run of any status (for progress), else None."""
    runs = AnalysisRun.objects.filter(study=study).order_by("-queued_at", "-id")
    return runs.filter(status=RunStatus.DONE).first() or runs.first()


def _model_label(row: Any) -> str:
    mv = row.model_version
    return "" if mv is None else f"{mv.name} {mv.version}"


def _sop(row: Any) -> str:
    return row.instance.sop_instance_uid if row.instance_id else ""


def ai_findings(study: Study, *, types: tuple[str, ...] | None = None) -> list[AIFinding]:
    """Every AI finding of ``study``'s newest finished run, as AIFinding values (read-only)."""
    run = latest_run(study)
    if run is None or run.status != RunStatus.DONE:
        return []
    out: list[AIFinding] = []
    want = set(types or ("plane", "measurement", "quality", "segmentation"))
    if "plane" in want:
        for r in BestFrameFinding.objects.filter(run=run).select_related(
            "instance", "model_version"
        ):
            out.append(
                AIFinding(
                    type="plane",
                    id=r.pk,
                    label=r.view_key,
                    instance_id=r.instance_id,
                    sop_instance_uid=_sop(r),
                    frame_number=r.frame_number,
                    confidence=r.score,
                    flag=r.flag,
                    model=_model_label(r),
                    extra={"evidence": r.evidence},
                )
            )
    if "measurement" in want:
        rows = MeasurementFinding.objects.filter(run=run, kind__in=GEOMETRIC_KINDS)
        for r in rows.select_related("instance", "model_version", "calibration_region"):
            calibration = None
            if r.value_mm is not None:
                calibration = {
                    "source": r.calibration_source,
                    "region_index": r.calibration_region.index if r.calibration_region else None,
                    "mm_per_px": [r.mm_per_pixel_x, r.mm_per_pixel_y],
                }
            out.append(
                AIFinding(
                    type="measurement",
                    id=r.pk,
                    label=r.kind,
                    display=r.get_kind_display(),
                    instance_id=r.instance_id,
                    sop_instance_uid=_sop(r),
                    frame_number=r.frame_number,
                    confidence=r.confidence,
                    geometry_px=r.geometry_px,
                    geometry_mm=r.geometry_mm,
                    value_px=r.value_px,
                    value_mm=r.value_mm,
                    calibration=calibration,
                    convention=r.convention,
                    model=_model_label(r),
                    extra={"view": r.view_key, "method": r.method},
                )
            )
    if "quality" in want:
        rows = QualityFinding.objects.filter(run=run).select_related("instance", "model_version")
        for r in rows:
            out.append(
                AIFinding(
                    type="quality",
                    id=r.pk,
                    label=r.criterion_key,
                    display=r.rationale,
                    instance_id=r.instance_id,
                    sop_instance_uid=_sop(r),
                    frame_number=r.frame_number,
                    flag=r.verdict,
                    model=_model_label(r),
                    extra={"view": r.view_key, "rubric": r.rubric_plane, "points": r.points},
                )
            )
    if "segmentation" in want:
        rows = SegmentationFinding.objects.filter(run=run).select_related(
            "instance", "model_version"
        )
        for r in rows:
            out.append(
                AIFinding(
                    type="segmentation",
                    id=r.pk,
                    label=r.structure,
                    instance_id=r.instance_id,
                    sop_instance_uid=_sop(r),
                    frame_number=r.frame_number,
                    model=_model_label(r),
                    extra={"area_px": r.area_px},
                )
            )
    return out


def find(study: Study, type_: str, finding_id: int) -> AIFinding | None:
    """The AI finding ``(type_, finding_id)`` if it belongs to ``study``'s newest finished run."""
    for finding in ai_findings(study, types=(type_,)):
        if finding.id == finding_id:
            return finding
    return None


def derived_findings(study: Study) -> list[dict[str, Any]]:
    """The AI's own GA / EFW / centiles (shown beside the values recomputed from decisions)."""
    run = latest_run(study)
    if run is None or run.status != RunStatus.DONE:
        return []
    return [
        {
            "kind": d.kind,
            "formula_key": d.formula_key,
            "value": d.value,
            "unit": d.unit,
            "inputs": d.inputs,
            "name": d.formula.get("name", d.formula_key),
            "flags": d.flags,
            "display": d.display,
        }
        for d in DerivedFinding.objects.filter(run=run)
    ]


def contour_of(segmentation_id: int, *, max_points: int = 200) -> list[list[float]]:
    """Outer contour (x, y px) of a stored 1-bit mask, for drawing only (never measured)."""
    import cv2
    import numpy as np
    from PIL import Image

    row = SegmentationFinding.objects.filter(pk=segmentation_id).only("mask_png").first()
    if row is None:
        return []
    mask = np.array(Image.open(io.BytesIO(bytes(row.mask_png))).convert("L")) > 0
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return []
    largest = max(contours, key=cv2.contourArea)[:, 0, :]
    step = max(1, len(largest) // max_points)
    return [[float(x), float(y)] for x, y in largest[::step]]
