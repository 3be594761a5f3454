"""Fixtures for the review tests: phantom exams ingested through the exams ingest service.

``phantom_dir`` (session) writes a biometry exam (head, abdomen, femur single frames, US regions
in cm) with the project's phantom writer; ``make_exam`` ingests those files as a new exam (new
UIDs each time, so tests do not share rows) and moves it to ``ready_for_review`` the way the
pipeline would.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SINGLE_SHAPE = (360, 480)
PLANES = (("fetal_brain", "trans_thalamic"), ("fetal_abdomen", None), ("fetal_femur", None))
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def phantom_frames() -> list[Any]:
    from inference.phantom.generator import make_frame

    return [
        make_frame(plane, brain_plane=sub, seed=700 + i, shape=SINGLE_SHAPE)
        for i, (plane, sub) in enumerate(PLANES, start=1)
    ]


def write_exam(out: Path, frames: list[Any], number: int) -> list[Path]:
    from inference.phantom.dicom import ExamIds, phantom_uid, write_us_image

    ids = ExamIds.for_exam(4242, number, "review test biometry")
    series_uid = phantom_uid(4242, number, "series", 1)
    paths = []
    for i, f in enumerate(frames, start=1):
        paths.append(
            write_us_image(
                out / f"exam{number}" / f"IMG{i:03d}.dcm",
                f.image,
                fov=f.fov,
                pixel_mm=f.pixel_mm,
                ids=ids,
                series_uid=series_uid,
                sop_uid=phantom_uid(4242, number, "sop", i),
                instance_number=i,
            )
        )
    return paths


def ready_for_review(study: Any) -> None:
    from webapp.exams.models import ExamStatus

    for status in (ExamStatus.QUEUED, ExamStatus.ANALYSING, ExamStatus.READY_FOR_REVIEW):
        study.transition_to(status)


@pytest.fixture
def make_exam(
    db: None, phantom_frames: list[Any], tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Any]:
    """``make_exam(sonographer=user, ready=True)`` → an ingested Study (phantom biometry)."""
    from webapp.exams import services
    from webapp.exams.models import Study

    def factory(*, sonographer: Any = None, ready: bool = True) -> Any:
        number = next(_counter) + 1000 * (hash(tmp_path_factory.getbasetemp()) % 1000)
        out = tmp_path_factory.mktemp("review-exam")
        study_id = None
        for path in write_exam(out, phantom_frames, number):
            result = services.ingest_file(
                source=path, file_name=path.name, route="upload", queue=False
            )
            assert result.ok, result.reason
            study_id = result.study_id
        study = Study.objects.get(pk=study_id)
        if sonographer is not None:
            study.sonographer = sonographer
            study.save(update_fields=["sonographer"])
        if ready:
            ready_for_review(study)
        return study

    return factory


@pytest.fixture
def analysed_exam(make_exam: Callable[..., Any], phantom_frames: list[Any]) -> Callable[..., Any]:
    """``analysed_exam(sonographer=...)`` → an exam with a finished analysis run whose findings
    are the phantom's known truth (best frames, HC/BPD/OFD/FL, two quality criteria), written as
    the analysis app stores them. Unit tests of the review app use it; the browser tests use the
    real pipeline instead."""
    from webapp.analysis.models import (
        AnalysisRun,
        BestFrameFinding,
        MeasurementFinding,
        QualityFinding,
        RunStatus,
    )
    from webapp.review.geometry import measure

    def factory(**kwargs: Any) -> Any:
        study = make_exam(**kwargs)
        instances = list(
            study.series.first()
            .instances.order_by("instance_number")
            .prefetch_related("us_regions")
        )
        run = AnalysisRun.objects.create(
            study=study,
            status=RunStatus.DONE,
            stage="done",
            protocol="biometry",
            frames_total=3,
            frames_done=3,
        )
        for view, inst, flag in zip(
            ("head_trans_thalamic", "abdomen_ac", "femur_fl"),
            instances,
            ("optimal", "sub_optimal", "optimal"),
            strict=True,
        ):
            BestFrameFinding.objects.create(
                run=run, view_key=view, instance=inst, frame_number=1, score=0.9, flag=flag
            )
        head, femur = phantom_frames[0].landmarks, phantom_frames[2].landmarks
        e = head["head"]
        specs = [
            (
                instances[0],
                "HC",
                {"type": "ellipse", "cx": e.cx, "cy": e.cy, "a": e.a, "b": e.b, "angle": e.angle},
            ),
            (
                instances[0],
                "BPD",
                {"type": "line", "points": [list(p) for p in head["bpd_points"]]},
            ),
            (
                instances[0],
                "OFD",
                {"type": "line", "points": [list(p) for p in head["ofd_points"]]},
            ),
            (
                instances[2],
                "FL",
                {"type": "line", "points": [list(p) for p in femur["femur_points"]]},
            ),
        ]
        for inst, kind, geometry in specs:
            m = measure(instance=inst, frame_number=1, kind=kind, geometry_px=geometry)
            MeasurementFinding.objects.create(
                run=run,
                instance=inst,
                frame_number=1,
                kind=kind,
                geometry_px=m.geometry_px,
                geometry_mm=m.geometry_mm,
                value_px=m.value_px,
                value_mm=m.value_mm,
                calibration_source="us_regions" if m.calibration else "",
                mm_per_pixel_x=m.calibration["mm_per_px"][0] if m.calibration else None,
                mm_per_pixel_y=m.calibration["mm_per_px"][1] if m.calibration else None,
                convention="outer-to-outer" if kind == "BPD" else "",
                confidence=0.8,
            )
        QualityFinding.objects.create(
            run=run,
            view_key="head_trans_thalamic",
            rubric_plane="head",
            criterion_key="head_symmetric",
            verdict="met",
            instance=instances[0],
            frame_number=1,
        )
        QualityFinding.objects.create(
            run=run,
            view_key="head_trans_thalamic",
            rubric_plane="head",
            criterion_key="cerebellum_not_visible",
            verdict="not_met",
            instance=instances[0],
            frame_number=1,
        )
        return study

    return factory
