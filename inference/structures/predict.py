"""Structure segmentation of one frame: preprocess → network → masks and detection probabilities.

:class:`StructurePredictor` loads the weights once (thread-safe; one lock around the network call).
Per frame: :func:`inference.structures.data.preprocess` → U-Net → sigmoid → probabilities resized
back to the frame (bilinear) → :func:`postprocess` (masks per structure, detection probability per
structure). Coordinates: masks are (rows, cols) of the original frame.

Detection probability of a structure = mean probability of its K most probable network pixels,
K = ``DETECTION_TOP_PX`` (≈ the smallest such structure the phantom draws) or, for the kidneys,
``KIDNEY_AREA_FRACTION`` of the abdomen's area (two kidneys in the section are each ≈ 1.3 % of it;
a smaller marked region is texture, not kidney): near 1 when the network marks a region of at least
that size, near 0 when it marks nothing. Organs (stomach, umbilical vein, kidneys, spine, ribs)
count only inside the segmented abdomen, and kidneys only beside the spine (paravertebral, within
``KIDNEY_SPINE_RADIUS`` × the abdomen's equivalent radius of the spine's centre) when a spine is
segmented. Both kidney rules were chosen on validation seeds (``VALIDATION_SEED_BASE``), not on
the held-out evaluation frames: without them the network's marks in dark liver texture made
"kidneys visible" on most kidney-free phantom sections.

Femur second look: when the femur crop model (``FEMUR_REFINE_WEIGHTS_NAME``, beside the weights)
is loaded and the first pass finds a diaphysis, a strip of the frame laid along the first FL line is
segmented again at up to ≈ 2× the frame's resolution (:mod:`inference.structures.femur_refine`);
its FL line (frame px) becomes ``StructurePrediction.femur_line`` and its mask the femur mask. A
strip without a diaphysis leaves the first pass as it was.

Trained on the synthetic phantom only: **not validated on real images** (``VALIDATION``).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from inference._weights import load_weights, second_look_path
from inference.femur import FemurMeasurement, measure_femur
from inference.structures.data import CLASSES, NET_SHAPE, preprocess, to_grey

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "structures_unet.pt"
FEMUR_REFINE_WEIGHTS_NAME = "femur_refine.pt"  # the femur crop model, beside the first one
VALIDATION = "phantom (synthetic) only; not validated on real images"
MASK_THRESHOLD = 0.5
DETECTION_TOP_PX = 12
KIDNEY_AREA_FRACTION = 0.01
KIDNEY_SPINE_RADIUS = 0.6
#: Structures that exist only inside the abdomen section.
ABDOMINAL = ("stomach", "umbilical_vein", "kidneys", "spine", "ribs")


@dataclass
class StructurePrediction:
    """One frame's structures: masks (rows, cols) bool and detection probabilities per class."""

    masks: dict[str, NDArray[np.bool_]] = field(default_factory=dict)
    probability: dict[str, float] = field(default_factory=dict)
    mean_probability: dict[str, float] = field(default_factory=dict)
    shape: tuple[int, int] = (0, 0)
    #: FL line (frame px, no mm) from the femur second look; None: measure the femur mask instead
    femur_line: FemurMeasurement | None = None

    def mask(self, name: str) -> NDArray[np.bool_] | None:
        """The structure's mask, or None when the network marked no pixel of it."""
        m = self.masks.get(name)
        return m if m is not None and m.any() else None

    def centroid(self, name: str) -> tuple[float, float] | None:
        """(x, y) px centroid of the structure's mask, or None."""
        m = self.mask(name)
        if m is None:
            return None
        ys, xs = np.nonzero(m)
        return float(xs.mean()), float(ys.mean())


