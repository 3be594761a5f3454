"""Phantom training/evaluation frames for the structure U-Net, and the network's input format.

Frames come from :func:`inference.phantom.generator.make_frame`; :func:`sample_frame` draws the
plane and the criterion flags (stomach present or not, kidneys, asymmetric sections, small or
off-centre sections, femurs cut by the sector edge, …) from the seed alone, so a seed names a frame.
Training uses seeds ``TRAIN_SEED_BASE + k``, evaluation ``HELDOUT_SEED_BASE + k``: disjoint sets.

Network input: the grey frame resized to ``NET_SHAPE`` (rows, cols) with area averaging and
standardised (zero mean, unit variance over the frame). Targets: one soft mask per class in
``CLASSES`` (area fraction of each network pixel covered by the structure).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from inference.phantom.generator import PhantomFrame, make_frame

#: Output channels, in order. Names are the phantom's mask names (and the quality detectors').
CLASSES: tuple[str, ...] = (
    "abdomen",
    "stomach",
    "umbilical_vein",
    "kidneys",
    "spine",
    "ribs",
    "femur",
    "thalami",
    "cavum_septi_pellucidi",
    "cerebellum",
)
#: Network input (rows, cols); any frame is resized to it and the output resized back.
NET_SHAPE: tuple[int, int] = (160, 192)
TRAIN_SEED_BASE = 0
HELDOUT_SEED_BASE = 1_000_000_000
#: Plane mix of the sampled frames (the planes whose structures the model segments).
PLANE_MIX: tuple[tuple[str, float], ...] = (
    ("fetal_abdomen", 0.4),
    ("fetal_femur", 0.3),
    ("fetal_brain", 0.3),
)


@dataclass(frozen=True)
class FrameSpec:
    """The plane and make_frame keyword parameters a seed stands for."""

    seed: int
    plane: str
    params: dict


def frame_spec(seed: int) -> FrameSpec:
    """Plane and criterion flags for ``seed`` (drawn from a generator seeded by ``seed`` only)."""
    rng = np.random.default_rng([int(seed), 77])
    names = [p for p, _ in PLANE_MIX]
    plane = str(rng.choice(names, p=[w for _, w in PLANE_MIX]))
    params: dict = {}
    small = rng.random() < 0.2  # fails the "> 30 %" criterion
    asym = float(rng.uniform(0.06, 0.25)) if rng.random() < 0.25 else 0.0
    if plane == "fetal_abdomen":
        params = {
            "stomach": bool(rng.random() < 0.75),
            "umbilical_vein": bool(rng.random() < 0.75),
            "kidneys": bool(rng.random() < 0.3),
            "asymmetry": asym,
            "fill": float(rng.uniform(0.12, 0.28)) if small else float(rng.uniform(0.34, 0.5)),
            "inside": bool(rng.random() < 0.9),
        }
    elif plane == "fetal_brain":
        params = {
            "brain_plane": str(
                rng.choice(["Trans-thalamic", "Trans-ventricular", "Trans-cerebellum"])
            ),
            "thalami": bool(rng.random() < 0.65),
            "csp": bool(rng.random() < 0.75),
            "cerebellum": bool(rng.random() < 0.3),
            "asymmetry": asym,
            "fill": float(rng.uniform(0.12, 0.28)) if small else float(rng.uniform(0.34, 0.5)),
        }
    else:
        params = _femur_params(rng, small)
    return FrameSpec(int(seed), plane, params)


def _femur_params(rng: np.random.Generator, small: bool) -> dict:
    params = {
        "angle_deg": float(rng.uniform(-80, 80)),
        "fill": float(rng.uniform(0.15, 0.28)) if small else float(rng.uniform(0.35, 0.6)),
        "ends_visible": bool(rng.random() < 0.8),
        "epiphysis": bool(rng.random() < 0.5),
    }
    if rng.random() < 0.1:
        params["visible_length"] = float(rng.uniform(0.5, 0.9))
    return params


def femur_spec(seed: int) -> FrameSpec:
    """A femur frame for ``seed`` with :func:`frame_spec`'s femur mix (angle, size, an end off the
    sector, epiphysis, out-of-plane bar), from its own random stream: every seed is a femur."""
    rng = np.random.default_rng([int(seed), 78])
    return FrameSpec(int(seed), "fetal_femur", _femur_params(rng, bool(rng.random() < 0.2)))


def sample_frame(seed: int) -> PhantomFrame:
    """The phantom frame ``seed`` stands for (deterministic)."""
    spec = frame_spec(seed)
    return make_frame(spec.plane, seed=spec.seed, **spec.params)


def to_grey(frame: NDArray) -> NDArray[np.uint8]:
    """(rows, cols) uint8 grey from a grey or RGB(A) frame; ValueError naming the shape otherwise."""
    a = np.asarray(frame)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        a = cv2.cvtColor(np.ascontiguousarray(a[..., :3]).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    elif a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"frame has shape {a.shape}; need (rows, cols) or (rows, cols, 3)")
    if min(a.shape) < 16:
        raise ValueError(f"frame of {a.shape[1]}×{a.shape[0]} px is too small to segment")
    if a.dtype != np.uint8:
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise ValueError("frame contains NaN or infinite pixel values")
        a = np.clip(a, 0, 255).astype(np.uint8)
    return a


def preprocess(frame: NDArray, net_shape: tuple[int, int] = NET_SHAPE) -> NDArray[np.float32]:
    """Network input (1, rows, cols) float32 for one frame of any size."""
    grey = to_grey(frame)
    small = cv2.resize(grey, (net_shape[1], net_shape[0]), interpolation=cv2.INTER_AREA)
    x = small.astype(np.float32) / 255.0
    x = (x - x.mean()) / (x.std() + 1e-6)
    return x[None]


def targets(
    masks: dict[str, NDArray], net_shape: tuple[int, int] = NET_SHAPE
) -> NDArray[np.float32]:
    """Soft targets (C, rows, cols) float32 in [0, 1]: the covered fraction of each net pixel."""
    out = np.zeros((len(CLASSES), *net_shape), np.float32)
    for i, name in enumerate(CLASSES):
        m = masks.get(name)
        if m is not None and m.any():
            out[i] = cv2.resize(
                m.astype(np.float32), (net_shape[1], net_shape[0]), interpolation=cv2.INTER_AREA
            )
    return out


def training_pair(seed: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(input (1, rows, cols), targets (C, rows, cols)) for the phantom frame ``seed``."""
    f = sample_frame(seed)
    return preprocess(f.image), targets(f.masks)


