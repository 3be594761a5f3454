"""Pipeline wiring of the structure model: AC / APAD / TAD and FL as Measurements (mm only from a
calibration holding every point), Segmentation records, quality evidence, model loading.

An "oracle" predictor stands in for the network here — it turns the phantom's exact masks into
network-resolution probabilities and runs the real post-processing — so these tests check the
orchestration and geometry, not the model (tests/inference/structures/test_structures_model.py
does that with the shipped weights). Phantom (synthetic) results.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from inference import pipeline
from inference.phantom import make_frame
from inference.quality.results import Verdict
from inference.structures.data import targets
from inference.structures.predict import postprocess

MET, NOT_MET, NA = Verdict.MET, Verdict.NOT_MET, Verdict.NOT_ASSESSABLE


class OraclePredictor:
    """Returns the phantom frame's own masks through the real post-processing."""

    def __init__(self, frame) -> None:
        self.frame = frame

    def predict(self, image):
        assert image is self.frame.image
        return postprocess(targets(self.frame.masks), image.shape)


class Oracle:
    def __init__(self, frame) -> None:
        self.predictor = OraclePredictor(frame)
        self.info = pipeline.ModelInfo(pipeline.STRUCTURES_MODEL, "oracle", "0" * 64, "-")


def calibration(frame):
    cal = pipeline.PixelCalibration(frame.pixel_mm, frame.pixel_mm, "test")
    return lambda points: cal


def test_abdomen_frame_gives_ac_apad_tad_from_the_skin_line() -> None:
    f = make_frame("fetal_abdomen", seed=4, fill=0.42, angle=0.3, roundness=0.9)
    fm = pipeline.measure_abdomen_frame(Oracle(f), f.image, calibration(f), fov=f.fov)
    assert fm.found, fm.reason
    assert [m.kind for m in fm.measurements] == ["AC", "APAD", "TAD"]
    ac, apad, tad = fm.measurements
    assert ac.value_mm == pytest.approx(f.measurements_mm["AC"], rel=0.01)
    body = f.landmarks["abdomen"]  # the spine lies along the ellipse's b axis
    assert apad.value_mm == pytest.approx(2 * body.b * f.pixel_mm, rel=0.02)
    assert tad.value_mm == pytest.approx(2 * body.a * f.pixel_mm, rel=0.02)
    assert ac.geometry_px["type"] == "ellipse" and apad.geometry_px["type"] == "line"
    assert ac.geometry_mm["a"] == pytest.approx(ac.geometry_px["a"] * f.pixel_mm, rel=1e-3)
    for m in fm.measurements:
        assert "not validated on real images" in m.method
        assert m.model.name == "structures-unet"
        assert 0.8 < m.confidence <= 1.0
    assert {s.structure for s in fm.segmentations} == {
        "abdomen",
        "stomach",
        "umbilical_vein",
        "spine",
        "ribs",
    }
    assert fm.evidence["validation"] == "not validated on real images"


def test_mm_only_from_a_calibration_holding_every_point() -> None:
    f = make_frame("fetal_abdomen", seed=4, fill=0.42)
    region_right_edge = f.landmarks["abdomen"].cx + 5  # a region holding only part of the outline

    def calibrate(points):
        if np.all(points[:, 0] <= region_right_edge):
            return pipeline.PixelCalibration(f.pixel_mm, f.pixel_mm, "region")
        return None

    fm = pipeline.measure_abdomen_frame(Oracle(f), f.image, calibrate, fov=f.fov)
    assert all(m.value_mm is None and m.geometry_mm is None for m in fm.measurements)
    assert fm.measurements[0].value_px == pytest.approx(
        f.measurements_mm["AC"] / f.pixel_mm, rel=0.01
    )


def test_femur_frame_gives_fl_between_the_diaphysis_ends() -> None:
    f = make_frame("fetal_femur", seed=8, fl_mm=40.0, angle_deg=20.0, epiphysis=True)
    fm = pipeline.measure_femur_frame(Oracle(f), f.image, calibration(f))
    assert fm.found, fm.reason
    [fl] = fm.measurements
    assert fl.kind == "FL" and fl.geometry_px["type"] == "line"
    assert fl.value_mm == pytest.approx(40.0, rel=0.015)
    assert "not validated on real images" in fl.method
    (x0, y0), (x1, y1) = fl.geometry_px["points"]
    assert math.degrees(math.atan2(y1 - y0, x1 - x0)) == pytest.approx(20.0, abs=1.5)
    assert fm.evidence["femur"]["angle_deg"] == pytest.approx(20.0, abs=1.5)


def test_no_abdomen_segmented_is_a_reason_not_a_measurement() -> None:
    f = make_frame("fetal_femur", seed=8)
    fm = pipeline.measure_abdomen_frame(Oracle(f), f.image, calibration(f))
    assert not fm.found and fm.measurements == []
    assert fm.reason == "no abdomen segmented on this frame"


