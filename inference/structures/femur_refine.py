"""Second look at the femur: a small U-Net on a strip of the frame laid along the first FL line.

Why: on the structure network's 160 × 192 grid a second-trimester femur is 30–60 network pixels
long, one network pixel is ≈ 1.6 frame pixels, and FL comes out up to a few per cent short or long
(the diaphysis ends are where FL is read). The strip puts the bone along its columns at up to
≈ 2× the frame's resolution: ``STRIP_SHAPE`` (rows, cols), the first line's length ×
``STRIP_MARGIN`` across its columns, the same scale across its rows (isotropic, so shapes and the
width rules of :mod:`inference.femur` hold inside it). A separate network is trained on such
strips with the first pass's typical errors simulated by jitter (``python -m inference.train
femur-refine``).

Coordinates: frame pixels (x = column, y = row, pixel centres at integers); a strip pixel (u, v)
(u = column along the bone, v = row across it) is frame point
``centre + (u − u_c) / scale · d + (v − v_c) / scale · n`` with ``d`` the line's unit direction,
``n`` its normal and (u_c, v_c) the strip's centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np
from numpy.typing import NDArray

from inference.femur import FemurMeasurement, femur_angle_deg, measure_femur

#: Strip network input (rows, cols): the bone lies along the columns.
STRIP_SHAPE: tuple[int, int] = (64, 192)
STRIP_MARGIN = 1.6
"""Strip length / first FL line length: room for a first pass up to ≈ 25 % short at an end."""


@dataclass(frozen=True)
class StripWindow:
    """An oriented strip of the frame: centre (x, y) frame px, direction angle (rad, of the line
    from its first to its second point, image axes), scale (strip px per frame px), shape."""

    cx: float
    cy: float
    angle: float
    scale: float
    shape: tuple[int, int] = STRIP_SHAPE

    def strip_to_frame(self) -> NDArray[np.float64]:
        """2 × 3 affine matrix taking strip (u, v) to frame (x, y)."""
        rows, cols = self.shape
        c, s = math.cos(self.angle), math.sin(self.angle)
        k = 1.0 / self.scale
        uc, vc = (cols - 1) / 2.0, (rows - 1) / 2.0
        # x = cx + k (u − uc) c − k (v − vc) s ;  y = cy + k (u − uc) s + k (v − vc) c
        return np.array(
            [
                [k * c, -k * s, self.cx - k * (uc * c - vc * s)],
                [k * s, k * c, self.cy - k * (uc * s + vc * c)],
            ]
        )

    def to_frame(self, points: NDArray) -> NDArray[np.float64]:
        """Strip points (N, 2) (u, v) → frame points (N, 2) (x, y)."""
        p = np.asarray(points, np.float64).reshape(-1, 2)
        m = self.strip_to_frame()
        return p @ m[:, :2].T + m[:, 2]

    def to_strip(self, points: NDArray) -> NDArray[np.float64]:
        """Frame points (N, 2) (x, y) → strip points (N, 2) (u, v)."""
        p = np.asarray(points, np.float64).reshape(-1, 2)
        m = self.strip_to_frame()
        inv = np.linalg.inv(m[:, :2])
        return (p - m[:, 2]) @ inv.T


def strip_window(
    p0: tuple[float, float],
    p1: tuple[float, float],
    *,
    shape: tuple[int, int] = STRIP_SHAPE,
    margin: float = STRIP_MARGIN,
) -> StripWindow:
    """The strip centred on the segment p0–p1 (frame px), along it, ``margin`` × its length long.

    ValueError when the two points coincide (no direction)."""
    (x0, y0), (x1, y1) = p0, p1
    length = math.hypot(x1 - x0, y1 - y0)
    if not length > 1.0:
        raise ValueError(f"femur line of {length:.2f} px has no direction to lay a strip along")
    return StripWindow(
        cx=(x0 + x1) / 2.0,
        cy=(y0 + y1) / 2.0,
        angle=math.atan2(y1 - y0, x1 - x0),
        scale=shape[1] / (margin * length),
        shape=shape,
    )


def cut_strip(grey: NDArray, window: StripWindow) -> NDArray[np.float32]:
    """The strip's pixels (rows, cols) float32 of a 2-D frame (bilinear; zero outside the frame)."""
    rows, cols = window.shape
    return cv2.warpAffine(
        np.asarray(grey, np.float32),
        window.strip_to_frame(),
        (cols, rows),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )


def standardise(strip: NDArray[np.float32]) -> NDArray[np.float32]:
    """Network input (1, rows, cols): grey / 255, zero mean and unit variance over the strip."""
    x = strip / 255.0
    return ((x - x.mean()) / (x.std() + 1e-6))[None].astype(np.float32)


def strip_mask_to_frame(
    mask: NDArray, window: StripWindow, frame_shape: tuple[int, int]
) -> NDArray[np.bool_]:
    """A strip mask (rows, cols) drawn back on the frame grid (rows, cols) bool (nearest pixel)."""
    h, w = frame_shape
    back = cv2.warpAffine(
        np.asarray(mask, np.uint8),
        window.strip_to_frame(),
        (w, h),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return back > 0


def capsule_target(
    tip0: tuple[float, float],
    tip1: tuple[float, float],
    radius: float,
    window: StripWindow,
    fov_strip: NDArray | None = None,
) -> NDArray[np.float32]:
    """Soft target (rows, cols) in [0, 1]: the capsule with tips ``tip0`` / ``tip1`` and
    ``radius`` (frame px) drawn in the strip, its edge anti-aliased over one strip pixel; times
    ``fov_strip`` (the field of view in the strip, 0–1) when given (a bone the sector cuts)."""
    rows, cols = window.shape
    (u0, v0), (u1, v1) = window.to_strip(np.array([tip0, tip1]))
    r = radius * window.scale
    # the capsule's straight part ends one radius inside each tip
    d = np.array([u1 - u0, v1 - v0])
    length = float(np.hypot(*d))
    d = d / max(length, 1e-9)
    a = np.array([u0, v0]) + r * d
    b = np.array([u1, v1]) - r * d
    vv, uu = np.mgrid[0:rows, 0:cols].astype(np.float64)
    pu, pv = uu - a[0], vv - a[1]
    seg = b - a
    t = np.clip((pu * seg[0] + pv * seg[1]) / max(float(seg @ seg), 1e-9), 0.0, 1.0)
    dist = np.hypot(pu - t * seg[0], pv - t * seg[1])
    out = np.clip(r + 0.5 - dist, 0.0, 1.0).astype(np.float32)
    if fov_strip is not None:
        out *= np.asarray(fov_strip, np.float32)
    return out


def measure_in_strip(mask: NDArray, window: StripWindow) -> FemurMeasurement:
    """FL from a strip mask (rows, cols), in frame px: :func:`inference.femur.measure_femur` on
    the strip (its rules see the bone at the strip's resolution), end points taken back to the
    frame, length and shaft width divided by the scale, angle to the frame's horizontal.

    ValueError (from ``measure_femur``) when the strip holds no diaphysis."""
    m = measure_femur(mask)
    ends = window.to_frame(np.array(m.end_points))
    p0, p1 = sorted((tuple(float(v) for v in p) for p in ends), key=lambda p: (p[0], p[1]))
    return replace(
        m,
        end_points=(p0, p1),  # type: ignore[arg-type]
        length_px=math.dist(p0, p1),
        length_mm=None,
        pixel_size_mm=None,
        angle_deg=femur_angle_deg(p0, p1),
        shaft_width_px=m.shaft_width_px / window.scale,
        excluded_px=round(m.excluded_px / window.scale**2),  # strip px → frame px
    )
