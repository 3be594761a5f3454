"""Head biometry from ultrasound frames: segment the skull, fit its outer ellipse, measure HC/BPD/OFD.

Pipeline, one function per step: :func:`to_gray_frame` (validate, colour → grey, 0..255 float) →
:func:`preprocess` (letterbox to the network size, standardise) → U-Net → :func:`postprocess`
(largest skull region, sub-pixel outer boundary, points on the field-of-view edge dropped, robust
ellipse fit, sanity checks, confidence) → :func:`measure` (HC, BPD, OFD, cephalic index in px and
mm). :class:`HeadPredictor` loads the weights once and runs batches; :func:`measure_head` is the
one-image convenience.

Conventions: ellipse geometry in pixels of the original frame, (x = column, y = row), angle in
radians (see :mod:`inference.geometry`). HC = Ramanujan perimeter of the fitted outer-skull ellipse;
OFD = its major axis (2a); BPD = its minor axis (2b), outer-to-outer; cephalic index = BPD/OFD×100.
mm values need the frame's pixel size (mm per pixel, square pixels); without it they are None.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from inference._weights import load_weights, second_look_path
from inference.geometry import (
    Ellipse,
    boundary_points,
    fit_ellipse_robust,
    px_to_mm,
    rasterize_ellipse,
    sampson_distance,
)
from inference.head.data import NET_SHAPE, letterbox, standardise
from inference.head.refine import CROP_MARGIN, CropWindow, crop_window, cut, to_frame

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "head_unet.pt"
REFINE_WEIGHTS_NAME = "head_refine.pt"  # the crop model, beside the first one
MIN_SIDE_PX = 32
BPD_CONVENTION = "outer-to-outer"
HC_METHOD = "Ramanujan perimeter of the ellipse fitted to the outer skull boundary"

# Post-processing thresholds, in pixels of a 240-px-wide network grid unless stated (scaled to
# the model's own grid, so a model trained at 384 px width uses the same distances in the image).
REFERENCE_NET_WIDTH = 240
PROB_THRESHOLD = 0.5
MIN_AREA_FRACTION = 0.004  # skull region must cover ≥ 0.4 % of the network image
FIT_THRESHOLD_PX = 1.0  # boundary points farther than this from the ellipse are outliers
EDGE_MARGIN_PX = 2  # boundary points this close to the field-of-view edge are not skull
# The crop model sees the head several times larger, so its outline's pixel noise is larger in
# grid pixels: a tighter threshold fits only part of it (chosen on training subjects, model card).
REFINE_FIT_THRESHOLD_PX = 2.0
MIN_AXIS_RATIO = 0.45  # b/a below this is not a head section
MIN_CONFIDENCE = 0.5
UPSAMPLE = 4  # boundary extracted on a 4× finer probability map → sub-pixel contour


@dataclass
class HeadMeasurement:
    """One frame's head result. ``found`` False means no head: ``reason`` says why, no ellipse."""

    found: bool
    reason: str | None = None
    ellipse: Ellipse | None = None  # outer skull, original-frame pixels
    pixel_size_mm: float | None = None
    hc_px: float | None = None
    bpd_px: float | None = None
    ofd_px: float | None = None
    hc_mm: float | None = None
    bpd_mm: float | None = None
    ofd_mm: float | None = None
    cephalic_index: float | None = None  # BPD / OFD × 100
    bpd_points: tuple[tuple[float, float], tuple[float, float]] | None = None
    ofd_points: tuple[tuple[float, float], tuple[float, float]] | None = None
    confidence: float = 0.0  # mean_probability × inlier_fraction × mask_agreement, 0..1
    mean_probability: float | None = None  # mean skull probability inside the segmented region
    inlier_fraction: float | None = (
        None  # share of the visible outline within 2 px (net) of the fit
    )
    mask_agreement: float | None = None  # IoU of the segmented region and the fitted ellipse
    bpd_convention: str = BPD_CONVENTION
    hc_method: str = HC_METHOD
    model_version: str | None = None
    mask: NDArray[np.bool_] | None = field(default=None, repr=False)  # original size, on request

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without the mask)."""
        out = {k: v for k, v in self.__dict__.items() if k != "mask"}
        out["ellipse"] = self.ellipse.to_dict() if self.ellipse else None
        return out


def no_head(reason: str, **extra: Any) -> HeadMeasurement:
    """An explicit "no head found" result."""
    return HeadMeasurement(found=False, reason=reason, **extra)


def to_gray_frame(frame: ArrayLike) -> NDArray[np.float32]:
    """Validate one frame and return it as a (rows, cols) float32 grey image in 0..255.

    Accepts 2-D grey or (rows, cols, 1|3|4) colour arrays (RGB(A) order) of bool, integer or float
    pixels; float images within 0..1 are taken as 0..1, other ranges beyond 0..255 are rescaled.
    Raises ValueError naming the problem for anything else (object/complex/text pixels, other
    shapes, fewer than 32 px on a side, NaN or infinite values).
    """
    try:
        a = np.asarray(frame)
    except Exception as exc:  # e.g. ragged nested lists
        raise ValueError(f"frame is not an image array: {exc}") from exc
    if a.dtype.kind not in "biuf":
        raise ValueError(f"unsupported pixel type {a.dtype}: need integer, float or bool pixels")
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        if a.shape[2] == 1:
            a = a[:, :, 0]
        else:  # ITU-R BT.601 luma; alpha ignored
            rgb = a[:, :, :3].astype(np.float32)
            a = rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114
    if a.ndim != 2:
        raise ValueError(
            f"need a 2-D grey image (rows, cols) or a (rows, cols, 3) colour image, got shape {a.shape}"
        )
    if min(a.shape) < MIN_SIDE_PX:
        raise ValueError(
            f"image of {a.shape[1]}×{a.shape[0]} px is too small (need ≥ {MIN_SIDE_PX} px a side)"
        )
    kind = a.dtype.kind
    g = a.astype(np.float32)
    if not np.isfinite(g).all():
        raise ValueError("image contains NaN or infinite pixel values")
    lo, hi = float(g.min()), float(g.max())
    if kind == "b":
        g *= 255.0
    elif kind == "f" and lo >= 0.0 and hi <= 1.0:
        g *= 255.0
    elif lo < 0.0 or hi > 255.0:
        g = (g - lo) * (255.0 / (hi - lo))
    return g


def check_pixel_size(value: float | None) -> float | None:
    """Validate a pixel size in mm per pixel (positive, finite) or None."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"pixel size must be a number of mm per pixel or None, got {value!r}"
        ) from exc
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"pixel size must be positive and finite (mm per pixel), got {value!r}")
    return v


