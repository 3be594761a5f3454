"""Helpers of the teaching tests: exams built from rows (no files, no model inference).

``build_exam(sonographer=..., verdicts=...)`` → a Study with three instances (head, abdomen,
femur), a finished analysis run with a best frame per biometry view and one QualityFinding per
Salomon criterion (default: every criterion ``met`` except the head's cavum septi pellucidi,
``not_assessable``), as the analysis app stores them. ``answers_for`` fills a grade's answers.
"""

from __future__ import annotations

import itertools
from typing import Any

_n = itertools.count(1)

VIEWS = (("head", "head_trans_thalamic"), ("abdomen", "abdomen_ac"), ("femur", "femur_fl"))


def default_verdicts() -> dict[str, str]:
    from inference.quality.rubric import RUBRICS

    out = {c.key: "met" for r in RUBRICS.values() for c in r.criteria}
    out["head.cavum_septi_pellucidi_visible"] = "not_assessable"
    return out


def build_exam(*, sonographer: Any, verdicts: dict[str, str] | None = None, date=None) -> Any:
    from inference.quality.rubric import RUBRICS
    from webapp.analysis.models import AnalysisRun, BestFrameFinding, QualityFinding
    from webapp.exams.models import Instance, Patient, Series, Study

    n = next(_n)
    verdicts = default_verdicts() if verdicts is None else verdicts
    patient = Patient.objects.create(patient_id=f"TEACH{n:05d}", name=f"TRAINEE^EXAM{n}")
    study = Study.objects.create(
        study_instance_uid=f"1.2.826.0.1.3680043.9.7777.{n}",
        patient=patient,
        sonographer=sonographer,
        source="upload",
        description="teaching test biometry",
        study_date=date,
    )
    series = Series.objects.create(
        series_instance_uid=f"1.2.826.0.1.3680043.9.7777.{n}.1", study=study, modality="US"
    )
    run = AnalysisRun.objects.create(study=study, status="done", stage="done", protocol="biometry")
    for i, (plane, view) in enumerate(VIEWS, start=1):
        inst = Instance.objects.create(
            sop_instance_uid=f"1.2.826.0.1.3680043.9.7777.{n}.1.{i}",
            series=series,
            sop_class_uid="1.2.840.10008.5.1.4.1.1.6.1",
            transfer_syntax_uid="1.2.840.10008.1.2.1",
            rows=360,
            columns=480,
            photometric_interpretation="MONOCHROME2",
            bits_allocated=8,
            bits_stored=8,
            file=f"teaching/{n}/{i}.dcm",
            size_bytes=1,
            pixel_data_offset=0,
            instance_number=i,
        )
        BestFrameFinding.objects.create(
            run=run, view_key=view, instance=inst, frame_number=1, score=0.9, flag="optimal"
        )
        for c in RUBRICS[plane].criteria:
            v = verdicts.get(c.key, "met")
            QualityFinding.objects.create(
                run=run,
                view_key=view,
                rubric_plane=plane,
                criterion_key=c.key,
                verdict=v,
                evidence={"fill_fraction": 0.41} if c.kind == "fills_image" else {},
                rationale=(
                    "occupies 41% of the field of view (> 30%)" if c.kind == "fills_image" else ""
                ),
                instance=inst,
                frame_number=1,
            )
    return study


def answers_for(study: Any, *, verdict: str | None = None, **overrides: str) -> dict[str, str]:
    """Every criterion of the exam's rubric answered: the AI's met / not met (or ``verdict``),
    ``not_applicable`` where the AI could not judge; ``overrides`` by key with ``__`` for ``.``."""
    from webapp.teaching import services

    out = {}
    for plane in services.prefill_grade(study=study, rubric=services.exam_rubric(study)):
        for i in plane.criteria:
            out[i.criterion.key] = verdict or i.proposed or "not_applicable"
    for k, v in overrides.items():
        out[k.replace("__", ".")] = v
    return out