@pytest.mark.parametrize(
    ("params", "failing"),
    [
        ({}, None),
        ({"stomach": False}, "abdomen.stomach_visible"),
        ({"umbilical_vein": False}, "abdomen.umbilical_vein_portal_sinus_visible"),
        ({"kidneys": True}, "abdomen.kidneys_not_visible"),
        ({"asymmetry": 0.2}, "abdomen.symmetric"),
        ({"fill": 0.2}, "abdomen.fills_30pct"),
    ],
)
def test_abdomen_criteria_become_assessable_from_the_structures(params, failing) -> None:
    base = {"asymmetry": 0.0, "stomach": True, "umbilical_vein": True, "kidneys": False}
    f = make_frame("fetal_abdomen", seed=3, **({"fill": 0.42} | base | params))
    fm = pipeline.measure_abdomen_frame(Oracle(f), f.image, calibration(f), fov=f.fov)
    q = pipeline.assess_quality("abdomen_ac", f.image, structures=fm, fov=f.fov)
    verdicts = {r.key: r.verdict for r in q.results}
    expected = {k: MET for k in verdicts}
    if failing:
        expected[failing] = NOT_MET
    assert verdicts == expected, [(r.key, r.rationale) for r in q.results]


def test_head_criteria_from_the_structures_and_the_head_ellipse() -> None:
    from inference.geometry import Ellipse, rasterize_ellipse

    f = make_frame(
        "fetal_brain", seed=2, thalami=True, csp=True, cerebellum=True, asymmetry=0.0, fill=0.42
    )
    t = f.landmarks["head"]
    e = Ellipse.from_axes(t.cx, t.cy, t.a, t.b, t.angle)
    head = pipeline.FrameMeasurements(
        True,
        confidence=0.9,
        segmentations=[pipeline.Segmentation("skull", rasterize_ellipse(f.image.shape, e) > 0)],
        ellipse=e,
    )
    structures = pipeline.detect_head_structures(Oracle(f), f.image)
    assert structures.measurements == []
    assert {s.structure for s in structures.segmentations} == {
        "thalami",
        "cavum_septi_pellucidi",
        "cerebellum",
    }
    q = pipeline.assess_quality(
        "head_trans_thalamic", f.image, head=head, structures=structures, fov=f.fov
    )
    verdicts = {r.key: r.verdict for r in q.results}
    assert verdicts == {
        "head.symmetric": MET,
        "head.thalami_visible": MET,
        "head.cavum_septi_pellucidi_visible": MET,
        "head.cerebellum_not_visible": NOT_MET,
        "head.fills_30pct": MET,
        "head.calipers_outer_skull": MET,
    }
    # Without the structure model those criteria stay not assessable, never guessed.
    q0 = pipeline.assess_quality("head_trans_thalamic", f.image, head=head, fov=f.fov)
    assert q0.result("head.thalami_visible").verdict is NA


def test_femur_criteria_from_the_segmented_diaphysis() -> None:
    good = make_frame("fetal_femur", seed=2, angle_deg=15.0, fill=0.45, ends_visible=True)
    fm = pipeline.measure_femur_frame(Oracle(good), good.image, calibration(good))
    q = pipeline.assess_quality("femur_fl", good.image, structures=fm, fov=good.fov)
    assert [r.verdict for r in q.results] == [MET] * 4
    cut = make_frame("fetal_femur", seed=5, angle_deg=10.0, fill=0.45, ends_visible=False)
    fm = pipeline.measure_femur_frame(Oracle(cut), cut.image, calibration(cut))
    q = pipeline.assess_quality("femur_fl", cut.image, structures=fm, fov=cut.fov)
    assert q.result("femur.both_ends_visible").verdict is NOT_MET


def test_measure_structure_views_works_on_each_chosen_frame_and_survives_a_failure() -> None:
    ab = make_frame("fetal_abdomen", seed=4, fill=0.42)
    frames = {("a", 1): ab.image, ("b", 2): np.zeros((8, 8), np.uint8)}
    best = {
        "abdomen_ac": pipeline.BestFrameChoice("abdomen_ac", "a", 1, 0.9, pipeline.OPTIMAL),
        "femur_fl": pipeline.BestFrameChoice("femur_fl", "b", 2, 0.9, pipeline.OPTIMAL),
        "head_trans_thalamic": pipeline.BestFrameChoice("head_trans_thalamic"),  # absent
    }
    out = pipeline.measure_structure_views(
        Oracle(ab), best, lambda s, n: frames[(s, n)], lambda s, n: calibration(ab)
    )
    assert set(out) == {"abdomen_ac", "femur_fl"}
    assert out["abdomen_ac"].found
    assert not out["femur_fl"].found
    assert out["femur_fl"].reason.startswith("structure model failed: AssertionError")


def test_structure_weights_load_once_with_identity_and_lift_the_unavailable_entries(
    tmp_path: Path,
) -> None:
    from inference.structures.train import main as train

    weights = tmp_path / "structures_unet.pt"
    args = ["--steps", "1", "--batch", "1", "--widths", "4,8,8", "--out", str(weights)]
    assert train([*args, "--checkpoint-dir", str(tmp_path / "ck")]) == 0
    models = pipeline.load_models(
        planes_weights=None, head_weights=None, structures_weights=weights, snapshot_dir=tmp_path
    )
    assert models.structures is not None
    assert "abdomen-segmentation" not in models.unavailable
    assert "femur-segmentation" not in models.unavailable
    info = models.structures.info
    assert info.name == "structures-unet" and "not validated on real images" in info.task
    assert [i.name for i in models.infos()] == ["structures-unet"]
    missing = pipeline.load_models(
        planes_weights=None,
        head_weights=None,
        structures_weights=tmp_path / "absent.pt",
        snapshot_dir=tmp_path,
    )
    assert missing.structures is None
    assert "weights not found" in missing.unavailable["femur-segmentation"]
    assert "FL is not measured" in missing.unavailable["femur-segmentation"]
    assert "kidney criteria are not assessable" in missing.unavailable["structure-detection"]
