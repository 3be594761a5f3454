"""Demo exams from the phantom: DICOM files plus a manifest of what each one truly shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inference.phantom.dicom import ExamIds, phantom_uid, write_us_image, write_us_multiframe
from inference.phantom.generator import PhantomFrame, make_frame
from inference.phantom.sweep import make_sweep

SINGLE_SHAPE = (360, 480)
CINE_SHAPE = (256, 320)

_BIOMETRY = (("fetal_brain", "trans_thalamic"), ("fetal_abdomen", None), ("fetal_femur", None))
_MID_TRIMESTER = (
    ("fetal_brain", "trans_thalamic"),
    ("fetal_brain", "trans_ventricular"),
    ("fetal_brain", "trans_cerebellar"),
    ("fetal_thorax", None),
    ("fetal_abdomen", None),
    ("fetal_femur", None),
    ("maternal_cervix", None),
    ("other", None),
)


# Each exam shows one fetus (the cine too): head, abdomen and femur get the INTERGROWTH-21st median
# sizes at the exam's gestational age, so the demo's GA estimates agree with one another (sizes
# drawn per frame gave an HC of 19 weeks beside an AC of 28 weeks in one exam).
EXAM_GA_DAYS = {1: 22 * 7 + 3, 2: 21 * 7 + 2, 3: 20 * 7 + 4}
# The biometry exam's femur is a standard plane (both ends in view), so its FL is measurable; the
# trainee's mid-trimester exam keeps whatever the seed draws, for the supervisor to grade.
STANDARD_FEMUR_EXAMS = {1}
STANDARD_FEMUR = {"ends_visible": True, "fill": 0.35, "angle_deg": -12.0}
_SIZE_OF_PLANE = {
    "fetal_brain": ("hc", "hc_mm"),
    "fetal_abdomen": ("ac", "ac_mm"),
    "fetal_femur": ("fl", "fl_mm"),
}


def exam_sizes(plane: str, ga_days: float) -> dict[str, float]:
    """The size parameter of ``make_frame`` for ``plane`` at ``ga_days`` (empty for other
    planes): the INTERGROWTH-21st median in mm."""
    from inference.biometry.intergrowth import size_mean_sd

    if plane not in _SIZE_OF_PLANE:
        return {}
    measurement, param = _SIZE_OF_PLANE[plane]
    return {param: size_mean_sd(measurement, ga_days)[0]}


def _truth(f: PhantomFrame) -> dict[str, Any]:
    lm = {}
    for k, v in f.landmarks.items():
        lm[k] = v.as_dict() if hasattr(v, "as_dict") else v
    return {
        "plane": f.plane,
        "brain_plane": f.brain_plane,
        "pixel_mm": f.pixel_mm,
        "measurements_mm": f.measurements_mm,
        "criteria": f.criteria,
        "landmarks_px": lm,
    }


def _singles(out: Path, seed: int, number: int, name: str, labels, description: str) -> list[dict]:
    ids = ExamIds.for_exam(seed, number, description)
    series_uid = phantom_uid(seed, number, "series", 1)
    rows = []
    for i, (plane, sub) in enumerate(labels, start=1):
        f = make_frame(
            plane,
            brain_plane=sub,
            seed=seed * 1000 + number * 100 + i,
            shape=SINGLE_SHAPE,
            **exam_sizes(plane, EXAM_GA_DAYS[number]),
            **(STANDARD_FEMUR if plane == "fetal_femur" and number in STANDARD_FEMUR_EXAMS else {}),
        )
        truth = _truth(f)
        path = out / name / f"IMG{i:03d}.dcm"
        write_us_image(
            path,
            f.image,
            fov=f.fov,
            pixel_mm=f.pixel_mm,
            ids=ids,
            series_uid=series_uid,
            sop_uid=phantom_uid(seed, number, "sop", i),
            instance_number=i,
            comments=f"synthetic phantom; truth: {f.plane} {f.brain_plane or ''}".strip(),
        )
        rows.append({"file": str(path.relative_to(out)), "exam": name, **truth})
    return rows


def write_demo_exams(out: Path, seed: int = 0, cine_frames: int = 120) -> list[dict[str, Any]]:
    """Write three demo exams under ``out`` and ``out/manifest.json``; returns the manifest rows.

    1. biometry: single frames of the head (trans-thalamic), abdomen and femur;
    2. cine: one multi-frame sweep through head, trunk and femur (``cine_frames`` frames);
    3. mid-trimester: single frames of every class and brain sub-plane.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = _singles(out, seed, 1, "exam1_biometry", _BIOMETRY, "biometry (head, abdomen, femur)")
    sw = make_sweep(seed=seed, n_frames=cine_frames, shape=CINE_SHAPE, ga_days=EXAM_GA_DAYS[2])
    ids = ExamIds.for_exam(seed, 2, "cine sweep")
    path = write_us_multiframe(
        out / "exam2_cine" / "CINE001.dcm",
        sw.frames,
        fov=sw.fov,
        pixel_mm=sw.pixel_mm,
        frame_time_ms=sw.frame_time_ms,
        ids=ids,
        series_uid=phantom_uid(seed, 2, "series", 1),
        sop_uid=phantom_uid(seed, 2, "sop", 1),
        comments="synthetic phantom sweep: head, trunk, femur",
    )
    rows.append(
        {
            "file": str(path.relative_to(out)),
            "exam": "exam2_cine",
            "frames": int(sw.frames.shape[0]),
            "pixel_mm": sw.pixel_mm,
            "frame_labels": [list(x) for x in sw.labels],
            "truth_ranges": sw.truth,
            "measurements_mm": sw.measurements_mm,
        }
    )
    rows += _singles(out, seed, 3, "exam3_mid_trimester", _MID_TRIMESTER, "mid-trimester planes")
    (out / "manifest.json").write_text(json.dumps(rows, indent=1, default=float))
    return rows