def load_folder(folder: str) -> list[tuple[str, str]]:
    """(image, mask) PNG path pairs of a user's labelled folder: ``<name>.png`` with
    ``<name>_mask.png`` beside it; the mask's grey value k (1..C) marks class ``CLASSES[k-1]``.

    ValueError naming the folder when it holds no pair.
    """
    from pathlib import Path

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{folder}: not a folder")
    pairs = []
    for img in sorted(root.glob("*.png")):
        if img.stem.endswith("_mask"):
            continue
        mask = img.with_name(f"{img.stem}_mask.png")
        if mask.is_file():
            pairs.append((str(img), str(mask)))
    if not pairs:
        raise ValueError(f"{folder}: no <name>.png with <name>_mask.png beside it")
    return pairs


def folder_pair(image_path: str, mask_path: str) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(input, targets) from a user's image PNG and its label PNG (grey value k → class k-1).

    A label image marks each pixel with one class (the innermost structure); the abdomen channel is
    the union of the abdomen and the organs inside it, as on the phantom.
    """
    image = cv2.imread(image_path, cv2.IMREAD_GRAYSCALE)
    label = cv2.imread(mask_path, cv2.IMREAD_GRAYSCALE)
    if image is None or label is None:
        raise ValueError(f"cannot read {image_path} or {mask_path} as an image")
    if image.shape != label.shape:
        raise ValueError(f"{mask_path}: shape {label.shape} differs from the image's {image.shape}")
    if int(label.max()) > len(CLASSES):
        raise ValueError(f"{mask_path}: label value {int(label.max())} > {len(CLASSES)} classes")
    masks = {name: label == i + 1 for i, name in enumerate(CLASSES)}
    inside = ("stomach", "umbilical_vein", "kidneys", "spine", "ribs")
    masks["abdomen"] = masks["abdomen"] | np.any([masks[k] for k in inside], axis=0)
    return preprocess(image), targets(masks)


# --- FETAL_PLANES_DB images with the multi-centre biometry benchmark's calipers ------------------
#: Channels a benchmark row labels (the others are unknown on those images: left out of the loss).
FP_CHANNELS = {"Abdomen": ("abdomen",), "Femur": ("femur",)}


def fp_rows(images: str, landmarks: str, split: str = "Train") -> list[tuple[str, str, dict]]:
    """(plane, image path, caliper row) for every benchmark row of ``split`` whose image exists.

    ``images``: FETAL_PLANES_DB's ``Images`` folder; ``landmarks``: the benchmark's ``FP`` folder
    (``Abdomen_<split>.csv``, ``Femur_<split>.csv``). ValueError naming what is missing.
    """
    import csv
    from pathlib import Path

    root, marks = Path(images), Path(landmarks)
    if not root.is_dir():
        raise ValueError(f"{images}: not a folder (FETAL_PLANES_DB Images)")
    out = []
    for plane in FP_CHANNELS:
        path = marks / f"{plane}_{split}.csv"
        if not path.is_file():
            raise ValueError(f"{path}: no such landmark file")
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                img = (root / row["image_name"]).with_suffix(".png")
                if img.is_file():
                    out.append((plane, str(img), row))
    if not out:
        raise ValueError(f"{images}: none of the benchmark's {split} images is there")
    return out


def fp_masks(plane: str, row: dict, shape: tuple[int, int]) -> dict[str, NDArray[np.bool_]]:
    """Approximate masks from a benchmark row: the abdomen as the filled ellipse whose axes are
    TAD and APAD (centred between the TAD ends, oriented along TAD); the femur as a bar between
    the FL end points, 9 % of FL thick with rounded ends (the phantom's proportions)."""
    f = {k: float(v) for k, v in row.items() if k.endswith(("_x", "_y"))}
    m = np.zeros(shape, np.uint8)
    if plane == "Abdomen":
        t0, t1 = (f["tad_1_x"], f["tad_1_y"]), (f["tad_2_x"], f["tad_2_y"])
        a0, a1 = (f["apad_1_x"], f["apad_1_y"]), (f["apad_2_x"], f["apad_2_y"])
        cx, cy = (t0[0] + t1[0]) / 2, (t0[1] + t1[1]) / 2
        a = float(np.hypot(t1[0] - t0[0], t1[1] - t0[1])) / 2
        b = float(np.hypot(a1[0] - a0[0], a1[1] - a0[1])) / 2
        angle = float(np.degrees(np.arctan2(t1[1] - t0[1], t1[0] - t0[0])))
        cv2.ellipse(m, ((cx, cy), (2 * a, 2 * b), angle), 1, thickness=-1)
        return {"abdomen": m > 0}
    p0 = np.array([f["fl_1_x"], f["fl_1_y"]])
    p1 = np.array([f["fl_2_x"], f["fl_2_y"]])
    length = float(np.linalg.norm(p1 - p0))
    r = 0.045 * length
    d = (p1 - p0) / max(length, 1e-6)
    q0, q1 = p0 + r * d, p1 - r * d
    ends = [(round(float(q[0])), round(float(q[1]))) for q in (q0, q1)]
    cv2.line(m, ends[0], ends[1], 1, thickness=max(1, round(2 * r)))
    for q in ends:
        cv2.circle(m, q, round(r), 1, thickness=-1)
    return {"femur": m > 0}


def fp_pair(
    plane: str, image_path: str, row: dict
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_]]:
    """(input, targets, valid channels (C,)) for one benchmark row."""
    image = cv2.imread(image_path, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"cannot read {image_path} as an image")
    valid = np.array([name in FP_CHANNELS[plane] for name in CLASSES])
    return preprocess(image), targets(fp_masks(plane, row, image.shape)), valid
