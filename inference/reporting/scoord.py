"""Measurement geometry → DICOM spatial coordinates (SCOORD) on the source frame.

The project's pixel convention puts pixel centres at integer (x, y); DICOM SCOORD puts the
top-left corner of the top-left pixel at (0.0, 0.0), so a pixel centre is at (x + 0.5, y + 0.5)
(PS3.3 C.18.6.1.2). An ellipse becomes ELLIPSE with 4 points (major-axis end points first, then
minor-axis end points); a length becomes an open POLYLINE with its 2 end points.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

HALF_PIXEL = 0.5


def ellipse_points(geometry: dict[str, Any]) -> np.ndarray:
    """(4, 2) float32 SCOORD column/row points of an ellipse: major axis, then minor axis."""
    cx, cy = float(geometry["cx"]), float(geometry["cy"])
    a, b = float(geometry["a"]), float(geometry["b"])
    t = float(geometry.get("angle", 0.0))
    ux, uy = math.cos(t), math.sin(t)  # direction of semi-axis a
    vx, vy = -uy, ux  # direction of semi-axis b
    ends_a = [(cx - a * ux, cy - a * uy), (cx + a * ux, cy + a * uy)]
    ends_b = [(cx - b * vx, cy - b * vy), (cx + b * vx, cy + b * vy)]
    ordered = ends_a + ends_b if a >= b else ends_b + ends_a
    return np.asarray(ordered, dtype=np.float64) + HALF_PIXEL


def line_points(geometry: dict[str, Any]) -> np.ndarray:
    """(2, 2) SCOORD column/row end points of a length."""
    points = geometry["points"]
    return np.asarray([[float(p[0]), float(p[1])] for p in points[:2]]) + HALF_PIXEL


def graphic(geometry: dict[str, Any]) -> tuple[str, np.ndarray]:
    """("ELLIPSE" | "POLYLINE", points) for a stored geometry; ValueError for anything else."""
    kind = geometry.get("type")
    if kind == "ellipse":
        return "ELLIPSE", ellipse_points(geometry)
    if kind == "line" and len(geometry.get("points", ())) >= 2:
        return "POLYLINE", line_points(geometry)
    raise ValueError(f"geometry type {kind!r} has no SCOORD form (expected ellipse or line)")


def ellipse_from_points(points: np.ndarray) -> dict[str, float]:
    """Inverse of :func:`ellipse_points` (for read-back checks): cx, cy, major, minor semi-axes."""
    p = np.asarray(points, dtype=float) - HALF_PIXEL
    c = p.mean(axis=0)
    major = float(np.linalg.norm(p[1] - p[0]) / 2)
    minor = float(np.linalg.norm(p[3] - p[2]) / 2)
    return {"cx": float(c[0]), "cy": float(c[1]), "major": major, "minor": minor}
