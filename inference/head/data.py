"""HC18 data: file listing, subject split, filled-ellipse targets, letterboxing, cache, augmentation.

Geometry conventions: images are (rows, cols) arrays; points are (x = column, y = row) in pixels.
The network sees the image letterboxed into ``NET_SHAPE`` (H, W): scaled by one factor ``s`` to
fit, anchored top-left, zero-padded right/bottom, so original = network / s.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

NET_SHAPE: tuple[int, int] = (160, 240)  # (H, W) the network sees; HC18's 800×540 fits at s≈0.296
_NAME = re.compile(r"^(\d+)_(\d*)HC\.png$")


@dataclass(frozen=True)
class HC18Item:
    """One HC18 training image with its annotation and calibration."""

    name: str  # e.g. "010_2HC.png"
    subject: str  # number before the first "_", e.g. "010"
    image_path: Path
    annotation_path: Path
    pixel_size_mm: float
    hc_mm: float  # the challenge's reference head circumference


def subject_of(name: str) -> str:
    """Subject id of an HC18 file name: the text before the first underscore."""
    return name.split("_", 1)[0]


def list_hc18(data_dir: str | Path) -> list[HC18Item]:
    """List the HC18 training layout under ``data_dir`` (training_set/ + the pixel-size CSV).

    Raises FileNotFoundError naming the missing part when the layout is not there.
    """
    root = Path(data_dir)
    images = root / "training_set"
    table = root / "training_set_pixel_size_and_HC.csv"
    if not images.is_dir():
        raise FileNotFoundError(f"no HC18 image folder at {images}")
    if not table.is_file():
        raise FileNotFoundError(f"no HC18 pixel-size table at {table}")
    items: list[HC18Item] = []
    with table.open(newline="") as fh:
        for row in csv.DictReader(fh):
            name = row["filename"].strip()
            if not _NAME.match(name):
                continue
            image = images / name
            annotation = images / name.replace(".png", "_Annotation.png")
            if not (image.is_file() and annotation.is_file()):
                continue
            items.append(
                HC18Item(
                    name=name,
                    subject=subject_of(name),
                    image_path=image,
                    annotation_path=annotation,
                    pixel_size_mm=float(row["pixel size(mm)"]),
                    hc_mm=float(row["head circumference (mm)"]),
                )
            )
    items.sort(key=lambda it: it.name)
    if not items:
        raise FileNotFoundError(f"no HC18 images listed in {table} were found in {images}")
    return items


def split_subjects(
    subjects: list[str], val_fraction: float = 0.15, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Deterministic subject split: returns (train_subjects, val_subjects), each sorted."""
    unique = sorted(set(subjects))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(unique))
    n_val = max(1, round(len(unique) * val_fraction))
    val = sorted(unique[i] for i in order[:n_val])
    train = sorted(set(unique) - set(val))
    return train, val


