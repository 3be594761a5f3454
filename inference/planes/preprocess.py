"""Image input for the plane classifier: read any image, crop to the field of view, letterbox.

Arrays are (rows, cols) = (H, W) uint8 grey unless said otherwise. Screen captures carry the
scanner's text and rulers around the image: ``crop_to_fov`` keeps the largest bright connected
region (the ultrasound field of view) and drops the rest, so the classifier sees the same framing
for a DICOM frame, a PNG export or a photograph of a screen.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

INPUT_SIZE = 160  # classifier input: (INPUT_SIZE, INPUT_SIZE) letterboxed grey

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
DICOM_SUFFIXES = {".dcm", ".dicom", ""}


class ImageReadError(ValueError):
    """An image that cannot be read; the message names the file and why."""


def to_grey(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 3) or (H, W, 4) array of any integer/float type → (H, W) uint8 grey."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        a = a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    elif a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D grey or colour image, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a
    a = a.astype(np.float32)
    lo, hi = float(a.min()), float(a.max())
    if hi <= 255 and lo >= 0:
        return a.round().astype(np.uint8)
    return ((a - lo) / max(hi - lo, 1e-6) * 255).round().astype(np.uint8)


def read_dicom_frames(path: Path) -> np.ndarray:
    """All frames of a DICOM image as (T, H, W) uint8 grey (colour and palette converted)."""
    import pydicom
    from pydicom.pixels import apply_color_lut, convert_color_space

    try:
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for bad files
        raise ImageReadError(f"{path}: not a readable DICOM image ({exc})") from exc
    pi = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if pi == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    elif pi.startswith("YBR") and arr.ndim >= 3 and arr.shape[-1] == 3:
        arr = convert_color_space(arr, pi, "RGB")
    colour = (
        arr.shape[-1] == 3 and int(ds.get("SamplesPerPixel", 1)) == 3
    ) or pi == "PALETTE COLOR"
    if frames == 1:
        arr = arr[None]
    out = np.stack([to_grey(f) for f in arr]) if colour or arr.dtype != np.uint8 else arr
    if pi == "MONOCHROME1":
        out = 255 - out
    return np.ascontiguousarray(out)


def read_image(path: str | Path) -> np.ndarray:
    """Read PNG / JPEG / TIFF / BMP or DICOM (first frame) as (H, W) uint8 grey.

    Raises ImageReadError naming the file when it is missing, empty or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: file is empty")
    suffix = path.suffix.lower()
    with open(path, "rb") as fh:
        head = fh.read(132)
    if suffix in {".dcm", ".dicom"} or head[128:132] == b"DICM":
        return read_dicom_frames(path)[0]
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in {"I;16", "I;16B", "I", "F"}:
                return to_grey(np.asarray(im))
            return np.asarray(im.convert("L"))
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: not a readable image ({exc})") from exc


def fov_bbox(image: np.ndarray, threshold: int = 3) -> tuple[int, int, int, int]:
    """Bounding box (row0, row1, col0, col1), end-exclusive, of the ultrasound field of view.

    Bright regions after an opening that removes thin text strokes and rulers; the largest one,
    grown by every other sizeable region whose convex hull touches its convex hull (fluid and
    shadows are black and split the field of view into pieces; a text block beside the image does
    not touch it). The whole image when nothing large enough is found (already-cropped images).
    """
    h, w = image.shape
    small_scale = 256.0 / max(h, w)
    sw, sh = max(1, round(w * small_scale)), max(1, round(h * small_scale))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    mask = (cv2.medianBlur(small, 3) > threshold).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    _n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    order = [k for k in np.argsort(-stats[:, cv2.CC_STAT_AREA]) if k != 0]
    order = [k for k in order if stats[k, cv2.CC_STAT_AREA] >= 0.005 * mask.size]
    if not order:
        return 0, h, 0, w

    def hull(points: np.ndarray) -> np.ndarray:
        out = np.zeros_like(mask)
        pts = cv2.convexHull(points[:, ::-1].astype(np.int32).reshape(-1, 1, 2))
        cv2.fillConvexPoly(out, pts, 1)
        return out

    region = hull(np.argwhere(labels == order[0]))
    pending = order[1:]
    grown = True
    while grown and pending:
        grown = False
        near = cv2.dilate(region, np.ones((5, 5), np.uint8))
        for k in list(pending):
            hk = hull(np.argwhere(labels == k))
            if (hk & near).any():
                region = hull(np.argwhere((region | hk) > 0))
                pending.remove(k)
                grown = True
    if region.sum() < 0.05 * mask.size:
        return 0, h, 0, w
    rows, cols = np.nonzero(region)
    inv = 1.0 / small_scale
    r0, r1 = int(rows.min() * inv), min(h, int(np.ceil((rows.max() + 1) * inv)))
    c0, c1 = int(cols.min() * inv), min(w, int(np.ceil((cols.max() + 1) * inv)))
    return r0, r1, c0, c1


def letterbox(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Scale (H, W) uint8 to fit a (size, size) square keeping the aspect ratio; pad with black."""
    h, w = image.shape
    s = size / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    out = np.zeros((size, size), np.uint8)
    r0, c0 = (size - nh) // 2, (size - nw) // 2
    out[r0 : r0 + nh, c0 : c0 + nw] = resized
    return out


def prepare(
    image: np.ndarray, size: int = INPUT_SIZE, bbox: tuple[int, int, int, int] | None = None
) -> np.ndarray:
    """Any image → (size, size) uint8 classifier input: grey, cropped to the FOV, letterboxed.

    ``bbox`` (row0, row1, col0, col1) overrides the FOV search (a cine shares one box).
    """
    grey = to_grey(image)
    r0, r1, c0, c1 = bbox if bbox is not None else fov_bbox(grey)
    return letterbox(grey[r0:r1, c0:c1], size)


def prepare_cine(frames: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """(T, H, W) uint8 cine → (T, size, size) uint8, one FOV box from the frames' maximum."""
    frames = np.asarray(frames)
    if frames.ndim == 4:
        frames = np.stack([to_grey(f) for f in frames])
    bbox = fov_bbox(frames.max(axis=0))
    return np.stack([prepare(f, size, bbox) for f in frames])