def preprocess(
    gray: NDArray[np.float32], net_shape: tuple[int, int] = NET_SHAPE
) -> tuple[NDArray[np.float32], NDArray[np.uint8], float]:
    """Letterbox a grey frame (0..255) into ``net_shape``.

    Returns (standardised network input (H, W) float32, letterboxed uint8 image, scale s) with
    network px = original px × s.
    """
    boxed, s = letterbox(gray, net_shape)
    return standardise(boxed[None])[0], np.clip(boxed, 0, 255).astype(np.uint8), s


def field_of_view(
    boxed: NDArray[np.uint8], scale: float, shape: tuple[int, int]
) -> NDArray[np.uint8]:
    """Where the letterboxed frame shows anatomy (1) rather than black surround/padding (0).

    The ultrasound sector is convex, so the convex hull of the non-black pixels is used: dark
    fluid inside the sector stays inside the field of view. Falls back to the whole frame area.
    """
    h = min(boxed.shape[0], max(1, round(shape[0] * scale)))
    w = min(boxed.shape[1], max(1, round(shape[1] * scale)))
    area = np.zeros(boxed.shape, np.uint8)
    area[:h, :w] = 1
    lit = cv2.findNonZero((cv2.medianBlur(boxed, 5) > 4).astype(np.uint8) * area)
    if lit is None or len(lit) < 0.1 * h * w:
        return area
    fov = np.zeros(boxed.shape, np.uint8)
    cv2.fillConvexPoly(fov, cv2.convexHull(lit), 1)
    return fov & area


