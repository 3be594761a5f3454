"""Burn measurement geometry (and mask outlines) into a frame: the key image of a plane.

Input frame: (rows, cols) uint8 grey or (rows, cols, 3) uint8 RGB, display-ready. Output: (rows,
cols, 3) uint8 RGB of the same size, so pixel coordinates stay those of the source frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLOURS = {
    "HC": (255, 214, 0),
    "BPD": (0, 220, 255),
    "OFD": (255, 120, 200),
    "AC": (120, 255, 120),
    "FL": (255, 150, 40),
}
MASK_COLOUR = (80, 160, 255)


def _font(size: int) -> ImageFont.ImageFont:
    for name in ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def _ellipse_outline(g: dict[str, Any], n: int = 120) -> list[tuple[float, float]]:
    cx, cy, a, b = (float(g[k]) for k in ("cx", "cy", "a", "b"))
    t = float(g.get("angle", 0.0))
    ct, st = math.cos(t), math.sin(t)
    out = []
    for i in range(n + 1):
        u = 2 * math.pi * i / n
        x, y = a * math.cos(u), b * math.sin(u)
        out.append((cx + x * ct - y * st, cy + x * st + y * ct))
    return out


def _cross(draw: ImageDraw.ImageDraw, x: float, y: float, size: float, colour, width: int) -> None:
    draw.line([(x - size, y - size), (x + size, y + size)], fill=colour, width=width)
    draw.line([(x - size, y + size), (x + size, y - size)], fill=colour, width=width)


def burn_in(
    frame: np.ndarray,
    measurements: Sequence[tuple[str, dict[str, Any], str]],
    *,
    masks: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """RGB copy of ``frame`` with each (kind, geometry_px, label) drawn and mask outlines.

    Ellipses are drawn as outlines, lengths as a line with caliper crosses at both ends; the
    label (e.g. "HC 172.4 mm") is written near the geometry in the kind's colour.
    """
    if frame.ndim == 2:
        rgb = np.repeat(frame[:, :, None], 3, axis=2)
    else:
        rgb = frame[:, :, :3]
    image = Image.fromarray(np.ascontiguousarray(rgb.astype(np.uint8)), "RGB")
    rows, cols = rgb.shape[:2]
    scale = max(rows, cols) / 480
    width = max(1, round(2 * scale))
    font = _font(max(10, round(13 * scale)))
    for mask in masks:
        if mask.shape[:2] != (rows, cols) or not mask.any():
            continue
        m = mask.astype(bool)
        edge = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
        arr = np.asarray(image).copy()
        arr[edge] = MASK_COLOUR
        image = Image.fromarray(arr, "RGB")
    draw = ImageDraw.Draw(image)
    for index, (kind, g, label) in enumerate(measurements):
        colour = COLOURS.get(kind, (255, 255, 255))
        if g.get("type") == "ellipse":
            draw.line(_ellipse_outline(g), fill=colour, width=width)
            anchor = (float(g["cx"]) + 4 * scale, float(g["cy"]) - abs(float(g["b"])) * 0.3)
        else:
            (x0, y0), (x1, y1) = g["points"][0], g["points"][1]
            draw.line([(x0, y0), (x1, y1)], fill=colour, width=width)
            _cross(draw, x0, y0, 5 * scale, colour, width)
            _cross(draw, x1, y1, 5 * scale, colour, width)
            anchor = ((x0 + x1) / 2 + 6 * scale, (y0 + y1) / 2 + 4 * scale)
        x = min(max(2.0, anchor[0]), cols - 10)
        y = min(max(2.0, anchor[1] + index * 2), rows - 16 * scale)
        draw.text((x, y), label, fill=colour, font=font, stroke_width=1, stroke_fill=(0, 0, 0))
    return np.asarray(image)
