"""Browser tests of the review page: Django's live server, real headless Chromium (Debian's),
exams ingested through the exams ingest service and analysed by the REAL analysis pipeline
(in-process: ``request_analysis(dispatch=False)`` + ``run_inline``, the same services the Celery
tasks call).

Screenshots of the main screens go to artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from review_e2e_support import PLANES

# Django's async-unsafe guard trips on the live server thread's ORM use under Playwright's loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser(chromium_browser: Any) -> Any:
    """The suite's module-scoped Chromium (tests/conftest.py): a session-scoped Playwright would
    keep its asyncio loop alive and break every later browser or database test module."""
    return chromium_browser


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    pg = context.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda exc: pg.errors.append(f"{exc} {getattr(exc, 'stack', '')}"))
    yield pg
    context.close()


@pytest.fixture
def pipeline_exam(transactional_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A phantom biometry exam (head, abdomen, femur; US regions in cm) ingested through the
    exams ingest service and analysed by the real pipeline with the shipped weights."""
    from inference.phantom.dicom import ExamIds, phantom_uid, write_us_image
    from inference.phantom.generator import make_frame
    from webapp.analysis import runtime
    from webapp.analysis import services as analysis
    from webapp.exams import services as exams
    from webapp.exams.models import Study

    # The shipped models, whatever the environment says.
    monkeypatch.delenv("SONOREVIEW_PLANES_WEIGHTS", raising=False)
    monkeypatch.delenv("SONOREVIEW_HEAD_WEIGHTS", raising=False)
    missing = [str(p) for p in runtime.weights_paths().values() if not p.exists()]
    if missing:
        pytest.skip(f"the pipeline's weights are not there: {', '.join(missing)}")
    ids = ExamIds.for_exam(9090, 1, "e2e biometry")
    series_uid = phantom_uid(9090, 1, "series", 1)
    study_id = None
    for i, (plane, sub) in enumerate(PLANES, start=1):
        f = make_frame(plane, brain_plane=sub, seed=9090 + i, shape=(360, 480))
        path = write_us_image(
            tmp_path / f"IMG{i:03d}.dcm", f.image, fov=f.fov, pixel_mm=f.pixel_mm, ids=ids,
            series_uid=series_uid, sop_uid=phantom_uid(9090, 1, "sop", i), instance_number=i,
        )  # fmt: skip
        result = exams.ingest_file(source=path, file_name=path.name, route="upload", queue=False)
        assert result.ok, result.reason
        study_id = result.study_id
    run = analysis.request_analysis(study_id=study_id, trigger="command", dispatch=False)
    assert run is not None
    run = analysis.run_inline(run_id=run.pk)
    assert run.status == "done", run.error
    return Study.objects.get(pk=study_id)


@pytest.fixture
def doctor(transactional_db: None) -> Any:
    from webapp.accounts.models import User

    user = User(username="dr_e2e", role="obstetrician", first_name="Ada", last_name="Obst")
    user.set_password("e2e-pass")
    user.save()
    return user


@pytest.fixture
def truth_exam(transactional_db: None, tmp_path: Path) -> Any:
    """A phantom biometry exam whose analysis run holds the phantom's known truth as AI findings
    (HC/BPD/OFD on the head frame, FL on the femur frame), written as the analysis app stores
    them — so the review UI is exercised on AI measurements whatever the shipped models find."""
    from inference.phantom.dicom import ExamIds, phantom_uid, write_us_image
    from inference.phantom.generator import make_frame
    from webapp.analysis.models import (
        AnalysisRun,
        BestFrameFinding,
        MeasurementFinding,
        QualityFinding,
    )
    from webapp.exams import services as exams
    from webapp.exams.models import ExamStatus, Instance, Study
    from webapp.review.geometry import measure

    ids = ExamIds.for_exam(9191, 2, "e2e truth biometry")
    series_uid = phantom_uid(9191, 2, "series", 1)
    frames, study_id = [], None
    for i, (plane, sub) in enumerate(PLANES, start=1):
        f = make_frame(plane, brain_plane=sub, seed=9191 + i, shape=(360, 480))
        frames.append(f)
        path = write_us_image(
            tmp_path / f"IMG{i:03d}.dcm", f.image, fov=f.fov, pixel_mm=f.pixel_mm, ids=ids,
            series_uid=series_uid, sop_uid=phantom_uid(9191, 2, "sop", i), instance_number=i,
        )  # fmt: skip
        result = exams.ingest_file(source=path, file_name=path.name, route="upload", queue=False)
        assert result.ok, result.reason
        study_id = result.study_id
    study = Study.objects.get(pk=study_id)
    for status in (ExamStatus.QUEUED, ExamStatus.ANALYSING, ExamStatus.READY_FOR_REVIEW):
        study.transition_to(status)
    instances = list(Instance.objects.filter(series__study=study).order_by("instance_number"))
    run = AnalysisRun.objects.create(
        study=study, status="done", stage="done", frames_total=3, frames_done=3
    )
    for view, inst in zip(
        ("head_trans_thalamic", "abdomen_ac", "femur_fl"), instances, strict=True
    ):
        BestFrameFinding.objects.create(
            run=run, view_key=view, instance=inst, frame_number=1, score=0.9, flag="optimal"
        )
    head, femur = frames[0].landmarks, frames[2].landmarks
    e = head["head"]
    specs = [
        (instances[0], "HC", {"type": "ellipse", "cx": e.cx, "cy": e.cy, "a": e.a, "b": e.b, "angle": e.angle}),
        (instances[0], "BPD", {"type": "line", "points": [list(p) for p in head["bpd_points"]]}),
        (instances[0], "OFD", {"type": "line", "points": [list(p) for p in head["ofd_points"]]}),
        (instances[2], "FL", {"type": "line", "points": [list(p) for p in femur["femur_points"]]}),
    ]  # fmt: skip
    for inst, kind, geometry in specs:
        m = measure(instance=inst, frame_number=1, kind=kind, geometry_px=geometry)
        MeasurementFinding.objects.create(
            run=run, instance=inst, frame_number=1, kind=kind, geometry_px=m.geometry_px,
            geometry_mm=m.geometry_mm, value_px=m.value_px, value_mm=m.value_mm,
            calibration_source="us_regions", confidence=0.9,
        )  # fmt: skip
    QualityFinding.objects.create(
        run=run, view_key="head_trans_thalamic", rubric_plane="head", criterion_key="head.symmetric",
        verdict="met", instance=instances[0], frame_number=1,
    )  # fmt: skip
    return study