def largest_component(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The largest 8-connected component of ``mask`` with its holes filled."""
    m = mask.astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return mask.astype(bool)
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    comp = (labels == k).astype(np.uint8)
    contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.zeros_like(comp)
    cv2.drawContours(out, contours, -1, 1, thickness=-1)
    return out.astype(bool)


def postprocess(
    probs_net: NDArray[np.float32], shape: tuple[int, int], *, threshold: float = MASK_THRESHOLD
) -> StructurePrediction:
    """Masks at the frame's ``shape`` (rows, cols) and detection probabilities from the network's
    probabilities (C, net rows, net cols)."""
    h, w = shape
    pred = StructurePrediction(shape=(h, w))
    abdomen_net = probs_net[CLASSES.index("abdomen")] > threshold
    # dilate a little: an organ touching the skin line still counts
    inside = cv2.dilate(abdomen_net.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    for i, name in enumerate(CLASSES):
        p = probs_net[i]
        k = DETECTION_TOP_PX
        if name in ABDOMINAL:
            p = np.where(inside, p, 0.0)
        if name == "kidneys":
            p = np.where(_paravertebral(probs_net, abdomen_net, threshold), p, 0.0)
            k = max(k, round(KIDNEY_AREA_FRACTION * int(abdomen_net.sum())))
        top = np.sort(p, axis=None)[-k:]
        pred.probability[name] = round(float(top.mean()), 4)
        full = cv2.resize(p.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        m = full > threshold
        if name == "abdomen" and m.any():
            m = largest_component(m)
        pred.masks[name] = m
        pred.mean_probability[name] = round(float(full[m].mean()), 4) if m.any() else 0.0
    return pred


def _paravertebral(
    probs_net: NDArray[np.float32], abdomen_net: NDArray[np.bool_], threshold: float
) -> NDArray[np.bool_]:
    """Where kidneys can be: within KIDNEY_SPINE_RADIUS × the abdomen's equivalent radius of the
    spine's centre (everywhere when no spine is segmented)."""
    spine = probs_net[CLASSES.index("spine")] > threshold
    if not spine.any() or not abdomen_net.any():
        return np.ones(abdomen_net.shape, bool)
    ys, xs = np.nonzero(spine)
    radius = KIDNEY_SPINE_RADIUS * float(np.sqrt(abdomen_net.sum() / np.pi))
    yy, xx = np.mgrid[0 : spine.shape[0], 0 : spine.shape[1]]
    return (xx - xs.mean()) ** 2 + (yy - ys.mean()) ** 2 <= radius**2


class StructurePredictor:
    """Loads the structure U-Net once; segments frames of any size.

    ``device``: "cuda" / "cpu" (default: cuda when available). ``threads``: torch CPU threads (None
    leaves torch's setting alone). ``femur_refine``: the femur second look's weights — True: the
    file beside ``weights`` when there is one, a path: that file, False: none.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str | None = None,
        threads: int | None = None,
        femur_refine: bool | str | Path = True,
    ) -> None:
        import torch

        from inference.structures.model import build_model

        path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(f"structure weights not found at {path}")
        if threads is not None:
            torch.set_num_threads(threads)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        blob = torch.load(path, map_location="cpu", weights_only=True)
        classes = tuple(blob.get("meta", {}).get("classes", CLASSES))
        if classes != CLASSES:
            raise ValueError(f"{path}: weights for classes {classes}, this code expects {CLASSES}")
        self.model = build_model(blob["config"])
        self.model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
        self.model.eval().to(self.device)
        self.meta: dict[str, Any] = dict(blob.get("meta", {}))
        self.net_shape: tuple[int, int] = tuple(self.meta.get("net_shape", NET_SHAPE))  # type: ignore[assignment]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        self.version = f"structures-unet-{digest}"
        self.femur_model = None
        self.femur_shape: tuple[int, int] = (0, 0)
        self.femur_margin = 0.0
        refine_path = second_look_path(
            path, femur_refine, FEMUR_REFINE_WEIGHTS_NAME, "femur refine"
        )
        if refine_path is not None:
            self.femur_model, rblob, rdigest = load_weights(refine_path, build_model, self.device)
            self.femur_shape = tuple(rblob["net_shape"])  # type: ignore[assignment]
            self.femur_margin = float(rblob.get("meta", {}).get("strip_margin", 1.6))
            self.version += f"+femur-refine-{rdigest}"
        self._torch = torch
        self._lock = threading.Lock()

    def probabilities(self, frames: list[NDArray]) -> NDArray[np.float32]:
        """Network probabilities (N, C, net rows, net cols) for frames of any size."""
        x = np.stack([preprocess(f, self.net_shape) for f in frames])
        torch = self._torch
        with self._lock, torch.inference_mode():
            logits = self.model(torch.from_numpy(x).to(self.device))
            return torch.sigmoid(logits).float().cpu().numpy()

    def predict(self, frame: NDArray) -> StructurePrediction:
        """Masks and detection probabilities for one frame ((rows, cols) grey or RGB), with the
        femur second look when its model is loaded and the first pass finds a diaphysis."""
        grey = to_grey(frame)
        probs = self.probabilities([grey])[0]
        pred = postprocess(probs, grey.shape)
        if self.femur_model is not None and pred.mask("femur") is not None:
            self._femur_second_look(grey, pred)
        return pred

    def _femur_second_look(self, grey: NDArray[np.uint8], pred: StructurePrediction) -> None:
        """Segment a strip along the first FL line again; on success set ``pred.femur_line`` and
        replace the femur mask by the strip's (drawn back on the frame)."""
        from inference.structures.femur_refine import (
            cut_strip,
            measure_in_strip,
            standardise,
            strip_mask_to_frame,
            strip_window,
        )

        try:
            first = measure_femur(pred.masks["femur"])
            window = strip_window(
                *first.end_points, shape=self.femur_shape, margin=self.femur_margin
            )
        except ValueError:
            return  # nothing elongated to lay a strip along: the first pass stands
        x = standardise(cut_strip(grey, window))[None]
        torch = self._torch
        with self._lock, torch.inference_mode():
            logits = self.femur_model(torch.from_numpy(x).to(self.device))  # type: ignore[misc]
            prob = torch.sigmoid(logits)[0, 0].float().cpu().numpy()
        strip_mask = prob > MASK_THRESHOLD
        try:
            pred.femur_line = measure_in_strip(strip_mask, window)
        except ValueError:
            return
        pred.masks["femur"] = strip_mask_to_frame(strip_mask, window, pred.shape)
