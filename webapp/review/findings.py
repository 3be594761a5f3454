"""The AI findings of an exam, read from webapp.analysis into one plain shape for the review page.

The review app judges findings but never writes them. This module is the only place that knows
the analysis models' field names; everything else in review works on ``AIFinding`` values. When
the analysis app has not stored a kind of finding (or the app is not installed yet) the list is
simply empty.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from django.apps import apps
from django.db.models import Model

from webapp.exams.models import Study


@dataclass
class AIFinding:
    """One AI proposal. ``frame_number`` is 1-based (DICOMweb); geometry in image px."""

    type: str  # FindingType value
    id: int
    label: str = ""  # plane view key, measurement kind, quality criterion
    display: str = ""
    instance_id: int | None = None
    sop_instance_uid: str = ""
    frame_number: int | None = None
    confidence: float | None = None
    flag: str = ""  # planes: optimal / sub_optimal / absent; quality: met / not_met
    shape: str = ""
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


def _model(name: str) -> type[Model] | None:
    try:
        return apps.get_model("analysis", name)
    except LookupError:
        return None


def _field_names(model: type[Model]) -> set[str]:
    return {f.name for f in model._meta.get_fields()}


def _first(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if hasattr(obj, name):
            value = getattr(obj, name)
            if value is not None:
                return value
    return default


def _model_label(row: Any) -> str:
    mv = getattr(row, "model_version", None)
    if mv is None:
        return ""
    return f"{_first(mv, 'name', default='')} {_first(mv, 'version', default='')}".strip()


def _current_run_filter(model: type[Model], study: Study) -> dict[str, Any]:
    names = _field_names(model)
    if "run" in names:
        return {"run__study": study}
    if "analysis_run" in names:
        return {"analysis_run__study": study}
    return {"study": study}


def _latest_run_ids(study: Study) -> list[int] | None:
    """Ids of the newest finished analysis run (older runs keep their findings, unshown)."""
    run_model = _model("AnalysisRun")
    if run_model is None:
        return None
    runs = run_model.objects.filter(study=study).order_by("-id")
    names = _field_names(run_model)
    if "status" in names:
        done = runs.filter(status__in=("done", "succeeded", "complete", "completed", "finished"))
        if done.exists():
            runs = done
    run = runs.first()
    return [run.pk] if run is not None else []


def ai_findings(study: Study, *, types: tuple[str, ...] | None = None) -> list[AIFinding]:
    """Every AI finding of ``study``'s newest analysis run, as AIFinding values (read-only)."""
    out: list[AIFinding] = []
    run_ids = _latest_run_ids(study)
    for type_, model_name, convert in _SOURCES:
        if types is not None and type_ not in types:
            continue
        model = _model(model_name)
        if model is None:
            continue
        query = model.objects.filter(**_current_run_filter(model, study))
        names = _field_names(model)
        if run_ids is not None and ("run" in names or "analysis_run" in names):
            key = "run_id__in" if "run" in names else "analysis_run_id__in"
            query = query.filter(**{key: run_ids})
        related = [n for n in ("instance", "model_version", "frame") if n in names]
        if "frame" in names:
            related.append("frame__instance")
        query = query.select_related(*related)
        for row in query.order_by("pk"):
            finding = convert(row)
            if finding is not None:
                out.append(finding)
    return out


def find(study: Study, type_: str, finding_id: int) -> AIFinding | None:
    """The AI finding ``(type_, finding_id)`` if it belongs to ``study``'s newest run."""
    for finding in ai_findings(study, types=(type_,)):
        if finding.id == finding_id:
            return finding
    return None


def _where(row: Any) -> tuple[int | None, str, int | None]:
    frame = getattr(row, "frame", None)
    instance = getattr(row, "instance", None)
    number = _first(row, "frame_number", default=None)
    if frame is not None and hasattr(frame, "instance"):
        instance = instance or frame.instance
        number = number or frame.number
    if instance is None:
        return None, "", number
    return instance.pk, instance.sop_instance_uid, number


def _plane(row: Any) -> AIFinding:
    instance_id, sop, number = _where(row)
    return AIFinding(
        type="plane",
        id=row.pk,
        label=str(_first(row, "view_key", "plane", "view", "label", default="")),
        display=str(_first(row, "display_name", default="")),
        instance_id=instance_id,
        sop_instance_uid=sop,
        frame_number=number,
        confidence=_first(row, "confidence", "score", "probability"),
        flag=str(_first(row, "flag", "status", "quality_flag", default="")),
        model=_model_label(row),
    )


def _measurement(row: Any) -> AIFinding:
    instance_id, sop, number = _where(row)
    kind = str(_first(row, "kind", "measurement", "name", default="")).upper()
    shape = "ellipse" if kind in ("HC", "AC") else "length"
    return AIFinding(
        type="measurement",
        id=row.pk,
        label=kind,
        display=kind,
        instance_id=instance_id,
        sop_instance_uid=sop,
        frame_number=number,
        confidence=_first(row, "confidence"),
        shape=shape,
        geometry_px=_first(row, "geometry_px", "geometry"),
        geometry_mm=_first(row, "geometry_mm"),
        value_px=_first(row, "value_px"),
        value_mm=_first(row, "value_mm"),
        calibration=_calibration_of(row),
        convention=str(_first(row, "convention", default="")),
        model=_model_label(row),
    )


def _calibration_of(row: Any) -> dict[str, Any] | None:
    value = _first(row, "calibration", "calibration_region")
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    if hasattr(value, "index"):
        return {"source": "us_regions", "region_index": value.index}
    return {"source": str(value)}


def _quality(row: Any) -> AIFinding:
    instance_id, sop, number = _where(row)
    met = _first(row, "met", "passed", "value")
    return AIFinding(
        type="quality",
        id=row.pk,
        label=str(_first(row, "criterion", "name", "key", default="")),
        display=str(_first(row, "description", "display_name", default="")),
        instance_id=instance_id,
        sop_instance_uid=sop,
        frame_number=number,
        confidence=_first(row, "confidence", "score"),
        flag="" if met is None else ("met" if met else "not_met"),
        extra={"view": str(_first(row, "view_key", "plane", default=""))},
        model=_model_label(row),
    )


def _segmentation(row: Any) -> AIFinding:
    instance_id, sop, number = _where(row)
    return AIFinding(
        type="segmentation",
        id=row.pk,
        label=str(_first(row, "structure", "label", "kind", default="")),
        instance_id=instance_id,
        sop_instance_uid=sop,
        frame_number=number,
        confidence=_first(row, "confidence", "score"),
        extra={"contour": _first(row, "contour", "contour_px", "polygon", default=None)},
        model=_model_label(row),
    )


_SOURCES = (
    ("plane", "BestFrameFinding", _plane),
    ("measurement", "MeasurementFinding", _measurement),
    ("quality", "QualityFinding", _quality),
    ("segmentation", "SegmentationFinding", _segmentation),
)
