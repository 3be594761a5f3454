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
