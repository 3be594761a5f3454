"""Fixtures for the reports tests: an analysed, reviewed phantom exam, and the Orthanc PACS.

``orthanc`` (the Orthanc PACS peer) is tests/conftest.py's session fixture. ``analysed_exam`` ingests a phantom biometry exam through the
real ingest service — head and abdomen single frames, the femur as frame 2 of a 3-frame cine —
and stores a finished analysis run the way ``webapp.analysis`` writes one: best frames, the
phantom's exact masks as segmentations, HC/BPD/OFD/AC/FL measurements whose mm values come from
the review app's calibration rule, quality criteria and a model version. (The shipped plane model
is trained on real images and not meant for phantoms, so the findings are the phantom's truth.)
``signed_exam`` then has an obstetrician accept every measurement, edit BPD and sign.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SHAPE = (360, 480)
_numbers = itertools.count(1)


@dataclass
class Phantom:
    head: Any
    abdomen: Any
    femur: Any


@pytest.fixture(scope="session")
def report_phantom() -> Phantom:
    from inference.phantom.generator import make_frame

    # A fetus of about 24 weeks by INTERGROWTH-21st (HC 222, AC 198, FL 44 mm), so the growth
    # charts and centiles of the report are plausible to look at.
    return Phantom(
        make_frame(
            "fetal_brain",
            brain_plane="trans_thalamic",
            seed=41,
            shape=SHAPE,
            hc_mm=222.0,
            cephalic_index=0.78,
        ),
        make_frame("fetal_abdomen", seed=42, shape=SHAPE, ac_mm=198.0),
        make_frame("fetal_femur", seed=43, shape=SHAPE, fl_mm=44.0),
    )


def _write(out: Path, p: Phantom, number: int) -> list[Path]:
    from inference.phantom.dicom import ExamIds, phantom_uid, write_us_image, write_us_multiframe

    seed = 9000 + number
    # The phantom dates an exam by its number; keep a realistic date whatever the number.
    ids = replace(ExamIds.for_exam(seed, number, "report test biometry"), study_date="20260315")
    series = phantom_uid(seed, number, "series")
    return [
        write_us_image(
            out / "IMG001.dcm",
            p.head.image,
            fov=p.head.fov,
            pixel_mm=p.head.pixel_mm,
            ids=ids,
            series_uid=series,
            sop_uid=phantom_uid(seed, number, "sop", 1),
            instance_number=1,
        ),
        write_us_image(
            out / "IMG002.dcm",
            p.abdomen.image,
            fov=p.abdomen.fov,
            pixel_mm=p.abdomen.pixel_mm,
            ids=ids,
            series_uid=series,
            sop_uid=phantom_uid(seed, number, "sop", 2),
            instance_number=2,
        ),
        write_us_multiframe(
            out / "CINE003.dcm",
            np.stack([p.femur.image] * 3),
            fov=p.femur.fov,
            pixel_mm=p.femur.pixel_mm,
            frame_time_ms=40.0,
            ids=ids,
            series_uid=series,
            sop_uid=phantom_uid(seed, number, "sop", 3),
            instance_number=3,
        ),
    ]


def _mask_png(mask: np.ndarray) -> bytes:
    from webapp.analysis.services import _mask_png

    return _mask_png(mask)


@pytest.fixture
def analysed_exam(
    db: None, report_phantom: Phantom, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Any]:
    """``analysed_exam(pacs_node=None)`` → a Study ready for review with a finished run."""
    from webapp.analysis.models import (
        AnalysisRun,
        BestFrameFinding,
        MeasurementFinding,
        ModelVersion,
        QualityFinding,
        RunStatus,
        SegmentationFinding,
    )
    from webapp.exams import services
    from webapp.exams.models import ExamStatus, Study
    from webapp.review.geometry import measure

    def factory(*, pacs_node: Any = None) -> Any:
        number = next(_numbers) + 100 * (abs(hash(str(tmp_path_factory.getbasetemp()))) % 10000)
        out = tmp_path_factory.mktemp("report-exam")
        study_id = None
        for path in _write(out, report_phantom, number):
            result = services.ingest_file(
                source=path, file_name=path.name, route="upload", queue=False
            )
            assert result.ok, result.reason
            study_id = result.study_id
        study = Study.objects.get(pk=study_id)
        study.pacs_node = pacs_node
        study.save(update_fields=["pacs_node"])
        for status in (ExamStatus.QUEUED, ExamStatus.ANALYSING, ExamStatus.READY_FOR_REVIEW):
            study.transition_to(status)
        head_i, abdomen_i, cine_i = study.series.get().instances.order_by("instance_number")
        model, _ = ModelVersion.objects.get_or_create(
            name="head-unet", version="test-phantom-truth", weights_sha256="0" * 64
        )
        run = AnalysisRun.objects.create(
            study=study, status=RunStatus.DONE, stage="done", frames_total=5, frames_done=5
        )
        for view, inst, frame in (
            ("head_trans_thalamic", head_i, 1),
            ("abdomen_ac", abdomen_i, 1),
            ("femur_fl", cine_i, 2),
        ):
            BestFrameFinding.objects.create(
                run=run,
                view_key=view,
                instance=inst,
                frame_number=frame,
                score=0.9,
                flag="optimal",
                model_version=model,
            )
        p = report_phantom
        e, a = p.head.landmarks["head"], p.abdomen.landmarks["abdomen"]
        specs = [
            (
                head_i,
                1,
                "head_trans_thalamic",
                "HC",
                {"type": "ellipse", "cx": e.cx, "cy": e.cy, "a": e.a, "b": e.b, "angle": e.angle},
                "outer skull border ellipse",
            ),
            (
                head_i,
                1,
                "head_trans_thalamic",
                "BPD",
                {
                    "type": "line",
                    "points": [list(map(float, x)) for x in p.head.landmarks["bpd_points"]],
                },
                "outer-to-outer",
            ),
            (
                head_i,
                1,
                "head_trans_thalamic",
                "OFD",
                {
                    "type": "line",
                    "points": [list(map(float, x)) for x in p.head.landmarks["ofd_points"]],
                },
                "outer-to-outer",
            ),
            (
                abdomen_i,
                1,
                "abdomen_ac",
                "AC",
                {"type": "ellipse", "cx": a.cx, "cy": a.cy, "a": a.a, "b": a.b, "angle": a.angle},
                "skin line ellipse",
            ),
            (
                cine_i,
                2,
                "femur_fl",
                "FL",
                {
                    "type": "line",
                    "points": [list(map(float, x)) for x in p.femur.landmarks["femur_points"]],
                },
                "",
            ),
        ]
        for inst, frame, view, kind, geometry, convention in specs:
            m = measure(instance=inst, frame_number=frame, kind=kind, geometry_px=geometry)
            assert m.value_mm is not None, m.px_only_reason
            MeasurementFinding.objects.create(
                run=run,
                instance=inst,
                frame_number=frame,
                view_key=view,
                kind=kind,
                geometry_px=m.geometry_px,
                geometry_mm=m.geometry_mm,
                value_px=m.value_px,
                value_mm=m.value_mm,
                calibration_source="us_regions",
                mm_per_pixel_x=m.calibration["mm_per_px"][0],
                mm_per_pixel_y=m.calibration["mm_per_px"][1],
                convention=convention,
                confidence=0.9,
                model_version=model,
            )
        for inst, frame, structure, mask in (
            (head_i, 1, "skull", p.head.masks["skull"]),
            (abdomen_i, 1, "abdomen", p.abdomen.masks["abdomen"]),
            (cine_i, 2, "femur", p.femur.masks["femur"]),
        ):
            SegmentationFinding.objects.create(
                run=run,
                instance=inst,
                frame_number=frame,
                structure=structure,
                mask_png=_mask_png(mask),
                rows=mask.shape[0],
                columns=mask.shape[1],
                area_px=int(mask.sum()),
                model_version=model,
            )
        for criterion, verdict in (
            ("symmetric", "met"),
            ("thalami_visible", "met"),
            ("cerebellum_not_visible", "not_met"),
        ):
            QualityFinding.objects.create(
                run=run,
                view_key="head_trans_thalamic",
                rubric_plane="head",
                criterion_key=criterion,
                verdict=verdict,
                instance=head_i,
                frame_number=1,
            )
        return study

    return factory


def decide_all(study: Any, user: Any, *, edit_bpd_by_px: float = 0.0) -> None:
    """Accept every AI measurement (BPD edited when ``edit_bpd_by_px``) and quality criterion."""
    from webapp.review import findings as ai
    from webapp.review import services as review

    for f in ai.ai_findings(study, types=("measurement", "quality")):
        current = review.latest_decisions(study).get((f.type, f.id))
        version = current.version if current else 0
        if f.type == "measurement" and f.label == "BPD" and edit_bpd_by_px:
            (x0, y0), (x1, y1) = f.geometry_px["points"]
            review.decide_finding(
                study=study,
                finding_type="measurement",
                finding_id=f.id,
                action="edited",
                version=version,
                user=user,
                geometry_px={"type": "line", "points": [[x0, y0], [x1 + edit_bpd_by_px, y1]]},
            )
        else:
            review.decide_finding(
                study=study,
                finding_type=f.type,
                finding_id=f.id,
                action="accepted",
                version=version,
                user=user,
            )


def sign(study: Any, user: Any) -> Any:
    from webapp.review import services as review

    digest = review.content_hash(review.exam_summary(study))
    return review.sign_exam(study=study, user=user, password="pw", expected_hash=digest)