def read_gray(path: str | Path) -> np.ndarray:
    """Read an image file as a 2-D uint8 grey array; raises ValueError if unreadable."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    return image


def annotation_ellipse(annotation: np.ndarray) -> tuple[float, float, float, float, float]:
    """Fit the HC18 outline annotation (thin drawn ellipse, 0/255) with cv2.fitEllipse.

    Returns (cx, cy, a, b, angle_rad) in pixels of the annotation: semi-major a ≥ semi-minor b,
    angle of the major axis from +x towards +y (image rows down), in [0, π).
    """
    pts = cv2.findNonZero((annotation > 127).astype(np.uint8))
    if pts is None or len(pts) < 5:
        raise ValueError("annotation has no outline")
    (cx, cy), (w, h), deg = cv2.fitEllipse(pts.astype(np.float32))
    a, b, theta = w / 2.0, h / 2.0, math.radians(deg)
    if b > a:  # cv2's angle belongs to the first axis (w); make a the major one
        a, b, theta = b, a, theta + math.pi / 2
    return float(cx), float(cy), float(a), float(b), float(theta % math.pi)


def letterbox_scale(shape: tuple[int, int], net_shape: tuple[int, int] = NET_SHAPE) -> float:
    """Scale factor s so that an image of ``shape`` (rows, cols) fits ``net_shape`` (H, W)."""
    return min(net_shape[0] / shape[0], net_shape[1] / shape[1])


def letterbox(
    image: np.ndarray, net_shape: tuple[int, int] = NET_SHAPE
) -> tuple[np.ndarray, float]:
    """Resize a 2-D image by one factor to fit ``net_shape`` and zero-pad right/bottom.

    Returns (array of ``net_shape`` with image's dtype, scale s); network px = original px × s.
    """
    s = letterbox_scale(image.shape[:2], net_shape)
    h = max(1, min(net_shape[0], round(image.shape[0] * s)))
    w = max(1, min(net_shape[1], round(image.shape[1] * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (w, h), interpolation=interp)
    out = np.zeros(net_shape, dtype=image.dtype)
    out[:h, :w] = resized
    return out, s


def filled_ellipse_mask(
    shape: tuple[int, int],
    ellipse: tuple[float, float, float, float, float],
    supersample: int = 4,
) -> np.ndarray:
    """Anti-aliased filled ellipse (cx, cy, a, b, angle_rad) as uint8 coverage 0..255 of ``shape``."""
    big = np.zeros((shape[0] * supersample, shape[1] * supersample), np.uint8)
    cx, cy, a, b, theta = ellipse
    shift = 4  # cv2.ellipse takes fixed-point coordinates with 4 fractional bits
    f = supersample * (1 << shift)
    # pixel centres: original (x + 0.5) * k - 0.5 in the supersampled grid
    centre = (
        round(((cx + 0.5) * supersample - 0.5) * (1 << shift)),
        round(((cy + 0.5) * supersample - 0.5) * (1 << shift)),
    )
    axes = (round(a * f), round(b * f))
    cv2.ellipse(big, centre, axes, math.degrees(theta), 0, 360, 255, -1, cv2.LINE_8, shift)
    return cv2.resize(big, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def build_cache(
    items: list[HC18Item], cache_path: str | Path, net_shape: tuple[int, int] = NET_SHAPE
) -> dict[str, np.ndarray]:
    """Letterbox every image and rasterise its filled target ellipse at ``net_shape``; save .npz.

    Arrays: images (N,H,W) uint8, masks (N,H,W) uint8 coverage, scale (N,), ellipses (N,5) in
    original px, pixel_size_mm (N,), hc_mm (N,), names (N,), subjects (N,).
    """
    n = len(items)
    images = np.zeros((n, *net_shape), np.uint8)
    masks = np.zeros((n, *net_shape), np.uint8)
    scale = np.zeros(n, np.float64)
    ellipses = np.zeros((n, 5), np.float64)
    for i, it in enumerate(items):
        img = read_gray(it.image_path)
        ann = read_gray(it.annotation_path)
        ell = annotation_ellipse(ann)
        images[i], s = letterbox(img, net_shape)
        cx, cy, a, b, t = ell
        masks[i] = filled_ellipse_mask(
            net_shape, ((cx + 0.5) * s - 0.5, (cy + 0.5) * s - 0.5, a * s, b * s, t)
        )
        scale[i], ellipses[i] = s, ell
    data = {
        "images": images,
        "masks": masks,
        "scale": scale,
        "ellipses": ellipses,
        "pixel_size_mm": np.array([it.pixel_size_mm for it in items]),
        "hc_mm": np.array([it.hc_mm for it in items]),
        "names": np.array([it.name for it in items]),
        "subjects": np.array([it.subject for it in items]),
        "net_shape": np.array(net_shape),
    }
    path = Path(cache_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    return data


def load_or_build_cache(
    data_dir: str | Path, cache_path: str | Path, net_shape: tuple[int, int] = NET_SHAPE
) -> dict[str, np.ndarray]:
    """Load the .npz cache if it matches ``data_dir``'s file list and ``net_shape``; else build it."""
    items = list_hc18(data_dir)
    path = Path(cache_path)
    if path.is_file():
        with np.load(path) as z:
            data = {k: z[k] for k in z.files}
        if list(data["names"]) == [it.name for it in items] and tuple(data["net_shape"]) == tuple(
            net_shape
        ):
            return data
    return build_cache(items, path, net_shape)


def standardise(batch: np.ndarray) -> np.ndarray:
    """Per-image zero mean / unit variance of (N, H, W) float images (flat images stay 0)."""
    x = batch.astype(np.float32)
    mean = x.mean(axis=(1, 2), keepdims=True)
    std = x.std(axis=(1, 2), keepdims=True)
    return (x - mean) / np.maximum(std, 1.0)  # std ≥ 1 grey level: noise-free blanks stay ~0


def augment(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Ultrasound-style augmentation of one (H, W) uint8 image and its uint8 coverage mask.

    Geometry (same for both): rotation ±30°, scale 0.75–1.3, translation ±20 % (heads partly out of
    view), horizontal flip, rare vertical flip. Intensity (image only): gain, gamma, contrast,
    multiplicative correlated speckle, blur, additive noise. Returns float32 image 0..255 and
    float32 target 0..1.
    """
    h, w = image.shape
    angle = rng.uniform(-30, 30)
    scale = math.exp(rng.uniform(math.log(0.75), math.log(1.3)))
    centre = (w / 2 + rng.uniform(-0.1, 0.1) * w, h / 2 + rng.uniform(-0.1, 0.1) * h)
    m = cv2.getRotationMatrix2D(centre, angle, scale)
    m[0, 2] += rng.uniform(-0.2, 0.2) * w
    m[1, 2] += rng.uniform(-0.2, 0.2) * h
    if rng.random() < 0.5:  # horizontal flip folded into the affine map
        m = np.array([[-1, 0, w - 1], [0, 1, 0]], np.float64) @ np.vstack([m, [0, 0, 1]])
    if rng.random() < 0.15:
        m = np.array([[1, 0, 0], [0, -1, h - 1]], np.float64) @ np.vstack([m, [0, 0, 1]])
    img = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0).astype(np.float32)
    tgt = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0).astype(np.float32)
    return augment_intensity(img, rng), tgt / 255.0


def augment_intensity(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The intensity part of :func:`augment` on a float (H, W) image 0..255: speckle, blur,
    gamma, gain and offset, noise. Returns float32 0..255."""
    h, w = image.shape
    img = image.astype(np.float32) / 255.0
    if rng.random() < 0.7:  # multiplicative speckle, spatially correlated like real speckle
        noise = rng.standard_normal((h, w)).astype(np.float32)
        noise = cv2.GaussianBlur(noise, (0, 0), rng.uniform(0.5, 1.5))
        noise /= noise.std() + 1e-6
        img *= np.clip(1.0 + rng.uniform(0.05, 0.35) * noise, 0.0, None)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
    img = np.clip(img, 0.0, 1.0) ** math.exp(rng.uniform(math.log(0.6), math.log(1.7)))
    img = img * rng.uniform(0.6, 1.5) + rng.uniform(-0.08, 0.08)  # gain and offset
    if rng.random() < 0.3:
        img += rng.normal(0, rng.uniform(0.01, 0.04), img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0) * 255.0


def save_split(
    path: str | Path, train: list[str], val: list[str], seed: int, fraction: float
) -> None:
    """Write the subject split as JSON (kept beside the shipped weights)."""
    Path(path).write_text(
        json.dumps(
            {"seed": seed, "val_fraction": fraction, "val_subjects": val, "train_subjects": train},
            indent=1,
        )
        + "\n"
    )
