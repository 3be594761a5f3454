"""The femur second look: a strip of the frame laid along the first FL line, segmented again at a
finer scale, its FL line taken back to the frame.

Geometry on synthetic capsules drawn analytically; the training strips on phantom femur frames; the
predictor and pipeline wiring with weights trained here for one step (the shipped model's accuracy
is tests/inference/structures/test_structures_model.py's).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference import pipeline
from inference.femur import FemurMeasurement
from inference.structures.data import femur_spec, frame_spec
from inference.structures.evidence import femur_measurement
from inference.structures.femur_refine import (
    STRIP_MARGIN,
    STRIP_SHAPE,
    capsule_target,
    cut_strip,
    measure_in_strip,
    standardise,
    strip_mask_to_frame,
    strip_window,
)
from inference.structures.predict import StructurePrediction, StructurePredictor


def test_the_strip_lies_along_the_line_at_one_scale_both_ways() -> None:
    w = strip_window((40.0, 100.0), (140.0, 60.0))
    length = math.hypot(100.0, 40.0)
    assert w.scale == pytest.approx(STRIP_SHAPE[1] / (STRIP_MARGIN * length))
    rows, cols = STRIP_SHAPE
    # the line's ends lie on the strip's middle row, the margin split evenly at both ends
    ends = w.to_strip(np.array([[40.0, 100.0], [140.0, 60.0]]))
    half = length * w.scale / 2
    np.testing.assert_allclose(ends[:, 1], (rows - 1) / 2, atol=1e-9)
    np.testing.assert_allclose(ends[:, 0], [(cols - 1) / 2 - half, (cols - 1) / 2 + half])
    pts = np.array([[3.0, 7.0], [120.5, 80.25]])
    np.testing.assert_allclose(w.to_frame(w.to_strip(pts)), pts, atol=1e-9)


def test_a_line_without_length_has_no_strip() -> None:
    with pytest.raises(ValueError, match="no direction"):
        strip_window((10.0, 10.0), (10.5, 10.0))


def test_cut_strip_shows_an_oblique_bar_along_its_middle_row() -> None:
    frame = np.zeros((200, 260), np.uint8)
    cv2.line(frame, (60, 150), (200, 70), 255, thickness=5)
    strip = cut_strip(frame, strip_window((60.0, 150.0), (200.0, 70.0)))
    rows, cols = STRIP_SHAPE
    middle = strip[rows // 2 - 1 : rows // 2 + 1, cols // 4 : 3 * cols // 4]
    assert middle.min() > 200  # the bar, all along the middle
    assert strip[:10].max() == 0 and strip[-10:].max() == 0  # nothing else across it
    x = standardise(strip)
    assert x.shape == (1, *STRIP_SHAPE) and abs(float(x.mean())) < 1e-4


@pytest.mark.parametrize("angle_deg", [0.0, 17.0, -38.0, 72.0])
def test_fl_of_an_analytic_capsule_comes_back_to_the_frame(angle_deg: float) -> None:
    # a 64 px femur (tip to tip), 6 px thick, first line 10 % short at one end and 1 px off axis
    c, L, r = np.array([130.0, 110.0]), 64.0, 3.0
    d = np.array([math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))])
    n = np.array([-d[1], d[0]])
    tip0, tip1 = c - L / 2 * d, c + L / 2 * d
    first0, first1 = tip0 + 0.1 * L * d + n, tip1 + n
    w = strip_window(tuple(first0), tuple(first1))
    target = capsule_target(tuple(tip0), tuple(tip1), r, w)
    fm = measure_in_strip(target > 0.5, w)
    assert fm.length_px == pytest.approx(L, rel=0.005)
    got = sorted(fm.end_points)
    want = sorted([tuple(tip0), tuple(tip1)])
    for g, t in zip(got, want, strict=True):
        assert math.dist(g, t) < 0.6
    assert fm.angle_deg == pytest.approx(min(abs(angle_deg), 180 - abs(angle_deg)), abs=0.5)
    assert fm.shaft_width_px == pytest.approx(2 * r, rel=0.2)
    back = strip_mask_to_frame(target > 0.5, w, (240, 280))
    assert back[round(c[1]), round(c[0])] and not back[5, 5]


def test_a_capsule_the_sector_cuts_is_cut_in_the_target_too() -> None:
    w = strip_window((50.0, 50.0), (150.0, 50.0))
    fov = np.ones(STRIP_SHAPE, np.float32)
    fov[:, : STRIP_SHAPE[1] // 2] = 0.0
    target = capsule_target((50.0, 50.0), (150.0, 50.0), 4.0, w, fov)
    assert target[:, : STRIP_SHAPE[1] // 2].max() == 0 and target.max() == 1.0


def test_training_strips_put_the_phantom_bone_on_its_target() -> None:
    from inference.structures.train_femur_refine import training_strip

    assert all(femur_spec(s).plane == "fetal_femur" for s in range(20))
    seen = 0
    for seed in range(40):
        pair = training_strip(seed)
        if pair is None:
            continue
        x, y = pair
        assert x.shape == y.shape == (1, *STRIP_SHAPE)
        assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0
        params = femur_spec(seed).params
        if abs(params["angle_deg"]) < 45 and "visible_length" not in params:
            # (a steeper bone lies along the scan lines and shadows its own far part)
            bone, around = x[0][y[0] > 0.5], x[0][y[0] < 0.05]
            seen += 1
            assert bone.mean() > around.mean() + 0.8, seed  # bright bone under the target
    assert seen >= 15


def test_the_second_looks_line_is_the_fl_with_mm_from_the_calibration() -> None:
    line = FemurMeasurement(((10.0, 20.0), (110.0, 20.0)), 100.0, None, 0.0, None, 6.0, 12.0, 0)
    pred = StructurePrediction(shape=(64, 128), femur_line=line)
    fm = femur_measurement(pred, pixel_size_mm=0.3)
    assert fm.length_mm == pytest.approx(30.0) and fm.end_points == line.end_points
    assert femur_measurement(pred).length_mm is None
    with pytest.raises(ValueError, match="pixel_size_mm must be positive"):
        femur_measurement(pred, pixel_size_mm=float("nan"))


def _train_tiny(tmp_path: Path) -> tuple[Path, Path]:
    from inference.structures.train import main as train_structures
    from inference.structures.train_femur_refine import main as train_refine

    first = tmp_path / "structures_unet.pt"
    small = ["--steps", "1", "--batch", "1", "--widths", "4,8,8"]
    assert train_structures([*small, "--out", str(first), "--checkpoint-dir", str(tmp_path)]) == 0
    refine = tmp_path / "femur_refine.pt"
    assert train_refine([*small, "--out", str(refine), "--checkpoint-dir", str(tmp_path)]) == 0
    return first, refine


def test_the_femur_model_beside_the_weights_is_loaded_and_named(tmp_path: Path) -> None:
    first, refine = _train_tiny(tmp_path)
    with_refine = StructurePredictor(first, device="cpu")
    assert with_refine.femur_model is not None and with_refine.femur_shape == STRIP_SHAPE
    assert "+femur-refine-" in with_refine.version
    assert StructurePredictor(first, device="cpu", femur_refine=False).femur_model is None
    with pytest.raises(FileNotFoundError, match="femur refine weights not found"):
        StructurePredictor(first, device="cpu", femur_refine=tmp_path / "absent.pt")
    # the pipeline snapshots both files: its version names what it loaded
    models = pipeline.load_models(
        planes_weights=None, head_weights=None, structures_weights=first, snapshot_dir=tmp_path
    )
    assert models.structures is not None
    assert models.structures.info.version == with_refine.version
    refine.unlink()
    assert "+femur-refine-" not in StructurePredictor(first, device="cpu").version


def test_a_predictor_runs_the_second_look_only_where_a_femur_was_found(tmp_path: Path) -> None:
    from inference.structures.data import sample_frame, targets

    first, _ = _train_tiny(tmp_path)
    predictor = StructurePredictor(first, device="cpu")
    model, calls = predictor.femur_model, []

    def spy(x):  # type: ignore[no-untyped-def]
        calls.append(tuple(x.shape))
        return model(x)

    predictor.femur_model = spy  # type: ignore[assignment]
    # the first pass as an oracle (the phantom's own masks): whether a femur is found is known
    femur_seed = next(s for s in range(10**9, 10**9 + 50) if frame_spec(s).plane == "fetal_femur")
    belly_seed = next(s for s in range(10**9, 10**9 + 50) if frame_spec(s).plane == "fetal_abdomen")
    for seed, strips in ((femur_seed, 1), (belly_seed, 0)):
        frame = sample_frame(seed)
        predictor.probabilities = lambda frames, f=frame: targets(f.masks)[None]  # type: ignore[method-assign]
        calls.clear()
        predictor.predict(frame.image)
        assert calls == [(1, 1, *STRIP_SHAPE)] * strips, seed


def test_a_frame_without_a_strip_is_replaced_by_a_spare_seed_clear_of_evaluation_seeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from inference.structures import train_femur_refine as t
    from inference.structures.data import HELDOUT_SEED_BASE
    from inference.structures.train import VALIDATION_SEED_BASE

    asked: list[int] = []
    strip = (np.zeros((1, *STRIP_SHAPE), np.float32), np.zeros((1, *STRIP_SHAPE), np.float32))

    def fake_strip(seed: int):
        asked.append(seed)
        return None if seed in (7 * 4 + 1, t.SPARE_SEED_BASE + 7 * 4) else strip

    monkeypatch.setattr(t, "training_strip", fake_strip)
    x, y = t._strip_batch((7, 4))
    assert x.shape == y.shape == (4, 1, *STRIP_SHAPE)
    # step 7 of batch 4: seeds 28..31; 29 has no strip, nor has the first spare: the next one
    assert asked == [28, 29, t.SPARE_SEED_BASE + 28, t.SPARE_SEED_BASE + 29, 30, 31]
    assert max(asked) < VALIDATION_SEED_BASE < HELDOUT_SEED_BASE
