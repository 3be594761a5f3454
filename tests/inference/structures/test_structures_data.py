"""Structure model: frame sampling, network input/targets, user folders, post-processing, loss.

No trained weights needed: these check the code around the network with known inputs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.structures import data
from inference.structures.data import CLASSES, NET_SHAPE
from inference.structures.predict import DETECTION_TOP_PX, largest_component, postprocess


def test_a_seed_names_one_frame_and_training_and_held_out_seeds_are_disjoint():
    a, b = data.frame_spec(12), data.frame_spec(12)
    assert (a.plane, a.params) == (b.plane, b.params)
    assert np.array_equal(data.sample_frame(3).image, data.sample_frame(3).image)
    # Training seeds are TRAIN_SEED_BASE + step × batch + i: far below the held-out base.
    assert data.TRAIN_SEED_BASE + 10_000_000 < data.HELDOUT_SEED_BASE
    planes = [data.frame_spec(s).plane for s in range(400)]
    shares = {p: planes.count(p) / 400 for p, _ in data.PLANE_MIX}
    assert shares == pytest.approx(dict(data.PLANE_MIX), abs=0.07)


def test_sampled_frames_hold_both_outcomes_of_every_criterion():
    seen: dict[str, set[bool]] = {}
    for s in range(120):
        f = data.sample_frame(data.HELDOUT_SEED_BASE + s)
        for k, v in f.criteria.items():
            seen.setdefault(k, set()).add(bool(v))
    for key in (
        "stomach_visible",
        "umbilical_vein_visible",
        "kidneys_not_visible",
        "thalami_visible",
        "cavum_septi_pellucidi_visible",
        "cerebellum_not_visible",
        "both_ends_visible",
        "angle_under_45deg",
        "symmetric",
    ):
        assert seen[key] == {True, False}, key


def test_preprocess_resizes_and_standardises_any_frame():
    frame = np.tile(np.arange(320, dtype=np.uint8), (256, 1))
    x = data.preprocess(frame)
    assert x.shape == (1, *NET_SHAPE) and x.dtype == np.float32
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-4)
    assert float(x.std()) == pytest.approx(1.0, abs=1e-3)
    rgb = np.stack([frame] * 3, axis=2)
    assert np.allclose(data.preprocess(rgb), x, atol=1e-5)
    assert data.preprocess(np.zeros((540, 800), np.uint8)).shape == (1, *NET_SHAPE)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((4, 256, 320), np.uint8), r"shape \(4, 256, 320\)"),
        (np.zeros((8, 320), np.uint8), "too small"),
        (np.full((64, 64), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_frames_are_refused_with_the_reason(frame, message):
    with pytest.raises(ValueError, match=message):
        data.preprocess(frame)


def test_targets_are_covered_fractions_per_class():
    mask = np.zeros((256, 320), bool)
    mask[64:128, 80:160] = True  # 64 × 80 px = 5,120 px
    t = data.targets({"stomach": mask, "femur": np.zeros_like(mask)})
    assert t.shape == (len(CLASSES), *NET_SHAPE)
    i = CLASSES.index("stomach")
    scale = (NET_SHAPE[0] / 256) * (NET_SHAPE[1] / 320)
    assert float(t[i].sum()) == pytest.approx(5120 * scale, rel=0.01)
    assert t.min() >= 0.0 and t.max() <= 1.0
    assert float(t[CLASSES.index("femur")].sum()) == 0.0


def test_a_users_folder_of_image_and_label_pngs(tmp_path):
    image = np.full((120, 160), 90, np.uint8)
    label = np.zeros((120, 160), np.uint8)
    label[20:100, 30:130] = CLASSES.index("abdomen") + 1
    label[40:60, 50:70] = CLASSES.index("stomach") + 1
    cv2.imwrite(str(tmp_path / "case1.png"), image)
    cv2.imwrite(str(tmp_path / "case1_mask.png"), label)
    cv2.imwrite(str(tmp_path / "lonely.png"), image)  # no mask: not a pair
    pairs = data.load_folder(str(tmp_path))
    assert pairs == [(str(tmp_path / "case1.png"), str(tmp_path / "case1_mask.png"))]
    x, t = data.folder_pair(*pairs[0])
    assert x.shape == (1, *NET_SHAPE)
    scale = (NET_SHAPE[0] / 120) * (NET_SHAPE[1] / 160)
    # the stomach lies inside the abdomen: the abdomen channel holds both
    assert float(t[CLASSES.index("abdomen")].sum()) == pytest.approx(80 * 100 * scale, rel=0.02)
    assert float(t[CLASSES.index("stomach")].sum()) == pytest.approx(20 * 20 * scale, rel=0.05)
    with pytest.raises(ValueError, match="not a folder"):
        data.load_folder(str(tmp_path / "does_not_exist"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no <name>\.png with <name>_mask\.png"):
        data.load_folder(str(tmp_path / "empty"))
    bad = label.copy()
    bad[0, 0] = len(CLASSES) + 1
    cv2.imwrite(str(tmp_path / "case2.png"), image)
    cv2.imwrite(str(tmp_path / "case2_mask.png"), bad)
    with pytest.raises(ValueError, match="label value 11 > 10 classes"):
        data.folder_pair(str(tmp_path / "case2.png"), str(tmp_path / "case2_mask.png"))


def _probs() -> np.ndarray:
    p = np.zeros((len(CLASSES), *NET_SHAPE), np.float32)
    p[CLASSES.index("abdomen"), 40:120, 50:150] = 0.95
    p[CLASSES.index("abdomen"), 5:10, 5:10] = 0.9  # a speck apart from the abdomen
    p[CLASSES.index("stomach"), 60:70, 60:75] = 0.9  # inside the abdomen
    p[CLASSES.index("kidneys"), 2:12, 170:185] = 0.9  # outside the abdomen: not a kidney
    p[CLASSES.index("thalami"), 10:12, 10:14] = 0.8  # 8 px: fewer than DETECTION_TOP_PX
    return p


def test_postprocess_masks_and_detection_probabilities():
    pred = postprocess(_probs(), (256, 320))
    assert pred.shape == (256, 320)
    assert pred.probability["stomach"] == pytest.approx(0.9)
    assert pred.probability["kidneys"] == 0.0  # outside the abdomen it does not count
    assert pred.mask("kidneys") is None
    assert pred.probability["thalami"] == pytest.approx(0.8 * 8 / DETECTION_TOP_PX, abs=1e-3)
    assert pred.probability["femur"] == 0.0 and pred.mask("femur") is None
    abdomen = pred.mask("abdomen")
    # the speck is dropped: only the largest component (≈ 80 × 100 net px scaled by 1.6 × 1.667)
    assert abdomen[:20, :20].sum() == 0
    assert abdomen.sum() == pytest.approx(80 * 1.6 * 100 * (320 / 192), rel=0.03)
    cx, cy = pred.centroid("stomach")
    assert (cx, cy) == pytest.approx(((60 + 75) / 2 * 320 / 192, (60 + 70) / 2 * 1.6), abs=1.5)


def test_largest_component_fills_holes():
    ring = np.zeros((50, 50), bool)
    cv2.circle(ring.view(np.uint8), (25, 25), 15, 1, thickness=3)
    filled = largest_component(ring)
    assert filled[25, 25] and filled.sum() > ring.sum()


def test_soft_dice_loss_is_zero_for_a_perfect_answer_and_high_for_the_opposite():
    torch = pytest.importorskip("torch")
    from inference.structures.train import soft_dice_loss

    target = torch.zeros(2, len(CLASSES), 16, 16)
    target[:, 0, 4:12, 4:12] = 1.0
    perfect = (target * 2 - 1) * 50.0  # logits
    assert float(soft_dice_loss(perfect, target)) == pytest.approx(0.0, abs=1e-3)
    assert float(soft_dice_loss(-perfect, target)) == pytest.approx(1.0, abs=0.01)


def _write_fp(tmp_path):
    import csv

    images, marks = tmp_path / "Images", tmp_path / "FP"
    images.mkdir()
    marks.mkdir()
    cv2.imwrite(str(images / "Patient1_Plane2_1_of_1.png"), np.full((200, 300), 80, np.uint8))
    cv2.imwrite(str(images / "Patient2_Plane5_1_of_1.png"), np.full((200, 300), 80, np.uint8))
    ab = {
        "image_name": "Patient1_Plane2_1_of_1.png",
        "tad_1_x": 100, "tad_1_y": 100, "tad_2_x": 200, "tad_2_y": 100,  # TAD 100 px
        "apad_1_x": 150, "apad_1_y": 60, "apad_2_x": 150, "apad_2_y": 140,  # APAD 80 px
        "px_to_mm_rate": 0.2,
    }  # fmt: skip
    fe = {
        "image_name": "Patient2_Plane5_1_of_1.png",
        "fl_1_x": 50, "fl_1_y": 100, "fl_2_x": 250, "fl_2_y": 100, "px_to_mm_rate": 0.2,
    }  # fmt: skip
    missing = {**fe, "image_name": "Patient3_Plane5_1_of_1.png"}
    for name, rows in (("Abdomen_Train.csv", [ab]), ("Femur_Train.csv", [fe, missing])):
        with (marks / name).open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return images, marks


def test_fetal_planes_db_calipers_become_approximate_masks(tmp_path):
    images, marks = _write_fp(tmp_path)
    rows = data.fp_rows(str(images), str(marks))
    assert [(plane, Path(p).name) for plane, p, _ in rows] == [
        ("Abdomen", "Patient1_Plane2_1_of_1.png"),
        ("Femur", "Patient2_Plane5_1_of_1.png"),
    ]  # the row whose image is not there is skipped
    abdomen = data.fp_masks("Abdomen", rows[0][2], (200, 300))["abdomen"]
    assert abdomen.sum() == pytest.approx(np.pi * 50 * 40, rel=0.03)
    ys, xs = np.nonzero(abdomen)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (100, 200, 60, 140)
    femur = data.fp_masks("Femur", rows[1][2], (200, 300))["femur"]
    ys, xs = np.nonzero(femur)
    assert (xs.min(), xs.max()) == (50, 250)  # end to end: the calipers are the bone's ends
    assert ys.max() - ys.min() + 1 == pytest.approx(0.09 * 200, abs=1.5)
    x, t, valid = data.fp_pair(*rows[1])
    assert x.shape == (1, *NET_SHAPE) and t.shape == (len(CLASSES), *NET_SHAPE)
    assert valid.tolist() == [name == "femur" for name in CLASSES]
    with pytest.raises(ValueError, match="not a folder"):
        data.fp_rows(str(tmp_path / "nope"), str(marks))
    with pytest.raises(ValueError, match=r"Abdomen_Test\.csv: no such landmark file"):
        data.fp_rows(str(images), str(marks), split="Test")


def test_training_mixes_benchmark_images_into_phantom_batches(tmp_path):
    torch = pytest.importorskip("torch")
    from inference.structures.train import main

    images, marks = _write_fp(tmp_path)
    out = tmp_path / "w.pt"
    args = ["--steps", "2", "--batch", "2", "--widths", "4,8,8", "--out", str(out)]
    fp = ["--fp-images", str(images), "--fp-landmarks", str(marks), "--fp-share", "0.5"]
    assert main([*args, *fp, "--checkpoint-dir", str(tmp_path / "ck")]) == 0
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["steps"] == 2
    assert meta["data"].startswith("phantom (synthetic), seeds 0..3 + FETAL_PLANES_DB")
