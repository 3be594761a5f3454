"""Analysis pipeline: frames in, AI findings out (pure orchestration of the models; no Django).

Steps, one function each, so the web application can run them in separate tasks:

1. :func:`load_models` — weights read once per process, each tagged with a :class:`ModelInfo`
   (name, version, SHA-256 of the exact bytes loaded). A weights file that changes on disk later
   does not change a loaded model: the bytes are hashed and loaded from a private snapshot.
2. :func:`classify_frames` — per-frame plane probabilities for a batch of frames
   (N frames, each (rows, cols) uint8 grey or (rows, cols, 3) RGB). A frame the model raises on is
   marked failed with the reason; the other frames of the batch are classified anyway.
3. :func:`choose_best_frames` — per protocol view, the best frame over every instance of the exam
   (temporal smoothing within a cine, :mod:`inference.planes.cine`) and its flag
   (optimal / sub_optimal / absent).
4. :func:`measure_head_frame` — skull segmentation, ellipse and HC / BPD / OFD / CI on a chosen
   frame. Lengths in mm only from a calibration that holds *all* points of the measurement
   (the caller's ``calibrate`` callback decides; None → px only, never a guessed mm value).
   :func:`measure_structure_views` — the structure U-Net (phantom-trained, **not validated on real
   images**) on the abdomen and femur views' chosen frames (AC / APAD / TAD, FL, with the same
   calibration rule) and on the head view's frame (thalami, cavum septi pellucidi, cerebellum).
5. :func:`assess_quality` — Salomon 2006 criteria the available evidence can judge; the rest are
   ``not_assessable`` (never guessed).
6. :func:`derive_biometry` — GA / EFW (and centiles when a GA from dates is given) with the formula
   identity (incl. DICOM codes) from :mod:`inference.biometry`.

:func:`analyse_frames` runs all steps on one cine in-process (benchmarks, demos, tests).

Coordinates are pixels of the original frame, x = column, y = row; frame numbers are the caller's
(the web application uses DICOM's 1-based frame numbers). Without the structure weights the
abdomen and femur views get a best frame and quality criteria but no measurement, and
:attr:`Models.unavailable` says so.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from inference.planes import taxonomy

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_PLANES_WEIGHTS = WEIGHTS_DIR / "planes_classifier.pt"
DEFAULT_HEAD_WEIGHTS = WEIGHTS_DIR / "head_unet.pt"
DEFAULT_STRUCTURES_WEIGHTS = WEIGHTS_DIR / "structures_unet.pt"

PLANES_MODEL = "planes-classifier"
HEAD_MODEL = "head-unet"
STRUCTURES_MODEL = "structures-unet"
#: Said with every measurement and criterion from the structure model.
NOT_VALIDATED = "not validated on real images"

OPTIMAL = "optimal"
SUB_OPTIMAL = "sub_optimal"
ABSENT = "absent"

#: Best-frame thresholds on the smoothed view score and the smoothing width (as
#: inference.planes.cine.best_frames).
OPTIMAL_AT = 0.6
PRESENT_AT = 0.25
SMOOTH_MS = 60.0
#: A head ellipse whose confidence is below this makes the head plane at most sub-optimal.
HEAD_OPTIMAL_CONFIDENCE = 0.7
#: Candidate frames per head view re-ranked by the head model (classifier score × confidence).
HEAD_CANDIDATES = 3
#: Probabilities are stored rounded, so a re-run on the same bytes gives identical findings.
PROB_DECIMALS = 6


class FrameFault(RuntimeError):
    """A fault injected for one frame (tests of the "model raises on one frame" path)."""


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """Which model produced a finding: name, version, SHA-256 of the weights bytes, card."""

    name: str
    version: str
    weights_sha256: str
    weights_path: str
    task: str = ""
    model_card: str = ""
    model_card_path: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "weights_sha256": self.weights_sha256,
            "weights_path": self.weights_path,
            "task": self.task,
        }


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def snapshot_weights(path: Path, snapshot_dir: Path | None = None) -> tuple[Path, str]:
    """Hash the weights file's bytes and write them to ``snapshot_dir/<sha>.pt``.

    The model is then loaded from the snapshot, so the recorded hash is the hash of what was
    loaded even when training overwrites ``path`` meanwhile. Returns (snapshot path, sha256).
    Raises FileNotFoundError naming the path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights not found at {path}")
    data = path.read_bytes()
    digest = sha256_of(data)
    folder = Path(snapshot_dir or Path(tempfile.gettempdir()) / "sonoreview-weights")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{digest}{path.suffix}"
    if not target.is_file():
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return target, digest


def _model_card(weights: Path) -> tuple[str, str]:
    """(card text, card path) for weights: ``<stem>.md`` or ``<stem>.model_card.md`` beside them,
    or the card that ``<stem>.metrics.json`` names in its ``model_card`` key, else that metrics
    file itself (the training command's measured metrics)."""
    metrics = weights.with_name(f"{weights.stem}.metrics.json")
    named_card: list[Path] = []
    if metrics.is_file():
        try:
            name = json.loads(metrics.read_text()).get("model_card")
        except (ValueError, AttributeError):
            name = None
        if isinstance(name, str) and name:
            named_card.append(weights.with_name(Path(name).name))
    for candidate in (
        weights.with_suffix(".md"),
        weights.with_name(f"{weights.stem}.model_card.md"),
        *named_card,
        metrics,
    ):
        if candidate.is_file():
            return candidate.read_text(errors="replace")[:20000], str(candidate)
    return "", ""


def optimise_for_inference(model: Any, example_shape: tuple[int, ...], device: str) -> Any:
    """The network traced and frozen for inference (batch-norm folded into the convolutions).

    About twice as fast on CPU for these small networks; outputs equal the eager model's to
    float rounding (checked in tests/inference/test_pipeline.py). ``SONOREVIEW_TORCH_OPTIMISE=0``
    keeps the eager model; a model that cannot be traced is returned unchanged.
    """
    if os.environ.get("SONOREVIEW_TORCH_OPTIMISE", "1") == "0":
        return model
    import torch

    try:
        # TorchScript is deprecated in favour of torch.compile, which needs a compiler toolchain
        # at run time and compiles per input shape; tracing is still the cheap win on CPU here.
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore", DeprecationWarning)
            example = torch.zeros(example_shape, device=device)
            traced = torch.jit.trace(model.eval(), example, check_trace=False)
            return torch.jit.optimize_for_inference(traced)
    except Exception:  # tracing is an optimisation only
        return model


