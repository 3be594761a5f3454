"""inference.pipeline without Django: per-frame failure isolation, batch-split invariance, best
frames from known probabilities, head measurement with and without a calibration that holds all
points, quality criteria, derived biometry with formula identities, model identities.

The plane classifier here is a seeded untrained PlaneNet (fixed outputs, meaningless labels): the
tests assert the orchestration. The head model is the shipped one (skipped when absent); the
frames are phantom frames with known truth — phantom results, not accuracy on real images.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from inference import pipeline
from inference.phantom import make_frame
from inference.phantom.sweep import make_sweep


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> pipeline.PlaneClassifier:
    import torch

    from inference.planes.model import PlaneNet, save_weights

    path = tmp_path_factory.mktemp("w") / "planes.pt"
    torch.manual_seed(0)
    save_weights(PlaneNet().eval(), path, {"width": 24, "version": "test-untrained"})
    return pipeline.PlaneClassifier(path, snapshot_dir=tmp_path_factory.mktemp("snap"))


@pytest.fixture(scope="module")
def head() -> pipeline.HeadSegmenter:
    if not pipeline.DEFAULT_HEAD_WEIGHTS.is_file():
        pytest.skip(f"shipped head weights not found at {pipeline.DEFAULT_HEAD_WEIGHTS}")
    return pipeline.HeadSegmenter(pipeline.DEFAULT_HEAD_WEIGHTS)


@pytest.fixture(scope="module")
def sweep():
    return make_sweep(seed=4, n_frames=30, shape=(160, 200))


def test_model_identity_is_the_hash_of_the_bytes_loaded(tmp_path: Path, classifier) -> None:
    source = Path(classifier.info.weights_path)
    assert classifier.info.name == "planes-classifier"
    assert classifier.info.version == "test-untrained"
    assert classifier.info.weights_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    # The snapshot keeps what was hashed even if the file is overwritten afterwards.
    snap, digest = pipeline.snapshot_weights(source, tmp_path)
    source_bytes = source.read_bytes()
    assert snap.read_bytes() == source_bytes
    assert snap.name == f"{digest}.pt"
    with pytest.raises(FileNotFoundError, match=r"weights not found at /nonexistent\.pt"):
        pipeline.snapshot_weights(Path("/nonexistent.pt"), tmp_path)


def test_missing_weights_are_listed_not_fatal(tmp_path: Path) -> None:
    models = pipeline.load_models(
        planes_weights=tmp_path / "absent.pt",
        head_weights=None,
        structures_weights=None,
        snapshot_dir=tmp_path,
    )
    assert models.planes is None
    assert models.unavailable["planes-classifier"].startswith(
        "plane classifier not loaded: weights not found at"
    )
    assert "AC, APAD and TAD are not measured" in models.unavailable["abdomen-segmentation"]


def test_a_frame_the_model_raises_on_is_marked_and_the_others_are_classified(
    classifier, sweep
) -> None:
    frames = list(sweep.frames[:10])
    numbers = list(range(1, 11))
    clean = pipeline.classify_frames(classifier, frames, frame_numbers=numbers)
    faulty = pipeline.classify_frames(classifier, frames, frame_numbers=numbers, fail_frames={4})
    assert [r.failed for r in faulty] == [n == 4 for n in numbers]
    assert (
        faulty[3].reason == "plane classifier failed: FrameFault: injected model fault on frame 4"
    )
    assert faulty[3].plane_probs == {}
    # Every other frame is classified exactly as without the fault (retried alone, same inputs).
    for a, b in zip(clean, faulty, strict=True):
        if b.frame != 4:
            assert a.plane_probs == pytest.approx(b.plane_probs, abs=2e-6)


def test_malformed_frames_fail_alone_with_a_reason(classifier, sweep) -> None:
    nan = np.full((160, 200), np.nan, np.float32)
    tiny = np.zeros((8, 8), np.uint8)
    frames = [sweep.frames[0], nan, tiny, sweep.frames[1]]
    out = pipeline.classify_frames(classifier, frames, frame_numbers=[1, 2, 3, 4])
    assert [r.failed for r in out] == [False, True, True, False]
    assert out[1].reason == "frame contains NaN or infinite pixel values"
    assert out[2].reason == "frame of 8×8 px is too small to classify"
    with pytest.raises(ValueError, match="2 frames but 1 frame numbers"):
        pipeline.classify_frames(classifier, frames[:2], frame_numbers=[1])


def test_results_do_not_depend_on_how_a_cine_is_split_into_batches(classifier, sweep) -> None:
    from inference.planes.preprocess import fov_bbox

    bbox = fov_bbox(sweep.frames.max(axis=0))
    frames, numbers = list(sweep.frames[:12]), list(range(1, 13))
    whole = pipeline.classify_frames(classifier, frames, frame_numbers=numbers, bbox=bbox)
    parts = pipeline.classify_frames(
        classifier, frames[:5], frame_numbers=numbers[:5], bbox=bbox
    ) + pipeline.classify_frames(classifier, frames[5:], frame_numbers=numbers[5:], bbox=bbox)
    for a, b in zip(whole, parts, strict=True):
        assert a.frame == b.frame
        assert a.plane_probs == pytest.approx(b.plane_probs, abs=2e-6)
        assert a.top_plane == b.top_plane


def _frame(n: int, plane: str, p: float, brain: str | None = None) -> pipeline.FramePlanes:
    rest = (1 - p) / 5
    planes = {k: (p if k == plane else rest) for k in pipeline.taxonomy.PLANE_KEYS}
    brains = {k: (0.97 if k == brain else 0.01) for k in pipeline.taxonomy.BRAIN_PLANE_KEYS}
    return pipeline.FramePlanes(frame=n, plane_probs=planes, brain_probs=brains, top_plane=plane)


def test_best_frames_across_instances_with_flags_and_failed_frames_never_chosen() -> None:
    cine = [_frame(n, "other", 0.9) for n in range(1, 21)]
    for n in range(4, 13):
        cine[n - 1] = _frame(n, "fetal_brain", 0.95, "trans_thalamic")
    for n in range(14, 17):
        cine[n - 1] = _frame(n, "fetal_abdomen", 0.5)
    cine[7] = pipeline.FramePlanes(frame=8, failed=True, reason="broken")  # middle of the head run
    single = [_frame(1, "fetal_femur", 0.4)]
    best = pipeline.choose_best_frames(
        {101: cine, 102: single},
        ["head_trans_thalamic", "abdomen_ac", "femur_fl", "kidneys", "thorax_four_chamber"],
        frame_time_ms={101: 40.0, 102: None},
    )
    head = best["head_trans_thalamic"]
    assert (head.source, head.flag) == (101, "optimal")
    assert head.frame in {6, 7, 9, 10}  # the middle of the run, never the failed frame 8
    assert head.score >= 0.6
    abdomen = best["abdomen_ac"]
    assert (abdomen.source, abdomen.frame, abdomen.flag) == (101, 15, "sub_optimal")
    femur = best["femur_fl"]
    assert (femur.source, femur.frame, femur.flag) == (102, 1, "sub_optimal")
    assert femur.score == pytest.approx(0.4)
    assert best["thorax_four_chamber"].flag == "absent"
    assert best["thorax_four_chamber"].frame is None
    assert best["kidneys"].flag == "absent"
    assert best["kidneys"].evidence["reason"].startswith("no model recognises this view yet")
    assert len(head.candidates) == 3
    assert all(source == 101 for _, source, _ in head.candidates)


def test_head_measurements_in_px_and_mm_only_with_a_calibration_holding_all_points() -> None:
    from inference.geometry import Ellipse

    e = Ellipse(160.0, 120.0, 60.0, 48.0, 0.3)
    cal = pipeline.PixelCalibration(0.25, 0.25, "us_regions", ref=7)
    by = {m.kind: m for m in pipeline.head_measurements(e, lambda pts: cal, confidence=0.9)}
    assert set(by) == {"HC", "BPD", "OFD", "CI"}
    hc = by["HC"]
    assert hc.geometry_px == {
        "type": "ellipse",
        "cx": 160.0,
        "cy": 120.0,
        "a": 60.0,
        "b": 48.0,
        "angle": 0.3,
    }
    assert hc.value_px == pytest.approx(e.perimeter, abs=1e-3)
    assert hc.value_mm == pytest.approx(e.perimeter * 0.25, abs=1e-3)
    assert hc.geometry_mm == {
        "type": "ellipse",
        "cx": 40.0,
        "cy": 30.0,
        "a": 15.0,
        "b": 12.0,
        "angle": 0.3,
    }
    assert hc.calibration.ref == 7
    assert (by["BPD"].value_px, by["BPD"].value_mm) == (pytest.approx(96.0), pytest.approx(24.0))
    assert by["BPD"].convention == "outer-to-outer"
    assert (by["OFD"].value_px, by["OFD"].value_mm) == (pytest.approx(120.0), pytest.approx(30.0))
    assert by["CI"].value_mm == pytest.approx(80.0)
    assert by["CI"].unit == "%"

    # A region that holds only the left half of the image: the outline and the OFD calipers
    # straddle it, so they stay in px; the BPD calipers (x = 160 ± 48·sin 0.3) lie on both sides
    # too. Nothing gets a guessed mm value.
    def left_only(pts: np.ndarray) -> pipeline.PixelCalibration | None:
        return cal if (pts[:, 0] <= 160.0).all() else None

    partial = {m.kind: m for m in pipeline.head_measurements(e, left_only)}
    for kind in ("HC", "BPD", "OFD", "CI"):
        assert partial[kind].value_mm is None, kind
        assert partial[kind].geometry_mm is None, kind
    assert partial["HC"].value_px == pytest.approx(hc.value_px)
    # No calibration callback at all (an image without calibration): px only.
    assert all(m.value_mm is None for m in pipeline.head_measurements(e, None))


def test_the_head_model_on_a_phantom_frame_gives_a_mask_and_a_consistent_result(head) -> None:
    f = make_frame("fetal_brain", seed=2, brain_plane="trans_thalamic")
    cal = pipeline.PixelCalibration(f.pixel_mm, f.pixel_mm, "us_regions", ref=7)
    got = pipeline.measure_head_frame(head, f.image, lambda pts: cal)
    # The shipped weights change while training runs: assert what holds for any checkpoint.
    if not got.found:
        assert got.reason, "a frame without a head must say why"
        assert got.measurements == []
        return
    by = {m.kind: m for m in got.measurements}
    assert by["HC"].value_mm == pytest.approx(by["HC"].value_px * f.pixel_mm, rel=1e-4)
    assert by["HC"].model.name == "head-unet"
    assert got.ellipse is not None
    assert any(s.structure == "skull" and s.mask.shape == f.image.shape for s in got.segmentations)


def test_the_head_segmenter_loads_the_crop_model_from_its_own_snapshot(tmp_path: Path) -> None:
    refine = pipeline.DEFAULT_HEAD_WEIGHTS.with_name("head_refine.pt")
    if not refine.is_file():
        pytest.skip(f"shipped crop model not found at {refine}")
    seg = pipeline.HeadSegmenter(pipeline.DEFAULT_HEAD_WEIGHTS, snapshot_dir=tmp_path)
    # both files are snapshotted (the first pass's snapshot has no neighbour to look beside)
    assert seg.predictor.refine_model is not None
    digest = hashlib.sha256(refine.read_bytes()).hexdigest()
    assert (tmp_path / f"{digest}.pt").is_file()
    assert seg.info.version.endswith(f"+refine-{digest[:12]}")


def test_non_square_pixels_measure_the_scaled_outline() -> None:
    from inference.geometry import Ellipse

    e = Ellipse(100, 80, 40, 30, 0.0)
    cal = pipeline.PixelCalibration(0.2, 0.1)
    assert not cal.isotropic
    # Axis-aligned: in mm the ellipse has semi-axes 8 and 3 mm.
    expected = Ellipse(0, 0, 8.0, 3.0, 0.0).perimeter
    assert pipeline._ellipse_perimeter_mm(e, cal) == pytest.approx(expected, rel=1e-5)
    assert pipeline._length_mm((0, 0), (10, 10), cal) == pytest.approx(math.hypot(2, 1))


def test_quality_criteria_for_a_head_ellipse_and_an_unmeasured_femur() -> None:
    from inference.geometry import Ellipse, rasterize_ellipse

    f = make_frame("fetal_brain", seed=2, brain_plane="trans_thalamic")
    truth = f.landmarks["head"]  # the phantom's true outer-skull ellipse (px)
    e = Ellipse.from_axes(truth.cx, truth.cy, truth.a, truth.b, truth.angle)
    ring = rasterize_ellipse(f.image.shape, e).astype(bool)
    head = pipeline.FrameMeasurements(
        True,
        confidence=0.9,
        measurements=pipeline.head_measurements(e, None),
        segmentations=[pipeline.Segmentation("skull", ring)],
        ellipse=e,
    )
    q = pipeline.assess_quality("head_trans_thalamic", f.image, head=head)
    verdicts = {r.key: r.verdict.value for r in q.results}
    assert len(verdicts) == 6
    assert f.criteria["head_over_30pct"] is True
    assert verdicts["head.fills_30pct"] == "met"
    assert verdicts["head.calipers_outer_skull"] == "met"  # the ellipse is the mask's outline
    assert verdicts["head.thalami_visible"] == "not_assessable"  # no detector yet
    femur = make_frame("fetal_femur", seed=1)
    fq = pipeline.assess_quality("femur_fl", femur.image)
    assert len(fq.results) == 4
    assert pipeline.assess_quality("kidneys", femur.image) is None
    none = pipeline.assess_quality("abdomen_ac", None)
    assert {r.verdict.value for r in none.results} == {"not_assessable"}


def test_derived_biometry_uses_only_mm_values_and_carries_formula_identities() -> None:
    hc = pipeline.Measurement("HC", {"type": "ellipse"}, 700.0, value_mm=172.5)
    bpd = pipeline.Measurement("BPD", {"type": "line"}, 190.0, value_mm=None)
    derived, not_computed = pipeline.derive_biometry([hc, bpd])
    keys = {d.key for d in derived}
    assert "ga.hadlock1984.hc" in keys
    assert not any("bpd" in k for k in keys)  # BPD had no mm value
    ga = next(d for d in derived if d.key == "ga.hadlock1984.hc")
    assert ga.kind == "GA"
    assert ga.unit == "d"
    assert ga.formula["key"] == "ga.hadlock1984.hc"
    assert "dicom_code" in ga.formula
    assert ga.display["ga_weeks_days"].startswith("19w") or ga.display["ga_weeks_days"].startswith(
        "20w"
    )
    assert any("missing measurement" in n["reason"] for n in not_computed)
    nothing, why = pipeline.derive_biometry([bpd])
    assert nothing == []
    assert why == [
        {"key": "all", "name": "biometry", "reason": "no calibrated measurement (mm) to use"}
    ]


def test_the_traced_network_gives_the_eager_networks_probabilities(
    classifier, sweep, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SONOREVIEW_TORCH_OPTIMISE", "0")
    eager = pipeline.PlaneClassifier(Path(classifier.info.weights_path))
    assert not hasattr(eager.predictor.model, "graph")  # plain nn.Module
    assert hasattr(classifier.predictor.model, "graph")  # TorchScript
    frames, numbers = list(sweep.frames[:8]), list(range(1, 9))
    a = pipeline.classify_frames(eager, frames, frame_numbers=numbers)
    b = pipeline.classify_frames(classifier, frames, frame_numbers=numbers)
    for x, y in zip(a, b, strict=True):
        assert x.plane_probs == pytest.approx(y.plane_probs, abs=2e-6)
        assert x.brain_probs == pytest.approx(y.brain_probs, abs=2e-6)


def test_a_brain_plane_with_an_uncertain_sub_plane_is_proposed_for_hc_as_sub_optimal() -> None:
    cine = [_frame(n, "other", 0.9) for n in range(1, 21)]
    for n in range(5, 12):
        cine[n - 1] = _frame(n, "fetal_brain", 0.97)  # sub-plane probabilities all 0.01
    best = pipeline.choose_best_frames(
        {1: cine}, ["head_trans_thalamic", "head_trans_ventricular"], frame_time_ms={1: 40.0}
    )
    head = best["head_trans_thalamic"]
    assert head.flag == "sub_optimal"
    assert head.frame in range(6, 11)
    assert head.evidence["fallback"].startswith("fetal_brain found but no frame scores as")
    assert len(head.candidates) == 3
    # Views without a measurement are not guessed this way.
    assert best["head_trans_ventricular"].flag == "absent"
