"""The shipped head model on real HC18 images, bad input through the predictor, and the CLIs."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inference.head.data import list_hc18, read_gray

REPO_ROOT = Path(__file__).resolve().parents[3]
WEIGHTS = REPO_ROOT / "inference" / "weights" / "head_unet.pt"

SPLIT = REPO_ROOT / "inference" / "weights" / "head_split.json"


def held_out_items(hc18_dir: Path, count: int):
    """``count`` held-out images of the shipped split, one per subject, spread over head sizes
    (the 20th, 40th, 60th and 80th centile of the reference HC, in that order)."""
    val = set(json.loads(SPLIT.read_text())["val_subjects"])
    first: dict[str, object] = {}
    for it in list_hc18(hc18_dir):
        if it.subject in val:
            first.setdefault(it.subject, it)
    ranked = sorted(first.values(), key=lambda it: it.hc_mm)
    picks = [ranked[int(q * len(ranked))] for q in (0.2, 0.4, 0.6, 0.8)]
    return picks[:count]


def test_measures_held_out_hc18_heads(hc18_dir: Path, head_predictor) -> None:
    items = held_out_items(hc18_dir, 4)
    frames = [read_gray(it.image_path) for it in items]
    results = head_predictor.predict_batch(frames, [it.pixel_size_mm for it in items])
    for it, r in zip(items, results, strict=True):
        assert r.found, (it.name, r.reason)
        # HC18 reference HC; the model card reports a held-out mean absolute difference of 1.8 mm
        assert r.hc_mm == pytest.approx(it.hc_mm, abs=5.0), it.name
        assert 65 < r.cephalic_index < 95
        assert r.bpd_mm == pytest.approx(r.bpd_px * it.pixel_size_mm)
        assert 0.5 <= r.confidence <= 1.0
        assert r.bpd_convention == "outer-to-outer"


def test_same_result_single_batch_colour_and_without_pixel_size(
    hc18_dir: Path, head_predictor
) -> None:
    it = held_out_items(hc18_dir, 1)[0]
    frame = read_gray(it.image_path)
    batch = head_predictor.predict_batch([frame, frame], [it.pixel_size_mm, None])
    colour = head_predictor.predict_batch([np.stack([frame] * 3, axis=2)], it.pixel_size_mm)[0]
    assert batch[0].hc_mm == pytest.approx(colour.hc_mm, abs=0.05)
    assert batch[1].hc_mm is None and batch[1].bpd_mm is None and batch[1].ofd_mm is None
    assert batch[1].hc_px == pytest.approx(batch[0].hc_px)
    masked = head_predictor.predict_batch([frame], [it.pixel_size_mm], return_masks=True)[0]
    assert masked.mask.shape == frame.shape and masked.mask.dtype == bool
    assert masked.mask.sum() == pytest.approx(masked.ellipse.area, rel=0.05)


def test_blank_and_white_frames_give_no_head(head_predictor) -> None:
    blank, white = np.zeros((540, 800), np.uint8), np.full((300, 300), 255, np.uint8)
    for r in head_predictor.predict_batch([blank, white]):
        assert not r.found and r.reason == "blank frame (no contrast)" and r.ellipse is None


def test_speckle_noise_frame_never_crashes(head_predictor) -> None:
    rng = np.random.default_rng(0)
    noise = (rng.rayleigh(40, (540, 800))).clip(0, 255).astype(np.uint8)
    r = head_predictor.predict_batch([noise], [0.1])[0]
    assert (r.found and r.confidence >= 0.5) or (not r.found and r.reason and r.hc_mm is None)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((1, 1), np.uint8), "frame 0: image of 1×1 px is too small"),
        (np.full((64, 64), np.nan), "frame 0: image contains NaN"),
        (np.zeros((64, 64), np.complex128), "frame 0: unsupported pixel type complex128"),
        (np.zeros((64, 64, 7), np.uint8), "frame 0: need a 2-D grey image"),
    ],
)
def test_bad_frames_raise_value_error_naming_frame(head_predictor, frame, message) -> None:
    with pytest.raises(ValueError, match=message):
        head_predictor.predict_batch([frame])


def test_pixel_size_list_must_match_frames(head_predictor) -> None:
    with pytest.raises(ValueError, match="2 frames but 1 pixel sizes"):
        head_predictor.predict_batch([np.zeros((64, 64))] * 2, [0.1])
    with pytest.raises(ValueError, match="frame 0: pixel size must be positive"):
        head_predictor.predict_batch([np.zeros((64, 64))], [-1.0])


def test_measure_head_one_image(hc18_dir: Path) -> None:
    if not WEIGHTS.is_file():
        pytest.skip("no shipped weights")
    from inference.head.predict import measure_head

    it = held_out_items(hc18_dir, 1)[0]
    r = measure_head(read_gray(it.image_path), it.pixel_size_mm)
    assert r.found and r.hc_mm == pytest.approx(it.hc_mm, abs=5.0)


def _mini_hc18(src: Path, dst: Path, items) -> Path:
    (dst / "training_set").mkdir(parents=True)
    with (dst / "training_set_pixel_size_and_HC.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["filename", "pixel size(mm)", "head circumference (mm)"])
        for it in items:
            shutil.copy(it.image_path, dst / "training_set" / it.name)
            shutil.copy(it.annotation_path, dst / "training_set" / it.annotation_path.name)
            w.writerow([it.name, it.pixel_size_mm, it.hc_mm])
    return dst


def test_evaluate_command_prints_one_json_report(hc18_dir: Path, tmp_path: Path) -> None:
    if not WEIGHTS.is_file():
        pytest.skip("no shipped weights")
    items = held_out_items(hc18_dir, 2)
    data = _mini_hc18(hc18_dir, tmp_path / "hc18", items)
    lm = hc18_dir.parent / "biometry_landmarks" / "HC18" / "Head.csv"
    cmd = [
        sys.executable,
        "-m",
        "inference.evaluate",
        "hc18",
        "--data",
        str(data),
        "--threads",
        "1",
        "--out",
        str(tmp_path / "r.json"),
    ]
    if lm.is_file():
        cmd += ["--landmarks", str(lm)]
    out = subprocess.run(
        cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(out.stdout)
    assert report["n"] == 2 and report["no_head"] == 0
    assert report["hc_mad_mm"] < 3.0 and report["dice"] > 0.95
    for key in ("hc_mad_sd_mm", "hausdorff_mm", "ms_per_image"):
        assert report[key] is not None
    if lm.is_file():
        assert report["n_landmarks"] == 2 and report["bpd_mae_mm"] < 5.0
    assert len(json.loads((tmp_path / "r.json").read_text())["images"]) == 2


def test_evaluate_command_explains_missing_data(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "inference.evaluate", "hc18", "--data", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "no HC18 image folder" in out.stderr


@pytest.mark.slow
def test_training_command_runs_one_resumable_step(hc18_dir: Path, tmp_path: Path) -> None:
    items = held_out_items(hc18_dir, 12)
    data = _mini_hc18(hc18_dir, tmp_path / "hc18", items)
    args = [
        sys.executable,
        "-m",
        "inference.train",
        "head",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "w"),
        "--checkpoints",
        str(tmp_path / "ck"),
        "--cache",
        str(tmp_path / "c.npz"),
        "--epochs",
        "2",
        "--batch",
        "4",
        "--limit-batches",
        "1",
        "--threads",
        "1",
    ]
    first = subprocess.run(
        [*args, "--stop-after", "1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert '"epoch": 0' in first.stdout and '"stopped_after_epoch": 0' in first.stdout
    assert (tmp_path / "w" / "head_unet.pt").is_file() and (
        tmp_path / "w" / "head_split.json"
    ).is_file()
    again = subprocess.run(
        [*args, "--resume"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    assert "resumed after epoch 0" in again.stdout and '"epoch": 1' in again.stdout
    assert '"done": true' in again.stdout


def test_the_crop_model_takes_a_second_look_and_can_be_switched_off(
    hc18_dir: Path, head_predictor
) -> None:
    from inference.head.predict import HeadPredictor

    if head_predictor.refine_model is None:
        pytest.skip("no head_refine.pt shipped beside head_unet.pt")
    first_only = HeadPredictor(WEIGHTS, device="cpu", threads=1, refine=False)
    assert first_only.version + "+refine-" in head_predictor.version
    smallest = held_out_items(hc18_dir, 1)[
        0
    ]  # 20th centile of HC: the crop matters for small heads
    frame = read_gray(smallest.image_path)
    two = head_predictor.predict_batch([frame], smallest.pixel_size_mm, return_masks=True)[0]
    one = first_only.predict_batch([frame], smallest.pixel_size_mm)[0]
    assert one.found and two.found
    assert two.ellipse != one.ellipse  # the second look moved the outline
    assert two.hc_mm == pytest.approx(one.hc_mm, rel=0.05)
    # the crop's mask is pasted back at the frame's size, on the head
    assert two.mask.shape == frame.shape
    cy, cx = round(two.ellipse.cy), round(two.ellipse.cx)
    assert two.mask[cy, cx] and not two.mask[0, 0]


def test_crop_model_training_command_runs_an_epoch(hc18_dir: Path, tmp_path: Path) -> None:
    import torch

    data = _mini_hc18(hc18_dir, tmp_path / "hc18", held_out_items(hc18_dir, 12))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "inference.train",
            "head-refine",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "w"),
            "--checkpoints",
            str(tmp_path / "ck"),
            "--init-from",
            str(WEIGHTS),
            "--epochs",
            "1",
            "--batch",
            "4",
            "--threads",
            "1",
            "--keep",
            "last",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert '"epoch": 0' in run.stdout and '"done": true' in run.stdout
    blob = torch.load(tmp_path / "w" / "head_refine.pt", weights_only=True)
    assert blob["crop_margin"] == 1.4 and blob["meta"]["stage"] == "refine"
    assert (tmp_path / "ck" / "last.pt").is_file()