def subpixel_boundary(prob: NDArray[np.float32], region: NDArray[np.uint8]) -> NDArray[np.float64]:
    """Outer 0.5-iso-contour of ``prob`` around ``region`` at 1/UPSAMPLE px, as (N, 2) (x, y) in
    network pixels (bilinear up-sampling of the probability inside the region's bounding box)."""
    ys, xs = np.nonzero(region)
    pad = 3
    y0, y1 = max(0, ys.min() - pad), min(prob.shape[0], ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(prob.shape[1], xs.max() + pad + 1)
    k = UPSAMPLE
    size = ((x1 - x0) * k, (y1 - y0) * k)
    fine = cv2.resize(prob[y0:y1, x0:x1], size, interpolation=cv2.INTER_LINEAR) > PROB_THRESHOLD
    near = cv2.dilate(region[y0:y1, x0:x1], np.ones((3, 3), np.uint8))
    fine &= cv2.resize(near, size, interpolation=cv2.INTER_NEAREST) > 0
    pts, _ = boundary_points(fine, margin=0)
    if len(pts) == 0:
        return pts
    return np.stack([x0 + (pts[:, 0] + 0.5) / k - 0.5, y0 + (pts[:, 1] + 0.5) / k - 0.5], axis=1)


def postprocess(
    prob: NDArray[np.float32],
    boxed: NDArray[np.uint8],
    scale: float,
    shape: tuple[int, int],
    fit_threshold_px: float = FIT_THRESHOLD_PX,
) -> tuple[Ellipse | None, dict[str, float], str | None, NDArray[np.uint8] | None]:
    """Skull probability (network grid) → outer ellipse in original pixels.

    ``fit_threshold_px``: outlier distance of the robust fit, in pixels of a 240-px-wide grid.

    Returns (ellipse or None, quality dict, reason when None, skull region on the network grid).
    """
    quality: dict[str, float] = {}
    binary = (prob > PROB_THRESHOLD).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if n <= 1:
        return None, quality, "no skull region segmented", None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    area = int(stats[largest, cv2.CC_STAT_AREA])
    if area < MIN_AREA_FRACTION * prob.size:
        return (
            None,
            quality,
            f"skull region too small ({area} px at {prob.shape[1]}×{prob.shape[0]})",
            None,
        )
    region = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(region, contours, -1, 1, thickness=-1)  # fill holes
    quality["mean_probability"] = float(prob[region > 0].mean())
    pts = subpixel_boundary(prob, region)
    grid = prob.shape[1] / REFERENCE_NET_WIDTH
    fit_threshold, edge_margin = fit_threshold_px * grid, max(1, round(EDGE_MARGIN_PX * grid))
    fov = field_of_view(boxed, scale, shape)
    inner = cv2.erode(fov, np.ones((2 * edge_margin + 1,) * 2, np.uint8))
    xi = np.clip(np.round(pts[:, 0]).astype(int), 0, prob.shape[1] - 1)
    yi = np.clip(np.round(pts[:, 1]).astype(int), 0, prob.shape[0] - 1)
    keep = inner[yi, xi] > 0
    if keep.sum() < 30 or keep.mean() < 0.25:
        return None, quality, "too little of the skull outline lies inside the image", region
    try:
        fit = fit_ellipse_robust(pts[keep], threshold=fit_threshold, min_inlier_fraction=0.4)
    except ValueError as exc:
        return None, quality, f"no ellipse fits the skull outline ({exc})", region
    e = fit.ellipse
    # support for the confidence: share of the visible outline within 2 fit thresholds of the
    # ellipse (the tight threshold picks the points to fit; this one measures disagreement)
    quality["inlier_fraction"] = float((sampson_distance(e, pts[keep]) < 2 * fit_threshold).mean())
    fitted = rasterize_ellipse(prob.shape, e) & (fov > 0)
    seg = region > 0
    union = int((fitted | seg).sum())
    quality["mask_agreement"] = float((fitted & seg).sum() / union) if union else 0.0
    quality["confidence"] = (
        quality["mean_probability"] * quality["inlier_fraction"] * quality["mask_agreement"]
    )
    h, w = shape[0] * scale, shape[1] * scale
    if not (0 <= e.cx < w and 0 <= e.cy < h):
        return None, quality, "fitted ellipse centre lies outside the image", region
    if e.b / e.a < MIN_AXIS_RATIO:
        return (
            None,
            quality,
            f"fitted shape too elongated for a head (b/a = {e.b / e.a:.2f})",
            region,
        )
    if e.a > math.hypot(h, w):
        return None, quality, "fitted ellipse much larger than the image", region
    if quality["confidence"] < MIN_CONFIDENCE:
        return None, quality, f"low confidence ({quality['confidence']:.2f})", region
    return e.scaled(1.0 / scale, offset=0.5), quality, None, region


def measure(ellipse: Ellipse, pixel_size_mm: float | None) -> dict[str, Any]:
    """HC, OFD (2a), BPD (2b, outer-to-outer), cephalic index from an outer-skull ellipse (px)."""
    hc, ofd, bpd = ellipse.perimeter, 2 * ellipse.a, 2 * ellipse.b
    return {
        "hc_px": hc,
        "ofd_px": ofd,
        "bpd_px": bpd,
        "hc_mm": px_to_mm(hc, pixel_size_mm),
        "ofd_mm": px_to_mm(ofd, pixel_size_mm),
        "bpd_mm": px_to_mm(bpd, pixel_size_mm),
        "cephalic_index": 100.0 * bpd / ofd,
        "bpd_points": ellipse.minor_axis_endpoints(),
        "ofd_points": ellipse.major_axis_endpoints(),
    }


class HeadPredictor:
    """Loads the head U-Net once; measures batches of frames of any size.

    ``device``: "cuda" when available, else "cpu" (or as given). ``threads``: torch CPU threads
    (None leaves torch's setting alone). Thread-safe: one lock around the network call.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str | None = None,
        threads: int | None = None,
        batch_size: int = 16,
        flip_tta: bool = True,
        refine: bool | str | Path = True,
    ) -> None:
        import torch

        from inference.head.model import build_model

        path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(f"head weights not found at {path}")
        if threads is not None:
            torch.set_num_threads(threads)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model, blob, digest = load_weights(path, build_model, self.device)
        self.net_shape: tuple[int, int] = tuple(blob.get("net_shape", NET_SHAPE))  # type: ignore[assignment]
        self.meta: dict[str, Any] = dict(blob.get("meta", {}))
        self.version = f"head-unet-b{blob['config'].get('base')}-{digest}"
        # the second look on a crop around the first ellipse (inference/head/refine.py), when its
        # weights lie beside the first model's and ``refine`` is not switched off
        self.refine_model = None
        refine_path = second_look_path(path, refine, REFINE_WEIGHTS_NAME, "head refine")
        if refine_path is not None:
            self.refine_model, rblob, rdigest = load_weights(refine_path, build_model, self.device)
            self.refine_shape: tuple[int, int] = tuple(rblob.get("net_shape", NET_SHAPE))  # type: ignore[assignment]
            self.crop_margin = float(rblob.get("crop_margin", CROP_MARGIN))
            self.version += f"+refine-{rdigest}"
        self.batch_size = max(1, int(batch_size))
        # average with the left-right mirrored frame (2× network time; on held-out HC18 it
        # lowered the HC error, see the model card)
        self.flip_tta = bool(flip_tta)
        self._torch = torch
        self._lock = threading.Lock()

    def probabilities(
        self, inputs: NDArray[np.float32], *, refine: bool = False
    ) -> NDArray[np.float32]:
        """Network skull probability for standardised inputs (N, H, W) → (N, H, W) in 0..1
        (``refine``: the crop model's)."""
        torch = self._torch
        model = self.refine_model if refine else self.model
        out = []
        with self._lock, torch.inference_mode():
            for i in range(0, len(inputs), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(inputs[i : i + self.batch_size]))
                x = x[:, None].to(self.device)
                prob = torch.sigmoid(model(x))
                if self.flip_tta:
                    prob = (prob + torch.sigmoid(model(x.flip(-1))).flip(-1)) / 2
                out.append(prob[:, 0].float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, *inputs.shape[1:]), np.float32)

    def predict_batch(
        self,
        frames: Sequence[ArrayLike] | NDArray,
        pixel_size_mm: Sequence[float | None] | float | None = None,
        return_masks: bool = False,
    ) -> list[HeadMeasurement]:
        """Measure the head in each frame (2-D arrays of any size; colour is converted to grey).

        ``pixel_size_mm``: one value per frame, or one for all, or None (then mm fields are None).
        Raises ValueError naming the frame and the reason for malformed input (see
        :func:`to_gray_frame`); a frame without a measurable head gives ``found=False`` with a reason.
        """
        frames = (
            list(frames) if not isinstance(frames, np.ndarray) or frames.ndim != 2 else [frames]
        )
        n = len(frames)
        if pixel_size_mm is None or isinstance(pixel_size_mm, (int, float)):
            sizes = [pixel_size_mm] * n
        else:
            sizes = list(pixel_size_mm)
            if len(sizes) != n:
                raise ValueError(f"{n} frames but {len(sizes)} pixel sizes")
        results: list[HeadMeasurement | None] = [None] * n
        inputs, boxes, todo = [], [], []
        for i, (frame, size) in enumerate(zip(frames, sizes, strict=True)):
            try:
                gray = to_gray_frame(frame)
                sizes[i] = check_pixel_size(size)
            except ValueError as exc:
                raise ValueError(f"frame {i}: {exc}") from exc
            if float(gray.max() - gray.min()) < 1.0:
                results[i] = no_head(
                    "blank frame (no contrast)", pixel_size_mm=sizes[i], model_version=self.version
                )
                continue
            x, boxed, s = preprocess(gray, self.net_shape)
            inputs.append(x)
            boxes.append((boxed, s, gray.shape))
            todo.append(i)
        probs = self.probabilities(np.stack(inputs)) if inputs else []
        for i, prob, (boxed, s, shape) in zip(todo, probs, boxes, strict=True):
            results[i] = self._finish(prob, boxed, s, shape, sizes[i], return_masks)
        if self.refine_model is not None:
            self._refine(frames, results, sizes, return_masks)
        return [r for r in results if r is not None]

    def _refine(
        self,
        frames: list[Any],
        results: list[HeadMeasurement | None],
        sizes: list[float | None],
        return_masks: bool,
    ) -> None:
        """Second look at every found head on a crop around its ellipse; a crop result replaces
        the first one when it finds the head too (else the first stands)."""
        aspect = self.refine_shape[1] / self.refine_shape[0]
        todo, inputs, crops = [], [], []
        for i, r in enumerate(results):
            if r is None or not r.found or r.ellipse is None:
                continue
            gray = to_gray_frame(frames[i])
            window = crop_window(r.ellipse, aspect, self.crop_margin)
            x, boxed, s = preprocess(cut(gray, window), self.refine_shape)
            todo.append(i)
            inputs.append(x)
            crops.append((window, boxed, s, gray.shape))
        if not inputs:
            return
        probs = self.probabilities(np.stack(inputs), refine=True)
        for i, prob, (window, boxed, s, frame_shape) in zip(todo, probs, crops, strict=True):
            local = self._finish(
                prob,
                boxed,
                s,
                (window.height, window.width),
                sizes[i],
                return_masks,
                REFINE_FIT_THRESHOLD_PX,
            )
            if not local.found or local.ellipse is None:
                continue
            ellipse = to_frame(local.ellipse, window)
            mask = None
            if return_masks and local.mask is not None:
                mask = cut(local.mask.astype(np.float32), _inverse(window, frame_shape)) > 0.5
            results[i] = replace(local, ellipse=ellipse, **measure(ellipse, sizes[i]), mask=mask)

    def _finish(
        self, prob, boxed, s, shape, size, return_masks, fit_threshold_px=FIT_THRESHOLD_PX
    ) -> HeadMeasurement:
        try:
            ellipse, q, reason, region = postprocess(prob, boxed, s, shape, fit_threshold_px)
        except Exception as exc:  # keep one odd frame from failing a batch; say what happened
            return no_head(
                f"post-processing failed: {type(exc).__name__}: {exc}",
                pixel_size_mm=size,
                model_version=self.version,
            )
        mask = _region_to_original(prob, region, s, shape) if return_masks else None
        common = {
            "pixel_size_mm": size,
            "model_version": self.version,
            "confidence": float(q.get("confidence", 0.0)),
            "mean_probability": q.get("mean_probability"),
            "inlier_fraction": q.get("inlier_fraction"),
            "mask_agreement": q.get("mask_agreement"),
            "mask": mask,
        }
        if ellipse is None:
            return no_head(reason or "no head found", **common)
        return HeadMeasurement(found=True, ellipse=ellipse, **measure(ellipse, size), **common)


def _inverse(window: CropWindow, frame_shape: tuple[int, int]) -> CropWindow:
    """The frame as a window of the crop (to paste a crop-sized array back into the frame)."""
    return CropWindow(-window.x0, -window.y0, frame_shape[1], frame_shape[0])


def _region_to_original(
    prob: NDArray[np.float32], region: NDArray[np.uint8] | None, s: float, shape: tuple[int, int]
) -> NDArray[np.bool_]:
    """The segmented skull region resampled onto the original frame grid (bool, rows × cols)."""
    if region is None:
        return np.zeros(shape, bool)
    h = min(prob.shape[0], max(1, round(shape[0] * s)))
    w = min(prob.shape[1], max(1, round(shape[1] * s)))
    size = (shape[1], shape[0])
    up = cv2.resize(prob[:h, :w], size, interpolation=cv2.INTER_LINEAR) > PROB_THRESHOLD
    near = cv2.dilate(region[:h, :w], np.ones((3, 3), np.uint8))
    return up & (cv2.resize(near, size, interpolation=cv2.INTER_NEAREST) > 0)


_DEFAULT: HeadPredictor | None = None
_DEFAULT_LOCK = threading.Lock()


def default_predictor() -> HeadPredictor:
    """Process-wide predictor with the shipped weights (loaded on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = HeadPredictor()
        return _DEFAULT


def measure_head(image: ArrayLike, pixel_size_mm: float | None = None) -> HeadMeasurement:
    """Measure the fetal head in one 2-D frame with the shipped weights (see HeadPredictor)."""
    return default_predictor().predict_batch([image], [pixel_size_mm])[0]