class PlaneClassifier:
    """The plane classifier (:class:`inference.planes.model.Predictor`) with its identity."""

    def __init__(self, weights: Path, *, device: str = "cpu", snapshot_dir: Path | None = None):
        from inference.planes.model import Predictor

        snapshot, digest = snapshot_weights(weights, snapshot_dir)
        self.predictor = Predictor(snapshot, device=device)
        meta = self.predictor.meta
        version = str(meta.get("version") or f"planenet-w{meta.get('width', 24)}-{digest[:12]}")
        card, card_path = _model_card(Path(weights))
        self.info = ModelInfo(
            PLANES_MODEL, version, digest, str(weights), "plane classification", card, card_path
        )
        self.input_size = self.predictor.input_size
        self.predictor.model = optimise_for_inference(
            self.predictor.model, (2, 1, self.input_size, self.input_size), device
        )

    def probabilities(
        self,
        frames: Sequence[NDArray],
        *,
        bbox: tuple[int, int, int, int] | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """(plane probs (N, 6), brain sub-plane probs (N, 4)) for frames sharing ``bbox``."""
        from inference.planes.preprocess import prepare

        batch = np.stack([prepare(f, self.input_size, bbox) for f in frames])
        pred = self.predictor.predict_prepared(batch)
        return pred.plane_probs, pred.brain_probs


class HeadSegmenter:
    """The head U-Net (:class:`inference.head.predict.HeadPredictor`) with its identity."""

    def __init__(self, weights: Path, *, device: str = "cpu", snapshot_dir: Path | None = None):
        from inference.head.predict import REFINE_WEIGHTS_NAME, HeadPredictor

        snapshot, digest = snapshot_weights(weights, snapshot_dir)
        # the crop model ("second look") lies beside the first-pass weights; it is snapshotted
        # too, so the version names what was loaded (a snapshot has no neighbours to look at)
        refine_src = Path(weights).with_name(REFINE_WEIGHTS_NAME)
        refine = snapshot_weights(refine_src, snapshot_dir)[0] if refine_src.is_file() else False
        self.predictor = HeadPredictor(snapshot, device=device, refine=refine)
        self.predictor.model = optimise_for_inference(
            self.predictor.model, (1, 1, *self.predictor.net_shape), device
        )
        if self.predictor.refine_model is not None:
            self.predictor.refine_model = optimise_for_inference(
                self.predictor.refine_model, (1, 1, *self.predictor.refine_shape), device
            )
        card, card_path = _model_card(Path(weights))
        self.info = ModelInfo(
            HEAD_MODEL,
            self.predictor.version,
            digest,
            str(weights),
            "skull segmentation and head biometry",
            card,
            card_path,
        )


class StructureSegmenter:
    """The structure U-Net (:class:`inference.structures.predict.StructurePredictor`) with its
    identity: abdomen, stomach, umbilical vein, kidneys, spine, ribs, femur, thalami, cavum septi
    pellucidi, cerebellum. Trained on the phantom only: not validated on real images."""

    def __init__(self, weights: Path, *, device: str = "cpu", snapshot_dir: Path | None = None):
        from inference.structures.predict import FEMUR_REFINE_WEIGHTS_NAME, StructurePredictor

        snapshot, digest = snapshot_weights(weights, snapshot_dir)
        # the femur crop model lies beside the first-pass weights and is snapshotted too (as the
        # head's), so the version names what was loaded
        refine_src = Path(weights).with_name(FEMUR_REFINE_WEIGHTS_NAME)
        refine = snapshot_weights(refine_src, snapshot_dir)[0] if refine_src.is_file() else False
        self.predictor = StructurePredictor(snapshot, device=device, femur_refine=refine)
        self.predictor.model = optimise_for_inference(
            self.predictor.model, (1, 1, *self.predictor.net_shape), device
        )
        if self.predictor.femur_model is not None:
            self.predictor.femur_model = optimise_for_inference(
                self.predictor.femur_model, (1, 1, *self.predictor.femur_shape), device
            )
        card, card_path = _model_card(Path(weights))
        self.info = ModelInfo(
            STRUCTURES_MODEL,
            self.predictor.version,
            digest,
            str(weights),
            f"abdomen, femur and brain structure segmentation (phantom-trained; {NOT_VALIDATED})",
            card,
            card_path,
        )


@dataclass
class Models:
    """The models of one worker process; ``unavailable`` names each missing one and why."""

    planes: PlaneClassifier | None = None
    head: HeadSegmenter | None = None
    structures: StructureSegmenter | None = None
    unavailable: dict[str, str] = field(default_factory=dict)

    def infos(self) -> list[ModelInfo]:
        return [m.info for m in (self.planes, self.head, self.structures) if m is not None]


def load_models(
    *,
    planes_weights: Path | str | None = DEFAULT_PLANES_WEIGHTS,
    head_weights: Path | str | None = DEFAULT_HEAD_WEIGHTS,
    structures_weights: Path | str | None = DEFAULT_STRUCTURES_WEIGHTS,
    device: str = "cpu",
    snapshot_dir: Path | None = None,
) -> Models:
    """Load every model whose weights exist; a missing or unreadable one is listed, not fatal."""
    models = Models()
    if planes_weights is not None:
        try:
            models.planes = PlaneClassifier(
                Path(planes_weights), device=device, snapshot_dir=snapshot_dir
            )
        except (FileNotFoundError, ValueError, RuntimeError, KeyError) as exc:
            models.unavailable[PLANES_MODEL] = f"plane classifier not loaded: {exc}"
    if head_weights is not None:
        try:
            models.head = HeadSegmenter(
                Path(head_weights), device=device, snapshot_dir=snapshot_dir
            )
        except (FileNotFoundError, ValueError, RuntimeError, KeyError) as exc:
            models.unavailable[HEAD_MODEL] = f"head model not loaded: {exc}"
    problem = "no structure weights given"
    if structures_weights is not None:
        try:
            models.structures = StructureSegmenter(
                Path(structures_weights), device=device, snapshot_dir=snapshot_dir
            )
        except (FileNotFoundError, ValueError, RuntimeError, KeyError) as exc:
            problem = f"structure model not loaded: {exc}"
    if models.structures is None:
        models.unavailable["abdomen-segmentation"] = f"{problem}: AC, APAD and TAD are not measured"
        models.unavailable["femur-segmentation"] = f"{problem}: FL is not measured"
        models.unavailable["structure-detection"] = (
            f"{problem}: thalami, cavum septi pellucidi, cerebellum, stomach, umbilical vein and "
            "kidney criteria are not assessable"
        )
    return models


# --------------------------------------------------------------------------------------------
# Step 2: per-frame plane probabilities
# --------------------------------------------------------------------------------------------


@dataclass
class FramePlanes:
    """One frame's plane probabilities (keys of the taxonomy), or why it could not be classified."""

    frame: int
    plane_probs: dict[str, float] = field(default_factory=dict)
    brain_probs: dict[str, float] = field(default_factory=dict)
    top_plane: str = ""
    top_brain_plane: str | None = None
    top_view: str | None = None
    top_probability: float = 0.0
    failed: bool = False
    reason: str = ""

    def probabilities_json(self) -> dict[str, dict[str, float]]:
        return {"planes": dict(self.plane_probs), "brain_planes": dict(self.brain_probs)}


def _frame_planes(frame: int, plane_row: NDArray, brain_row: NDArray) -> FramePlanes:
    planes = {
        k: round(float(v), PROB_DECIMALS)
        for k, v in zip(taxonomy.PLANE_KEYS, plane_row, strict=True)
    }
    brains = {
        k: round(float(v), PROB_DECIMALS)
        for k, v in zip(taxonomy.BRAIN_PLANE_KEYS, brain_row, strict=True)
    }
    top = max(planes, key=lambda k: planes[k])
    sub = max(brains, key=lambda k: brains[k]) if top == "fetal_brain" else None
    view = taxonomy.view_for_label(top, sub)
    return FramePlanes(
        frame=frame,
        plane_probs=planes,
        brain_probs=brains,
        top_plane=top,
        top_brain_plane=sub,
        top_view=view.key if view else None,
        top_probability=planes[top],
    )


def _check_frame(frame: NDArray) -> None:
    a = np.asarray(frame)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ValueError(f"frame has shape {a.shape}; need (rows, cols) or (rows, cols, 3)")
    if min(a.shape[:2]) < 16:
        raise ValueError(f"frame of {a.shape[1]}×{a.shape[0]} px is too small to classify")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError("frame contains NaN or infinite pixel values")


def classify_frames(
    classifier: PlaneClassifier,
    frames: Sequence[NDArray],
    *,
    frame_numbers: Sequence[int],
    bbox: tuple[int, int, int, int] | None = None,
    fail_frames: Collection[int] = (),
) -> list[FramePlanes]:
    """Plane probabilities for each frame (one batch of one instance).

    ``frames``: (rows, cols) uint8 grey or (rows, cols, 3) RGB, sharing one field of view;
    ``bbox`` (row0, row1, col0, col1) is that field of view's box (pass the same box for every
    batch of an instance so a frame's result does not depend on how the cine was split).
    ``fail_frames``: frame numbers for which the model call raises :class:`FrameFault` (the
    test hook for the per-frame failure path). One batched model call; if it raises, each frame
    is retried alone and only the frames that still raise are marked failed.
    """
    if len(frames) != len(frame_numbers):
        raise ValueError(f"{len(frames)} frames but {len(frame_numbers)} frame numbers")
    faults = set(fail_frames)
    results: dict[int, FramePlanes] = {}
    ok: list[int] = []
    for i, (frame, number) in enumerate(zip(frames, frame_numbers, strict=True)):
        try:
            _check_frame(frame)
            ok.append(i)
        except ValueError as exc:
            results[i] = FramePlanes(frame=number, failed=True, reason=str(exc))

    def run(indices: list[int]) -> tuple[NDArray, NDArray]:
        bad = [frame_numbers[i] for i in indices if frame_numbers[i] in faults]
        if bad:
            raise FrameFault(f"injected model fault on frame {bad[0]}")
        return classifier.probabilities([frames[i] for i in indices], bbox=bbox)

    if ok:
        try:
            planes, brains = run(ok)
            for j, i in enumerate(ok):
                results[i] = _frame_planes(frame_numbers[i], planes[j], brains[j])
        except Exception:
            for i in ok:
                try:
                    planes, brains = run([i])
                    results[i] = _frame_planes(frame_numbers[i], planes[0], brains[0])
                except Exception as exc:  # one frame's failure must not fail the batch
                    results[i] = FramePlanes(
                        frame=frame_numbers[i],
                        failed=True,
                        reason=f"plane classifier failed: {type(exc).__name__}: {exc}",
                    )
    return [results[i] for i in range(len(frames))]


# --------------------------------------------------------------------------------------------
# Step 3: best frame per view
# --------------------------------------------------------------------------------------------


@dataclass
class BestFrameChoice:
    """The frame chosen for a view (``source`` identifies the instance), or absent."""

    view: str
    source: Any = None
    frame: int | None = None
    score: float = 0.0
    flag: str = ABSENT
    evidence: dict[str, Any] = field(default_factory=dict)
    candidates: list[tuple[float, Any, int]] = field(default_factory=list)  # (score, source, frame)


def recognised(view_key: str) -> bool:
    return taxonomy.view(view_key).classifier_label is not None


def choose_best_frames(
    per_source: Mapping[Any, Sequence[FramePlanes]],
    views: Sequence[str],
    *,
    frame_time_ms: Mapping[Any, float | None] | None = None,
    top_k: int = HEAD_CANDIDATES,
) -> dict[str, BestFrameChoice]:
    """Best frame per view over every source (instance) of an exam.

    ``per_source``: source key → that instance's frames in temporal order (failed frames count as
    probability 0 so they are never chosen). Within a cine the view score is smoothed over time
    (:func:`inference.planes.cine.best_frames`); the best source is the one with the highest score
    (ties: the first source in sorted key order). ``evidence['candidates']`` lists the ``top_k``
    best (source, frame, score) for the view, for later re-ranking by a measurement model.
    """
    from inference.planes.cine import smooth, view_scores
    from inference.planes.model import PlanePrediction

    out: dict[str, BestFrameChoice] = {}
    recognisable = [v for v in views if recognised(v)]
    for v in views:
        if not recognised(v):
            out[v] = BestFrameChoice(
                v, evidence={"reason": "no model recognises this view yet; a person marks it"}
            )
    candidates: dict[str, list[tuple[float, Any, int]]] = {v: [] for v in recognisable}
    # Views measured on a brain sub-plane (HC/BPD/OFD on trans-thalamic): also rank frames by the
    # plane alone, used only when no frame scores as the sub-plane (the sub-plane head is the
    # weaker one); such a choice is at best sub-optimal and says why.
    fallback: dict[str, list[tuple[float, Any, int]]] = {
        v: []
        for v in recognisable
        if taxonomy.view(v).measurements and taxonomy.view(v).classifier_label[1] is not None
    }
    for source in sorted(per_source, key=str):
        rows = list(per_source[source])
        if not rows or not recognisable:
            continue
        plane = np.array(
            [
                [r.plane_probs.get(k, 0.0) for k in taxonomy.PLANE_KEYS]
                if not r.failed
                else [0.0] * 6
                for r in rows
            ],
            np.float64,
        )
        brain = np.array(
            [
                [r.brain_probs.get(k, 0.0) for k in taxonomy.BRAIN_PLANE_KEYS]
                if not r.failed
                else [0.0] * 4
                for r in rows
            ],
            np.float64,
        )
        ft = (frame_time_ms or {}).get(source)
        pred = PlanePrediction(plane, brain)
        failed = np.array([r.failed for r in rows], bool)
        for v in recognisable:
            # As inference.planes.cine.best_frames (Gaussian smoothing over time, arg-max), but a
            # failed frame is never proposed even when its neighbours lift its smoothed score.
            s = smooth(view_scores(pred, v), SMOOTH_MS / (ft or 40.0))
            s[failed] = -1.0
            for idx in np.argsort(-s, kind="stable")[:top_k]:
                if s[idx] >= PRESENT_AT:
                    candidates[v].append((round(float(s[idx]), 4), source, rows[int(idx)].frame))
            if v in fallback:
                plane_key = taxonomy.view(v).classifier_label[0]
                p = smooth(plane[:, taxonomy.PLANE_KEYS.index(plane_key)], SMOOTH_MS / (ft or 40.0))
                p[failed] = -1.0
                for idx in np.argsort(-p, kind="stable")[:top_k]:
                    if p[idx] >= OPTIMAL_AT:
                        fallback[v].append((round(float(p[idx]), 4), source, rows[int(idx)].frame))
    for v in recognisable:
        if not candidates[v] and fallback.get(v):
            picks = sorted(fallback[v], key=lambda c: (-c[0], str(c[1]), c[2]))[:top_k]
            score, source, frame = picks[0]
            plane_key, sub_key = taxonomy.view(v).classifier_label
            out[v] = BestFrameChoice(
                v,
                source,
                frame,
                float(score),
                SUB_OPTIMAL,
                {
                    "classifier_score": float(score),
                    "fallback": f"{plane_key} found but no frame scores as {sub_key}: "
                    "the most likely frames of the plane are proposed for a person to confirm",
                    "candidates": [
                        {"source": str(s_), "frame": f, "score": float(sc)} for sc, s_, f in picks
                    ],
                },
                picks,
            )
            continue
        cands = sorted(candidates[v], key=lambda c: (-c[0], str(c[1]), c[2]))
        seen: set[tuple[str, int]] = set()
        unique = []
        for c in cands:
            if (str(c[1]), c[2]) not in seen:
                seen.add((str(c[1]), c[2]))
                unique.append(c)
        if not unique:
            out[v] = BestFrameChoice(v, evidence={"reason": "no frame scores as this view"})
            continue
        score, source, frame = unique[0]
        flag = OPTIMAL if score >= OPTIMAL_AT else SUB_OPTIMAL
        out[v] = BestFrameChoice(
            v,
            source,
            frame,
            float(score),
            flag,
            {
                "classifier_score": float(score),
                "candidates": [
                    {"source": str(s_), "frame": f, "score": float(sc)}
                    for sc, s_, f in unique[:top_k]
                ],
            },
            unique[:top_k],
        )
    return out


# --------------------------------------------------------------------------------------------
# Step 4: measurements
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PixelCalibration:
    """mm per pixel along x (columns) and y (rows) and which calibration region/source gave it."""

    mm_per_px_x: float
    mm_per_px_y: float
    source: str = ""
    ref: Any = None

    @property
    def isotropic(self) -> bool:
        return math.isclose(self.mm_per_px_x, self.mm_per_px_y, rel_tol=1e-6)


#: points (N, 2) as (x, y) px → the calibration holding ALL of them, or None (px only).
Calibrate = Callable[[NDArray[np.float64]], PixelCalibration | None]


@dataclass
class Measurement:
    """One AI measurement: geometry in px (and mm when calibrated), value, convention, source."""

    kind: str
    geometry_px: dict[str, Any]
    value_px: float
    unit: str = "mm"
    geometry_mm: dict[str, Any] | None = None
    value_mm: float | None = None
    calibration: PixelCalibration | None = None
    convention: str = ""
    method: str = ""
    confidence: float | None = None
    model: ModelInfo | None = None


@dataclass
class Segmentation:
    """A structure's mask on the frame (bool, rows × cols)."""

    structure: str
    mask: NDArray[np.bool_]
    model: ModelInfo | None = None


@dataclass
class FrameMeasurements:
    """What the measurement models made of one chosen frame."""

    found: bool
    reason: str = ""
    confidence: float = 0.0
    measurements: list[Measurement] = field(default_factory=list)
    segmentations: list[Segmentation] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    ellipse: Any = None  # inference.geometry.Ellipse of the outer skull / skin line (px)
    structures: Any = None  # inference.structures.predict.StructurePrediction of the frame
    abdomen: Any = None  # inference.abdomen.AbdomenMeasurement
    femur: Any = None  # inference.femur.FemurMeasurement


def _length_mm(p0: Sequence[float], p1: Sequence[float], cal: PixelCalibration) -> float:
    return math.hypot((p1[0] - p0[0]) * cal.mm_per_px_x, (p1[1] - p0[1]) * cal.mm_per_px_y)


def _ellipse_perimeter_mm(ellipse: Any, cal: PixelCalibration) -> float:
    if cal.isotropic:
        return float(ellipse.perimeter) * cal.mm_per_px_x
    # Non-square pixels: the ellipse in mm is still an ellipse but with other axes; measure the
    # scaled outline directly (4096 points: relative error < 1e-6).
    pts = ellipse.points(4096) * np.array([cal.mm_per_px_x, cal.mm_per_px_y])
    return float(np.linalg.norm(np.diff(np.vstack([pts, pts[:1]]), axis=0), axis=1).sum())


def _points_px(points: Sequence[Sequence[float]]) -> list[list[float]]:
    return [[round(float(x), 3), round(float(y), 3)] for x, y in points]


def _points_mm(points: Sequence[Sequence[float]], cal: PixelCalibration) -> list[list[float]]:
    return [[round(x * cal.mm_per_px_x, 3), round(y * cal.mm_per_px_y, 3)] for x, y in points]


def head_measurements(
    e: Any,
    calibrate: Calibrate | None,
    *,
    confidence: float | None = None,
    model: ModelInfo | None = None,
) -> list[Measurement]:
    """HC, BPD, OFD and CI from an outer-skull ellipse ``e`` (px), mm only where ``calibrate``
    returns one calibration for all the points of that measurement.

    HC = Ramanujan perimeter (72 outline points must be covered); BPD = minor axis,
    outer-to-outer; OFD = major axis (each: its two caliper ends must be covered); CI =
    BPD / OFD × 100 (from mm when both are calibrated).
    """
    from inference.head.predict import BPD_CONVENTION, HC_METHOD

    ellipse_px = {k: round(v, 4) for k, v in e.to_dict().items()}
    out: list[Measurement] = []

    outline = e.points(72)
    cal = calibrate(outline) if calibrate else None
    hc = Measurement(
        "HC",
        {"type": "ellipse", **ellipse_px},
        round(float(e.perimeter), 4),
        calibration=cal,
        convention="outer skull border",
        method=HC_METHOD,
        confidence=confidence,
        model=model,
    )
    if cal is not None:
        hc.value_mm = round(_ellipse_perimeter_mm(e, cal), 3)
        if cal.isotropic:
            s = cal.mm_per_px_x
            hc.geometry_mm = {
                "type": "ellipse",
                "cx": round(e.cx * s, 3),
                "cy": round(e.cy * s, 3),
                "a": round(e.a * s, 3),
                "b": round(e.b * s, 3),
                "angle": round(e.angle, 4),
            }
        else:
            hc.geometry_mm = {"type": "polygon", "points": _points_mm(outline, cal)}
    out.append(hc)

    lengths: dict[str, float | None] = {}
    for kind, ends, convention in (
        ("BPD", e.minor_axis_endpoints(), BPD_CONVENTION),
        ("OFD", e.major_axis_endpoints(), "outer-to-outer"),
    ):
        value_px = math.dist(ends[0], ends[1])
        cal = calibrate(np.array(ends, np.float64)) if calibrate else None
        m = Measurement(
            kind,
            {"type": "line", "points": _points_px(ends)},
            round(value_px, 4),
            calibration=cal,
            convention=convention,
            method=f"{'minor' if kind == 'BPD' else 'major'} axis of the outer-skull ellipse",
            confidence=confidence,
            model=model,
        )
        if cal is not None:
            m.value_mm = round(_length_mm(ends[0], ends[1], cal), 3)
            m.geometry_mm = {"type": "line", "points": _points_mm(ends, cal)}
        lengths[kind] = m.value_mm
        out.append(m)
    bpd_px, ofd_px = out[1].value_px, out[2].value_px
    ci = Measurement(
        "CI",
        {"type": "ratio", "of": ["BPD", "OFD"]},
        round(100.0 * bpd_px / ofd_px, 3),
        unit="%",
        convention="BPD / OFD × 100",
        method="cephalic index from the outer-skull ellipse",
        confidence=confidence,
        model=model,
    )
    if lengths["BPD"] is not None and lengths["OFD"] is not None:
        ci.value_mm = round(100.0 * lengths["BPD"] / lengths["OFD"], 3)
    out.append(ci)
    return out


def measure_head_frame(
    head: HeadSegmenter, frame: NDArray, calibrate: Calibrate | None = None
) -> FrameMeasurements:
    """Skull mask, outer ellipse and HC / BPD / OFD / CI on one frame.

    HC = Ramanujan perimeter of the outer-skull ellipse; BPD = its minor axis (outer-to-outer);
    OFD = its major axis; CI = BPD / OFD × 100. Each length gets mm only when ``calibrate``
    returns a calibration for all its points (HC: 72 points on the ellipse; BPD/OFD: the two
    caliper ends).
    """
    result = head.predictor.predict_batch([frame], [None], return_masks=True)[0]
    info = head.info
    evidence = {
        "mean_probability": result.mean_probability,
        "inlier_fraction": result.inlier_fraction,
        "mask_agreement": result.mask_agreement,
    }
    segs = []
    if result.mask is not None and result.mask.any():
        segs.append(Segmentation("skull", result.mask.astype(bool), info))
    if not result.found or result.ellipse is None:
        return FrameMeasurements(
            False, result.reason or "no head found", result.confidence, [], segs, evidence
        )
    e = result.ellipse
    conf = round(float(result.confidence), 4)
    out = head_measurements(e, calibrate, confidence=conf, model=info)
    return FrameMeasurements(True, "", conf, out, segs, evidence, e)


AC_METHOD = (
    "perimeter of the ellipse fitted to the phantom-trained abdomen segmentation (skin line); "
    + NOT_VALIDATED
)
FL_METHOD = (
    "ends of the phantom-trained femoral diaphysis segmentation (epiphysis excluded); "
    + NOT_VALIDATED
)


def _line_measurement(
    kind: str,
    ends: Sequence[Sequence[float]],
    calibrate: Calibrate | None,
    *,
    convention: str,
    method: str,
    confidence: float | None,
    model: ModelInfo | None,
) -> Measurement:
    """A caliper line (px), with mm only when ``calibrate`` covers both ends."""
    cal = calibrate(np.array(ends, np.float64)) if calibrate else None
    m = Measurement(
        kind,
        {"type": "line", "points": _points_px(ends)},
        round(math.dist(ends[0], ends[1]), 4),
        calibration=cal,
        convention=convention,
        method=method,
        confidence=confidence,
        model=model,
    )
    if cal is not None:
        m.value_mm = round(_length_mm(ends[0], ends[1], cal), 3)
        m.geometry_mm = {"type": "line", "points": _points_mm(ends, cal)}
    return m


def abdomen_measurements(
    am: Any,
    calibrate: Calibrate | None,
    *,
    confidence: float | None = None,
    model: ModelInfo | None = None,
) -> list[Measurement]:
    """AC (ellipse perimeter; mm when the calibration covers 72 outline points) and APAD / TAD
    (chords through the centre along / across the centre-to-spine axis; mm when both ends are
    covered) from an :class:`inference.abdomen.AbdomenMeasurement` ``am`` (px). APAD and TAD
    need a located spine; without it they are left out."""
    e = am.ellipse
    outline = e.points(72)
    cal = calibrate(outline) if calibrate else None
    ac = Measurement(
        "AC",
        {"type": "ellipse", **{k: round(v, 4) for k, v in e.to_dict().items()}},
        round(float(am.ac_px), 4),
        calibration=cal,
        convention="outer skin line",
        method=AC_METHOD,
        confidence=confidence,
        model=model,
    )
    if cal is not None:
        ac.value_mm = round(_ellipse_perimeter_mm(e, cal), 3)
        if cal.isotropic:
            sc = cal.mm_per_px_x
            ac.geometry_mm = {
                "type": "ellipse",
                **{k: round(getattr(e, k) * sc, 3) for k in ("cx", "cy", "a", "b")},
                "angle": round(e.angle, 4),
            }
        else:
            ac.geometry_mm = {"type": "polygon", "points": _points_mm(outline, cal)}
    out = [ac]
    for kind, ends, convention in (
        ("APAD", am.apad_points, "outer-to-outer skin line, antero-posterior (centre to spine)"),
        ("TAD", am.tad_points, "outer-to-outer skin line, transverse (perpendicular to APAD)"),
    ):
        if ends is None:
            continue
        out.append(
            _line_measurement(
                kind,
                ends,
                calibrate,
                convention=convention,
                method=f"chord of the AC ellipse; phantom-trained, {NOT_VALIDATED}",
                confidence=confidence,
                model=model,
            )
        )
    return out


def femur_measurements(
    fm: Any,
    calibrate: Calibrate | None,
    *,
    confidence: float | None = None,
    model: ModelInfo | None = None,
) -> list[Measurement]:
    """FL from an :class:`inference.femur.FemurMeasurement` ``fm``: the line between the
    diaphysis ends (px; mm when the calibration covers both ends)."""
    return [
        _line_measurement(
            "FL",
            fm.end_points,
            calibrate,
            convention="ends of the ossified diaphysis",
            method=FL_METHOD,
            confidence=confidence,
            model=model,
        )
    ]


def _structure_segmentations(
    pred: Any, names: Sequence[str], model: ModelInfo | None
) -> list[Segmentation]:
    return [Segmentation(name, m, model) for name in names if (m := pred.mask(name)) is not None]


def measure_abdomen_frame(
    structures: StructureSegmenter,
    frame: NDArray,
    calibrate: Calibrate | None = None,
    *,
    fov: NDArray | None = None,
) -> FrameMeasurements:
    """Abdomen, stomach, umbilical vein, kidneys, spine and ribs on one frame; AC / APAD / TAD from
    the abdomen's skin-line ellipse (the spine gives the antero-posterior axis).

    ``fov``: the ultrasound field of view (estimated from the frame when None), so that an outline
    cut by the sector edge is not taken for skin. Confidence = mean network probability inside
    the abdomen × the Dice overlap of mask and fitted ellipse.
    """
    from inference.quality.fov import estimate_field_of_view
    from inference.structures.evidence import abdomen_measurement

    pred = structures.predictor.predict(frame)
    info = structures.info
    segs = _structure_segmentations(
        pred, ("abdomen", "stomach", "umbilical_vein", "kidneys", "spine", "ribs"), info
    )
    evidence: dict[str, Any] = {
        "detection_probabilities": dict(pred.probability),
        "validation": NOT_VALIDATED,
    }
    if fov is None:
        try:
            fov = estimate_field_of_view(frame)
        except ValueError:
            fov = None
    try:
        am = abdomen_measurement(pred, fov=fov)
    except ValueError as exc:
        return FrameMeasurements(False, str(exc), 0.0, [], segs, evidence, structures=pred)
    conf = round(float(pred.mean_probability["abdomen"]) * float(am.dice), 4)
    evidence["fit"] = am.to_dict()["fit"]
    evidence["spine_located"] = am.apad_px is not None
    out = abdomen_measurements(am, calibrate, confidence=conf, model=info)
    return FrameMeasurements(
        True, "", conf, out, segs, evidence, am.ellipse, structures=pred, abdomen=am
    )


def measure_femur_frame(
    structures: StructureSegmenter, frame: NDArray, calibrate: Calibrate | None = None
) -> FrameMeasurements:
    """Femoral diaphysis on one frame and FL between its ends (epiphysis excluded, see
    :mod:`inference.femur`), read from the femur second look when its model is loaded
    (:mod:`inference.structures.femur_refine`). Confidence = mean first-pass network probability
    inside the diaphysis."""
    from inference.structures.evidence import femur_measurement

    pred = structures.predictor.predict(frame)
    info = structures.info
    segs = _structure_segmentations(pred, ("femur",), info)
    evidence: dict[str, Any] = {
        "detection_probabilities": {"femur": pred.probability["femur"]},
        "validation": NOT_VALIDATED,
    }
    try:
        fm = femur_measurement(pred)
    except ValueError as exc:
        return FrameMeasurements(False, str(exc), 0.0, [], segs, evidence, structures=pred)
    conf = round(float(pred.mean_probability["femur"]), 4)
    evidence["femur"] = {
        k: v for k, v in fm.to_dict().items() if k in {"angle_deg", "shaft_width_px", "elongation"}
    }
    # which segmentation the calipers were read from: the strip's second look or the first pass
    evidence["femur"]["measured_on"] = (
        "second look (strip along the first FL line)"
        if pred.femur_line is not None
        else "first-pass mask"
    )
    out = femur_measurements(fm, calibrate, confidence=conf, model=info)
    return FrameMeasurements(True, "", conf, out, segs, evidence, structures=pred, femur=fm)


def detect_head_structures(structures: StructureSegmenter, frame: NDArray) -> FrameMeasurements:
    """Thalami, cavum septi pellucidi and cerebellum on the head view's frame (no measurement:
    evidence for the head's quality criteria)."""
    pred = structures.predictor.predict(frame)
    names = ("thalami", "cavum_septi_pellucidi", "cerebellum")
    segs = _structure_segmentations(pred, names, structures.info)
    evidence = {
        "detection_probabilities": {k: pred.probability[k] for k in names},
        "validation": NOT_VALIDATED,
    }
    return FrameMeasurements(True, "", 0.0, [], segs, evidence, structures=pred)


#: Views the structure model works on, and what it does there.
STRUCTURE_VIEWS = ("abdomen_ac", "femur_fl", "head_trans_thalamic")


def measure_structure_views(
    structures: StructureSegmenter,
    best: Mapping[str, BestFrameChoice],
    frame_of: Callable[[Any, int], NDArray],
    calibrate_for: Callable[[Any, int], Calibrate | None],
) -> dict[str, FrameMeasurements]:
    """The structure model on each chosen frame of :data:`STRUCTURE_VIEWS`: AC / APAD / TAD on
    the abdomen view, FL on the femur view, brain structures on the head view. A frame the model
    raises on gives ``found=False`` with the reason (the exam goes on)."""
    out: dict[str, FrameMeasurements] = {}
    for view in STRUCTURE_VIEWS:
        choice = best.get(view)
        if choice is None or choice.frame is None:
            continue
        try:
            frame = frame_of(choice.source, choice.frame)
            if view == "abdomen_ac":
                fm = measure_abdomen_frame(
                    structures, frame, calibrate_for(choice.source, choice.frame)
                )
            elif view == "femur_fl":
                fm = measure_femur_frame(
                    structures, frame, calibrate_for(choice.source, choice.frame)
                )
            else:
                fm = detect_head_structures(structures, frame)
        except Exception as exc:  # one frame the model raises on must not fail the exam
            fm = FrameMeasurements(False, f"structure model failed: {type(exc).__name__}: {exc}")
        out[view] = fm
    return out


# --------------------------------------------------------------------------------------------
# Step 5: quality criteria
# --------------------------------------------------------------------------------------------

_RUBRIC_OF_VIEW = {"head_trans_thalamic": "head", "abdomen_ac": "abdomen", "femur_fl": "femur"}


def rubric_plane(view_key: str) -> str | None:
    """The Salomon rubric ("head", "abdomen", "femur") scoring a view, or None."""
    return _RUBRIC_OF_VIEW.get(view_key)


def assess_quality(
    view_key: str,
    frame: NDArray | None,
    *,
    head: FrameMeasurements | None = None,
    structures: FrameMeasurements | None = None,
    fov: NDArray | None = None,
) -> Any:
    """Salomon 2006 criteria on a view's chosen frame (a ``PlaneQuality``), or None for views
    without a rubric.

    Evidence: the frame (field of view estimated from it unless ``fov`` is given); for the head,
    the filled skull mask and the fitted ellipse (``head``) and the structure model's thalami /
    cavum septi pellucidi / cerebellum (``structures``, from :func:`detect_head_structures`); for
    the abdomen and the femur, the structure model's result on the frame (``structures``, from
    :func:`measure_abdomen_frame` / :func:`measure_femur_frame`). Criteria whose evidence is
    missing come out ``not_assessable`` with the reason.
    """
    from inference.quality.assess import assess_plane
    from inference.quality.results import CriterionResult, Verdict, score_plane
    from inference.quality.rubric import rubric_for
    from inference.structures.evidence import plane_evidence

    plane = rubric_plane(view_key)
    if plane is None:
        return None
    if frame is None:
        rubric = rubric_for(plane)
        return score_plane(
            rubric,
            [
                CriterionResult(
                    c.key, Verdict.NOT_ASSESSABLE, rationale="no frame was found for this view"
                )
                for c in rubric.criteria
            ],
        )
    head_mask = head_ellipse = None
    if plane == "head" and head is not None and head.found and head.ellipse is not None:
        skull = next((s for s in head.segmentations if s.structure == "skull"), None)
        head_ellipse = head.ellipse
        head_mask = fill_holes(skull.mask) if skull is not None else None
    pred = structures.structures if structures is not None else None
    evidence = plane_evidence(
        plane,
        pred,
        image=frame,
        fov=fov,
        head_mask=head_mask,
        head_ellipse=head_ellipse,
        abdomen=structures.abdomen if structures is not None else None,
        femur=structures.femur if structures is not None else None,
    )
    return assess_plane(plane, evidence)


def fill_holes(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The mask with every enclosed hole filled (a skull ring → the whole head section)."""
    import cv2

    m = np.ascontiguousarray(mask.astype(np.uint8))
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.zeros_like(m)
    cv2.drawContours(out, contours, -1, 1, thickness=-1)
    return out.astype(bool)


# --------------------------------------------------------------------------------------------
# Step 6: derived biometry
# --------------------------------------------------------------------------------------------


@dataclass
class Derived:
    """A GA, EFW or centile with the identity of the formula that produced it."""

    kind: str  # "GA" | "EFW" | "centile"
    key: str
    value: float
    unit: str
    inputs: dict[str, float]
    formula: dict[str, Any]
    flags: list[dict[str, Any]]
    display: dict[str, Any] = field(default_factory=dict)


_MEASUREMENT_INPUT = {"HC": "hc_mm", "BPD": "bpd_mm", "OFD": "ofd_mm", "AC": "ac_mm", "FL": "fl_mm"}


def derive_biometry(
    measurements: Sequence[Measurement], *, ga_days: float | None = None
) -> tuple[list[Derived], list[dict[str, str]]]:
    """Every GA / EFW (and centile when ``ga_days`` from dates is given) the mm values allow.

    Only calibrated measurements (value_mm not None) feed formulas. Returns (results, what could
    not be computed and why).
    """
    from inference.biometry.calculator import compute_all

    mm = {
        _MEASUREMENT_INPUT[m.kind]: m.value_mm
        for m in measurements
        if m.kind in _MEASUREMENT_INPUT and m.value_mm is not None
    }
    if not mm:
        return [], [
            {"key": "all", "name": "biometry", "reason": "no calibrated measurement (mm) to use"}
        ]
    try:
        report = compute_all(mm, ga_days=ga_days)
    except ValueError as exc:
        return [], [{"key": "all", "name": "biometry", "reason": str(exc)}]
    out: list[Derived] = []
    for r in report.gestational_age:
        d = r.to_dict()
        out.append(
            Derived(
                "GA",
                r.formula.key,
                round(float(r.value), 3),
                "d",
                d["inputs"],
                d["formula"],
                d["flags"],
                {"ga_weeks_days": d["ga_weeks_days"], "ga_weeks": d["ga_weeks"]},
            )
        )
    for r in report.estimated_fetal_weight:
        d = r.to_dict()
        out.append(
            Derived(
                "EFW",
                r.formula.key,
                round(float(r.value), 3),
                "g",
                d["inputs"],
                d["formula"],
                d["flags"],
            )
        )
    for r in report.centiles:
        d = r.to_dict()
        out.append(
            Derived(
                "centile",
                r.formula.key,
                round(float(r.centile), 3),
                "%",
                d.get("inputs", {}),
                d["formula"],
                d["flags"],
                {k: v for k, v in d.items() if k not in {"formula", "inputs", "flags"}},
            )
        )
    return out, [n.to_dict() for n in report.not_computed]


# --------------------------------------------------------------------------------------------
# All steps on one cine, in-process
# --------------------------------------------------------------------------------------------


@dataclass
class PipelineResult:
    frames: list[FramePlanes]
    best: dict[str, BestFrameChoice]
    head: FrameMeasurements | None
    quality: dict[str, Any]
    derived: list[Derived]
    not_computed: list[dict[str, str]]
    models: list[ModelInfo]
    unavailable: dict[str, str]
    structures: dict[str, FrameMeasurements] = field(default_factory=dict)

    @property
    def measurements(self) -> list[Measurement]:
        out = list(self.head.measurements) if self.head is not None else []
        for view in ("abdomen_ac", "femur_fl"):
            if view in self.structures:
                out += self.structures[view].measurements
        return out


def rerank_head(
    head: HeadSegmenter,
    choice: BestFrameChoice,
    frame_of: Callable[[Any, int], NDArray],
    calibrate_for: Callable[[Any, int], Calibrate | None],
) -> tuple[BestFrameChoice, FrameMeasurements | None]:
    """Measure the head on the view's candidate frames (best classifier score first) until one
    gives a confident ellipse; keep the best classifier × head-confidence product.

    The flag drops to sub-optimal when no candidate gives a confident head ellipse.
    """
    if choice.frame is None:
        return choice, None
    best: tuple[float, float, Any, int, FrameMeasurements] | None = None
    for score, source, number in choice.candidates or [(choice.score, choice.source, choice.frame)]:
        try:
            fm = measure_head_frame(head, frame_of(source, number), calibrate_for(source, number))
        except Exception as exc:  # one frame the head model raises on must not fail the exam
            fm = FrameMeasurements(False, f"head model failed: {type(exc).__name__}: {exc}")
        combined = score * (fm.confidence if fm.found else 0.0)
        if best is None or combined > best[0]:
            best = (combined, score, source, number, fm)
        if fm.found and fm.confidence >= HEAD_OPTIMAL_CONFIDENCE:
            break  # candidates come best-first: a confident head on one ends the search
    assert best is not None
    combined, score, source, number, fm = best
    flag = choice.flag
    if not fm.found or fm.confidence < HEAD_OPTIMAL_CONFIDENCE:
        flag = SUB_OPTIMAL
    evidence = {
        **choice.evidence,
        "classifier_score": float(score),
        "head_confidence": fm.confidence,
        "combined_score": round(combined, 4),
        "head_reason": fm.reason,
    }
    chosen = BestFrameChoice(
        choice.view, source, number, float(score), flag, evidence, choice.candidates
    )
    return chosen, fm


def analyse_frames(
    frames: NDArray,
    *,
    models: Models,
    protocol: str = "biometry",
    calibrate_for_frame: Callable[[int], Calibrate | None] | None = None,
    frame_time_ms: float | None = None,
    batch_size: int = 64,
    ga_days: float | None = None,
) -> PipelineResult:
    """Every step on one cine ``frames`` (T, rows, cols) uint8 (or (T, rows, cols, 3) RGB).

    Frame numbers are 1-based. ``calibrate_for_frame(number)`` returns the frame's calibration
    callback (None: px only).
    """
    from inference.planes.preprocess import fov_bbox, to_grey

    if models.planes is None:
        raise RuntimeError(models.unavailable.get(PLANES_MODEL, "no plane classifier"))
    frames = np.asarray(frames)
    numbers = list(range(1, len(frames) + 1))
    bbox = fov_bbox(
        np.max([to_grey(frames[i]) for i in {0, len(frames) // 2, len(frames) - 1}], axis=0)
    )
    per_frame: list[FramePlanes] = []
    for i in range(0, len(frames), batch_size):
        per_frame += classify_frames(
            models.planes,
            list(frames[i : i + batch_size]),
            frame_numbers=numbers[i : i + batch_size],
            bbox=bbox,
        )
    views = taxonomy.PROTOCOLS[protocol]
    best = choose_best_frames({0: per_frame}, views, frame_time_ms={0: frame_time_ms})
    head_fm = None
    calib = calibrate_for_frame or (lambda n: None)
    if models.head is not None and "head_trans_thalamic" in best:
        best["head_trans_thalamic"], head_fm = rerank_head(
            models.head,
            best["head_trans_thalamic"],
            lambda s, n: frames[n - 1],
            lambda s, n: calib(n),
        )
    structures: dict[str, FrameMeasurements] = {}
    if models.structures is not None:
        structures = measure_structure_views(
            models.structures, best, lambda s, n: frames[n - 1], lambda s, n: calib(n)
        )
    quality = {}
    for v, choice in best.items():
        if rubric_plane(v) is None:
            continue
        fr = frames[choice.frame - 1] if choice.frame is not None else None
        quality[v] = assess_quality(
            v,
            fr,
            head=head_fm if v == "head_trans_thalamic" else None,
            structures=structures.get(v),
        )
    result = PipelineResult(
        per_frame,
        best,
        head_fm,
        quality,
        [],
        [],
        models.infos(),
        dict(models.unavailable),
        structures,
    )
    result.derived, result.not_computed = derive_biometry(result.measurements, ga_days=ga_days)
    return result


def remove_snapshots(snapshot_dir: Path) -> None:
    """Delete a snapshot folder made by :func:`snapshot_weights` (tests)."""
    shutil.rmtree(snapshot_dir, ignore_errors=True)
