"""A phantom biometry exam written as DICOM and the report content built from its known truth.

Head (HC ellipse, BPD and OFD lengths) and abdomen (AC ellipse) are single-frame US images; the
femur is frame 2 of a 3-frame US cine, so image references must carry a frame number.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from inference.reporting.biometry import derive
from inference.reporting.content import Measurement, ReportContent, Segment, SourceFrame

SHAPE = (360, 480)


@dataclass
class PhantomExam:
    files: dict[str, Path]
    frames: dict[str, Any]
    content: ReportContent
    pixels: dict[str, np.ndarray]


def _ellipse(e: Any) -> dict[str, Any]:
    return {"type": "ellipse", "cx": e.cx, "cy": e.cy, "a": e.a, "b": e.b, "angle": e.angle}


def _line(points: Any) -> dict[str, Any]:
    return {"type": "line", "points": [[float(x), float(y)] for x, y in points]}


@pytest.fixture(scope="session")
def phantom_exam(tmp_path_factory: pytest.TempPathFactory) -> PhantomExam:
    from inference.phantom.dicom import ExamIds, phantom_uid, write_us_image, write_us_multiframe
    from inference.phantom.generator import make_frame

    out = tmp_path_factory.mktemp("report-phantom")
    head = make_frame("fetal_brain", brain_plane="trans_thalamic", seed=31, shape=SHAPE)
    abdomen = make_frame("fetal_abdomen", seed=32, shape=SHAPE)
    femur = make_frame("fetal_femur", seed=33, shape=SHAPE)
    ids = ExamIds.for_exam(77, 1, "report test")
    series = phantom_uid(77, 1, "series")
    files = {
        "head": write_us_image(
            out / "head.dcm",
            head.image,
            fov=head.fov,
            pixel_mm=head.pixel_mm,
            ids=ids,
            series_uid=series,
            sop_uid=phantom_uid(77, 1, "sop", 1),
            instance_number=1,
        ),
        "abdomen": write_us_image(
            out / "abdomen.dcm",
            abdomen.image,
            fov=abdomen.fov,
            pixel_mm=abdomen.pixel_mm,
            ids=ids,
            series_uid=series,
            sop_uid=phantom_uid(77, 1, "sop", 2),
            instance_number=2,
        ),
        "femur": write_us_multiframe(
            out / "femur.dcm",
            np.stack([femur.image] * 3),
            fov=femur.fov,
            pixel_mm=femur.pixel_mm,
            frame_time_ms=40.0,
            ids=ids,
            series_uid=series,
            sop_uid=phantom_uid(77, 1, "sop", 3),
            instance_number=3,
        ),
    }
    headers = {k: pydicom.dcmread(p, stop_before_pixels=True) for k, p in files.items()}
    src = {
        "head": SourceFrame(headers["head"], 1),
        "abdomen": SourceFrame(headers["abdomen"], 1),
        "femur": SourceFrame(headers["femur"], 2),
    }
    lm = head.landmarks
    measurements = (
        Measurement(
            "HC",
            head.measurements_mm["HC"],
            _ellipse(lm["head"]),
            src["head"],
            "ai",
            "2.25.1001",
            "outer skull border ellipse",
            ("head-unet", "v1"),
        ),
        Measurement(
            "BPD",
            head.measurements_mm["BPD_OO"],
            _line(lm["bpd_points"]),
            src["head"],
            "edited",
            "2.25.1002",
            "outer-to-outer",
            ("head-unet", "v1"),
            ai_value_mm=head.measurements_mm["BPD_OO"] + 1.0,
        ),
        Measurement(
            "OFD",
            head.measurements_mm["OFD"],
            _line(lm["ofd_points"]),
            src["head"],
            "ai",
            "2.25.1003",
            "outer-to-outer",
            ("head-unet", "v1"),
        ),
        Measurement(
            "AC",
            abdomen.measurements_mm["AC"],
            _ellipse(abdomen.landmarks["abdomen"]),
            src["abdomen"],
            "physician",
            "2.25.1004",
        ),
        Measurement(
            "FL",
            femur.measurements_mm["FL"],
            _line(femur.landmarks["femur_points"]),
            src["femur"],
            "ai",
            "2.25.1005",
            "",
            ("femur-geometry", "v1"),
        ),
    )
    derived, notes = derive({m.kind: m.value_mm for m in measurements})
    content = ReportContent(
        header=headers["head"],
        measurements=measurements,
        derived=derived,
        signer_name="Obstetrician^Olivia",
        signer_login="olivia",
        signed_at=dt.datetime(2026, 11, 25, 17, 30, tzinfo=dt.UTC),
        segments=(
            Segment("skull", head.masks["skull"], src["head"], ("head-unet", "v1")),
            Segment("head", head.masks["head"], src["head"], ("head-unet", "v1")),
        ),
        notes=notes,
    )
    return PhantomExam(
        files,
        {"head": head, "abdomen": abdomen, "femur": femur},
        content,
        {"head": head.image, "abdomen": abdomen.image, "femur": femur.image},
    )
