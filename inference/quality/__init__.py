"""Scan-quality criteria per biometry plane (Salomon 2006): rubric as data, per-criterion verdicts
(met / not met / not assessable) with their evidence, and the plane score.

* rubric: :data:`inference.quality.rubric.RUBRICS` (head 6, abdomen 6, femur 4 points)
* evaluators: :mod:`inference.quality.criteria` (pure functions on model outputs)
* field of view from the image: :func:`inference.quality.fov.estimate_field_of_view`
* one call per frame: :func:`inference.quality.assess.assess_plane`
"""

from inference.quality.assess import PlaneEvidence, assess_plane
from inference.quality.criteria import Detection, Thresholds
from inference.quality.fov import estimate_field_of_view
from inference.quality.results import CriterionResult, PlaneQuality, Verdict, score_plane
from inference.quality.rubric import RUBRICS, Criterion, PlaneRubric, rubric_for

__all__ = [
    "RUBRICS",
    "Criterion",
    "CriterionResult",
    "Detection",
    "PlaneEvidence",
    "PlaneQuality",
    "PlaneRubric",
    "Thresholds",
    "Verdict",
    "assess_plane",
    "estimate_field_of_view",
    "rubric_for",
    "score_plane",
]
