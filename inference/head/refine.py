"""Second look at the head: the same U-Net shape run on a crop around the first ellipse.

Why: on the whole letterboxed frame a small head (HC < 100 mm) is ~60 network pixels wide, so one
network pixel is ~3.4 frame pixels and the skull edge is coarse. Cropping the frame around the
first-pass ellipse (``CROP_MARGIN`` × its bounding box, widened to the network's aspect ratio) and
segmenting again puts the head at up to several times the resolution. A separate network
("refine") is trained on such crops, with the first pass's typical errors simulated by jitter.

Coordinates: frame pixels (x = column, y = row, pixel centres at integers). A crop is an
axis-aligned window of the frame at its own resolution, zero outside the frame:
``frame = crop + (x0, y0)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from inference.geometry import Ellipse

CROP_MARGIN = 1.4
"""Crop side / the ellipse's bounding-box side: room for the first pass's errors and context."""


@dataclass(frozen=True)
class CropWindow:
    """A window of the frame: top-left corner (x0, y0) and size (width, height), frame px."""

    x0: int
    y0: int
    width: int
    height: int


def crop_window(ellipse: Ellipse, aspect_wh: float, margin: float = CROP_MARGIN) -> CropWindow:
    """The window centred on ``ellipse`` holding its bounding box × ``margin``, widened to the
    width/height ratio ``aspect_wh`` (the network's) so letterboxing wastes nothing."""
    c, s = math.cos(ellipse.angle), math.sin(ellipse.angle)
    half_w = math.hypot(ellipse.a * c, ellipse.b * s) * margin
    half_h = math.hypot(ellipse.a * s, ellipse.b * c) * margin
    if half_w / half_h < aspect_wh:
        half_w = half_h * aspect_wh
    else:
        half_h = half_w / aspect_wh
    width, height = max(8, round(2 * half_w)), max(8, round(2 * half_h))
    return CropWindow(round(ellipse.cx - width / 2), round(ellipse.cy - height / 2), width, height)


def cut(frame: NDArray, window: CropWindow) -> NDArray[np.float32]:
    """The window's pixels of a 2-D frame (float32), zero where the window leaves the frame."""
    out = np.zeros((window.height, window.width), np.float32)
    ys, xs = max(0, window.y0), max(0, window.x0)
    ye = min(frame.shape[0], window.y0 + window.height)
    xe = min(frame.shape[1], window.x0 + window.width)
    if ye > ys and xe > xs:
        out[ys - window.y0 : ye - window.y0, xs - window.x0 : xe - window.x0] = frame[ys:ye, xs:xe]
    return out


def to_frame(ellipse: Ellipse, window: CropWindow) -> Ellipse:
    """An ellipse found in crop pixels, in frame pixels."""
    return Ellipse(
        ellipse.cx + window.x0, ellipse.cy + window.y0, ellipse.a, ellipse.b, ellipse.angle
    )


def jittered(ellipse: Ellipse, rng: np.random.Generator) -> Ellipse:
    """The true ellipse moved as a first pass might get it wrong (training only): centre by
    ~4 % of the semi-major axis, axes by ~5 %, angle by ~6°, each normally distributed."""
    return Ellipse.from_axes(
        ellipse.cx + rng.normal(0, 0.04) * ellipse.a,
        ellipse.cy + rng.normal(0, 0.04) * ellipse.a,
        ellipse.a * math.exp(rng.normal(0, 0.05)),
        ellipse.b * math.exp(rng.normal(0, 0.05)),
        ellipse.angle + math.radians(rng.normal(0, 6)),
    )
